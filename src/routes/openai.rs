//! OpenAI-shaped routes: chat completions (`/v1/chat/completions`, `/chat/completions`,
//! `/aistudio/chat/completions`), the model list (`/v1/models`, `/models`,
//! `/aistudio/models`, and `/{id}`), embeddings, and the Vertex aliases that answer 501 until
//! the Vertex backend exists (decisions §1).

use axum::Json;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use crate::error::{Flavor, Flavored, GatewayError};
use crate::pipeline::embeddings::EmbeddingsRequest;
use crate::routes::body::Shape;
use crate::routes::{AnthropicRoutes, Bounded, ClientCall, NoBody};
use crate::state::AppState;
use crate::wire::openai::ChatRequest;

type Answer = Result<Response, Flavored>;

fn fail(e: GatewayError) -> Flavored {
    e.flavored(Flavor::OpenAi)
}

impl Bounded for ChatRequest {
    const SHAPE: Shape = Shape::Chat;
}

impl Bounded for EmbeddingsRequest {
    const SHAPE: Shape = Shape::Plain;
}

/// `POST /v1/chat/completions`.
pub async fn chat(State(state): State<AppState>, call: ClientCall<ChatRequest>) -> Answer {
    let prepare = crate::translate::openai::dialect::prepare;
    crate::pipeline::generate::serve(&state, &call.snap, call.body, prepare, &call.outcome)
        .await
        .map_err(fail)
}

/// `POST /v1/embeddings`.
pub async fn embeddings(
    State(state): State<AppState>,
    call: ClientCall<EmbeddingsRequest>,
) -> Answer {
    crate::pipeline::embeddings::embeddings(&state, &call.snap, call.body, &call.outcome)
        .await
        .map_err(fail)
}

/// Google's SDKs (google-genai 3.x defaults to API version `v1`) list models at `/v1/models`
/// too: a request that authenticates with `x-goog-api-key` and no Bearer token gets Google's
/// shape; everyone else gets OpenAI's.
fn wants_google_shape(h: &HeaderMap) -> bool {
    h.contains_key("x-goog-api-key") && !h.contains_key(axum::http::header::AUTHORIZATION)
}

/// Anthropic's SDKs and agents send `anthropic-version` on every request.
fn wants_anthropic_shape(h: &HeaderMap) -> bool {
    h.contains_key("anthropic-version")
}

/// `GET /v1/models`: OpenAI's list, Google's for Google's SDKs, Anthropic's for requests with
/// `anthropic-version` (authenticated as Anthropic routes are: `x-api-key` too).
pub async fn v1_list_models(state: State<AppState>, request: Request) -> Answer {
    if wants_anthropic_shape(request.headers()) {
        let call = ClientCall::<NoBody, AnthropicRoutes>::from_request(request, &state).await?;
        return super::anthropic::list_models(&state, &call).await;
    }
    let call = ClientCall::<NoBody>::from_request(request, &state).await?;
    if wants_google_shape(&call.parts.headers) {
        let listed = super::gemini::list(&state, "v1", &call).await;
        return listed.map_err(|e| e.flavored(Flavor::Gemini));
    }
    list_models(state, call).await
}

/// `GET /v1/models/{id}`: OpenAI's model, Google's for Google's SDKs, Anthropic's with
/// `anthropic-version`.
pub async fn v1_get_model(state: State<AppState>, id: Path<String>, request: Request) -> Answer {
    if wants_anthropic_shape(request.headers()) {
        let call = ClientCall::<NoBody, AnthropicRoutes>::from_request(request, &state).await?;
        return super::anthropic::get_model(&state, &id, &call).await;
    }
    let call = ClientCall::<NoBody>::from_request(request, &state).await?;
    if wants_google_shape(&call.parts.headers) {
        let got = super::gemini::get(&state, "v1", &id, &call).await;
        return got.map_err(|e| e.flavored(Flavor::Gemini));
    }
    get_model(state, id, call).await
}

pub async fn list_models(State(state): State<AppState>, call: ClientCall<NoBody>) -> Answer {
    let list = crate::pipeline::models::list(&state, &call.snap)
        .await
        .map_err(fail)?;
    Ok(Json(list).into_response())
}

pub async fn get_model(
    State(state): State<AppState>,
    Path(id): Path<String>,
    call: ClientCall<NoBody>,
) -> Answer {
    let model = crate::pipeline::models::get(&state, &call.snap, &id)
        .await
        .map_err(fail)?;
    Ok(Json(model).into_response())
}

/// `/vertex/*` until Vertex mode exists: authenticated, then 501.
pub async fn vertex_unavailable(_: ClientCall<NoBody>) -> Answer {
    Err(fail(GatewayError::NotImplemented(
        "Vertex 模式尚未提供，请使用 /v1 或 /aistudio 路径 / Vertex mode is not available yet; use the /v1 or /aistudio routes".to_owned(),
    )))
}
