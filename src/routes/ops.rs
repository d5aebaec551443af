//! Operations routes: `/health` (the process is alive), `/ready` (configuration loaded and
//! store open; not "has a usable key", CONTRACT §7), and the plain page at `/` that uptime
//! monitors probe until the dashboard replaces it.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;

use crate::app::AppState;

pub async fn health(State(state): State<AppState>) -> Response {
    axum::Json(json!({ "status": "ok", "uptime_s": state.started.elapsed().as_secs() }))
        .into_response()
}

pub async fn ready(State(state): State<AppState>) -> Response {
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

pub async fn index() -> Html<&'static str> {
    Html(concat!(
        "<!doctype html><html lang=\"zh\"><head><meta charset=\"utf-8\"><title>hajimi</title></head>",
        "<body><h1>hajimi</h1><p>hajimi 正在运行 / hajimi is running (v",
        env!("CARGO_PKG_VERSION"),
        ").</p><p>OpenAI base URL: <code>/v1</code></p></body></html>"
    ))
}
