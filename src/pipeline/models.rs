//! The OpenAI- and Anthropic-shaped model lists: Google's list (fetched on demand before the
//! first success, then kept fresh in the background), `-search` variants, `EXTRA_MODELS` and
//! the exact `MODEL_ALIASES` (an alias is listed when the model it stands for may be used),
//! minus what `BLOCKED_MODELS` / `WHITELIST_MODELS` hide (decisions §6). With no list loaded
//! yet the answer is a 503 that says why, never an empty list.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::Settings;
use crate::error::GatewayError;
use crate::keys::{Kind, Only};
use crate::models::{model_allowed, openai_list, openai_model, visible_ids};
use crate::pipeline::generate::{Via, no_vertex_credentials};
use crate::state::AppState;
use crate::translate::model_name::strip_model_prefix;
use crate::upstream::endpoint::vertex_publisher_models;
use crate::upstream::{Auth, read_body};
use crate::vertex::models::{BUILTIN_MODELS, list_ids, parse_publisher_models};
use crate::wire::openai::{Model, ModelList};

/// Anthropic's list of the upstream its routes use (Vertex's names in Vertex mode).
async fn anthropic_listed(
    state: &AppState,
    snap: &Settings,
) -> Result<Vec<(String, String)>, GatewayError> {
    if snap.enable_vertex {
        let ids = vertex_ids(state, snap).await?;
        return Ok(ids.into_iter().map(|id| (id.clone(), id)).collect());
    }
    listed(state, snap).await
}

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
    list_via(state, snap, Via::Settings).await
}

/// The OpenAI-shaped list of the upstream `via` chooses: Vertex's names in Vertex mode.
pub async fn list_via(
    state: &AppState,
    snap: &Settings,
    via: Via,
) -> Result<ModelList, GatewayError> {
    if via.is_vertex(snap) {
        return Ok(openai_list(vertex_ids(state, snap).await?));
    }
    Ok(openai_list(visible(state, snap).await?))
}

/// Vertex mode's ids: the publisher-model list when a service account can fetch it (kept
/// ten minutes), else the built-in list; with HAJIMI's prefixes and suffixes.
async fn vertex_ids(state: &AppState, snap: &Settings) -> Result<Vec<String>, GatewayError> {
    let creds = &state.vertex;
    if creds.pool.is_empty() {
        return Err(no_vertex_credentials(Only::Any));
    }
    let bases = match creds.listed() {
        Some(bases) => bases.as_ref().clone(),
        None => match fetch_publisher_models(state, snap).await {
            Some(bases) if !bases.is_empty() => {
                creds.remember_list(bases.clone());
                bases
            }
            _ => BUILTIN_MODELS.iter().map(|m| (*m).to_owned()).collect(),
        },
    };
    let bases: Vec<String> = bases
        .into_iter()
        .filter(|b| model_allowed(snap, b))
        .collect();
    Ok(list_ids(&bases, creds.has_accounts(), creds.has_express()))
}

/// Vertex's publisher-model list (at most five pages), with the first active service
/// account's token; `None` when there is none or the list cannot be had.
async fn fetch_publisher_models(state: &AppState, snap: &Settings) -> Option<Vec<String>> {
    let account = state
        .vertex
        .pool
        .slots()
        .iter()
        .find_map(|s| match s.kind() {
            Kind::Account(a) if s.state() == crate::keys::KeyState::Active => Some(Arc::clone(a)),
            _ => None,
        })?;
    let idle = snap.upstream_timeout;
    let token = state
        .vertex
        .tokens
        .source(&account)
        .token(state.upstream.client(), idle)
        .await
        .map_err(|e| tracing::warn!(error = %e, "Vertex model list: no access token"))
        .ok()?;
    let auth = Auth::Bearer(token.expose().to_owned());
    let mut out = Vec::new();
    let mut page_token: Option<String> = None;
    for _ in 0..5 {
        let mut query = vec![("pageSize", "100")];
        if let Some(t) = &page_token {
            query.push(("pageToken", t.as_str()));
        }
        let url = vertex_publisher_models(&snap.vertex_base_url, &query).ok()?;
        let response = state
            .upstream
            .get(&url, &auth, idle)
            .await
            .map_err(|f| tracing::warn!(failure = f.kind(), "Vertex model list unavailable"))
            .ok()?;
        let body = read_body(response, idle, 8 * 1024 * 1024).await.ok()?;
        let page = parse_publisher_models(&body).ok()?;
        out.extend(page.models);
        page_token = page.next_page_token;
        if page_token.is_none() {
            break;
        }
    }
    out.sort();
    out.dedup();
    Some(out)
}

/// Anthropic's model list (`GET /v1/models` with `anthropic-version`).
pub async fn anthropic_list(
    state: &AppState,
    snap: &Settings,
) -> Result<crate::wire::anthropic::ModelList, GatewayError> {
    Ok(crate::wire::anthropic::ModelList::new(
        anthropic_listed(state, snap).await?,
    ))
}

/// One model of Anthropic's list (`GET /v1/models/{id}` with `anthropic-version`).
pub async fn anthropic_get(
    state: &AppState,
    snap: &Settings,
    id: &str,
) -> Result<crate::wire::anthropic::ModelInfo, GatewayError> {
    let id = strip_model_prefix(id);
    let found = anthropic_listed(state, snap)
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
    get_via(state, snap, id, Via::Settings).await
}

/// One model of the list of the upstream `via` chooses.
pub async fn get_via(
    state: &AppState,
    snap: &Settings,
    id: &str,
    via: Via,
) -> Result<Model, GatewayError> {
    let id = strip_model_prefix(id).to_owned();
    let ids = if via.is_vertex(snap) {
        vertex_ids(state, snap).await?
    } else {
        visible(state, snap).await?
    };
    if ids.contains(&id) {
        return Ok(openai_model(id));
    }
    Err(not_found(&id))
}
