//! SillyTavern vector-storage adapters: `POST /api/vector/query` embeds the
//! search text and returns it in the plugin's shape; `POST /api/vector/insert` embeds the
//! items. Guarded by the client password (decisions §2); unlike HAJIMI, headers are never logged.

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::app::AppState;
use crate::error::{Flavor, GatewayError};
use crate::pipeline::auth::authenticate;
use crate::pipeline::body::{ItemLimits, Shape, parse_bounded, read_limited};
use crate::pipeline::embeddings::embed;
use crate::telemetry::OutcomeHandle;

#[derive(Deserialize)]
struct Query {
    #[serde(default, rename = "searchText")]
    search_text: Option<String>,
    #[serde(default)]
    model: Option<String>,
}

#[derive(Deserialize)]
struct Insert {
    #[serde(default)]
    items: Vec<Item>,
    #[serde(default)]
    model: Option<String>,
}

#[derive(Deserialize)]
struct Item {
    #[serde(default)]
    text: Option<String>,
}

const DEFAULT_MODEL: &str = "gemini-embedding-001";

pub async fn query(State(state): State<AppState>, request: Request) -> Response {
    let outcome = OutcomeHandle::default();
    let result = async {
        let snap = state.live.current();
        let (parts, body) = request.into_parts();
        authenticate(&snap, &parts)?;
        crate::limits::admit(&state.limiter, &snap, &parts)?;
        let bytes = read_limited(body, &parts.headers, snap.max_body_size).await?;
        let q: Query = parse_bounded(&bytes, Shape::Plain, ItemLimits::of(&snap))?;
        let text = q.search_text.filter(|t| !t.is_empty()).ok_or_else(|| {
            GatewayError::bad_param("缺少 searchText / `searchText` is required", "searchText")
        })?;
        let model = q.model.unwrap_or_else(|| DEFAULT_MODEL.to_owned());
        outcome.update(|o| o.model = Some(model.clone()));
        let vectors = embed(&state, &snap, &model, &[text], None, None, &outcome).await?;
        let embedding = vectors.into_iter().next().unwrap_or_default();
        Ok::<_, GatewayError>(
            axum::Json(json!({
                "hashes": [],
                "metadata": [],
                "items": [{"text": "", "score": 0, "metadata": {"embedding": embedding}}],
                "similarities": [0],
            }))
            .into_response(),
        )
    }
    .await;
    finish(result, outcome)
}

pub async fn insert(State(state): State<AppState>, request: Request) -> Response {
    let outcome = OutcomeHandle::default();
    let result = async {
        let snap = state.live.current();
        let (parts, body) = request.into_parts();
        authenticate(&snap, &parts)?;
        crate::limits::admit(&state.limiter, &snap, &parts)?;
        let bytes = read_limited(body, &parts.headers, snap.max_body_size).await?;
        let ins: Insert = parse_bounded(&bytes, Shape::Plain, ItemLimits::of(&snap))?;
        let texts: Vec<String> = ins
            .items
            .into_iter()
            .filter_map(|i| i.text)
            .filter(|t| !t.is_empty())
            .collect();
        if texts.is_empty() {
            return Err(GatewayError::bad_param(
                "缺少 items[].text / `items` with text are required",
                "items",
            ));
        }
        let model = ins.model.unwrap_or_else(|| DEFAULT_MODEL.to_owned());
        outcome.update(|o| o.model = Some(model.clone()));
        embed(&state, &snap, &model, &texts, None, None, &outcome).await?;
        Ok(axum::Json(json!({"success": true})).into_response())
    }
    .await;
    finish(result, outcome)
}

fn finish(result: Result<Response, GatewayError>, outcome: OutcomeHandle) -> Response {
    let mut response = result.unwrap_or_else(|e| e.render(Flavor::OpenAi));
    response.extensions_mut().insert(outcome);
    response
}
