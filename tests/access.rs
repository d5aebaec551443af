//! Rate limits, CORS, the dashboard path, model lists enforced on use, the random-string
//! disguise, and the key pool's daily limit, concurrency cap, start-up check and cooldown
//! waits — through the real server.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt;
use mock_gemini::{MockGemini, Reply, Rule};
use serde_json::{Value, json};

fn ask(text: &str) -> Value {
    json!({"model": FLASH, "messages": [{"role": "user", "content": text}]})
}

/// Waits until a fresh UTC minute has at least 10 s left, so a per-minute test cannot
/// straddle a window boundary.
async fn safe_minute() {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if secs % 60 > 50 {
        tokio::time::sleep(Duration::from_secs(61 - secs % 60)).await;
    }
}

#[tokio::test]
async fn the_per_minute_limit_is_per_address_with_retry_after() {
    safe_minute().await;
    let h = start(&[("MAX_REQUESTS_PER_MINUTE", "2")]).await;
    for i in 0..2 {
        assert_eq!(h.chat(&ask(&format!("q{i}"))).await.status(), 200);
    }
    let r = h.chat(&ask("q3")).await;
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let (status, v) = json(r).await;
    assert_eq!(status, 429);
    assert!((1..=60).contains(&retry));
    assert_eq!(openai_error(&v)["code"], "rate_limit_exceeded");
    assert_eq!(
        h.upstream_calls().len(),
        2,
        "a refused request never reaches Google"
    );
    // Model listing is not limited (HAJIMI).
    assert_eq!(h.get("/v1/models").await.status(), 200);
}

#[tokio::test]
async fn the_vector_adapters_are_rate_limited_too() {
    safe_minute().await;
    let h = start(&[("MAX_REQUESTS_PER_MINUTE", "1")]).await;
    let body = json!({"searchText": "find me", "model": "gemini-embedding-001"});
    assert_eq!(h.post("/api/vector/query", &body).await.status(), 200);
    let r = h.post("/api/vector/query", &body).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn forwarded_addresses_count_separately_only_behind_trusted_proxies() {
    safe_minute().await;
    let h = start(&[
        ("MAX_REQUESTS_PER_MINUTE", "1"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    let url = h.url("/v1/chat/completions");
    for ip in ["203.0.113.1", "203.0.113.2"] {
        let r = h
            .http
            .post(&url)
            .bearer_auth(PASSWORD)
            .header("x-forwarded-for", ip)
            .json(&ask(ip))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{ip} has its own window");
    }
    let r = h
        .http
        .post(&url)
        .bearer_auth(PASSWORD)
        .header("x-forwarded-for", "203.0.113.1")
        .json(&ask("again"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);

    let h = start(&[("MAX_REQUESTS_PER_MINUTE", "1")]).await;
    let url = h.url("/v1/chat/completions");
    let r = h
        .http
        .post(&url)
        .bearer_auth(PASSWORD)
        .header("x-forwarded-for", "203.0.113.1")
        .json(&ask("a"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = h
        .http
        .post(&url)
        .bearer_auth(PASSWORD)
        .header("x-forwarded-for", "203.0.113.9")
        .json(&ask("b"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429, "an untrusted peer cannot pick its address");
}

#[tokio::test]
async fn the_daily_limit_applies_to_native_and_embeddings_too() {
    let h = start(&[("MAX_REQUESTS_PER_DAY_PER_IP", "2")]).await;
    assert_eq!(h.chat(&ask("a")).await.status(), 200);
    assert_eq!(
        h.post(
            "/v1/embeddings",
            &json!({"model": "gemini-embedding-001", "input": "x"})
        )
        .await
        .status(),
        200
    );
    let r = h
        .http
        .post(h.url(&format!("/v1beta/models/{FLASH}:generateContent")))
        .header("x-goog-api-key", PASSWORD)
        .json(&json!({"contents": [{"parts": [{"text": "x"}]}]}))
        .send()
        .await
        .unwrap();
    let (status, v) = json(r).await;
    assert_eq!(status, 429);
    assert_eq!(
        v["error"]["status"], "RESOURCE_EXHAUSTED",
        "Google's shape on native routes"
    );
}

#[tokio::test]
async fn cors_preflights_are_answered_for_allowed_origins_only() {
    let h = start(&[("ALLOWED_ORIGINS", "https://chat.example")]).await;
    let pre = h
        .http
        .request(reqwest::Method::OPTIONS, h.url("/v1/chat/completions"))
        .header("origin", "https://chat.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(pre.status().is_success());
    assert_eq!(
        pre.headers()["access-control-allow-origin"],
        "https://chat.example"
    );
    let other = h
        .http
        .get(h.url("/v1/models"))
        .bearer_auth(PASSWORD)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    let none = start(&[]).await;
    let r = none
        .http
        .get(none.url("/v1/models"))
        .bearer_auth(PASSWORD)
        .header("origin", "https://chat.example")
        .send()
        .await
        .unwrap();
    assert!(
        r.headers().get("access-control-allow-origin").is_none(),
        "no CORS without ALLOWED_ORIGINS"
    );
}

/// Must not be possible (issue 8 item 9): `ALLOWED_ORIGINS=*` letting any web page make
/// credentialed requests (its origin echoed back with `Allow-Credentials: true`).
#[tokio::test]
async fn a_wildcard_origin_never_allows_credentials() {
    let h = start(&[("ALLOWED_ORIGINS", "*")]).await;
    let pre = h
        .http
        .request(reqwest::Method::OPTIONS, h.url("/v1/chat/completions"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(pre.status().is_success());
    let r = h
        .http
        .get(h.url("/v1/models"))
        .bearer_auth(PASSWORD)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    for (what, headers) in [("preflight", pre.headers()), ("request", r.headers())] {
        assert_eq!(
            headers["access-control-allow-origin"], "*",
            "{what}: the wildcard itself, never the caller's origin"
        );
        assert!(
            headers.get("access-control-allow-credentials").is_none(),
            "{what}: no credentials with a wildcard"
        );
    }
}

/// decisions §6: a limit of 0 means no limit (it used to be raised to 1).
#[tokio::test]
async fn zero_request_limits_mean_no_limit() {
    safe_minute().await;
    let h = start(&[
        ("MAX_REQUESTS_PER_MINUTE", "0"),
        ("MAX_REQUESTS_PER_DAY_PER_IP", "0"),
    ])
    .await;
    for i in 0..5 {
        assert_eq!(h.chat(&ask(&format!("q{i}"))).await.status(), 200, "q{i}");
    }
}

#[tokio::test]
async fn the_page_moves_to_dashboard_url() {
    let h = start(&[("DASHBOARD_URL", "/secret-panel/")]).await;
    assert_eq!(
        h.http
            .get(h.url("/secret-panel"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(h.http.get(h.url("/")).send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn blocked_and_unlisted_models_are_refused_on_use() {
    let h = start(&[("BLOCKED_MODELS", "gemini-2.5-pro")]).await;
    let (status, v) = json(
        h.chat(&json!({"model": "gemini-2.5-pro", "messages": [{"role": "user", "content": "x"}]}))
            .await,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(openai_error(&v)["code"], "model_not_found");
    let r = h
        .http
        .post(h.url("/v1beta/models/gemini-2.5-pro:generateContent"))
        .header("x-goog-api-key", PASSWORD)
        .json(&json!({"contents": [{"parts": [{"text": "x"}]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let h = start(&[("WHITELIST_MODELS", "gemini-2.5-pro")]).await;
    assert_eq!(
        h.chat(&ask("x")).await.status(),
        404,
        "flash is not on the whitelist"
    );
    assert!(h.upstream_calls().is_empty());
}

#[tokio::test]
async fn the_random_string_disguise_is_on_the_wire() {
    let h = start(&[("RANDOM_STRING", "true"), ("RANDOM_STRING_LENGTH", "7")]).await;
    let body = json!({"model": FLASH, "messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]});
    assert_eq!(h.chat(&body).await.status(), 200);
    let contents = h.upstream_calls()[0].body["contents"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(contents.len(), 5);
    for i in [1, 3] {
        let t = contents[i]["parts"][0]["text"].as_str().unwrap();
        assert!(
            t.len() == 7 && t.chars().all(|c| c.is_ascii_alphanumeric()),
            "{t}"
        );
    }
    assert_eq!(contents[4]["parts"][0]["text"], "c");
}

#[tokio::test]
async fn the_daily_key_limit_is_soft() {
    let h = start(&[
        ("API_KEY_DAILY_LIMIT", "1"),
        ("GEMINI_API_KEYS", &format!("{},{}", KEYS[0], KEYS[1])),
    ])
    .await;
    for i in 0..2 {
        assert_eq!(h.chat(&ask(&format!("d{i}"))).await.status(), 200);
    }
    let calls = h.upstream_calls();
    assert_ne!(
        calls[0].api_key, calls[1].api_key,
        "a key over its daily limit is skipped while another is under it"
    );
    assert_eq!(
        h.chat(&ask("d3")).await.status(),
        200,
        "when every key is over, one is used anyway"
    );
}

#[tokio::test]
async fn a_key_concurrency_cap_queues_requests() {
    let h = start(&[("KEY_MAX_CONCURRENCY", "1"), ("GEMINI_API_KEYS", KEYS[0])]).await;
    h.mock
        .add_rule(Rule::new(Reply::text("one at a time").after_ms(400)).action("generateContent"));
    let started = Instant::now();
    let (first, second) = (ask("first"), ask("second"));
    let (a, b) = tokio::join!(h.chat(&first), h.chat(&second));
    assert_eq!(
        (a.status(), b.status()),
        (reqwest::StatusCode::OK, reqwest::StatusCode::OK)
    );
    assert!(
        started.elapsed() >= Duration::from_millis(800),
        "the second waited for the key: {:?}",
        started.elapsed()
    );
}

/// A stream holds its key for as long as it runs, not only until its headers are sent.
#[tokio::test]
async fn a_running_stream_counts_toward_the_key_concurrency_cap() {
    let h = start(&[
        ("KEY_MAX_CONCURRENCY", "1"),
        ("GEMINI_API_KEYS", KEYS[0]),
        ("FAKE_STREAMING", "false"),
    ])
    .await;
    h.mock.add_rule(
        Rule::new(
            Reply::text("one two three four five six seven eight")
                .chunks(8)
                .chunk_delay_ms(100),
        )
        .action("streamGenerateContent"),
    );
    let mut body = ask("a long stream");
    body["stream"] = json!(true);
    let streamed = h.chat(&body).await;
    assert_eq!(streamed.status(), 200);
    let mut frames = streamed.bytes_stream();
    let first = frames.next().await.expect("a first chunk").expect("bytes");
    assert!(!first.is_empty());

    // While the stream runs, a second request must wait for the key.
    let other = tokio::spawn({
        let http = h.http.clone();
        let url = h.url("/v1/chat/completions");
        async move {
            let r = http
                .post(url)
                .bearer_auth(PASSWORD)
                .json(&ask("waits for the stream"))
                .send()
                .await
                .expect("sent");
            (r.status(), Instant::now())
        }
    });
    // The last content chunk is sent before the stream lets the key go.
    let mut last_content = Instant::now();
    while let Some(chunk) = frames.next().await {
        let chunk = chunk.expect("stream bytes");
        if String::from_utf8_lossy(&chunk).contains("\"content\"") {
            last_content = Instant::now();
        }
    }
    let (status, answered) = other.await.expect("joined");
    assert_eq!(status, 200);
    assert!(
        answered > last_content,
        "the second request was answered while the stream still held the only key"
    );
}

/// Waits until Google has seen `n` generate calls: the request sent last holds the only key.
async fn holder_reached_google(h: &Harness, n: usize) {
    eventually("the first request to hold the key", || async {
        h.upstream_calls().len() >= n
    })
    .await;
}

#[tokio::test]
async fn a_request_waiting_for_a_busy_key_ends_at_its_deadline() {
    let h = start(&[
        ("KEY_MAX_CONCURRENCY", "1"),
        ("GEMINI_API_KEYS", KEYS[0]),
        ("REQUEST_DEADLINE", "700ms"),
    ])
    .await;
    h.mock.add_rule(
        Rule::new(Reply::text("slow").after_ms(500))
            .action("generateContent")
            .times(1),
    );
    let (first, second) = (ask("holds the key"), ask("waits"));
    let holder = h.chat(&first);
    let waiter = async {
        holder_reached_google(&h, 1).await;
        h.chat(&second).await
    };
    let (a, b) = tokio::join!(holder, waiter);
    assert_eq!(a.status(), 200);
    // The key came free at ~500 ms, inside the waiter's 700 ms: it is served, not refused.
    assert_eq!(b.status(), 200, "woken when the lease was released");
    assert_eq!(h.upstream_calls().len(), 2);

    // Now a holder that outlives the waiter's deadline: the waiter gets a 504, not a hang.
    h.mock
        .add_rule(Rule::new(Reply::text("very slow").after_ms(3000)).action("generateContent"));
    let (first, second) = (ask("holds the key again"), ask("gives up"));
    let holder = h.chat(&first);
    let waiter = async {
        holder_reached_google(&h, 3).await;
        let r = h.chat(&second).await;
        let status = r.status();
        let body: serde_json::Value = r.json().await.unwrap_or_default();
        (status, body)
    };
    let (_, (status, body)) = tokio::join!(holder, waiter);
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["error"]["code"], "timeout", "{body}");
}

#[tokio::test]
async fn the_start_up_check_retires_invalid_keys_only() {
    let mock = MockGemini::start().await.unwrap();
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
    let h = start_with_mock(mock, &[]).await;
    // The check runs in the background; wait until it has retired the invalid key.
    eventually("the start-up check to retire the invalid key", || async {
        let (_, v) = json(h.get("/api/keys").await).await;
        let states: Vec<Value> = v["keys"]
            .as_array()
            .map(|keys| keys.iter().map(|k| k["state"].clone()).collect())
            .unwrap_or_default();
        if states.iter().filter(|s| *s == "invalid").count() == 1 {
            Ok(())
        } else {
            Err(states)
        }
    })
    .await;
    for i in 0..6 {
        assert_eq!(h.chat(&ask(&format!("k{i}"))).await.status(), 200);
    }
    let used: Vec<Option<String>> = h
        .upstream_calls()
        .iter()
        .map(|c| c.api_key.clone())
        .collect();
    assert!(
        !used.contains(&Some(KEYS[0].to_owned())),
        "the invalid key never serves"
    );
    assert!(
        used.contains(&Some(KEYS[1].to_owned())),
        "a 503 at the check leaves a key active"
    );
}

#[tokio::test]
async fn short_cooldowns_are_waited_out_instead_of_refused() {
    let h = start(&[]).await;
    h.mock.add_rule(
        Rule::new(Reply::quota_retry("0.5s"))
            .action("generateContent")
            .times(3),
    );
    let started = Instant::now();
    let (status, v) = json(h.chat(&ask("patience")).await).await;
    assert_eq!(
        status, 200,
        "every key cooled for 0.5 s; the request waited and then succeeded: {v}"
    );
    assert!(started.elapsed() >= Duration::from_millis(450));
    assert_eq!(h.upstream_calls().len(), 4);
}

/// Relay keys (any format, not `AIza…`) that an upstream echoes in its error text never
/// reach the client: every configured key is scrubbed by value.
#[tokio::test]
async fn a_relay_key_echoed_by_the_upstream_never_reaches_the_client() {
    let relay = "relay-sk-7f3c9a2e4b1d8f60";
    let mock = MockGemini::start().await.unwrap();
    mock.add_rule(Rule::new(Reply::google_error(
        400,
        "INVALID_ARGUMENT",
        format!("Request with key {relay} contains an invalid argument."),
    )));
    let h = start_with_mock(
        mock,
        &[("GEMINI_API_KEYS", relay), ("SKIP_CHECK_API_KEY", "true")],
    )
    .await;
    let r = h.chat(&hello(FLASH, false)).await;
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    assert_eq!(status, 400, "{text}");
    assert!(!text.contains(relay), "{text}");
    assert!(text.contains(&hajimi::mask::mask(relay)), "{text}");
    let r = h
        .post(
            &format!("/v1beta/models/{FLASH}:generateContent"),
            &json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}),
        )
        .await;
    let text = r.text().await.unwrap();
    assert!(!text.contains(relay), "native: {text}");
}
