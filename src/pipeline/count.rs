//! Token counts of a translating dialect (Anthropic's `count_tokens`): the dialect
//! translates the request as for a generation, Gemini's `countTokens` counts it through the
//! key pool, and Google's refusals become errors in the client's dialect.

use std::sync::Arc;

use bytes::Bytes;

use crate::config::Settings;
use crate::error::GatewayError;
use crate::pipeline::dispatch::{self, Dispatch};
use crate::pipeline::generate::{context, require_allowed_model};
use crate::state::AppState;
use crate::telemetry::OutcomeHandle;
use crate::translate::dialect::{Context, Counting};
use crate::upstream::endpoint::{Action, Version, require_model_id};
use crate::upstream::{ANSWER_LIMIT, Target, classify_response, read_body};

/// Counts a translating dialect's request with Gemini's `countTokens` (the model checked as
/// for a generation, remote media fetched): the input tokens Google reports.
pub async fn count<R>(
    state: &AppState,
    snap: &Arc<Settings>,
    request: R,
    prepare: impl FnOnce(R, &Context<'_>) -> Result<Counting, GatewayError>,
    outcome: &OutcomeHandle,
) -> Result<u64, GatewayError> {
    let thinks = |model: &str| state.models.thinks(model);
    let recall = |id: &str, model: &str| state.signatures.recall(id, model);
    let kept = |id: &str| state.kept.get(id);
    let mut counting = prepare(request, &context(snap, &thinks, &recall, &kept))?;
    require_model_id(&counting.requested)?;
    outcome.update(|o| {
        o.model = Some(counting.requested.clone());
        o.dialect = Some(counting.dialect);
    });
    require_allowed_model(snap, &counting.requested)?;
    crate::fetch::inline_remote_file_data(
        &mut counting.request,
        &state.fetcher,
        snap.max_fetched_bytes,
    )
    .await?;
    let body = Bytes::from(counting.body().to_string());
    let answer = count_tokens(state, snap, &counting.model, body, outcome).await?;
    let total = serde_json::from_slice::<serde_json::Value>(&answer)
        .ok()
        .and_then(|v| v.get("totalTokens").and_then(serde_json::Value::as_u64));
    total.ok_or_else(|| GatewayError::BadGateway {
        message:
            "上游的 countTokens 回答无法读取 / The upstream countTokens answer could not be read"
                .to_owned(),
    })
}

/// Gemini's `countTokens` for a translated request, through the key pool: Google's answer,
/// or its refusal of the request as an error in the client's dialect.
pub async fn count_tokens(
    state: &AppState,
    snap: &Arc<Settings>,
    model: &str,
    body: Bytes,
    outcome: &OutcomeHandle,
) -> Result<Bytes, GatewayError> {
    // Counted where the request would be answered: Vertex while `ENABLE_VERTEX` is on.
    let (target, model) = if snap.enable_vertex {
        let (target, parsed) = crate::pipeline::generate::vertex_for(state, snap, model)?;
        (target, parsed.base)
    } else {
        (Target::ai_studio(snap), model.to_owned())
    };
    let model = model.as_str();
    let url = target.native(Version::V1beta, model, Action::CountTokens, &[])?;
    let caller = state.caller();
    let (bytes, _lease) = dispatch::run(
        &Dispatch::to(state, &target, snap, model, outcome),
        dispatch::Budget::of(snap),
        |key| {
            let (url, caller, target, body) = (&url, &caller, &target, body.clone());
            async move {
                let post = reqwest::Method::POST;
                let idle = snap.upstream_timeout;
                let response = caller
                    .send(target, post, url, &key, Some(body), idle)
                    .await?;
                if !response.status().is_success() {
                    return Err(classify_response(response, idle).await.2);
                }
                read_body(response, idle, ANSWER_LIMIT).await
            }
        },
        |_| false,
    )
    .await?;
    Ok(bytes)
}
