//! OpenAI Responses routes: `POST /v1/responses` (and `/responses`), and
//! `GET`/`DELETE /v1/responses/{id}` for a stored response (OpenAI's auth and error shape).

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};

use crate::error::{Flavor, Flavored, GatewayError};
use crate::routes::body::Shape;
use crate::routes::{Bounded, ClientCall, NoBody};
use crate::state::AppState;
use crate::translate::responses::dialect;
use crate::wire::responses::CreateResponse;

type Answer = Result<Response, Flavored>;

fn fail(e: GatewayError) -> Flavored {
    e.flavored(Flavor::OpenAi)
}

impl Bounded for CreateResponse {
    const SHAPE: Shape = Shape::Responses;
}

/// `POST /v1/responses`.
pub async fn create(State(state): State<AppState>, call: ClientCall<CreateResponse>) -> Answer {
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

/// `GET /v1/responses/{id}`: a stored response, for 24 hours.
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    _: ClientCall<NoBody>,
) -> Answer {
    let stored = state.kept.get(&id).and_then(|data| dialect::stored(&data));
    let stored = stored.ok_or_else(|| not_found(&id))?;
    Ok(Json(stored.response).into_response())
}

/// `DELETE /v1/responses/{id}`: forgets a stored response (memory and store).
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    _: ClientCall<NoBody>,
) -> Answer {
    if !state.kept.forget(&id) {
        return Err(not_found(&id));
    }
    let done = serde_json::json!({"id": id, "object": "response", "deleted": true});
    Ok(Json(done).into_response())
}

fn not_found(id: &str) -> Flavored {
    fail(GatewayError::NotFound {
        message: format!(
            "找不到响应 {id:?}（未保存、已删除或已超过 24 小时）/ Response with id {id:?} not found (never stored, deleted, or older than 24 hours)"
        ),
        code: "not_found",
    })
}
