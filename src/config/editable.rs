//! The settings the dashboard may change (HAJIMI's, and a few of ours): each with its
//! dashboard key, the environment variable it overrides, how to read it, and how to set it
//! from a JSON value with HAJIMI's validation (integers accept numeric strings and booleans,
//! as Python's `int()` did; switches must be JSON booleans). The same table applies saved
//! values at start-up, so what the API accepts is exactly what the store restores.

use std::time::Duration;

use serde_json::{Value, json};

use crate::config::parse::split_list;
use crate::config::{INTERVAL_RANGE, Settings};
use crate::mask::Secret;
use crate::translate::history::RANDOM_STRING_LENGTH_MAX;

/// One dashboard-editable setting.
pub struct Editable {
    /// HAJIMI's snake_case key in `/api/update-config`.
    pub key: &'static str,
    /// The environment variable it overrides.
    pub env: &'static str,
    pub get: fn(&Settings) -> Value,
    pub set: fn(&mut Settings, &Value) -> Result<(), String>,
    /// Secret values are shown as "is it set" only.
    pub secret: bool,
}

fn int(v: &Value) -> Result<i64, String> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .ok_or_else(|| format!("{n} is not an integer")),
        Value::Bool(b) => Ok(i64::from(*b)),
        Value::String(s) => {
            crate::config::parse::parse_int(s).ok_or_else(|| format!("{s:?} is not an integer"))
        }
        other => Err(format!("{other} is not an integer")),
    }
}

fn positive(v: &Value) -> Result<u32, String> {
    let n = int(v)?;
    if n > 0 {
        u32::try_from(n).map_err(|_| format!("{n} is too large"))
    } else {
        Err(format!("{n} must be greater than 0"))
    }
}

fn non_negative(v: &Value) -> Result<u32, String> {
    let n = int(v)?;
    if n >= 0 {
        u32::try_from(n).map_err(|_| format!("{n} is too large"))
    } else {
        Err(format!("{n} must be 0 or more"))
    }
}

fn float(v: &Value) -> Result<f64, String> {
    let f = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    };
    f.filter(|f| f.is_finite())
        .ok_or_else(|| format!("{v} is not a number"))
}

/// A keep-alive interval in seconds, within [`INTERVAL_RANGE`] as from the environment.
fn interval(v: &Value) -> Result<Duration, String> {
    let f = float(v)?;
    let (min, max) = INTERVAL_RANGE;
    if (min.as_secs_f64()..=max.as_secs_f64()).contains(&f) {
        Ok(Duration::from_secs_f64(f))
    } else {
        Err(format!(
            "{f} must be between {} and {} seconds",
            min.as_secs_f64(),
            max.as_secs_f64()
        ))
    }
}

fn boolean(v: &Value) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        // Saved values and env-style strings are accepted too.
        Value::String(s) => crate::config::parse::parse_bool(s)
            .ok_or_else(|| format!("{s:?} is not a boolean (true/false, 1/0, yes/no, on/off)")),
        other => Err(format!("{other} is not a boolean")),
    }
}

fn text(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => Err(format!("{other} is not a string")),
    }
}

fn list(v: &Value) -> Result<Vec<String>, String> {
    match v {
        Value::String(s) => Ok(split_list(s)),
        Value::Array(items) => Ok(items
            .iter()
            .filter_map(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()),
        other => Err(format!("{other} is not a list")),
    }
}

fn secs_value(d: Duration) -> Value {
    json!(d.as_secs_f64())
}

macro_rules! entry {
    ($key:literal, $env:literal, |$s:ident| $get:expr, |$t:ident, $v:ident| $set:expr) => {
        Editable {
            key: $key,
            env: $env,
            get: |$s| $get,
            set: |$t, $v| {
                $set;
                Ok(())
            },
            secret: false,
        }
    };
}

/// Every editable setting. `gemini_api_keys` is handled by the key API (it adds keys).
pub const EDITABLE: &[Editable] = &[
    entry!(
        "max_requests_per_minute",
        "MAX_REQUESTS_PER_MINUTE",
        |s| json!(s.max_requests_per_minute),
        |s, v| s.max_requests_per_minute = non_negative(v)?
    ),
    entry!(
        "max_requests_per_day_per_ip",
        "MAX_REQUESTS_PER_DAY_PER_IP",
        |s| json!(s.max_requests_per_day_per_ip),
        |s, v| s.max_requests_per_day_per_ip = non_negative(v)?
    ),
    entry!(
        "fake_streaming",
        "FAKE_STREAMING",
        |s| json!(s.fake_streaming),
        |s, v| s.fake_streaming = boolean(v)?
    ),
    entry!(
        "fake_streaming_interval",
        "FAKE_STREAMING_INTERVAL",
        |s| secs_value(s.fake_streaming_interval),
        |s, v| s.fake_streaming_interval = interval(v)?
    ),
    entry!(
        "nonstream_keepalive_enabled",
        "NONSTREAM_KEEPALIVE_ENABLED",
        |s| json!(s.nonstream_keepalive_enabled),
        |s, v| s.nonstream_keepalive_enabled = boolean(v)?
    ),
    entry!(
        "nonstream_keepalive_interval",
        "NONSTREAM_KEEPALIVE_INTERVAL",
        |s| secs_value(s.nonstream_keepalive_interval),
        |s, v| s.nonstream_keepalive_interval = interval(v)?
    ),
    entry!(
        "random_string",
        "RANDOM_STRING",
        |s| json!(s.random_string),
        |s, v| s.random_string = boolean(v)?
    ),
    entry!(
        "random_string_length",
        "RANDOM_STRING_LENGTH",
        |s| json!(s.random_string_length),
        |s, v| {
            let n = positive(v)? as usize;
            if n > RANDOM_STRING_LENGTH_MAX {
                return Err(format!("{n} is more than {RANDOM_STRING_LENGTH_MAX}"));
            }
            s.random_string_length = n;
        }
    ),
    entry!(
        "search_mode",
        "SEARCH_MODE",
        |s| json!(s.search_mode),
        |s, v| s.search_mode = boolean(v)?
    ),
    entry!(
        "search_prompt",
        "SEARCH_PROMPT",
        |s| json!(s.search_prompt),
        |s, v| s.search_prompt = text(v)?
    ),
    entry!(
        "concurrent_requests",
        "CONCURRENT_REQUESTS",
        |s| json!(s.concurrent_requests),
        |s, v| s.concurrent_requests = positive(v)?
    ),
    entry!(
        "increase_concurrent_on_failure",
        "INCREASE_CONCURRENT_ON_FAILURE",
        |s| json!(s.increase_concurrent_on_failure),
        |s, v| s.increase_concurrent_on_failure = non_negative(v)?
    ),
    entry!(
        "max_concurrent_requests",
        "MAX_CONCURRENT_REQUESTS",
        |s| json!(s.max_concurrent_requests),
        |s, v| s.max_concurrent_requests = positive(v)?
    ),
    entry!(
        "max_retry_num",
        "MAX_RETRY_NUM",
        |s| json!(s.max_retry_num),
        |s, v| s.max_retry_num = positive(v)?
    ),
    // HAJIMI allowed 0, which refused every request; the minimum is 1.
    entry!(
        "max_empty_responses",
        "MAX_EMPTY_RESPONSES",
        |s| json!(s.max_empty_responses),
        |s, v| s.max_empty_responses = positive(v)?
    ),
    entry!(
        "enable_vertex",
        "ENABLE_VERTEX",
        |s| json!(s.enable_vertex),
        |s, v| s.enable_vertex = boolean(v)?
    ),
    entry!(
        "enable_vertex_express",
        "ENABLE_VERTEX_EXPRESS",
        |s| json!(s.enable_vertex_express),
        |s, v| s.enable_vertex_express = boolean(v)?
    ),
    Editable {
        key: "vertex_express_api_key",
        env: "VERTEX_EXPRESS_API_KEY",
        get: |s| json!(!s.vertex_express_api_key.is_empty()),
        set: |s, v| {
            s.vertex_express_api_key = list(v)?.into_iter().map(Secret::new).collect();
            Ok(())
        },
        secret: true,
    },
    Editable {
        key: "google_credentials_json",
        env: "GOOGLE_CREDENTIALS_JSON",
        get: |s| json!(s.google_credentials_json.is_some()),
        set: |s, v| {
            let t = text(v)?;
            if !t.trim().is_empty() {
                serde_json::from_str::<Value>(&t)
                    .map_err(|e| format!("not valid service-account JSON: {e}"))?;
            }
            s.google_credentials_json = (!t.trim().is_empty()).then(|| Secret::new(t));
            Ok(())
        },
        secret: true,
    },
    entry!(
        "api_key_daily_limit",
        "API_KEY_DAILY_LIMIT",
        |s| json!(s.api_key_daily_limit),
        |s, v| s.api_key_daily_limit = non_negative(v)?
    ),
    entry!(
        "enable_thinking",
        "ENABLE_THINKING",
        |s| json!(s.enable_thinking),
        |s, v| s.enable_thinking = boolean(v)?
    ),
    entry!(
        "cache_expiry_time",
        "CACHE_EXPIRY_TIME",
        |s| json!(s.cache_expiry_time.as_secs()),
        |s, v| s.cache_expiry_time = Duration::from_secs(u64::from(non_negative(v)?))
    ),
    entry!(
        "max_cache_entries",
        "MAX_CACHE_ENTRIES",
        |s| json!(s.max_cache_entries),
        |s, v| s.max_cache_entries = non_negative(v)? as usize
    ),
    entry!(
        "calculate_cache_entries",
        "CALCULATE_CACHE_ENTRIES",
        |s| json!(s.calculate_cache_entries),
        |s, v| s.calculate_cache_entries = non_negative(v)? as usize
    ),
    entry!(
        "precise_cache",
        "PRECISE_CACHE",
        |s| json!(s.precise_cache),
        |s, v| s.precise_cache = boolean(v)?
    ),
    entry!(
        "public_mode",
        "PUBLIC_MODE",
        |s| json!(s.public_mode),
        |s, v| s.public_mode = boolean(v)?
    ),
    entry!(
        "inband_errors",
        "INBAND_ERRORS",
        |s| json!(s.inband_errors),
        |s, v| s.inband_errors = boolean(v)?
    ),
    entry!(
        "race_cancel_losers",
        "RACE_CANCEL_LOSERS",
        |s| json!(s.race_cancel_losers),
        |s, v| s.race_cancel_losers = boolean(v)?
    ),
    entry!(
        "key_max_concurrency",
        "KEY_MAX_CONCURRENCY",
        |s| json!(s.key_max_concurrency),
        |s, v| s.key_max_concurrency = non_negative(v)?
    ),
    entry!(
        "extra_models",
        "EXTRA_MODELS",
        |s| json!(s.extra_models),
        |s, v| s.extra_models = crate::config::model_names(list(v)?)
    ),
    entry!(
        "blocked_models",
        "BLOCKED_MODELS",
        |s| json!(s.blocked_models),
        |s, v| s.blocked_models = crate::config::model_names(list(v)?)
    ),
    entry!(
        "whitelist_models",
        "WHITELIST_MODELS",
        |s| json!(s.whitelist_models),
        |s, v| s.whitelist_models = crate::config::model_names(list(v)?)
    ),
    entry!(
        "invalid_api_keys",
        "INVALID_API_KEYS",
        |s| json!(s.invalid_api_keys.len()),
        |s, v| s.invalid_api_keys = list(v)?
    ),
];

pub fn find(key: &str) -> Option<&'static Editable> {
    EDITABLE.iter().find(|e| e.key == key)
}

/// The persisted form of a setting's current value (secrets included, for the store only).
pub fn persisted(key: &str, settings: &Settings) -> Option<Value> {
    match key {
        "vertex_express_api_key" => Some(json!(
            settings
                .vertex_express_api_key
                .iter()
                .map(|s| s.expose().to_owned())
                .collect::<Vec<_>>()
        )),
        "google_credentials_json" => Some(json!(
            settings
                .google_credentials_json
                .as_ref()
                .map(|s| s.expose().to_owned())
                .unwrap_or_default()
        )),
        "invalid_api_keys" => Some(json!(settings.invalid_api_keys)),
        _ => find(key).map(|e| (e.get)(settings)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        crate::config::Config::from_sources(
            Vec::new(),
            Vec::new(),
            &crate::config::CliOverrides::default(),
        )
        .map(|c| c.settings)
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn values_are_validated_like_hajimi() {
        let mut s = settings();
        let set = |s: &mut Settings, k: &str, v: Value| {
            (find(k)
                .map(|e| e.set)
                .unwrap_or(|_, _| Err("unknown".into())))(s, &v)
        };
        assert!(set(&mut s, "max_retry_num", json!("7")).is_ok());
        assert_eq!(s.max_retry_num, 7);
        assert!(
            set(&mut s, "max_retry_num", json!(true)).is_ok(),
            "int(true) = 1, as Python"
        );
        assert_eq!(s.max_retry_num, 1);
        assert!(set(&mut s, "max_retry_num", json!(0)).is_err());
        assert!(set(&mut s, "increase_concurrent_on_failure", json!(0)).is_ok());
        assert!(set(&mut s, "fake_streaming_interval", json!(-1)).is_err());
        // A zero period would make every keep-alive timer panic.
        assert!(set(&mut s, "fake_streaming_interval", json!(1e-10)).is_err());
        assert!(set(&mut s, "nonstream_keepalive_interval", json!("0.001")).is_err());
        assert!(set(&mut s, "random_string_length", json!(1_000_000)).is_err());
        assert!(set(&mut s, "random_string_length", json!(8)).is_ok());
        assert!(set(&mut s, "blocked_models", json!("models/gemini-2.5-pro, x")).is_ok());
        assert_eq!(
            s.blocked_models,
            vec!["gemini-2.5-pro", "x"],
            "compared without the prefix"
        );
        assert!(set(&mut s, "fake_streaming_interval", json!("0.5")).is_ok());
        assert_eq!(s.fake_streaming_interval, Duration::from_millis(500));
        assert!(set(&mut s, "fake_streaming", json!(false)).is_ok());
        assert!(!s.fake_streaming);
        // 0 is "no limit" for the request limits (decisions §6).
        assert!(set(&mut s, "max_requests_per_minute", json!(0)).is_ok());
        assert_eq!(s.max_requests_per_minute, 0);
        assert!(set(&mut s, "max_requests_per_day_per_ip", json!("0")).is_ok());
        assert_eq!(s.max_requests_per_day_per_ip, 0);
        assert!(set(&mut s, "max_requests_per_minute", json!(-1)).is_err());
        assert!(set(&mut s, "search_prompt", json!(3)).is_err());
        assert!(set(&mut s, "google_credentials_json", json!("{not json")).is_err());
    }

    #[test]
    fn every_value_read_can_be_written_back() {
        let mut s = settings();
        for e in EDITABLE {
            let v = persisted(e.key, &s).unwrap_or(Value::Null);
            assert!((e.set)(&mut s, &v).is_ok(), "{} with {v}", e.key);
        }
    }

    #[test]
    fn hajimis_dashboard_keys_are_all_here() {
        for k in [
            "max_requests_per_minute",
            "max_requests_per_day_per_ip",
            "fake_streaming",
            "fake_streaming_interval",
            "random_string",
            "random_string_length",
            "search_mode",
            "search_prompt",
            "concurrent_requests",
            "increase_concurrent_on_failure",
            "max_concurrent_requests",
            "max_retry_num",
            "max_empty_responses",
            "enable_vertex",
            "enable_vertex_express",
            "vertex_express_api_key",
            "google_credentials_json",
        ] {
            assert!(find(k).is_some(), "{k}");
        }
    }
}
