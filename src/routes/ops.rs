//! Operations routes: `/health` (the process is alive), `/ready` (configuration loaded and
//! store open and writable — 503 with the reason when its writes fail; not "has a usable
//! key", decisions §7). The page at `/` is the dashboard's status card (`crate::web`).

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::state::AppState;

pub async fn health(State(state): State<AppState>) -> Response {
    axum::Json(json!({ "status": "ok", "uptime_s": state.started.elapsed().as_secs() }))
        .into_response()
}

pub async fn ready(State(state): State<AppState>) -> Response {
    if let Some(reason) = state.store.as_ref().and_then(|s| s.fault()) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "status": "unhealthy", "store": "failing", "reason": reason })),
        )
            .into_response();
    }
    if state.ready.load(Ordering::Relaxed) {
        axum::Json(json!({ "status": "ready" })).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "status": "starting" })),
        )
            .into_response()
    }
}

/// `GET /metrics`: Prometheus text; with `METRICS_PASSWORD`, only for that Bearer token.
pub async fn metrics(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    let snap = state.live.current();
    if let Some(password) = &snap.metrics_password {
        let presented = crate::routes::auth::presented_credentials(&headers, None);
        if !presented.iter().any(|p| password.matches(p.as_bytes())) {
            return (
                StatusCode::UNAUTHORIZED,
                "401 Unauthorized: METRICS_PASSWORD\n",
            )
                .into_response();
        }
    }
    crate::background::update_key_gauges(&state);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(),
    )
        .into_response()
}
