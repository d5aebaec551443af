//! Native Gemini requests (the route has checked the version, the action and the model id).
//! Generation goes through the shared pipeline as the identity dialect
//! (`translate::gemini`): cache, racing, keep-alives and fake streaming as for every client.
//! What has no dialect is passed through here, through the key pool: the model GETs, token
//! counts, embeddings, and `streamGenerateContent` without `alt=sse` (a JSON array forwarded
//! byte for byte). Google's refusals of the request pass through with Google's status and
//! body (keys masked); failures of our keys or availability become 503 `UNAVAILABLE` (429 if
//! all quota) in Google's shape.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;

use crate::config::Settings;
use crate::error::GatewayError;
use crate::pipeline::dispatch::{self, Dispatch};
use crate::pipeline::sse;
use crate::state::AppState;
use crate::telemetry::OutcomeHandle;
use crate::translate::cache_key::KeyRule;
use crate::translate::gemini::Shape;
use crate::upstream::classify::Failure;
use crate::upstream::endpoint::{Action, Version};
use crate::upstream::{ANSWER_LIMIT, Target, UpstreamUrl, classify_response, read_body};

const JSON: &str = "application/json; charset=UTF-8";

/// What one passthrough attempt produced for the client.
enum Passed {
    /// A complete body, with its status (Google's refusals of the request too).
    Body { status: u16, bytes: Bytes },
    /// A JSON-array stream, forwarded byte for byte.
    Array(reqwest::Response),
}

/// What a native POST asks for: checked by the route (version, action, model id).
pub struct NativeCall {
    pub version: Version,
    pub model: String,
    pub action: Action,
    /// The client asked for server-sent events (`alt=sse`).
    pub sse: bool,
}

/// A model listing or a single model, through the key pool.
pub async fn model_get(
    state: &AppState,
    snap: &Arc<Settings>,
    url: UpstreamUrl,
    outcome: &OutcomeHandle,
) -> Result<Response, GatewayError> {
    let target = Target::ai_studio(snap);
    let passed = pass(state, snap, &target, "models.list", outcome, |auth| {
        let (url, upstream) = (&url, &state.upstream);
        async move {
            let response = upstream
                .send_any(
                    reqwest::Method::GET,
                    url,
                    &auth,
                    None,
                    snap.upstream_timeout,
                )
                .await?;
            complete_body(response, snap).await
        }
    })
    .await?;
    Ok(respond(passed))
}

/// A native POST (generate, stream, count tokens, embed), its body already bounded.
pub async fn action(
    state: &AppState,
    snap: &Arc<Settings>,
    call: NativeCall,
    bytes: Bytes,
    outcome: &OutcomeHandle,
) -> Result<Response, GatewayError> {
    let stream = call.action == Action::StreamGenerateContent;
    let shape = match (stream, call.sse) {
        (false, _) => Shape::Json,
        (true, true) => Shape::Sse,
        (true, false) => Shape::Array,
    };
    let generates = call.action == Action::GenerateContent || stream;
    // Everything but a real JSON-array stream is a generation in the identity dialect.
    if generates && (shape != Shape::Array || snap.fake_streaming) {
        let rule = KeyRule {
            last_n: snap.calculate_cache_entries,
            precise: snap.precise_cache,
        };
        let prepared = crate::translate::gemini::prepare(
            &call.model,
            bytes,
            shape,
            snap.search_mode,
            Some(rule),
        )?;
        return crate::pipeline::generate::generate(
            state,
            snap,
            prepared,
            call.version,
            outcome,
            crate::pipeline::generate::Via::AiStudio,
        )
        .await;
    }
    outcome.update(|o| o.stream = stream);
    let mut model = call.model;
    let mut bytes = bytes;
    if generates
        && snap.search_mode
        && let Some(base) = crate::translate::model_name::search_base(&model)
    {
        bytes = crate::translate::gemini::add_search_tool(&bytes)?;
        model = base.to_owned();
    }
    let target = Target::ai_studio(snap);
    let url = target.native(call.version, &model, call.action, &[])?;
    let passed = pass(state, snap, &target, &model, outcome, |auth| {
        let (url, upstream, body) = (&url, &state.upstream, bytes.clone());
        async move {
            let response = upstream
                .send_any(
                    reqwest::Method::POST,
                    url,
                    &auth,
                    Some(body),
                    snap.upstream_timeout,
                )
                .await?;
            if stream && response.status().is_success() {
                return Ok(Passed::Array(response));
            }
            complete_body(response, snap).await
        }
    })
    .await?;
    Ok(respond(passed))
}

/// One passthrough call across credentials; the winning credential is held until a
/// forwarded stream ends (`KEY_MAX_CONCURRENCY` counts streams).
async fn pass<F, Fut>(
    state: &AppState,
    snap: &Arc<Settings>,
    target: &Target,
    model: &str,
    outcome: &OutcomeHandle,
    send: F,
) -> Result<(Passed, crate::keys::Lease), GatewayError>
where
    F: Fn(crate::upstream::Auth) -> Fut,
    Fut: Future<Output = Result<Passed, Failure>>,
{
    dispatch::run(
        &Dispatch::new(state, snap, model, outcome),
        dispatch::Budget::of(snap),
        |key| {
            let send = &send;
            async move { send(target.authorize(key.secret()).await?).await }
        },
        |_| false,
    )
    .await
}

/// Reads a whole answer. A 2xx answer is forwarded; Google's refusals of the request too.
async fn complete_body(response: reqwest::Response, snap: &Settings) -> Result<Passed, Failure> {
    let status = response.status().as_u16();
    if !(200..300).contains(&status) {
        let (status, body, failure) = classify_response(response, snap.upstream_timeout).await;
        if failure.ends_request() {
            let text = crate::mask::scrub_keys(&String::from_utf8_lossy(&body));
            return Ok(Passed::Body {
                status,
                bytes: Bytes::from(text),
            });
        }
        return Err(failure);
    }
    let bytes = read_body(response, snap.upstream_timeout, ANSWER_LIMIT).await?;
    Ok(Passed::Body { status, bytes })
}

fn respond((passed, lease): (Passed, crate::keys::Lease)) -> Response {
    match passed {
        Passed::Body { status, bytes } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            sse::respond(status, JSON, vec![bytes])
        }
        Passed::Array(response) => {
            let bytes = response.bytes_stream().map(move |r| {
                let _held_until_the_stream_ends = &lease;
                r.map_err(std::io::Error::other)
            });
            sse::stream_fallible(StatusCode::OK, JSON, bytes)
        }
    }
}
