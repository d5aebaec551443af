//! Anthropic Messages routes: `POST /v1/messages` (and `/messages`; Claude Code adds
//! `?beta=true`), `POST /v1/messages/count_tokens`, and Anthropic's model list on
//! `GET /v1/models` for requests that carry `anthropic-version` (`routes::openai`). The client
//! password is accepted as `x-api-key` too; `anthropic-version` and `anthropic-beta` are
//! accepted and not needed. Errors are Anthropic's envelope (decisions §3).

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use crate::error::{Flavored, GatewayError};
use crate::routes::body::Shape;
use crate::routes::{AnthropicRoutes, Bounded, ClientCall, NoBody};
use crate::state::AppState;
use crate::translate::anthropic::dialect;
use crate::wire::anthropic::{MessagesRequest, TokenCount};

type Call<T> = ClientCall<T, AnthropicRoutes>;
type Answer = Result<Response, Flavored>;

fn fail(e: GatewayError) -> Flavored {
    Call::<NoBody>::fail(e)
}

impl Bounded for MessagesRequest {
    const SHAPE: Shape = Shape::Chat;
}

/// The body of `count_tokens`: a Messages request, not counted by the per-address limits.
pub struct CountRequest(MessagesRequest);

impl crate::routes::FromBody for CountRequest {
    const ADMITTED: bool = false;
    async fn from_body(
        body: axum::body::Body,
        parts: &axum::http::request::Parts,
        snap: &crate::config::Settings,
    ) -> Result<Self, GatewayError> {
        <MessagesRequest as crate::routes::FromBody>::from_body(body, parts, snap)
            .await
            .map(Self)
    }
}

/// `POST /v1/messages`.
pub async fn messages(State(state): State<AppState>, call: Call<MessagesRequest>) -> Answer {
    crate::pipeline::generate::serve(
        &state,
        &call.snap,
        call.body,
        dialect::prepare,
        &call.outcome,
    )
    .await
    .map_err(fail)
}

/// `POST /v1/messages/count_tokens`, through Gemini's `countTokens`.
pub async fn count_tokens(State(state): State<AppState>, call: Call<CountRequest>) -> Answer {
    let counted = crate::pipeline::count::count(
        &state,
        &call.snap,
        call.body.0,
        dialect::prepare_count,
        &call.outcome,
    )
    .await
    .map_err(fail)?;
    Ok(Json(TokenCount {
        input_tokens: counted,
    })
    .into_response())
}

/// `GET /v1/models` with `anthropic-version`: Anthropic's list shape.
pub async fn list_models(state: &AppState, call: &Call<NoBody>) -> Answer {
    let list = crate::pipeline::models::anthropic_list(state, &call.snap)
        .await
        .map_err(fail)?;
    Ok(Json(list).into_response())
}

/// `GET /v1/models/{id}` with `anthropic-version`: one model in Anthropic's shape.
pub async fn get_model(state: &AppState, id: &str, call: &Call<NoBody>) -> Answer {
    let model = crate::pipeline::models::anthropic_get(state, &call.snap, id)
        .await
        .map_err(fail)?;
    Ok(Json(model).into_response())
}
