//! What a client sees when Google refuses a request, when the keys are out, and when Google
//! cannot be reached, and what that does to the keys (issue 8 items 2, 13, 14 and 18).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use mock_gemini::{Reply, Rule};
use serde_json::{Value, json};

fn fixture(name: &str) -> Value {
    fixture_json(&format!("gemini/{name}"))
}

fn error_rule(fixture_name: &str) -> Rule {
    let body = fixture(fixture_name);
    let status = body["error"]["code"].as_u64().unwrap() as u16;
    Rule::new(Reply::error(status, body)).action("generateContent")
}

/// `(masked key, state, failures today)` of every key, from the dashboard API.
async fn keys(h: &Harness) -> Vec<(String, String, u64)> {
    let (status, v) = json(h.get("/api/keys").await).await;
    assert_eq!(status, 200, "{v}");
    v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["key"].as_str().unwrap().to_owned(),
                k["state"].as_str().unwrap().to_owned(),
                k["failures_today"].as_u64().unwrap(),
            )
        })
        .collect()
}

async fn assert_all_active(h: &Harness) {
    let keys = keys(h).await;
    assert_eq!(keys.len(), KEYS.len());
    assert!(
        keys.iter().all(|(_, state, _)| state == "active"),
        "no key changed state: {keys:?}"
    );
}

async fn native_generate(h: &Harness) -> reqwest::Response {
    h.http
        .post(h.url(&format!("/v1beta/models/{FLASH}:generateContent")))
        .header("x-goog-api-key", PASSWORD)
        .json(&json!({"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]}))
        .send()
        .await
        .unwrap()
}

fn retry_after(r: &reqwest::Response) -> u64 {
    r.headers()
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Issue 8 item 2: a 403 about the client's own `fileData` file, on every request, must not
/// suspend the keys one after another; each request is answered after one upstream call.
#[tokio::test]
async fn a_file_permission_403_on_every_request_never_suspends_a_key() {
    let h = start(&[]).await;
    h.mock
        .add_rule(error_rule("error.403.file-permission-denied.json"));
    for n in 1..=6 {
        let (status, v) = json(h.chat(&hello(FLASH, false)).await).await;
        assert_eq!(status, 403, "{v}");
        let e = openai_error(&v);
        assert_eq!(e["type"], "permission_error");
        assert_eq!(e["code"], "upstream_permission_denied");
        let msg = e["message"].as_str().unwrap();
        assert!(
            msg.contains("You do not have permission to access the File") && msg.contains(" / "),
            "{msg}"
        );
        assert_eq!(h.upstream_calls().len(), n, "one upstream call per request");
    }
    assert_all_active(&h).await;
}

/// The same 403 on a native route: Google's status and body reach the client; no key changes.
#[tokio::test]
async fn a_file_permission_403_is_forwarded_to_native_clients_and_no_key_changes() {
    let h = start(&[]).await;
    h.mock
        .add_rule(error_rule("error.403.file-permission-denied.json"));
    for n in 1..=4 {
        let r = native_generate(&h).await;
        let (status, v) = json(r).await;
        assert_eq!(status, 403, "{v}");
        assert_eq!(v["error"]["status"], "PERMISSION_DENIED");
        assert_eq!(
            v["error"]["message"],
            fixture("error.403.file-permission-denied.json")["error"]["message"]
        );
        assert_eq!(h.upstream_calls().len(), n, "one upstream call per request");
    }
    assert_all_active(&h).await;
}

/// Issue 8 item 2: a 401 provoked by credentials the client injected never marks keys
/// invalid. OpenAI clients get a 403 `permission_error` (a 401 would read as a wrong proxy
/// password); native clients get Google's 401 as it is.
#[tokio::test]
async fn an_unauthenticated_401_never_invalidates_a_key() {
    let h = start(&[]).await;
    h.mock.add_rule(error_rule(
        "error.401.unauthenticated-invalid-credentials.json",
    ));
    for n in 1..=4 {
        let (status, v) = json(h.chat(&hello(FLASH, false)).await).await;
        assert_eq!(status, 403, "{v}");
        assert_eq!(openai_error(&v)["type"], "permission_error");
        assert_eq!(h.upstream_calls().len(), n);
    }
    let (status, v) = json(native_generate(&h).await).await;
    assert_eq!(status, 401, "{v}");
    assert_eq!(v["error"]["status"], "UNAUTHENTICATED");
    assert_eq!(h.upstream_calls().len(), 5);
    assert_all_active(&h).await;
}

/// A refusal that belongs to the key still takes that key out of rotation, and the request
/// is served by another key; the retired key is never tried again.
#[tokio::test]
async fn a_real_key_failure_still_retires_the_key_and_fails_over() {
    for (name, state) in [
        ("error.403.api-key-leaked.json", "suspended"),
        ("error.403.consumer-suspended.json", "suspended"),
        ("error.403.service-disabled.json", "suspended"),
        ("error.403.billing-disabled.json", "suspended"),
        ("error.403.iam-permission-denied.json", "suspended"),
        ("error.400.api-key-expired.json", "invalid"),
        ("error.400.api-key-invalid.json", "invalid"),
    ] {
        let h = start(&[]).await;
        h.mock.add_rule(error_rule(name).key(KEYS[0]));
        for _ in 0..6 {
            let (status, v) = json(h.chat(&hello(FLASH, false)).await).await;
            assert_eq!(status, 200, "{name}: failed over to another key: {v}");
        }
        let bad = h
            .upstream_calls()
            .iter()
            .filter(|c| c.api_key.as_deref() == Some(KEYS[0]))
            .count();
        assert_eq!(bad, 1, "{name}: the retired key is never tried again");
        let states: Vec<String> = keys(&h).await.into_iter().map(|k| k.1).collect();
        assert_eq!(
            states.iter().filter(|s| *s == state).count(),
            1,
            "{name}: {states:?}"
        );
        assert_eq!(
            states.iter().filter(|s| *s == "active").count(),
            2,
            "{name}: {states:?}"
        );
    }
}

/// Issue 8 item 13: a wrong model name is the client's error: 404 naming the model and
/// pointing to /v1/models, after one attempt, not counted against any key, and still in the
/// request log.
#[tokio::test]
async fn a_wrong_model_is_a_404_naming_it_and_not_a_key_failure() {
    let h = start(&[]).await;
    let model = "gemini-9-ultra-nonexistent";
    let (status, v) = json(h.chat(&hello(model, false)).await).await;
    assert_eq!(status, 404, "{v}");
    let e = openai_error(&v);
    assert_eq!(e["code"], "model_not_found");
    let msg = e["message"].as_str().unwrap();
    assert!(
        msg.contains(model) && msg.contains("/v1/models") && msg.contains(" / "),
        "{msg}"
    );
    assert!(
        msg.contains("不存在") && msg.contains("does not exist"),
        "{msg}"
    );
    assert_eq!(h.upstream_calls().len(), 1, "one attempt");
    let keys = keys(&h).await;
    assert!(
        keys.iter()
            .all(|(_, state, failures)| state == "active" && *failures == 0),
        "not a key failure: {keys:?}"
    );
    eventually("the request to stay visible in the request log", || async {
        let (_, v) = json(h.get("/api/dashboard-data").await).await;
        let logs = v["logs"].as_array().unwrap().clone();
        let logged = logs.iter().any(|l| {
            l["status_code"] == "404"
                // An unknown name is logged as `other` once the model list is loaded.
                && (l["model"] == model || l["model"] == "other")
                && l["error_message"] == "model_not_found"
        });
        if logged { Ok(()) } else { Err(logs) }
    })
    .await;
}

/// Google's 400s for thinking settings a model refuses (a level it does not support; a
/// budget and a level together, recorded from gemini-3.1-pro-preview) are the client's
/// mistake: Google's message reaches the client after one attempt and no key changes.
#[tokio::test]
async fn refused_thinking_settings_are_400s_with_googles_message() {
    let recorded = fixture("error.400.thinking-level-errors.json");
    for case in ["reasoningNoneResponse", "thinkingLevelAndBudgetResponse"] {
        let h = start(&[]).await;
        let body = recorded[case].clone();
        let message = body["error"]["message"].as_str().unwrap().to_owned();
        h.mock
            .add_rule(Rule::new(Reply::error(400, body)).action("generateContent"));
        let (status, v) = json(h.chat(&hello(FLASH, false)).await).await;
        assert_eq!(status, 400, "{case}: {v}");
        let e = openai_error(&v);
        assert_eq!(e["type"], "invalid_request_error", "{case}: {v}");
        assert!(
            e["message"].as_str().unwrap().contains(&message),
            "{case}: {v}"
        );
        assert_eq!(h.upstream_calls().len(), 1, "{case}: one attempt");
        assert_all_active(&h).await;
    }
}

/// Issue 8 item 18: keys out for the day. OpenAI routes answer 503 `insufficient_quota` at
/// once, with `Retry-After` and the wait in hours and minutes and the reset time (midnight in
/// Los Angeles), not a 429 that SillyTavern retries for 155 s; native routes keep Google's 429.
#[tokio::test]
async fn keys_out_for_the_day_answer_503_insufficient_quota_with_the_reset_time() {
    let h = start(&[]).await;
    h.mock
        .add_rule(Rule::new(Reply::preset("quota_429_daily")).action("generateContent"));
    let r = h.chat(&hello(FLASH, false)).await;
    let wait = retry_after(&r);
    let (status, v) = json(r).await;
    assert_eq!(status, 503, "{v}");
    assert!(wait > 60 && wait <= 25 * 3600, "{wait}");
    let e = openai_error(&v);
    // The type and code OpenAI itself answers when an account is out of quota.
    let openai = fixture_json("openai/error.429.insufficient-quota.json");
    assert_eq!(e["type"], openai["error"]["type"]);
    assert_eq!(e["code"], openai["error"]["code"]);
    let msg = e["message"].as_str().unwrap();
    assert!(
        msg.contains("北京时间") && msg.contains(":00 Beijing time (00:00 Los Angeles)"),
        "{msg}"
    );
    assert!(
        msg.contains(FLASH) && msg.contains(" min") && msg.contains(" / "),
        "{msg}"
    );
    assert!(!msg.contains(&format!("{wait}s")), "no raw seconds: {msg}");
    assert_eq!(h.upstream_calls().len(), 3, "each key once");

    // Later requests are answered the same way without calling Google, streams included.
    let r = h.chat(&hello(FLASH, true)).await;
    assert!(retry_after(&r) > 60);
    let (status, v) = json(r).await;
    assert_eq!(status, 503, "{v}");
    assert_eq!(openai_error(&v)["code"], "insufficient_quota");

    let r = native_generate(&h).await;
    assert!(retry_after(&r) > 60);
    let (status, v) = json(r).await;
    assert_eq!(status, 429, "native routes keep Google's status: {v}");
    assert_eq!(v["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(h.upstream_calls().len(), 3, "no further upstream call");
}

/// Every key retired: nothing changes before the next key check, so the same 503.
#[tokio::test]
async fn every_key_retired_is_503_insufficient_quota() {
    let h = start(&[]).await;
    h.mock
        .add_rule(Rule::new(Reply::preset("api_key_invalid")).action("generateContent"));
    let (status, v) = json(h.chat(&hello(FLASH, false)).await).await;
    assert_eq!(status, 503, "{v}");
    let r = h.chat(&hello(FLASH, false)).await;
    assert_eq!(retry_after(&r), 1800, "KEY_RECHECK_INTERVAL");
    let (status, v) = json(r).await;
    assert_eq!(status, 503, "{v}");
    let e = openai_error(&v);
    assert_eq!(e["code"], "insufficient_quota");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("all 3 keys are invalid or suspended"),
        "{v}"
    );
    assert_eq!(h.upstream_calls().len(), 3);
}

/// Issue 8 item 14: when no call reaches Google, the error names the upstream host and says
/// what to set.
#[tokio::test]
async fn an_unreachable_upstream_names_the_host_and_suggests_a_proxy() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let base = format!("http://127.0.0.1:{port}");
    let h = start(&[("GEMINI_BASE_URL", &base), ("MAX_RETRY_NUM", "3")]).await;
    let (status, v) = json(h.chat(&hello(FLASH, false)).await).await;
    assert_eq!(status, 503, "{v}");
    let msg = openai_error(&v)["message"].as_str().unwrap();
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
    assert!(
        msg.contains("HTTPS_PROXY") && msg.contains("GEMINI_BASE_URL") && msg.contains(" / "),
        "{msg}"
    );
    assert!(
        msg.contains("无法连接") && msg.contains("connection"),
        "{msg}"
    );
}

/// A route that drops the connection attempts (a firewall, a blocked address) shows up as a
/// connect timeout: nothing reached Google, so the answer is the same as for a refused port,
/// not a 504 "the upstream did not answer in time".
#[tokio::test]
async fn a_connect_timeout_counts_as_unreachable() {
    // A listener whose accept queue is full: further connection attempts get no answer.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        match tokio::time::timeout(
            std::time::Duration::from_millis(200),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        {
            Ok(Ok(s)) => fillers.push(s),
            _ => break,
        }
    }
    let base = format!("http://{addr}");
    let h = start(&[
        ("GEMINI_BASE_URL", &base),
        ("MAX_RETRY_NUM", "2"),
        ("UPSTREAM_CONNECT_TIMEOUT", "200ms"),
        ("SKIP_CHECK_API_KEY", "true"),
    ])
    .await;
    let (status, v) = json(h.chat(&hello(FLASH, false)).await).await;
    assert_eq!(status, 503, "{v}");
    let msg = openai_error(&v)["message"].as_str().unwrap();
    assert!(
        msg.contains(&addr.to_string()) && msg.contains("HTTPS_PROXY"),
        "{msg}"
    );
    drop((fillers, listener));
}
