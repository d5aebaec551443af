//! SillyTavern vector-storage adapters: `POST /api/vector/query` embeds the search text and
//! returns it in the plugin's shape; `POST /api/vector/insert` embeds the items. Guarded by
//! the client password (decisions §2); unlike HAJIMI, headers are never logged.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::error::{Flavor, Flavored, GatewayError};
use crate::pipeline::embeddings::embed;
use crate::routes::body::Shape;
use crate::routes::{Bounded, ClientCall};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct Query {
    #[serde(default, rename = "searchText")]
    search_text: Option<String>,
    #[serde(default)]
    model: Option<String>,
}

#[derive(Deserialize)]
pub struct Insert {
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

impl Bounded for Query {
    const SHAPE: Shape = Shape::Plain;
}

impl Bounded for Insert {
    const SHAPE: Shape = Shape::Plain;
}

const DEFAULT_MODEL: &str = "gemini-embedding-001";

type Answer = Result<Response, Flavored>;

fn fail(e: GatewayError) -> Flavored {
    e.flavored(Flavor::OpenAi)
}

pub async fn query(State(state): State<AppState>, call: ClientCall<Query>) -> Answer {
    let text = call
        .body
        .search_text
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            fail(GatewayError::bad_param(
                "缺少 searchText / `searchText` is required",
                "searchText",
            ))
        })?;
    let model = call.body.model.unwrap_or_else(|| DEFAULT_MODEL.to_owned());
    call.outcome.update(|o| o.model = Some(model.clone()));
    let vectors = embed(
        &state,
        &call.snap,
        &model,
        &[text],
        None,
        None,
        &call.outcome,
    )
    .await
    .map_err(fail)?;
    let embedding = vectors.into_iter().next().unwrap_or_default();
    Ok(Json(query_answer(embedding)).into_response())
}

/// The plugin's query shape, carrying the embedding of the search text.
fn query_answer(embedding: Vec<f32>) -> serde_json::Value {
    json!({
        "hashes": [],
        "metadata": [],
        "items": [{"text": "", "score": 0, "metadata": {"embedding": embedding}}],
        "similarities": [0],
    })
}

pub async fn insert(State(state): State<AppState>, call: ClientCall<Insert>) -> Answer {
    let texts: Vec<String> = call
        .body
        .items
        .into_iter()
        .filter_map(|i| i.text)
        .filter(|t| !t.is_empty())
        .collect();
    if texts.is_empty() {
        return Err(fail(GatewayError::bad_param(
            "缺少 items[].text / `items` with text are required",
            "items",
        )));
    }
    let model = call.body.model.unwrap_or_else(|| DEFAULT_MODEL.to_owned());
    call.outcome.update(|o| o.model = Some(model.clone()));
    embed(
        &state,
        &call.snap,
        &model,
        &texts,
        None,
        None,
        &call.outcome,
    )
    .await
    .map_err(fail)?;
    Ok(Json(json!({"success": true})).into_response())
}
