//! OpenAI-shaped routes: chat completions (`/v1/chat/completions`, `/chat/completions`:
//! Vertex AI while `ENABLE_VERTEX` is on; `/aistudio/chat/completions`: AI Studio;
//! `/vertex/chat/completions`: Vertex AI), the model lists the same way (`/v1/models`,
//! `/models`, `/aistudio/models`, `/vertex/models`, and `/{id}`), and embeddings (AI Studio).

use axum::Json;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use crate::error::{Flavor, Flavored, GatewayError};
use crate::pipeline::embeddings::EmbeddingsRequest;
use crate::pipeline::generate::Via;
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

/// A chat completion through the upstream `via` chooses.
async fn chat_via(state: &AppState, call: ClientCall<ChatRequest>, via: Via) -> Answer {
    let prepare = crate::translate::openai::dialect::prepare;
    let snap = &call.snap;
    crate::pipeline::generate::serve_via(state, snap, call.body, prepare, &call.outcome, via)
        .await
        .map_err(fail)
}

/// `POST /v1/chat/completions`, `/chat/completions`: Vertex AI while `ENABLE_VERTEX` is on.
pub async fn chat(State(state): State<AppState>, call: ClientCall<ChatRequest>) -> Answer {
    chat_via(&state, call, Via::Settings).await
}

/// `POST /aistudio/chat/completions`: AI Studio always.
pub async fn aistudio_chat(State(state): State<AppState>, call: ClientCall<ChatRequest>) -> Answer {
    chat_via(&state, call, Via::AiStudio).await
}

/// `POST /vertex/chat/completions`: Vertex AI always.
pub async fn vertex_chat(State(state): State<AppState>, call: ClientCall<ChatRequest>) -> Answer {
    chat_via(&state, call, Via::Vertex).await
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

async fn list_via(state: &AppState, call: &ClientCall<NoBody>, via: Via) -> Answer {
    let list = crate::pipeline::models::list_via(state, &call.snap, via)
        .await
        .map_err(fail)?;
    Ok(Json(list).into_response())
}

async fn get_via(state: &AppState, id: &str, call: &ClientCall<NoBody>, via: Via) -> Answer {
    let model = crate::pipeline::models::get_via(state, &call.snap, id, via)
        .await
        .map_err(fail)?;
    Ok(Json(model).into_response())
}

/// `GET /models`: Vertex's names while `ENABLE_VERTEX` is on.
pub async fn list_models(State(state): State<AppState>, call: ClientCall<NoBody>) -> Answer {
    list_via(&state, &call, Via::Settings).await
}

/// `GET /aistudio/models`.
pub async fn aistudio_list_models(
    State(state): State<AppState>,
    call: ClientCall<NoBody>,
) -> Answer {
    list_via(&state, &call, Via::AiStudio).await
}

/// `GET /vertex/models`.
pub async fn vertex_list_models(State(state): State<AppState>, call: ClientCall<NoBody>) -> Answer {
    list_via(&state, &call, Via::Vertex).await
}

pub async fn get_model(
    State(state): State<AppState>,
    Path(id): Path<String>,
    call: ClientCall<NoBody>,
) -> Answer {
    get_via(&state, &id, &call, Via::Settings).await
}

/// `GET /aistudio/models/{id}`.
pub async fn aistudio_get_model(
    State(state): State<AppState>,
    Path(id): Path<String>,
    call: ClientCall<NoBody>,
) -> Answer {
    get_via(&state, &id, &call, Via::AiStudio).await
}
