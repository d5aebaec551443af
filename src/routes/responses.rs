//! OpenAI Responses routes: `POST /v1/responses` (and `/responses`), and
//! `GET /v1/responses/{id}` for a stored response (OpenAI's auth and error shape).

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
    let stored = stored.ok_or_else(|| {
        fail(GatewayError::NotFound {
            message: format!(
                "找不到响应 {id:?}（未保存或已超过 24 小时）/ Response with id {id:?} not found (never stored, or older than 24 hours)"
            ),
            code: "not_found",
        })
    })?;
    Ok(Json(stored.response).into_response())
}
