//! What the dashboard reads: HAJIMI's `/api/dashboard-data` (HAJIMI's field names and
//! meaning: `key_count` counts the keys that passed a check), the key list with states and
//! cooldowns, usage, and the request log. JSON values built from the running state, used by
//! the JSON API and the pages alike.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::config::Settings;
use crate::keys::{KeySlot, KeyState};
use crate::state::AppState;

fn hhmm(unix: i64) -> String {
    jiff::Timestamp::from_second(unix)
        .map(|t| {
            t.to_zoned_datetime(jiff::tz::TimeZone::system())
                .strftime("%H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

/// How a key shows on the dashboard, and until when (unix seconds): `usable`, `cooling`
/// (for some model, until the last cooldown ends), `exhausted` (a daily quota, until the
/// reset), `invalid`, `suspended`.
pub fn key_status(slot: &KeySlot) -> (&'static str, Option<i64>) {
    match slot.state() {
        KeyState::Invalid => return ("invalid", None),
        KeyState::Suspended => return ("suspended", None),
        KeyState::Active => {}
    }
    let now = tokio::time::Instant::now();
    let unix = jiff::Timestamp::now().as_second();
    let cooldowns = slot.cooldowns(now);
    let until = |daily: bool| {
        cooldowns
            .iter()
            .filter(|c| c.daily == daily)
            .map(|c| {
                unix + i64::try_from(c.until.saturating_duration_since(now).as_secs()).unwrap_or(0)
            })
            .max()
    };
    if let Some(t) = until(true) {
        return ("exhausted", Some(t));
    }
    if let Some(t) = until(false) {
        return ("cooling", Some(t));
    }
    ("usable", None)
}

/// How many keys show in each status (`key_status`), every status present.
pub fn key_counts(state: &AppState) -> BTreeMap<&'static str, usize> {
    let mut counts: BTreeMap<&'static str, usize> =
        ["usable", "cooling", "exhausted", "invalid", "suspended"]
            .into_iter()
            .map(|s| (s, 0))
            .collect();
    // Vertex credentials count as keys: in Vertex mode they are the only ones.
    for slot in &state.credentials() {
        *counts.entry(key_status(slot).0).or_default() += 1;
    }
    counts
}

/// Calls since today's reset, over every model.
pub fn calls_today(state: &AppState) -> u64 {
    state.stats.models_today().values().map(|c| c.calls).sum()
}

/// What anyone may see (the public status card): no keys, logs or settings.
pub fn status_card(state: &AppState) -> Value {
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": state.started.elapsed().as_secs(),
        "keys": key_counts(state),
        "key_total": state.keys.len(),
        "calls_today": calls_today(state),
    })
}

fn key_view(state: &AppState, slot: &crate::keys::KeySlot, snap: &Settings) -> Value {
    let now = tokio::time::Instant::now();
    let cooldowns: Vec<Value> = slot
        .cooldowns(now)
        .into_iter()
        .map(|c| json!({"model": c.model, "remaining_s": c.until.saturating_duration_since(now).as_secs(), "until_daily_reset": c.daily}))
        .collect();
    let today = state.stats.key_today(slot.id);
    let from_env = state.key_vars.iter().any(|(k, _)| k == slot.secret())
        || !matches!(slot.kind(), crate::keys::Kind::ApiKey);
    let (status, until) = key_status(slot);
    let last_error = slot.last_error();
    json!({
        "id": slot.id.to_string(),
        "key": slot.masked(),
        "kind": slot.kind().as_str(),
        "state": slot.state().as_str(),
        "verified": slot.verified(),
        "cooldowns": cooldowns,
        "calls_today": today.total.calls,
        "successes_today": today.total.successes,
        "failures_today": today.total.failures,
        "tokens_today": today.total.tokens(),
        "models_today": today.models.iter().map(|(m, c)| (m.clone(), c.calls)).collect::<BTreeMap<_, _>>(),
        "daily_limit": snap.api_key_daily_limit,
        "in_flight": slot.in_flight(),
        "source": if from_env { "environment" } else { "dashboard" },
        "status": status,
        "until": until,
        "last_error": last_error.map(|(kind, _)| kind),
        "last_error_at": last_error.map(|(_, at)| at),
    })
}

/// HAJIMI's `/api/dashboard-data`, with HAJIMI's field names, plus what the new dashboard
/// reads.
pub fn dashboard_data(state: &AppState) -> Value {
    let snap = &state.live.current();
    let summary = state.stats.summary();
    let models = state.models.current();
    let available = crate::models::visible_ids(snap, models.as_deref().map(Vec::as_slice));
    let slots = state.credentials();
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
            json!({"api_key": slot.masked(), "kind": slot.kind().as_str(), "key_id": slot.id.to_string(), "calls_24h": calls, "total_tokens": today.total.tokens(),
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
    json!({
        "key_count": key_count,
        "model_count": available.len(),
        "available_models": available,
        "retry_count": snap.max_retry_num,
        "credentials_count": state.vertex.accounts().len(),
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
        "keys": slots.iter().map(|s| key_view(state, s, snap)).collect::<Vec<_>>(),
        "models_usage": models_usage,
        "dialects_today": state.stats.dialects_today(),
        "tokens_24h": {"prompt": summary.day.prompt_tokens, "completion": summary.day.completion_tokens,
                        "thoughts": summary.day.thought_tokens, "cached": summary.day.cached_tokens},
        "storage": {"enabled": state.store.is_some(), "path": state.store.as_ref().map(|s| s.path().display().to_string())},
        "stats_reset_timezone": snap.stats_reset_timezone,
        "uptime_s": state.started.elapsed().as_secs(),
    })
}

/// Every key (masked) with its state, cooldowns and today's usage.
pub fn keys(state: &AppState) -> Value {
    let snap = state.live.current();
    let list: Vec<Value> = state
        .credentials()
        .iter()
        .map(|s| key_view(state, s, &snap))
        .collect();
    json!({ "keys": list })
}

pub fn logs(state: &AppState) -> Value {
    json!({ "logs": state.stats.logs() })
}

pub fn usage(state: &AppState) -> Value {
    let summary = state.stats.summary();
    json!({
        "minute": summary.minute, "hour": summary.hour, "day": summary.day,
        "series": summary.series.iter().map(|(m, c)| json!({"start": m, "counters": c})).collect::<Vec<_>>(),
        "models_today": state.stats.models_today(),
        "dialects_today": state.stats.dialects_today(),
        "day_start": state.stats.day_start(),
    })
}

/// The overview page's figures: calls and tokens of the last minute, hour and 24 h, the
/// success rate, latency percentiles, 24 hourly points, and today's calls per model and key.
pub fn overview(state: &AppState) -> Value {
    let snap = state.live.current();
    let summary = state.stats.summary();
    let rate = |c: &crate::store::Counters| {
        (c.calls > 0).then(|| ((c.successes as f64 / c.calls as f64) * 1000.0).round() / 10.0)
    };
    let latency = state.stats.latency_percentiles(3600);
    let hourly = state.stats.hourly();
    let per_model: Vec<Value> = {
        let mut v: Vec<_> = state.stats.models_today().into_iter().collect();
        v.sort_by_key(|e| std::cmp::Reverse(e.1.calls));
        v.into_iter()
            .take(20)
            .map(|(m, c)| json!({"name": m, "calls": c.calls, "tokens": c.tokens(), "failures": c.failures}))
            .collect()
    };
    let per_key: Vec<Value> = {
        let mut v: Vec<_> = state
            .credentials()
            .iter()
            .map(|s| (s.masked(), state.stats.key_today(s.id).total))
            .collect();
        v.sort_by_key(|e| std::cmp::Reverse(e.1.calls));
        v.into_iter()
            .take(20)
            .map(|(k, c)| json!({"name": k, "calls": c.calls, "tokens": c.tokens(), "failures": c.failures}))
            .collect()
    };
    let by_hour = state.stats.hourly_calls();
    let top = |mut series: Vec<(String, Vec<u64>)>| -> Vec<Value> {
        series.sort_by_key(|(_, v)| std::cmp::Reverse(v.iter().sum::<u64>()));
        series
            .into_iter()
            .take(6)
            .map(|(name, values)| json!({"name": name, "values": values}))
            .collect()
    };
    let model_series = top(by_hour.models.into_iter().collect());
    let slots = state.credentials();
    let key_series = top(by_hour
        .keys
        .into_iter()
        .filter_map(|(id, v)| slots.iter().find(|s| s.id == id).map(|s| (s.masked(), v)))
        .collect());
    let per_dialect: Vec<Value> = state
        .stats
        .dialects_today()
        .into_iter()
        .map(|(name, d)| json!({"name": name, "requests": d.requests, "failures": d.failures, "tokens": d.tokens}))
        .collect();
    json!({
        "model_series": model_series,
        "key_series": key_series,
        "minute": {"calls": summary.minute.calls, "tokens": summary.minute.tokens()},
        "hour": {"calls": summary.hour.calls, "tokens": summary.hour.tokens()},
        "day": {"calls": summary.day.calls, "tokens": summary.day.tokens(), "failures": summary.day.failures},
        "success_rate": rate(&summary.day),
        "p50_ms": latency.map(|l| l.0),
        "p95_ms": latency.map(|l| l.1),
        "hours": by_hour.hours,
        "hourly_calls": hourly.iter().map(|(_, c)| c.calls).collect::<Vec<_>>(),
        "hourly_tokens": hourly.iter().map(|(_, c)| c.tokens()).collect::<Vec<_>>(),
        "per_model": per_model,
        "per_key": per_key,
        "per_dialect": per_dialect,
        "keys": key_counts(state),
        "calls_today": calls_today(state),
        "reset_zone": snap.stats_reset_timezone,
        "day_start": state.stats.day_start(),
    })
}
