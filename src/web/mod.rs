//! The web dashboard: server-rendered pages over the dashboard's services (`crate::admin`,
//! `crate::access`, `crate::stats`) — the JSON API (`routes::admin`) and these pages call the
//! same functions, neither implements them again.
//!
//! - `/` (or `/{DASHBOARD_URL}`): a public status card (version, uptime, key counts, calls
//!   today, the base URL for clients) and the login form. No keys, logs or settings.
//! - `/login`, `/logout`: the dashboard session (HttpOnly SameSite=Strict cookie, the login
//!   throttle) — the same `access::Sessions` as `/api/login`.
//! - `/ui/overview`, `/ui/keys`, `/ui/settings`, `/ui/logs` (+ `/ui/logs/stream`, SSE),
//!   `/ui/models`: behind the session; a logged-out visit is redirected (303) to `/login`
//!   (an htmx request gets 401 with `HX-Redirect`). Every form POST carries the session's
//!   CSRF token (hidden field, or the `X-CSRF-Token` header htmx sends).
//! - `/assets/…`: the stylesheet, the script and the vendored htmx and uPlot, compiled into
//!   the binary, served with an ETag and a year-long cache (URLs carry the content hash).
//!
//! Templates are minijinja, compiled in (`include_str!`), autoescaped. Labels come from
//! `i18n` (zh-CN and English, chosen from `Accept-Language` or the `hajimi_lang` cookie).

mod actions;
pub mod assets;
mod auth;
pub mod i18n;
mod pages;
mod render;

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

/// Where the status card can be: `index` unless it names one of the dashboard's own paths
/// (then `/`).
pub fn usable_index(index: &str) -> &str {
    let own = ["/login", "/logout", "/ui", "/lang", "/assets"];
    if own
        .iter()
        .any(|p| index == *p || index.starts_with(&format!("{p}/")))
    {
        return "/";
    }
    index
}

/// The dashboard's routes; `index` is where the status card lives (`/` or `/{DASHBOARD_URL}`).
pub fn routes(index: &str) -> Router<AppState> {
    let usable = usable_index(index);
    if usable != index {
        tracing::warn!(
            path = index,
            "DASHBOARD_URL names one of the dashboard's own paths; the status card stays at /"
        );
    }
    let index = usable;
    Router::new()
        .route(index, get(pages::status))
        .route("/login", get(pages::login_page).post(actions::login))
        .route("/logout", post(actions::logout))
        .route("/lang/{lang}", get(actions::language))
        .route("/ui", get(pages::ui_root))
        .route("/ui/", get(pages::ui_root))
        .route("/ui/overview", get(pages::overview))
        .route("/ui/stats/reset", post(actions::reset_stats))
        .route("/ui/keys", get(pages::keys))
        .route("/ui/keys/add", post(actions::keys_add))
        .route("/ui/keys/test", post(actions::keys_test))
        .route("/ui/keys/reset", post(actions::keys_reset))
        .route("/ui/keys/remove", post(actions::keys_remove))
        .route("/ui/keys/clear-invalid", post(actions::keys_clear_invalid))
        .route("/ui/keys/export", post(actions::keys_export))
        .route("/ui/settings", get(pages::settings).post(actions::setting))
        .route("/ui/logs", get(pages::logs))
        .route("/ui/logs/stream", get(pages::logs_stream))
        .route("/ui/models", get(pages::models).post(actions::models))
        .route("/assets/{*file}", get(assets::serve))
        // gzip for browsers that accept it (the overview's 120 KB become about a third on a
        // phone's connection); event streams are left alone by the default predicate.
        .layer(tower_http::compression::CompressionLayer::new())
}
