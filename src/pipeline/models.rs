//! The OpenAI- and Anthropic-shaped model lists: Google's list (fetched on demand before the
//! first success, then kept fresh in the background), `-search` variants, `EXTRA_MODELS` and
//! the exact `MODEL_ALIASES` (an alias is listed when the model it stands for may be used),
//! minus what `BLOCKED_MODELS` / `WHITELIST_MODELS` hide (decisions §6). With no list loaded
//! yet the answer is a 503 that says why, never an empty list.

use std::collections::HashMap;

use crate::config::Settings;
use crate::error::GatewayError;
use crate::models::{model_allowed, openai_list, openai_model, visible_ids};
use crate::state::AppState;
use crate::translate::model_name::strip_model_prefix;
use crate::wire::openai::{Model, ModelList};

/// The listed ids with their display names (Google's, or what an alias stands for).
async fn listed(state: &AppState, snap: &Settings) -> Result<Vec<(String, String)>, GatewayError> {
    state
        .models
        .ensure(snap, &state.keys, &state.upstream)
        .await;
    let models = state.models.loaded(snap, &state.keys)?;
    let names: HashMap<&str, &str> = models
        .iter()
        .filter_map(|m| Some((strip_model_prefix(&m.name), m.display_name.as_deref()?)))
        .collect();
    let mut out: Vec<(String, String)> = visible_ids(snap, Some(&models))
        .into_iter()
        .map(|id| {
            let name = names
                .get(id.as_str())
                .map_or_else(|| id.clone(), |n| (*n).to_owned());
            (id, name)
        })
        .collect();
    for (alias, target) in snap.model_aliases.exact() {
        if out.iter().all(|(id, _)| id != alias) && model_allowed(snap, target) {
            out.push((alias.to_owned(), format!("{alias} → {target}")));
        }
    }
    Ok(out)
}

async fn visible(state: &AppState, snap: &Settings) -> Result<Vec<String>, GatewayError> {
    Ok(listed(state, snap)
        .await?
        .into_iter()
        .map(|(id, _)| id)
        .collect())
}

pub async fn list(state: &AppState, snap: &Settings) -> Result<ModelList, GatewayError> {
    Ok(openai_list(visible(state, snap).await?))
}

/// Anthropic's model list (`GET /v1/models` with `anthropic-version`).
pub async fn anthropic_list(
    state: &AppState,
    snap: &Settings,
) -> Result<crate::wire::anthropic::ModelList, GatewayError> {
    Ok(crate::wire::anthropic::ModelList::new(
        listed(state, snap).await?,
    ))
}

/// One model of Anthropic's list (`GET /v1/models/{id}` with `anthropic-version`).
pub async fn anthropic_get(
    state: &AppState,
    snap: &Settings,
    id: &str,
) -> Result<crate::wire::anthropic::ModelInfo, GatewayError> {
    let id = strip_model_prefix(id);
    let found = listed(state, snap)
        .await?
        .into_iter()
        .find(|(listed, _)| listed == id);
    let list = crate::wire::anthropic::ModelList::new(found);
    list.data.into_iter().next().ok_or_else(|| not_found(id))
}

fn not_found(id: &str) -> GatewayError {
    GatewayError::NotFound {
        message: format!(
            "模型 {id} 不存在 / The model `{id}` does not exist or you do not have access to it."
        ),
        code: "model_not_found",
    }
}

pub async fn get(state: &AppState, snap: &Settings, id: &str) -> Result<Model, GatewayError> {
    let id = strip_model_prefix(id).to_owned();
    if visible(state, snap).await?.contains(&id) {
        return Ok(openai_model(id));
    }
    Err(not_found(&id))
}
