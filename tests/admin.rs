//! The dashboard JSON API: HAJIMI's endpoints and fields, guarded by WEB_PASSWORD (Bearer,
//! HAJIMI's body password, or a login cookie with CSRF), key management, and `/metrics`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use mock_gemini::{Reply, Rule};
use serde_json::{Value, json};

const WEB: &str = "web-secret";

async fn admin() -> Harness {
    start(&[("WEB_PASSWORD", WEB)]).await
}

async fn get_admin(h: &Harness, path: &str) -> (u16, Value) {
    json(
        h.http
            .get(h.url(path))
            .bearer_auth(WEB)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn post_admin(h: &Harness, path: &str, body: Value) -> (u16, Value) {
    json(
        h.http
            .post(h.url(path))
            .bearer_auth(WEB)
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

const HAJIMI_FIELDS: [&str; 43] = [
    "key_count",
    "model_count",
    "available_models",
    "retry_count",
    "credentials_count",
    "last_24h_calls",
    "hourly_calls",
    "minute_calls",
    "last_24h_tokens",
    "hourly_tokens",
    "minute_tokens",
    "calls_time_series",
    "tokens_time_series",
    "current_time",
    "logs",
    "api_key_stats",
    "max_requests_per_minute",
    "max_requests_per_day_per_ip",
    "local_version",
    "remote_version",
    "has_update",
    "fake_streaming",
    "fake_streaming_interval",
    "random_string",
    "random_string_length",
    "search_mode",
    "search_prompt",
    "cache_entries",
    "cache_expiry_time",
    "max_cache_entries",
    "active_count",
    "active_done",
    "active_pending",
    "concurrent_requests",
    "increase_concurrent_on_failure",
    "max_concurrent_requests",
    "enable_vertex",
    "enable_vertex_express",
    "vertex_express_api_key",
    "google_credentials_json",
    "max_retry_num",
    "max_empty_responses",
    "keys",
];

/// Must show (issue 5): an anonymous `GET /api/dashboard-data` is 401 and the same call with
/// `Authorization: Bearer <WEB_PASSWORD>` returns HAJIMI's fields.
#[tokio::test]
async fn dashboard_data_needs_the_web_password_and_has_hajimis_fields() {
    let h = admin().await;
    let (status, v) = json(
        h.http
            .get(h.url("/api/dashboard-data"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    assert!(v["detail"].is_string(), "HAJIMI's error shape: {v}");
    let (status, _) = json(
        h.http
            .get(h.url("/api/dashboard-data"))
            .bearer_auth(PASSWORD)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        status, 401,
        "the client password is not the dashboard password"
    );

    assert_eq!(h.chat(&hello(FLASH, false)).await.status(), 200);
    let (status, v) = get_admin(&h, "/api/dashboard-data").await;
    assert_eq!(status, 200);
    for f in HAJIMI_FIELDS {
        assert!(v.get(f).is_some(), "missing {f}");
    }
    assert_eq!(v["keys"].as_array().map(Vec::len), Some(3));
    assert_eq!(v["calls_time_series"].as_array().map(Vec::len), Some(31));
    assert!(v["last_24h_calls"].as_u64().unwrap() >= 1);
    assert!(
        v["api_key_stats"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["calls_24h"].as_u64() == Some(1))
    );
    assert!(
        v["logs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["model"] == FLASH && l["status_code"] == "200")
    );
    let text = v.to_string();
    for key in KEYS {
        assert!(!text.contains(key), "no full key in dashboard data");
    }
    assert!(v["keys"][0]["key"].as_str().unwrap().contains('…'));
}

#[tokio::test]
async fn hajimis_body_password_ladder() {
    let h = admin().await;
    let post = |body: Value| h.http.post(h.url("/api/reset-stats")).json(&body).send();
    let (s, v) = json(post(json!({})).await.unwrap()).await;
    assert_eq!(s, 400, "{v}");
    let (s, _) = json(post(json!({"password": 5})).await.unwrap()).await;
    assert_eq!(s, 422);
    let (s, _) = json(post(json!({"password": "nope"})).await.unwrap()).await;
    assert_eq!(s, 401);
    let (s, v) = json(post(json!({"password": WEB})).await.unwrap()).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("success")));
}

/// Must show (issue 5): a setting changed through `/api/update-config` applies to the very
/// next request (survival across restarts is in tests/persistence.rs).
#[tokio::test]
async fn update_config_validates_and_applies_to_the_next_request() {
    let h = admin().await;
    let (s, v) = post_admin(&h, "/api/update-config", json!({"value": 1})).await;
    assert_eq!(
        (
            s,
            v["detail"].as_str().map(|d| d.contains("缺少配置项键名"))
        ),
        (400, Some(true))
    );
    let (s, v) = post_admin(
        &h,
        "/api/update-config",
        json!({"key": "no_such_thing", "value": 1}),
    )
    .await;
    assert_eq!(s, 400);
    assert!(v["detail"].as_str().unwrap().contains("不支持的配置项"));
    let (s, v) = post_admin(
        &h,
        "/api/update-config",
        json!({"key": "max_retry_num", "value": "lots"}),
    )
    .await;
    assert_eq!(s, 422);
    assert!(v["detail"].as_str().unwrap().contains("参数类型错误"));

    let (s, v) = post_admin(
        &h,
        "/api/update-config",
        json!({"key": "random_string", "value": true}),
    )
    .await;
    assert_eq!(
        (s, v["message"].as_str()),
        (200, Some("配置项 random_string 已更新"))
    );
    let body = json!({"model": FLASH, "messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]});
    assert_eq!(h.chat(&body).await.status(), 200);
    assert_eq!(
        h.upstream_calls()[0].body["contents"]
            .as_array()
            .map(Vec::len),
        Some(5),
        "the random strings appear at once"
    );
    let (_, d) = get_admin(&h, "/api/dashboard-data").await;
    assert_eq!(d["random_string"], true);
    let (_, cfg) = get_admin(&h, "/api/config").await;
    let entry = cfg["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"] == "random_string")
        .unwrap()
        .clone();
    assert_eq!(entry["source"], "dashboard");
}

#[tokio::test]
async fn a_browser_login_sets_a_session_cookie_and_writes_need_csrf() {
    let h = admin().await;
    let r = h
        .http
        .post(h.url("/api/login"))
        .json(&json!({"password": WEB}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let set_cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let csrf = r.json::<Value>().await.unwrap()["csrf_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let get = |path: &str| h.http.get(h.url(path)).header("cookie", &cookie).send();
    assert_eq!(get("/api/dashboard-data").await.unwrap().status(), 200);
    let (_, session) = json(get("/api/session").await.unwrap()).await;
    assert_eq!(
        (
            session["authenticated"].as_bool(),
            session["csrf_token"].as_str()
        ),
        (Some(true), Some(csrf.as_str()))
    );
    let post = |path: &str| {
        h.http
            .post(h.url(path))
            .header("cookie", &cookie)
            .json(&json!({}))
    };
    assert_eq!(
        post("/api/reset-stats").send().await.unwrap().status(),
        403,
        "a cookie alone cannot write (CSRF)"
    );
    assert_eq!(
        post("/api/reset-stats")
            .header("x-csrf-token", "forged")
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        post("/api/reset-stats")
            .header("x-csrf-token", &csrf)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        post("/api/logout")
            .header("x-csrf-token", &csrf)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        get("/api/dashboard-data").await.unwrap().status(),
        401,
        "the session ended"
    );
}

/// decisions §2: failed logins slow a client down, they never lock the owner out — not even
/// when someone else forges the owner's address (`TRUSTED_PROXIES=*` believes the last
/// `X-Forwarded-For` entry). The delay itself is measured on a paused clock in
/// `routes::admin::session`'s tests.
#[tokio::test]
async fn ten_bad_logins_never_lock_out_the_right_password() {
    let h = start(&[("WEB_PASSWORD", WEB), ("TRUSTED_PROXIES", "*")]).await;
    let login = |password: &str| {
        h.http
            .post(h.url("/api/login"))
            .header("x-forwarded-for", "203.0.113.7")
            .json(&json!({"password": password}))
            .send()
    };
    for _ in 0..10 {
        assert_eq!(login("guess").await.unwrap().status(), 401);
    }
    let r = login(WEB).await.unwrap();
    assert_eq!(r.status(), 200, "the right password still logs in");
    assert!(r.headers().get("set-cookie").is_some());
    for _ in 0..10 {
        assert_eq!(login("guess").await.unwrap().status(), 401);
    }
    let r = h
        .http
        .get(h.url("/api/dashboard-data"))
        .header("x-forwarded-for", "203.0.113.7")
        .bearer_auth(WEB)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the right Bearer password still works");
}

#[tokio::test]
async fn keys_are_added_removed_reset_and_exported() {
    let h = start(&[("WEB_PASSWORD", WEB), ("GEMINI_API_KEYS", KEYS[0])]).await;
    let (s, v) = post_admin(
        &h,
        "/api/update-config",
        json!({"key": "gemini_api_keys", "value": format!("{}\n{}", KEYS[1], KEYS[2])}),
    )
    .await;
    assert_eq!((s, v["added"].as_u64()), (200, Some(2)));
    let (s, _) = post_admin(
        &h,
        "/api/update-config",
        json!({"key": "gemini_api_keys", "value": "   "}),
    )
    .await;
    assert_eq!(s, 400);
    let (_, keys) = get_admin(&h, "/api/keys").await;
    let list = keys["keys"].as_array().unwrap().clone();
    assert_eq!(list.len(), 3);
    assert_eq!(
        list.iter().filter(|k| k["source"] == "dashboard").count(),
        2
    );
    let (s, exported) = post_admin(&h, "/api/export-valid-api-keys", json!({})).await;
    assert_eq!(s, 200);
    let mut full: Vec<String> = exported["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    full.sort();
    assert_eq!(
        full,
        KEYS.to_vec(),
        "the export is the one place with full keys"
    );
    let id = list[2]["id"].as_str().unwrap().to_owned();
    let (s, v) = post_admin(&h, "/api/keys/remove", json!({"ids": [id]})).await;
    assert_eq!((s, v["removed"].as_u64()), (200, Some(1)));
    let (_, keys) = get_admin(&h, "/api/keys").await;
    assert_eq!(keys["keys"].as_array().unwrap().len(), 2);
    let (s, v) = post_admin(&h, "/api/keys/reset", json!({})).await;
    assert_eq!((s, v["reset"].as_u64()), (200, Some(2)));
}

#[tokio::test]
async fn the_key_test_finds_invalid_keys_and_clearing_removes_them() {
    let h = start(&[("WEB_PASSWORD", WEB), ("SKIP_CHECK_API_KEY", "true")]).await;
    h.mock.add_rule(
        Rule::new(Reply::preset("api_key_invalid"))
            .key(KEYS[0])
            .action("list"),
    );
    let (s, v) = post_admin(&h, "/api/test-api-keys", json!({})).await;
    assert_eq!(s, 200, "{v}");
    let progress = eventually("the key test to complete", || async {
        let progress = get_admin(&h, "/api/test-api-keys/progress").await.1;
        if progress["is_completed"] == true {
            Ok(progress)
        } else {
            Err(progress)
        }
    })
    .await;
    assert_eq!(
        (
            progress["valid"].as_u64(),
            progress["invalid"].as_u64(),
            progress["total"].as_u64()
        ),
        (Some(2), Some(1), Some(3))
    );
    let (_, keys) = get_admin(&h, "/api/keys").await;
    assert_eq!(
        keys["keys"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["state"] == "invalid")
            .count(),
        1
    );
    let (s, v) = post_admin(&h, "/api/clear-invalid-api-keys", json!({})).await;
    assert_eq!(s, 200);
    assert!(
        v["message"].as_str().unwrap().contains("已成功清除 1"),
        "{v}"
    );
    let (_, keys) = get_admin(&h, "/api/keys").await;
    assert_eq!(keys["keys"].as_array().unwrap().len(), 2);
    let (_, v) = post_admin(&h, "/api/clear-invalid-api-keys", json!({})).await;
    assert_eq!(v["message"], "没有失效的API密钥需要清除");
}

#[tokio::test]
async fn reset_stats_clears_the_counts() {
    let h = admin().await;
    assert_eq!(h.chat(&hello(FLASH, false)).await.status(), 200);
    let (_, before) = get_admin(&h, "/api/dashboard-data").await;
    assert!(before["last_24h_calls"].as_u64().unwrap() > 0);
    let (s, v) = post_admin(&h, "/api/reset-stats", json!({})).await;
    assert_eq!(
        (s, v["message"].as_str()),
        (200, Some("API调用统计数据已重置"))
    );
    let (_, after) = get_admin(&h, "/api/dashboard-data").await;
    assert_eq!(after["last_24h_calls"], 0);
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_the_promised_families() {
    let h = admin().await;
    assert_eq!(h.chat(&hello(FLASH, false)).await.status(), 200);
    let r = h.http.get(h.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = r.text().await.unwrap();
    for family in [
        "hajimi_requests_total",
        "hajimi_request_duration_seconds_bucket",
        "hajimi_upstream_attempts_total",
        "hajimi_upstream_duration_seconds_bucket",
        "hajimi_gateway_overhead_seconds_bucket",
        "hajimi_tokens_total",
        "hajimi_keys",
    ] {
        assert!(text.contains(family), "missing {family}:\n{text}");
    }
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "not a sample line: {line}");
    }
    assert!(!text.contains("AIza"));
    let h = start(&[("METRICS_PASSWORD", "scrape")]).await;
    assert_eq!(
        h.http.get(h.url("/metrics")).send().await.unwrap().status(),
        401
    );
    assert_eq!(
        h.http
            .get(h.url("/metrics"))
            .bearer_auth("scrape")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

/// HAJIMI's `key_count` ("可用密钥数量") counts the keys that passed the check: not the
/// invalid one, not the one whose check got no verdict (Google overloaded).
#[tokio::test]
async fn key_count_counts_only_the_keys_that_passed_the_check() {
    let mock = mock_gemini::MockGemini::start().await.unwrap();
    mock.add_rule(
        Rule::new(Reply::preset("api_key_invalid"))
            .key(KEYS[0])
            .action("list"),
    );
    mock.add_rule(
        Rule::new(Reply::preset("overloaded_503"))
            .key(KEYS[1])
            .action("list"),
    );
    let h = start_with_mock(mock, &[("WEB_PASSWORD", WEB)]).await;
    // The start-up check runs in the background: once it has retired the invalid key and
    // passed the good one, one key counts.
    let v = eventually("one invalid key and key_count 1", || async {
        let v = get_admin(&h, "/api/dashboard-data").await.1;
        let invalid = v["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["state"] == "invalid");
        if invalid && v["key_count"] == 1 {
            Ok(v)
        } else {
            Err(v)
        }
    })
    .await;
    assert_eq!(v["keys"].as_array().map(Vec::len), Some(3));
}
