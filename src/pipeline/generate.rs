//! A generation request of any dialect, in order: check the model, look in the cache before
//! fetching remote media, fetch it (SSRF-checked, within `MAX_FETCHED_BYTES`), then either
//! relay a real stream or obtain a complete answer and deliver it (JSON or fake stream, with
//! keep-alives). The dialect only prepared the request and renders the answers; nothing here
//! knows which dialect it is.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::response::Response;
use tokio::time::Instant;

use crate::config::Settings;
use crate::error::GatewayError;
use crate::keys::Only;
use crate::pipeline::deliver::{Delivery, Memo, deliver};
use crate::pipeline::obtain::{Plan, cached, obtain};
use crate::pipeline::relay;
use crate::pipeline::request_body::RequestBody;
use crate::state::AppState;
use crate::telemetry::OutcomeHandle;
use crate::translate::cache_key::KeyRule;
use crate::translate::dialect::{Context, Prepared, UpstreamBody};
use crate::translate::model_name::{search_base, upstream_model_name};
use crate::upstream::Target;
use crate::upstream::endpoint::{Action, MODEL_ID_MAX_LEN, Version, require_model_id};
use crate::vertex::models::{Serve, Variant, VertexModel};
use crate::vertex::render::Deobfuscating;
use crate::wire::gemini::GenerateContentRequest;

/// What a dialect's translation may know of the server for this request.
pub fn context<'a>(
    snap: &'a Settings,
    model_thinks: &'a dyn Fn(&str) -> Option<bool>,
    recall: &'a dyn Fn(&str, &str) -> Option<String>,
    recall_kept: &'a dyn Fn(&str) -> Option<bytes::Bytes>,
) -> Context<'a> {
    Context {
        enable_thinking: snap.enable_thinking,
        model_thinks,
        search_prompt: snap.search_mode.then_some(snap.search_prompt.as_str()),
        recall_signature: recall,
        random_string: snap.random_string.then_some(snap.random_string_length),
        inband_errors: snap.inband_errors,
        cache: Some(KeyRule {
            last_n: snap.calculate_cache_entries,
            precise: snap.precise_cache,
        }),
        recall_kept,
        aliases: &snap.model_aliases,
    }
}

/// Which upstream a generation request goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// Vertex AI while `ENABLE_VERTEX` is on (read per request: the dashboard's toggle is
    /// live), else AI Studio: the shared routes of every dialect.
    Settings,
    /// AI Studio always (`/aistudio/*`, native Gemini routes).
    AiStudio,
    /// Vertex AI always (`/vertex/*`).
    Vertex,
}

impl Via {
    pub fn is_vertex(self, snap: &Settings) -> bool {
        match self {
            Self::Settings => snap.enable_vertex,
            Self::AiStudio => false,
            Self::Vertex => true,
        }
    }
}

/// Translates with the server's context and serves the request (the whole flow for a
/// translating dialect's route), through the upstream `ENABLE_VERTEX` chooses.
pub async fn serve<R>(
    state: &AppState,
    snap: &Arc<Settings>,
    request: R,
    prepare: impl FnOnce(R, &Context<'_>) -> Result<Prepared, GatewayError>,
    outcome: &OutcomeHandle,
) -> Result<Response, GatewayError> {
    serve_via(state, snap, request, prepare, outcome, Via::Settings).await
}

/// [`serve`] through a chosen upstream.
pub async fn serve_via<R>(
    state: &AppState,
    snap: &Arc<Settings>,
    request: R,
    prepare: impl FnOnce(R, &Context<'_>) -> Result<Prepared, GatewayError>,
    outcome: &OutcomeHandle,
    via: Via,
) -> Result<Response, GatewayError> {
    let thinks = |model: &str| state.models.thinks(model);
    let recall = |id: &str, model: &str| state.signatures.recall(id, model);
    let kept = |id: &str| state.kept.get(id);
    let prepared = prepare(request, &context(snap, &thinks, &recall, &kept))?;
    generate(state, snap, prepared, Version::V1beta, outcome, via).await
}

/// Vertex's answer when it has no credential for a request: a 503 that says what to
/// configure (never a silent fall-back to AI Studio).
pub fn no_vertex_credentials(what: Only) -> GatewayError {
    let (zh, en) = match what {
        Only::Any => (
            "Vertex 模式已开启，但没有可用的 Vertex 凭据：请设置 GOOGLE_CREDENTIALS_JSON、在 STORAGE_DIR/credentials 放入服务账号 JSON，或设置 VERTEX_EXPRESS_API_KEY",
            "Vertex mode is on but no Vertex credential is configured: set GOOGLE_CREDENTIALS_JSON, put a service-account JSON file in STORAGE_DIR/credentials, or set VERTEX_EXPRESS_API_KEY",
        ),
        Only::Accounts => (
            "[PAY] 模型只能由服务账号提供，但没有配置服务账号（GOOGLE_CREDENTIALS_JSON）",
            "[PAY] models are served by service accounts only, and none is configured (GOOGLE_CREDENTIALS_JSON)",
        ),
        Only::Express => (
            "[EXPRESS] 模型只能由快速模式密钥提供，但没有配置（VERTEX_EXPRESS_API_KEY）",
            "[EXPRESS] models are served by express keys only, and none is configured (VERTEX_EXPRESS_API_KEY)",
        ),
    };
    GatewayError::Unavailable {
        message: format!("{zh} / {en}"),
    }
}

/// The Vertex target for a model named as HAJIMI's users name them (`[PAY]`, `[EXPRESS] `,
/// a variant suffix): the parsed name, and the target for the credentials the prefix
/// admits; a 503 when there is none.
pub fn vertex_for(
    state: &AppState,
    snap: &Settings,
    model: &str,
) -> Result<(Target, VertexModel), GatewayError> {
    let parsed = crate::vertex::models::parse_model(model)?;
    let only = match parsed.serve {
        Serve::Any => Only::Any,
        Serve::ServiceAccounts => Only::Accounts,
        Serve::ExpressKeys => Only::Express,
    };
    let creds = &state.vertex;
    let available = match only {
        Only::Any => !creds.pool.is_empty(),
        Only::Accounts => creds.has_accounts(),
        Only::Express => creds.has_express(),
    };
    if !available {
        return Err(no_vertex_credentials(only));
    }
    Ok((Target::vertex(snap, only), parsed))
}

/// A request for Vertex: the variant applied to the translated request; `model` becomes
/// the Vertex model id.
fn vertex_target(
    state: &AppState,
    snap: &Settings,
    model: &mut String,
    body: &mut UpstreamBody,
) -> Result<(Target, Variant), GatewayError> {
    let (target, parsed) = vertex_for(state, snap, model)?;
    if let UpstreamBody::Typed(request) = body {
        crate::vertex::models::apply(parsed.variant, &parsed.base, request)?;
    }
    *model = parsed.base;
    Ok((target, parsed.variant))
}

/// `BLOCKED_MODELS` and `WHITELIST_MODELS` are enforced on use, not only hidden from lists.
pub fn require_allowed_model(snap: &Settings, model: &str) -> Result<(), GatewayError> {
    let id = upstream_model_name(model);
    let base = search_base(id).unwrap_or(id);
    if crate::models::model_allowed(snap, id) && crate::models::model_allowed(snap, base) {
        return Ok(());
    }
    Err(GatewayError::NotFound {
        message: format!(
            "模型 {id} 在此代理上不可用 / The model `{id}` is not available on this proxy"
        ),
        code: "model_not_found",
    })
}

/// Vertex `-auto`: the request as it is, then `-encrypt`, then `-encrypt-full`, each
/// after an empty (or blocked) answer of the one before.
fn auto_body(
    request: GenerateContentRequest,
    model: &str,
    last_in_use: Arc<AtomicBool>,
) -> Result<RequestBody, GatewayError> {
    let mut fallbacks = Vec::new();
    for variant in [Variant::Encrypt, Variant::EncryptFull] {
        let mut next = request.clone();
        crate::vertex::models::apply(variant, model, &mut next)?;
        fallbacks.push(RequestBody::typed(next)?);
    }
    Ok(RequestBody::typed(request)?.with_fallbacks(fallbacks, last_in_use))
}

/// Serves a prepared request (`version`: the API version its upstream calls use).
pub async fn generate(
    state: &AppState,
    snap: &Arc<Settings>,
    prepared: Prepared,
    version: Version,
    outcome: &OutcomeHandle,
    via: Via,
) -> Result<Response, GatewayError> {
    let Prepared {
        requested,
        mut model,
        mut body,
        stream,
        cache_key,
        mut render,
    } = prepared;
    // Vertex `-auto`: raised when its last body (`-encrypt-full`) is in use.
    let mut deobfuscate: Option<Arc<AtomicBool>> = None;
    let target = if via.is_vertex(snap) {
        // HAJIMI's names (`[PAY]gemini-2.5-pro-search`) are read, and their model id
        // checked, by the Vertex model parser; the whole name stays bounded (statistics).
        if requested.len() > MODEL_ID_MAX_LEN + 32 {
            require_model_id(&requested)?;
        }
        let (target, variant) = vertex_target(state, snap, &mut model, &mut body)?;
        if matches!(variant, Variant::EncryptFull | Variant::Auto) {
            let active = Arc::new(AtomicBool::new(variant == Variant::EncryptFull));
            deobfuscate = Some(Arc::clone(&active)).filter(|_| variant == Variant::Auto);
            render = Box::new(Deobfuscating { render, active });
        }
        target
    } else {
        // A client's model name never carries `/`, `?`, `#` or `%` into an upstream URL,
        // nor an unbounded name into the statistics.
        require_model_id(&requested)?;
        Target::ai_studio(snap)
    };
    outcome.update(|o| {
        o.model = Some(requested.clone());
        o.stream = stream;
        o.dialect = Some(render.label());
    });
    require_allowed_model(
        snap,
        if target.is_vertex() {
            &model
        } else {
            &requested
        },
    )?;
    let real_stream = stream && !snap.fake_streaming;
    // Vertex's answers and AI Studio's never stand in for each other (the toggle is live).
    let vertex_salt = if target.is_vertex() {
        0x5645_5254_4558
    } else {
        0
    };
    let cache_key = cache_key.filter(|_| !real_stream).map(|k| k ^ vertex_salt);
    let keepalive = if stream {
        Some(snap.fake_streaming_interval)
    } else {
        snap.nonstream_keepalive_enabled
            .then_some(snap.nonstream_keepalive_interval)
    };
    let memo = Memo {
        store: state.signatures.clone(),
        kept: state.kept.clone(),
        model: model.clone(),
    };
    let mut delivery = Delivery {
        render,
        stream,
        memo,
    };
    if let UpstreamBody::Typed(request) = &mut body
        && !crate::fetch::remote_file_data(request).is_empty()
    {
        // A cached answer needs no download: look before fetching anything.
        if let Some(key) = cache_key {
            let until = Instant::now() + keepalive.unwrap_or(snap.request_deadline);
            if let Some(answer) = cached(state, snap, key, until).await {
                outcome.update(|o| o.cache_hit = true);
                let work = Box::pin(std::future::ready(Ok(answer)));
                return Ok(deliver(work, delivery, keepalive).await);
            }
        }
        crate::fetch::inline_remote_file_data(request, &state.fetcher, snap.max_fetched_bytes)
            .await?;
    }
    let body = Arc::new(match (deobfuscate, body) {
        (Some(last_in_use), UpstreamBody::Typed(request)) => {
            auto_body(*request, &model, last_in_use)?
        }
        (_, body) => RequestBody::of(body)?,
    });
    if real_stream {
        let url = target.native(
            version,
            &model,
            Action::StreamGenerateContent,
            &[("alt", "sse")],
        )?;
        let s = relay::Stream {
            target,
            url,
            model,
            body,
            render: delivery.render,
            memo: delivery.memo,
        };
        return relay::stream(state, snap, s, outcome).await;
    }
    let plan = Plan {
        url: target.native(version, &model, Action::GenerateContent, &[])?,
        target,
        model,
        body,
        cache_key,
        forward: delivery.render.forwards_request_errors(),
    };
    let work = Box::pin(obtain(
        state.clone(),
        Arc::clone(snap),
        plan,
        outcome.clone(),
    ));
    delivery.stream = stream;
    Ok(deliver(work, delivery, keepalive).await)
}
