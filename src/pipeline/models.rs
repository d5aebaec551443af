//! The OpenAI-shaped model list: Google's list (fetched on demand before the first success,
//! then kept fresh in the background), `-search` variants and `EXTRA_MODELS`, minus what
//! `BLOCKED_MODELS` / `WHITELIST_MODELS` hide (decisions §6). With no list loaded yet the
//! answer is a 503 that says why, never an empty list.

use crate::config::Settings;
use crate::error::GatewayError;
use crate::models::{model_allowed, openai_list, openai_model, visible_ids};
use crate::state::AppState;
use crate::wire::openai::{Model, ModelList};

async fn visible(state: &AppState, snap: &Settings) -> Result<Vec<String>, GatewayError> {
    state
        .models
        .ensure(snap, &state.keys, &state.upstream)
        .await;
    let models = state.models.loaded(snap, &state.keys)?;
    Ok(visible_ids(snap, Some(&models)))
}

pub async fn list(state: &AppState, snap: &Settings) -> Result<ModelList, GatewayError> {
    Ok(openai_list(visible(state, snap).await?))
}

pub async fn get(state: &AppState, snap: &Settings, id: &str) -> Result<Model, GatewayError> {
    let id = crate::translate::model_name::strip_model_prefix(id).to_owned();
    if visible(state, snap).await?.contains(&id) && model_allowed(snap, &id) {
        return Ok(openai_model(id));
    }
    Err(GatewayError::NotFound {
        message: format!(
            "模型 {id} 不存在 / The model `{id}` does not exist or you do not have access to it."
        ),
        code: "model_not_found",
    })
}
