//! The dashboard's JSON API under `/api/` (decisions §2): HAJIMI's endpoints with HAJIMI's
//! field names and messages, plus what the new dashboard needs (keys with states and
//! cooldowns, usage per model, the request log, key management). Who may call it, and the
//! browser login, are in `session`. Nothing is readable anonymously; only the key export
//! carries full keys.

use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::config::table;
use crate::config::{Settings, Source};
use crate::keys::KeyState;
use crate::store::Op;

fn detail(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "detail": message.into() }))).into_response()
}

/// Reads a dashboard call and checks its credentials (`$write`: a write needs more), or
/// returns the refusal from the handler.
macro_rules! guarded {
    ($state:expr, $request:expr, $write:expr) => {
        match $crate::routes::admin::session::read(&$state, $request).await {
            Err(r) => return *r,
            Ok(call) => {
                match $crate::routes::admin::session::authorize(&$state, &call, $write).await {
                    Err(r) => return *r,
                    Ok(()) => call,
                }
            }
        }
    };
}

mod session;
mod throttle;

pub use session::{Sessions, login, logout, session};

/// The dashboard key test (`/api/test-api-keys`) and its progress, HAJIMI's shape.
#[derive(Default, Clone, serde::Serialize)]
pub struct KeyTest {
    pub is_running: bool,
    pub completed: usize,
    pub total: usize,
    pub valid: usize,
    pub invalid: usize,
    pub is_completed: bool,
}

// ---------------------------------------------------------------------------------------
// Reading

fn hhmm(unix: i64) -> String {
    jiff::Timestamp::from_second(unix)
        .map(|t| {
            t.to_zoned_datetime(jiff::tz::TimeZone::system())
                .strftime("%H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

fn key_view(state: &AppState, slot: &crate::keys::KeySlot, snap: &Settings) -> Value {
    let now = tokio::time::Instant::now();
    let cooldowns: Vec<Value> = slot
        .cooldowns(now)
        .into_iter()
        .map(|c| json!({"model": c.model, "remaining_s": c.until.saturating_duration_since(now).as_secs(), "until_daily_reset": c.daily}))
        .collect();
    let today = state.stats.key_today(slot.id);
    let from_env = state.key_vars.iter().any(|(k, _)| k == slot.secret());
    json!({
        "id": slot.id.to_string(),
        "key": slot.masked(),
        "state": slot.state().as_str(),
        "verified": slot.verified(),
        "cooldowns": cooldowns,
        "calls_today": today.total.calls,
        "successes_today": today.total.successes,
        "failures_today": today.total.failures,
        "tokens_today": today.total.tokens(),
        "daily_limit": snap.api_key_daily_limit,
        "in_flight": slot.in_flight(),
        "source": if from_env { "environment" } else { "dashboard" },
    })
}

pub async fn dashboard_data(State(state): State<AppState>, request: Request) -> Response {
    let call = guarded!(state, request, false);
    let snap = &call.snap;
    let summary = state.stats.summary();
    let models = state.models.current();
    let available = crate::models::visible_ids(snap, models.as_deref().map(Vec::as_slice));
    let slots = state.keys.slots();
    let limit = snap.api_key_daily_limit;
    let mut key_stats: Vec<Value> = slots
        .iter()
        .map(|slot| {
            let today = state.stats.key_today(slot.id);
            let calls = today.total.calls;
            let percent = if limit > 0 { ((calls as f64 / f64::from(limit)) * 10_000.0).round() / 100.0 } else { 0.0 };
            let model_stats: serde_json::Map<String, Value> = today
                .models
                .iter()
                .map(|(m, c)| (m.clone(), json!({"calls": c.calls, "tokens": c.tokens()})))
                .collect();
            json!({"api_key": slot.masked(), "key_id": slot.id.to_string(), "calls_24h": calls, "total_tokens": today.total.tokens(),
                   "limit": limit, "usage_percent": percent, "model_stats": model_stats, "state": slot.state().as_str()})
        })
        .collect();
    key_stats.sort_by(|a, b| {
        b["usage_percent"]
            .as_f64()
            .partial_cmp(&a["usage_percent"].as_f64())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let calls_series: Vec<Value> = summary
        .series
        .iter()
        .map(|(m, c)| json!({"time": hhmm(*m), "value": c.calls}))
        .collect();
    let tokens_series: Vec<Value> = summary
        .series
        .iter()
        .map(|(m, c)| json!({"time": hhmm(*m), "value": c.tokens()}))
        .collect();
    let logs = state.stats.logs();
    let logs: Vec<_> = logs.iter().rev().take(100).rev().collect();
    let models_usage: serde_json::Map<String, Value> = state
        .stats
        .models_today()
        .into_iter()
        .map(|(m, c)| (m, serde_json::to_value(c).unwrap_or(Value::Null)))
        .collect();
    let inflight = state.inflight_len();
    // HAJIMI's "可用密钥数量": the keys that passed the check. With SKIP_CHECK_API_KEY HAJIMI
    // puts every key in its pool untested, and so counts every key still in rotation.
    let key_count = if snap.skip_check_api_key {
        state.keys.active_count()
    } else {
        state.keys.usable_count()
    };
    axum::Json(json!({
        "key_count": key_count,
        "model_count": available.len(),
        "available_models": available,
        "retry_count": snap.max_retry_num,
        "credentials_count": 0,
        "last_24h_calls": summary.day.calls,
        "hourly_calls": summary.hour.calls,
        "minute_calls": summary.minute.calls,
        "last_24h_tokens": summary.day.tokens(),
        "hourly_tokens": summary.hour.tokens(),
        "minute_tokens": summary.minute.tokens(),
        "calls_time_series": calls_series,
        "tokens_time_series": tokens_series,
        "current_time": jiff::ZonedDateTime::now().strftime("%H:%M:%S").to_string(),
        "logs": logs,
        "api_key_stats": key_stats,
        "max_requests_per_minute": snap.max_requests_per_minute,
        "max_requests_per_day_per_ip": snap.max_requests_per_day_per_ip,
        "local_version": env!("CARGO_PKG_VERSION"),
        "remote_version": env!("CARGO_PKG_VERSION"),
        "has_update": false,
        "fake_streaming": snap.fake_streaming,
        "fake_streaming_interval": snap.fake_streaming_interval.as_secs_f64(),
        "random_string": snap.random_string,
        "random_string_length": snap.random_string_length,
        "search_mode": snap.search_mode,
        "search_prompt": snap.search_prompt,
        "cache_entries": state.cache.len(),
        "cache_expiry_time": snap.cache_expiry_time.as_secs(),
        "max_cache_entries": snap.max_cache_entries,
        "active_count": inflight,
        "active_done": 0,
        "active_pending": inflight,
        "concurrent_requests": snap.concurrent_requests,
        "increase_concurrent_on_failure": snap.increase_concurrent_on_failure,
        "max_concurrent_requests": snap.max_concurrent_requests,
        "enable_vertex": snap.enable_vertex,
        "enable_vertex_express": snap.enable_vertex_express,
        "vertex_express_api_key": !snap.vertex_express_api_key.is_empty(),
        "google_credentials_json": snap.google_credentials_json.is_some(),
        "max_retry_num": snap.max_retry_num,
        "max_empty_responses": snap.max_empty_responses,
        // Beyond HAJIMI: what the new dashboard shows.
        "keys": slots.iter().map(|s| key_view(&state, s, snap)).collect::<Vec<_>>(),
        "models_usage": models_usage,
        "tokens_24h": {"prompt": summary.day.prompt_tokens, "completion": summary.day.completion_tokens,
                        "thoughts": summary.day.thought_tokens, "cached": summary.day.cached_tokens},
        "storage": {"enabled": state.store.is_some(), "path": state.store.as_ref().map(|s| s.path().display().to_string())},
        "stats_reset_timezone": snap.stats_reset_timezone,
        "uptime_s": state.started.elapsed().as_secs(),
    }))
    .into_response()
}

pub async fn keys(State(state): State<AppState>, request: Request) -> Response {
    let call = guarded!(state, request, false);
    let list: Vec<Value> = state
        .keys
        .slots()
        .iter()
        .map(|s| key_view(&state, s, &call.snap))
        .collect();
    axum::Json(json!({"keys": list})).into_response()
}

pub async fn logs(State(state): State<AppState>, request: Request) -> Response {
    let _call = guarded!(state, request, false);
    axum::Json(json!({"logs": state.stats.logs()})).into_response()
}

pub async fn usage(State(state): State<AppState>, request: Request) -> Response {
    let _call = guarded!(state, request, false);
    let summary = state.stats.summary();
    axum::Json(json!({
        "minute": summary.minute, "hour": summary.hour, "day": summary.day,
        "series": summary.series.iter().map(|(m, c)| json!({"start": m, "counters": c})).collect::<Vec<_>>(),
        "models_today": state.stats.models_today(),
        "day_start": state.stats.day_start(),
    }))
    .into_response()
}

/// Every editable setting with its value (secrets: whether set) and where it came from.
pub async fn config(State(state): State<AppState>, request: Request) -> Response {
    let call = guarded!(state, request, false);
    let provenance = state
        .provenance
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let list: Vec<Value> = table::editable()
        .map(|e| {
            let source = provenance.get(e.env).copied().unwrap_or(Source::Default);
            e.listing(&call.snap, source)
        })
        .collect();
    axum::Json(json!({"settings": list})).into_response()
}

// ---------------------------------------------------------------------------------------
// Writing

/// `POST /api/update-config`: validated, committed to the store, then applied
/// to new requests at once.
pub async fn update_config(State(state): State<AppState>, request: Request) -> Response {
    let call = guarded!(state, request, true);
    let Some(key) = call
        .body
        .get("key")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
    else {
        return detail(StatusCode::BAD_REQUEST, "缺少配置项键名 / Missing `key`");
    };
    let value = call.body.get("value").cloned().unwrap_or(Value::Null);
    if key == "gemini_api_keys" {
        let text = value
            .as_str()
            .unwrap_or_default()
            .replace(['\n', '\r'], ",");
        return add_keys(&state, &text).await;
    }
    let Some(entry) = table::find(key) else {
        return detail(
            StatusCode::BAD_REQUEST,
            format!("不支持的配置项：{key} / Unsupported setting: {key}"),
        );
    };
    if entry.secret
        && value
            .as_str()
            .is_some_and(|s| s.is_empty() || s.eq_ignore_ascii_case("true"))
    {
        return axum::Json(json!({"status": "success", "message": format!("配置项 {key} 未更新，值为空或为'true'")})).into_response();
    }
    let _serial = state.admin_lock.lock().await;
    // Validate on a copy; the change is applied to the then-current settings below, so a
    // concurrent change (a key check recording an invalid key) is not overwritten.
    let mut next = (*state.live.current()).clone();
    if let Err(e) = entry.set(&mut next, &value) {
        return detail(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("参数类型错误：{e} / Invalid value: {e}"),
        );
    }
    if let Some(store) = &state.store {
        let persisted = entry.persisted(&next).to_string();
        let op = Op::SaveSetting {
            name: key.to_owned(),
            value: persisted,
            env_value: state.env.get(entry.env).map(str::to_owned),
        };
        if let Err(e) = store.commit(vec![op]).await {
            return detail(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("更新失败：{e} / Update failed: {e}"),
            );
        }
    }
    if let Err(e) = state.live.update(|s| entry.set(s, &value)) {
        return detail(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("参数类型错误：{e} / Invalid value: {e}"),
        );
    }
    state
        .provenance
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(entry.env.to_owned(), Source::Dashboard);
    tracing::info!(setting = key, "setting changed from the dashboard");
    axum::Json(json!({"status": "success", "message": format!("配置项 {key} 已更新")}))
        .into_response()
}

async fn add_keys(state: &AppState, text: &str) -> Response {
    let keys = crate::config::keys::extract_keys(text);
    if keys.is_empty() {
        return detail(
            StatusCode::BAD_REQUEST,
            "未提供有效的API密钥 / No valid API key given",
        );
    }
    let _serial = state.admin_lock.lock().await;
    if let Some(store) = &state.store {
        let ops = keys
            .iter()
            .map(|k| Op::AddKey { secret: k.clone() })
            .collect();
        if let Err(e) = store.commit(ops).await {
            return detail(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("更新失败：{e} / Update failed: {e}"),
            );
        }
    }
    let added = state.keys.add(&keys);
    tracing::info!(added, "keys added from the dashboard");
    if added > 0 && !state.live.current().skip_check_api_key {
        // New keys count as usable once they pass a check, as at start-up.
        let fresh: Vec<_> = state
            .keys
            .slots()
            .iter()
            .filter(|s| !s.verified() && keys.iter().any(|k| k == s.secret()))
            .cloned()
            .collect();
        let s = state.clone();
        state.spawn_tracked(async move {
            let snap = s.live.current();
            let report = crate::keys::health::check_all(&s.upstream, &snap, fresh).await;
            crate::record_invalid(&s, &report.changed);
        });
    }
    if state.models.current().is_none_or(|m| m.is_empty()) {
        let s = state.clone();
        state.spawn_tracked(async move {
            let snap = s.live.current();
            let _ = s.models.refresh(&snap, &s.keys, &s.upstream).await;
        });
    }
    axum::Json(
        json!({"status": "success", "message": "配置项 gemini_api_keys 已更新", "added": added}),
    )
    .into_response()
}

/// `POST /api/keys/add` `{"keys": "<any text holding keys>"}`.
pub async fn keys_add(State(state): State<AppState>, request: Request) -> Response {
    let call = guarded!(state, request, true);
    let text = match call.body.get("keys") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(","),
        _ => String::new(),
    };
    add_keys(&state, &text).await
}

/// Keys named by id (`"ids": [...]`), or all keys when none are named.
fn chosen(state: &AppState, body: &Value) -> Vec<Arc<crate::keys::KeySlot>> {
    let ids: Vec<String> = body
        .get("ids")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    state
        .keys
        .slots()
        .iter()
        .filter(|s| ids.is_empty() || ids.contains(&s.id.to_string()))
        .cloned()
        .collect()
}

async fn remove_keys(
    state: &AppState,
    victims: &[Arc<crate::keys::KeySlot>],
) -> Result<usize, String> {
    let _serial = state.admin_lock.lock().await;
    let secrets: Vec<String> = victims.iter().map(|s| s.secret().to_owned()).collect();
    if let Some(store) = &state.store {
        let ops = secrets
            .iter()
            .map(|secret| {
                let var = state
                    .key_vars
                    .iter()
                    .find(|(k, _)| k == secret)
                    .map(|(_, v)| v.clone());
                Op::RemoveKey {
                    secret: secret.clone(),
                    env_fingerprint: var.map(|v| state.env.fingerprint(&v)),
                }
            })
            .collect();
        store.commit(ops).await?;
    }
    Ok(state.keys.remove(&secrets))
}

/// `POST /api/keys/remove` `{"ids": [...]}` (ids required).
pub async fn keys_remove(State(state): State<AppState>, request: Request) -> Response {
    let call = guarded!(state, request, true);
    if call
        .body
        .get("ids")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        return detail(StatusCode::BAD_REQUEST, "缺少 ids / `ids` is required");
    }
    let victims = chosen(&state, &call.body);
    match remove_keys(&state, &victims).await {
        Ok(n) => axum::Json(json!({"status": "success", "removed": n})).into_response(),
        Err(e) => detail(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("更新失败：{e} / Update failed: {e}"),
        ),
    }
}

/// `POST /api/keys/reset` `{"ids": [...]}` (none: every key): back to active, no cooldowns.
pub async fn keys_reset(State(state): State<AppState>, request: Request) -> Response {
    let call = guarded!(state, request, true);
    let chosen = chosen(&state, &call.body);
    for slot in &chosen {
        slot.reset();
    }
    tracing::info!(keys = chosen.len(), "keys reset from the dashboard");
    axum::Json(json!({"status": "success", "reset": chosen.len()})).into_response()
}

pub async fn reset_stats(State(state): State<AppState>, request: Request) -> Response {
    let _call = guarded!(state, request, true);
    state.stats.reset();
    for slot in state.keys.slots().iter() {
        slot.set_calls_today(0);
    }
    axum::Json(json!({"status": "success", "message": "API调用统计数据已重置"})).into_response()
}

pub async fn test_keys(State(state): State<AppState>, request: Request) -> Response {
    let _call = guarded!(state, request, true);
    {
        let mut progress = state
            .key_test
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if progress.is_running {
            return detail(
                StatusCode::CONFLICT,
                "已有API密钥检测正在进行中 / A key test is already running",
            );
        }
        let total = state.keys.len();
        *progress = KeyTest {
            is_running: true,
            total,
            ..KeyTest::default()
        };
    }
    let s = state.clone();
    state.spawn_tracked(async move {
        let snap = s.live.current();
        let slots = s.keys.slots().to_vec();
        let stream = futures_util::stream::iter(slots).map(|slot| {
            let s = s.clone();
            let snap = Arc::clone(&snap);
            async move {
                let result = crate::keys::health::check(&s.upstream, &snap, &slot).await;
                let change = crate::keys::health::judge(&slot, &result);
                (slot, change)
            }
        });
        let mut stream = stream.buffer_unordered(crate::keys::health::CHECK_CONCURRENCY);
        let mut changed = Vec::new();
        while let Some((slot, change)) = stream.next().await {
            let mut p = s.key_test.lock().unwrap_or_else(PoisonError::into_inner);
            p.completed += 1;
            if slot.state() == KeyState::Active {
                p.valid += 1;
            } else {
                p.invalid += 1;
            }
            if let Some(state) = change {
                changed.push((slot, state));
            }
        }
        crate::record_invalid(&s, &changed);
        let mut p = s.key_test.lock().unwrap_or_else(PoisonError::into_inner);
        p.is_running = false;
        p.is_completed = true;
    });
    axum::Json(
        json!({"status": "success", "message": "API密钥检测已启动，将同时检测有效密钥和无效密钥"}),
    )
    .into_response()
}

pub async fn test_keys_progress(State(state): State<AppState>, request: Request) -> Response {
    let _call = guarded!(state, request, false);
    let p = state
        .key_test
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    axum::Json(p).into_response()
}

pub async fn clear_invalid_keys(State(state): State<AppState>, request: Request) -> Response {
    let _call = guarded!(state, request, true);
    let retired: Vec<Arc<crate::keys::KeySlot>> = state
        .keys
        .slots()
        .iter()
        .filter(|s| s.state() != KeyState::Active)
        .cloned()
        .collect();
    let recorded = state.live.current().invalid_api_keys.len();
    if retired.is_empty() && recorded == 0 {
        return axum::Json(json!({"status": "success", "message": "没有失效的API密钥需要清除"}))
            .into_response();
    }
    let removed = match remove_keys(&state, &retired).await {
        Ok(n) => n,
        Err(e) => {
            return detail(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("清除失败：{e} / Failed: {e}"),
            );
        }
    };
    let next = state.live.update(|s| {
        s.invalid_api_keys.clear();
        Ok::<(), std::convert::Infallible>(())
    });
    if let (Some(store), Ok(next)) = (&state.store, next) {
        let value = table::find("invalid_api_keys")
            .map_or(Value::Null, |e| e.persisted(&next))
            .to_string();
        let _ = store
            .commit(vec![Op::SaveSetting {
                name: "invalid_api_keys".into(),
                value,
                env_value: state.env.get("INVALID_API_KEYS").map(str::to_owned),
            }])
            .await;
    }
    let n = removed.max(recorded);
    axum::Json(json!({"status": "success", "message": format!("已成功清除 {n} 个失效的API密钥")}))
        .into_response()
}

/// The one response that carries full keys (POST, web password, logged).
pub async fn export_valid_keys(State(state): State<AppState>, request: Request) -> Response {
    let call = guarded!(state, request, true);
    let keys: Vec<String> = state
        .keys
        .slots()
        .iter()
        .filter(|s| s.state() == KeyState::Active)
        .map(|s| s.secret().to_owned())
        .collect();
    tracing::warn!(count = keys.len(), client = ?call.ip, "valid keys exported through the dashboard API");
    if keys.is_empty() {
        return axum::Json(
            json!({"status": "success", "message": "当前没有有效的API密钥", "keys": []}),
        )
        .into_response();
    }
    let n = keys.len();
    axum::Json(json!({"status": "success", "message": format!("成功获取 {n} 个有效API密钥"), "keys": keys, "count": n})).into_response()
}

/// The dashboard's own key-test state, kept in the app.
pub type KeyTestState = Mutex<KeyTest>;
