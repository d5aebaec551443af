use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::config::{CliOverrides, Config};

fn load(env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env = env
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
    Config::from_sources(Vec::new(), env, &CliOverrides::default())
}

fn settings() -> Settings {
    load(&[])
        .map(|c| c.settings)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn set(s: &mut Settings, key: &str, v: Value) -> Result<(), String> {
    find(key).ok_or("unknown")?.set(s, &v)
}

fn service_account(i: usize) -> String {
    json!({
        "type": "service_account",
        "project_id": format!("project-{i}"),
        "private_key_id": "kid",
        "private_key": crate::vertex::testkey::pem(i),
        "client_email": format!("sa{i}@project-{i}.iam.gserviceaccount.com"),
    })
    .to_string()
}

/// The dashboard keys HAJIMI's page and ours use (`/api/update-config`); none may go missing.
const DASHBOARD_KEYS: [&str; 33] = [
    "max_requests_per_minute",
    "max_requests_per_day_per_ip",
    "fake_streaming",
    "fake_streaming_interval",
    "nonstream_keepalive_enabled",
    "nonstream_keepalive_interval",
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
    "api_key_daily_limit",
    "enable_thinking",
    "cache_expiry_time",
    "max_cache_entries",
    "calculate_cache_entries",
    "precise_cache",
    "public_mode",
    "inband_errors",
    "race_cancel_losers",
    "key_max_concurrency",
    "extra_models",
    "blocked_models",
    "whitelist_models",
    "invalid_api_keys",
];

#[test]
fn the_dashboard_keys_are_hajimis_and_ours_unchanged() {
    let keys: HashSet<&str> = editable().filter_map(|e| e.key).collect();
    assert_eq!(keys, DASHBOARD_KEYS.into_iter().collect::<HashSet<_>>());
}

#[test]
fn names_and_keys_are_unique_and_every_setting_is_described() {
    let mut envs = HashSet::new();
    let mut keys = HashSet::new();
    for e in TABLE {
        assert!(envs.insert(e.env), "{} twice", e.env);
        if let Some(k) = e.key {
            assert!(keys.insert(k), "{k} twice");
        }
        assert!(
            !e.help_en.is_empty() && !e.help_zh.is_empty(),
            "{}: help in both languages",
            e.env
        );
        assert!(find_env(e.env).is_some_and(|f| f.env == e.env));
    }
    for g in Group::ALL {
        assert!(TABLE.iter().any(|e| e.group == g), "{g:?} is empty");
    }
    assert!(find_env("GEMINI_API_KEYS_42").is_some_and(|e| e.env == "GEMINI_API_KEYS_1"));
    assert!(find_env("https_proxy").is_some_and(|e| e.env == "HTTPS_PROXY"));
}

/// The bounds keep every integer within its field's type: each bound reads back unchanged.
#[test]
fn every_integer_bound_fits_its_field() {
    let mut s = settings();
    for e in TABLE {
        if let Kind::Int {
            min, max, field, ..
        } = &e.kind
        {
            for bound in [*min, *max] {
                (field.set)(&mut s, bound);
                assert_eq!((field.get)(&s), bound, "{}", e.env);
            }
        }
    }
}

#[test]
fn values_are_validated_like_hajimi() {
    let mut s = settings();
    assert!(set(&mut s, "max_retry_num", json!("7")).is_ok());
    assert_eq!(s.max_retry_num, 7);
    assert!(
        set(&mut s, "max_retry_num", json!(true)).is_ok(),
        "int(true) = 1, as Python"
    );
    assert_eq!(s.max_retry_num, 1);
    assert!(set(&mut s, "max_retry_num", json!(0)).is_err());
    assert!(set(&mut s, "max_retry_num", json!("lots")).is_err());
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
    assert!(set(&mut s, "fake_streaming", json!("ture")).is_err());
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
    for e in editable() {
        let v = e.persisted(&s);
        assert!(e.set(&mut s, &v).is_ok(), "{} with {v}", e.env);
    }
}

#[test]
fn settings_only_the_environment_sets_are_refused_by_the_dashboard() {
    let mut s = settings();
    for name in ["PORT", "STATS_RESET_TIMEZONE", "GEMINI_API_KEYS"] {
        let e = find_env(name).unwrap_or_else(|| panic!("{name}"));
        assert!(e.set(&mut s, &json!(1)).is_err(), "{name}");
    }
}

/// The same bounds from the environment (clamped, with a warning) and the dashboard (refused):
/// for every number the dashboard edits, one step past each bound is clamped to the bound from
/// the environment and refused from the dashboard, and the bound itself is accepted by both.
#[test]
fn the_environment_and_the_dashboard_share_every_bound() {
    let number = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    for e in editable() {
        let (min, max, step, duration) = match &e.kind {
            Kind::Int { min, max, .. } => (*min as f64, *max as f64, 1.0, false),
            Kind::Duration {
                min, max, whole, ..
            } => (
                min.as_secs_f64(),
                max.as_secs_f64(),
                if *whole { 1.0 } else { 0.001 },
                true,
            ),
            _ => continue,
        };
        let text = |f: f64| {
            if step == 1.0 {
                format!("{}", f as i64)
            } else {
                format!("{f:.3}")
            }
        };
        let key = e.key.unwrap_or_default();
        for (bound, outside) in [(min, min - step), (max, max + step)] {
            if duration && outside < 0.0 {
                continue; // a negative duration does not parse at all
            }
            let c = load(&[(e.env, &text(outside))]).unwrap_or_else(|err| panic!("{err}"));
            assert!(
                c.warnings.iter().any(|w| w.contains(e.env)),
                "{}={} warns",
                e.env,
                text(outside)
            );
            let from_env = number(&e.get(&c.settings));
            assert!(
                (from_env - bound).abs() < 1e-6,
                "{}={} is clamped to {bound}, got {from_env}",
                e.env,
                text(outside)
            );
            let mut s = settings();
            assert!(
                e.set(&mut s, &json!(text(outside))).is_err(),
                "{key}={} refused",
                text(outside)
            );
            assert!(
                e.set(&mut s, &json!(text(bound))).is_ok(),
                "{key} at its bound"
            );
            assert!((number(&e.get(&s)) - bound).abs() < 1e-6, "{key}");
        }
    }
}

/// The inconsistency issue 9 names: the cache lifetime was capped at 365 days from the
/// environment and unbounded from the dashboard.
#[test]
fn the_cache_lifetime_is_capped_at_365_days_everywhere() {
    let year = 365 * 86_400;
    let mut s = settings();
    assert!(set(&mut s, "cache_expiry_time", json!(year + 1)).is_err());
    assert!(set(&mut s, "cache_expiry_time", json!(year)).is_ok());
    assert_eq!(s.cache_expiry_time, Duration::from_secs(year));
    let c = load(&[("CACHE_EXPIRY_TIME", "400d")]).map(|c| c.settings.cache_expiry_time);
    assert_eq!(c.ok(), Some(Duration::from_secs(year)));
    // The cache sizes: at most u32::MAX from both (the environment allowed up to i64::MAX).
    let c = load(&[("MAX_CACHE_ENTRIES", "99999999999")]).map(|c| c.settings.max_cache_entries);
    assert_eq!(c.ok(), Some(u32::MAX as usize));
    assert!(set(&mut s, "max_cache_entries", json!(99_999_999_999_u64)).is_err());
}

#[test]
fn the_dashboard_sees_secrets_only_as_set_or_not() {
    let mut s = settings();
    let key = find("vertex_express_api_key").unwrap_or_else(|| panic!("key"));
    assert_eq!(key.get(&s), json!(false));
    assert!(key.set(&mut s, &json!("AQ.one, AQ.two")).is_ok());
    assert_eq!(key.get(&s), json!(true));
    assert_eq!(key.persisted(&s), json!(["AQ.one", "AQ.two"]));
    assert_eq!(key.shown(&s), "(set)");
    let invalid = find("invalid_api_keys").unwrap_or_else(|| panic!("invalid"));
    assert!(invalid.set(&mut s, &json!(["a", "b", "c"])).is_ok());
    assert_eq!(invalid.get(&s), json!(3), "a count, as before");
    assert_eq!(invalid.persisted(&s), json!(["a", "b", "c"]));
}

#[test]
fn the_listing_carries_what_the_dashboard_draws() {
    let s = settings();
    let e = find("cache_expiry_time").unwrap_or_else(|| panic!("cache"));
    let l = e.listing(&s, Source::Default);
    assert_eq!(l["key"], "cache_expiry_time");
    assert_eq!(l["env"], "CACHE_EXPIRY_TIME");
    assert_eq!(l["value"], 21_600);
    assert_eq!(l["source"], "default");
    assert_eq!(l["group"], "cache");
    assert_eq!(l["type"], "seconds");
    assert_eq!(
        (l["min"].clone(), l["max"].clone()),
        (json!(0), json!(365 * 86_400))
    );
    assert_eq!(l["restart"], false);
    assert!(l["help"]["zh"].as_str().is_some_and(|h| !h.is_empty()));
    let secret = find("google_credentials_json").map(|e| e.listing(&s, Source::Env));
    assert_eq!(
        secret.map(|l| (l["secret"].clone(), l["value"].clone())),
        Some((json!(true), json!(false)))
    );
}

#[test]
fn the_stats_time_zone_is_held_parsed() {
    let c = load(&[("STATS_RESET_TIMEZONE", "Asia/Shanghai")]);
    let zone = c.map(|c| c.settings.stats_reset_timezone);
    assert_eq!(zone.as_ref().map(|z| z.name()).ok(), Some("Asia/Shanghai"));
    assert_eq!(
        zone.ok().map(|z| z.tz().clone()),
        jiff::tz::TimeZone::get("Asia/Shanghai").ok()
    );
    let err = load(&[("STATS_RESET_TIMEZONE", "Mars/Base")])
        .err()
        .map(|e| e.to_string());
    assert!(err.is_some_and(|e| e.contains("STATS_RESET_TIMEZONE") && e.contains("IANA")));
}

#[test]
fn vertex_settings_have_their_defaults_and_checks() {
    let s = settings();
    assert_eq!(s.vertex_location, "global");
    assert_eq!(s.vertex_base_url, "https://aiplatform.googleapis.com");
    let c = load(&[("VERTEX_LOCATION", "us-central1")]).map(|c| c.settings.vertex_base_url);
    assert_eq!(
        c.ok().as_deref(),
        Some("https://us-central1-aiplatform.googleapis.com")
    );
    let c = load(&[
        ("VERTEX_LOCATION", "europe-west4"),
        ("VERTEX_BASE_URL", "http://127.0.0.1:9/v1/"),
    ])
    .map(|c| c.settings.vertex_base_url);
    assert_eq!(c.ok().as_deref(), Some("http://127.0.0.1:9"));
    for (name, value) in [
        ("VERTEX_LOCATION", "Not A Region"),
        ("VERTEX_BASE_URL", "ftp://x"),
        ("MODEL_ALIASES", "claude-sonnet"),
    ] {
        let err = load(&[(name, value)]).err().map(|e| e.to_string());
        assert!(
            err.as_ref().is_some_and(|e| e.contains(name)),
            "{name}: {err:?}"
        );
    }
    let c = load(&[("MODEL_ALIASES", "claude-*=gemini-2.5-flash")]);
    let aliases = c.map(|c| c.settings.model_aliases);
    assert_eq!(
        aliases.as_ref().map(|a| a.resolve("claude-haiku-4-5")).ok(),
        Some("gemini-2.5-flash")
    );
}

/// The service-account check is the same from the environment (exit 2) and the dashboard
/// (422), accepts HAJIMI's several-objects form, and never repeats the secret.
#[test]
fn credentials_are_checked_the_same_way_from_both_sides() {
    let good = format!("{},{}", service_account(0), service_account(1));
    let c = load(&[("GOOGLE_CREDENTIALS_JSON", &good)]);
    assert!(c.is_ok_and(|c| c.settings.google_credentials_json.is_some()));
    let c = load(&[("GOOGLE_CREDENTIALS_JSON", "''")]);
    assert!(c.is_ok_and(|c| c.settings.google_credentials_json.is_none()));
    let bad = r#"{"type": "service_account", "private_key": "SECRET-MATERIAL"}"#;
    let err = load(&[("GOOGLE_CREDENTIALS_JSON", bad)])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("GOOGLE_CREDENTIALS_JSON"), "{err}");
    assert!(!err.contains("SECRET-MATERIAL"), "{err}");
    let mut s = settings();
    assert!(set(&mut s, "google_credentials_json", json!(bad)).is_err());
    assert!(set(&mut s, "google_credentials_json", json!(good)).is_ok());
    assert_eq!(
        find("google_credentials_json").map(|e| e.get(&s)),
        Some(json!(true))
    );
}
