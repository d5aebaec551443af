//! The pages (GET): each gathers its values from the dashboard's services and renders its
//! template. Logged-out visitors see only the status card and the login form.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{Page, Viewer};
use super::render::page;
use crate::admin::{key_test, settings, views};
use crate::config::table::Group;
use crate::state::AppState;

fn see_other(to: &'static str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, HeaderValue::from_static(to))],
    )
        .into_response()
}

/// Characters a host (name, IPv4, `[IPv6]`, port) is made of.
fn host_like(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '_'))
}

/// The base URL clients paste (`http(s)://host:port/v1`): the request's `Host`, or the
/// `X-Forwarded-Host` / `X-Forwarded-Proto` of a trusted proxy (`TRUSTED_PROXIES`).
pub fn base_url(viewer: &Viewer) -> String {
    let headers = &viewer.parts.headers;
    let peer = viewer
        .parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let trusted = peer.is_some_and(|p| viewer.snap.trusted_proxies.trusts(p));
    let first = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let forwarded_host = trusted.then(|| first("x-forwarded-host")).flatten();
    let host = forwarded_host
        .or_else(|| first("host"))
        .or(viewer.parts.uri.authority().map(|a| a.as_str()))
        .filter(|h| host_like(h))
        .unwrap_or("127.0.0.1:7860");
    let scheme = trusted
        .then(|| first("x-forwarded-proto"))
        .flatten()
        .filter(|p| p.eq_ignore_ascii_case("https") || p.eq_ignore_ascii_case("http"))
        .map_or("http", |p| {
            if p.eq_ignore_ascii_case("https") {
                "https"
            } else {
                "http"
            }
        });
    format!("{scheme}://{host}/v1")
}

pub async fn status(State(state): State<AppState>, viewer: Viewer) -> Response {
    let mut card = views::status_card(&state);
    card["base_url"] = json!(base_url(&viewer));
    card["logged_in"] = json!(viewer.csrf.is_some());
    page(&viewer, "status.html", card)
}

pub async fn login_page(viewer: Viewer) -> Response {
    if viewer.csrf.is_some() {
        return see_other("/ui/overview");
    }
    page(&viewer, "login.html", json!({}))
}

pub async fn ui_root() -> Response {
    see_other("/ui/overview")
}

pub async fn overview(State(state): State<AppState>, Page(viewer): Page) -> Response {
    page(&viewer, "overview.html", views::overview(&state))
}

#[derive(Deserialize, Default)]
pub struct KeysQuery {
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub sort: String,
    /// 1-based page of `KEYS_PER_PAGE` keys.
    #[serde(default)]
    pub page: usize,
}

/// Keys per page of the keys table.
const KEYS_PER_PAGE: usize = 50;

/// The keys page's values; `extra` is what an action reports (added, removed, exported).
pub fn keys_values(state: &AppState, q: &KeysQuery, extra: Value) -> Value {
    let listing = views::keys(state);
    let mut list: Vec<Value> = listing["keys"].as_array().cloned().unwrap_or_default();
    if !q.state.is_empty() {
        list.retain(|k| k["status"] == q.state.as_str());
    }
    let order = |s: &Value| match s.as_str() {
        Some("usable") => 0,
        Some("cooling") => 1,
        Some("exhausted") => 2,
        Some("suspended") => 3,
        _ => 4,
    };
    match q.sort.as_str() {
        "calls" => list.sort_by_key(|k| std::cmp::Reverse(k["calls_today"].as_u64().unwrap_or(0))),
        "key" => list.sort_by(|a, b| a["key"].as_str().cmp(&b["key"].as_str())),
        _ => list.sort_by_key(|k| order(&k["status"])),
    }
    let limit = state.live.current().api_key_daily_limit;
    for k in &mut list {
        let calls = k["calls_today"].as_u64().unwrap_or(0);
        let pct = if limit > 0 {
            (calls * 100 / u64::from(limit)).min(100)
        } else {
            0
        };
        k["percent"] = json!(pct);
    }
    let pages = list.len().div_ceil(KEYS_PER_PAGE).max(1);
    let page = q.page.clamp(1, pages);
    let shown = list.len();
    let list: Vec<Value> = list
        .into_iter()
        .skip((page - 1) * KEYS_PER_PAGE)
        .take(KEYS_PER_PAGE)
        .collect();
    json!({
        "keys": list,
        "page": page,
        "pages": pages,
        "shown": shown,
        "counts": views::key_counts(state),
        "total": state.keys.len(),
        "limit": limit,
        "filter": q.state,
        "sort": q.sort,
        "progress": key_test::progress(state),
        "report": extra,
    })
}

pub async fn keys(
    State(state): State<AppState>,
    Page(viewer): Page,
    Query(q): Query<KeysQuery>,
) -> Response {
    page(&viewer, "keys.html", keys_values(&state, &q, Value::Null))
}

/// The settings grouped as the table groups them; `note`: a row's result (applied / error).
pub fn settings_values(state: &AppState, note: Value) -> Value {
    let listing = settings::listing(state);
    let all = listing["settings"].as_array().cloned().unwrap_or_default();
    let fixed = settings::fixed_listing(state)["settings"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let groups: Vec<Value> = Group::ALL
        .iter()
        .filter_map(|g| {
            let name = serde_json::to_value(g).ok()?;
            let rows: Vec<Value> = all
                .iter()
                .filter(|s| s["group"] == name)
                .map(|s| {
                    let mut s = s.clone();
                    // A list shown only as a count (HAJIMI's record of invalid keys): read-only
                    // here, the key pages change it.
                    s["readonly"] = json!(s["type"] == "list" && !s["value"].is_array());
                    s["shown"] = json!(match &s["value"] {
                        Value::Array(l) => l
                            .iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join("\n"),
                        Value::String(t) => t.clone(),
                        Value::Null => String::new(),
                        other => other.to_string(),
                    });
                    s
                })
                .collect();
            let fixed_rows: Vec<&Value> = fixed.iter().filter(|s| s["group"] == name).collect();
            let (en, zh) = g.title();
            (!rows.is_empty() || !fixed_rows.is_empty())
                .then(|| json!({"id": name, "en": en, "zh": zh, "rows": rows, "fixed": fixed_rows}))
        })
        .collect();
    json!({"groups": groups, "note": note})
}

pub async fn settings(State(state): State<AppState>, Page(viewer): Page) -> Response {
    page(
        &viewer,
        "settings.html",
        settings_values(&state, Value::Null),
    )
}

#[derive(Deserialize, Default)]
pub struct LogsQuery {
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub errors: String,
    /// `INFO`, `WARNING` or `ERROR` (HAJIMI's levels); empty: all.
    #[serde(default)]
    pub level: String,
    #[serde(default)]
    pub q: String,
}

/// The request log's entries for the page (newest first, at most 200, filtered).
fn log_rows(state: &AppState, q: &LogsQuery) -> Vec<Value> {
    let needle = q.q.to_lowercase();
    state
        .stats
        .logs()
        .into_iter()
        .rev()
        .filter(|e| q.model.is_empty() || e.model == q.model)
        .filter(|e| q.level.is_empty() || e.level == q.level)
        .filter(|e| q.errors.is_empty() || e.status_code.parse::<u16>().is_ok_and(|s| s >= 400))
        .filter(|e| needle.is_empty() || e.formatted.to_lowercase().contains(&needle))
        .take(200)
        .map(|e| serde_json::to_value(e).unwrap_or(Value::Null))
        .collect()
}

pub async fn logs(
    State(state): State<AppState>,
    Page(viewer): Page,
    Query(q): Query<LogsQuery>,
) -> Response {
    let models: std::collections::BTreeSet<String> = state
        .stats
        .logs()
        .into_iter()
        .map(|e| e.model)
        .filter(|m| !m.is_empty())
        .collect();
    let values = json!({
        "rows": log_rows(&state, &q),
        "models": models,
        "model": q.model, "errors": q.errors, "q": q.q, "level": q.level,
    });
    page(&viewer, "logs.html", values)
}

/// The newest entries of the request log, as they come (SSE `log` events of JSON entries,
/// checked every second; an hour at most, the browser reconnects).
pub async fn logs_stream(State(state): State<AppState>, _: Page) -> Response {
    // The entry last sent (its formatted line): the tail starts after what the page showed.
    let start = state.stats.logs().last().map(|e| e.formatted.clone());
    let stream = futures_util::stream::unfold(
        (state.clone(), start, 0u32),
        |(state, last, ticks)| async move {
            if ticks >= 3600 || state.shutdown.is_cancelled() {
                return None;
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                () = state.shutdown.cancelled() => return None,
            }
            let logs = state.stats.logs();
            let fresh: Vec<_> = match &last {
                None => logs.iter().rev().take(20).rev().cloned().collect(),
                Some(seen) => match logs.iter().rposition(|e| &e.formatted == seen) {
                    Some(i) => logs[i + 1..].to_vec(),
                    None => logs.iter().rev().take(20).rev().cloned().collect(),
                },
            };
            let last = logs.last().map(|e| e.formatted.clone()).or(last);
            let data = serde_json::to_string(&fresh).unwrap_or_else(|_| "[]".to_owned());
            let event = Event::default().event("log").data(data);
            Some((Ok::<_, Infallible>(event), (state, last, ticks + 1)))
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// The models page's values: what clients see, and the lists that shape it.
pub fn models_values(state: &AppState, note: Value) -> Value {
    let snap = state.live.current();
    let models = state.models.current();
    let visible = crate::models::visible_ids(&snap, models.as_deref().map(Vec::as_slice));
    let (search, standard): (Vec<&String>, Vec<&String>) =
        visible.iter().partition(|m| m.ends_with("-search"));
    json!({
        "standard": standard,
        "search": search,
        "visible": visible,
        "loaded": models.is_some(),
        "whitelist": snap.whitelist_models.join("\n"),
        "blocked": snap.blocked_models.join("\n"),
        "extra": snap.extra_models.join("\n"),
        "note": note,
    })
}

pub async fn models(State(state): State<AppState>, Page(viewer): Page) -> Response {
    page(&viewer, "models.html", models_values(&state, Value::Null))
}

#[cfg(test)]
mod tests {
    use super::host_like;

    #[test]
    fn only_host_characters_make_a_base_url() {
        for ok in [
            "127.0.0.1:7860",
            "[::1]:7860",
            "my-space.hf.space",
            "a_b.local",
        ] {
            assert!(host_like(ok), "{ok}");
        }
        for bad in [
            "",
            "evil.com/\"><script>",
            "a b",
            "host\r\nx: y",
            &"a".repeat(256),
        ] {
            assert!(!host_like(bad), "{bad}");
        }
    }
}
