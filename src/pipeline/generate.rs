//! A generation request of any dialect, in order: check the model, look in the cache before
//! fetching remote media, fetch it (SSRF-checked, within `MAX_FETCHED_BYTES`), then either
//! relay a real stream or obtain a complete answer and deliver it (JSON or fake stream, with
//! keep-alives). The dialect only prepared the request and renders the answers; nothing here
//! knows which dialect it is.

use std::sync::Arc;

use axum::response::Response;
use tokio::time::Instant;

use crate::config::Settings;
use crate::error::GatewayError;
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
use crate::upstream::endpoint::{Action, Version, require_model_id};

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

/// Translates with the server's context and serves the request (the whole flow for a
/// translating dialect's route).
pub async fn serve<R>(
    state: &AppState,
    snap: &Arc<Settings>,
    request: R,
    prepare: impl FnOnce(R, &Context<'_>) -> Result<Prepared, GatewayError>,
    outcome: &OutcomeHandle,
) -> Result<Response, GatewayError> {
    let thinks = |model: &str| state.models.thinks(model);
    let recall = |id: &str, model: &str| state.signatures.recall(id, model);
    let kept = |id: &str| state.kept.get(id);
    let prepared = prepare(request, &context(snap, &thinks, &recall, &kept))?;
    generate(state, snap, prepared, Version::V1beta, outcome).await
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

/// Serves a prepared request (`version`: the API version its upstream calls use).
pub async fn generate(
    state: &AppState,
    snap: &Arc<Settings>,
    prepared: Prepared,
    version: Version,
    outcome: &OutcomeHandle,
) -> Result<Response, GatewayError> {
    let Prepared {
        requested,
        model,
        mut body,
        stream,
        cache_key,
        render,
    } = prepared;
    // A client's model name never carries `/`, `?`, `#` or `%` into an upstream URL, nor an
    // unbounded name into the statistics.
    require_model_id(&requested)?;
    outcome.update(|o| {
        o.model = Some(requested.clone());
        o.stream = stream;
        o.dialect = Some(render.label());
    });
    require_allowed_model(snap, &requested)?;
    let real_stream = stream && !snap.fake_streaming;
    let cache_key = cache_key.filter(|_| !real_stream);
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
    let body = Arc::new(RequestBody::of(body)?);
    let target = Target::ai_studio(snap);
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
