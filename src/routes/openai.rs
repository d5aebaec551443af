//! OpenAI-shaped routes besides chat: the model list (`/v1/models`, `/models`,
//! `/aistudio/models`, and `/{id}`), and the Vertex aliases that answer 501 until the
//! Vertex backend exists (decisions §1).

use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::error::{Flavor, GatewayError};
use crate::models::{model_allowed, openai_list, openai_model, visible_ids};
use crate::pipeline::auth::authenticate;

/// Google's SDKs (google-genai 3.x defaults to API version `v1`) list models at `/v1/models`
/// too: a request that authenticates with `x-goog-api-key` and no Bearer token gets Google's
/// shape; everyone else gets OpenAI's.
fn wants_google_shape(request: &Request) -> bool {
    let h = request.headers();
    h.contains_key("x-goog-api-key") && !h.contains_key(axum::http::header::AUTHORIZATION)
}

/// `GET /v1/models`: OpenAI's list, or Google's for Google's SDKs.
pub async fn v1_list_models(state: State<AppState>, request: Request) -> Response {
    if wants_google_shape(&request) {
        return crate::pipeline::native::list_models_v1beta(state, request).await;
    }
    list_models(state, request).await
}

/// `GET /v1/models/{id}`: OpenAI's model, or Google's for Google's SDKs.
pub async fn v1_get_model(state: State<AppState>, id: Path<String>, request: Request) -> Response {
    if wants_google_shape(&request) {
        return crate::pipeline::native::get_model_v1beta(state, id, request).await;
    }
    get_model(state, id, request).await
}

pub async fn list_models(State(state): State<AppState>, request: Request) -> Response {
    let snap = state.live.current();
    let (parts, _) = request.into_parts();
    if let Err(e) = authenticate(&snap, &parts) {
        return e.render(Flavor::OpenAi);
    }
    state
        .models
        .ensure(&snap, &state.keys, &state.upstream)
        .await;
    match state.models.loaded(&snap, &state.keys) {
        Ok(models) => axum::Json(openai_list(visible_ids(&snap, Some(&models)))).into_response(),
        Err(e) => e.render(Flavor::OpenAi),
    }
}

pub async fn get_model(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let snap = state.live.current();
    let (parts, _) = request.into_parts();
    if let Err(e) = authenticate(&snap, &parts) {
        return e.render(Flavor::OpenAi);
    }
    state
        .models
        .ensure(&snap, &state.keys, &state.upstream)
        .await;
    let id = crate::translate::model_name::strip_model_prefix(&id).to_owned();
    let models = match state.models.loaded(&snap, &state.keys) {
        Ok(models) => models,
        Err(e) => return e.render(Flavor::OpenAi),
    };
    let known = visible_ids(&snap, Some(&models));
    if known.contains(&id) && model_allowed(&snap, &id) {
        return axum::Json(openai_model(id)).into_response();
    }
    GatewayError::NotFound {
        message: format!(
            "模型 {id} 不存在 / The model `{id}` does not exist or you do not have access to it."
        ),
        code: "model_not_found",
    }
    .render(Flavor::OpenAi)
}

/// `/vertex/*` until Vertex mode exists: authenticated, then 501.
pub async fn vertex_unavailable(State(state): State<AppState>, request: Request) -> Response {
    let snap = state.live.current();
    let (parts, _) = request.into_parts();
    if let Err(e) = authenticate(&snap, &parts) {
        return e.render(Flavor::OpenAi);
    }
    GatewayError::NotImplemented(
        "Vertex 模式尚未提供，请使用 /v1 或 /aistudio 路径 / Vertex mode is not available yet; use the /v1 or /aistudio routes".to_owned(),
    )
    .render(Flavor::OpenAi)
}
