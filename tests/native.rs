//! The native Gemini API through the proxy: bodies and answers forwarded unchanged, streams
//! event by event, Google's request errors passed through, our key failures as 503/429 in
//! Google's shape, and every route alias.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use mock_gemini::{Reply, Rule};
use serde_json::{Value, json};

const REAL: (&str, &str) = ("FAKE_STREAMING", "false");

fn google_request() -> Value {
    json!({"contents": [{"role": "user", "parts": [{"text": "Hi from the SDK"}]}],
           "generation_config": {"temperature": 0.1}, "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]})
}

async fn native_post(h: &Harness, path: &str, body: &Value) -> reqwest::Response {
    h.http
        .post(h.url(path))
        .header("x-goog-api-key", PASSWORD)
        .json(body)
        .send()
        .await
        .unwrap()
}

fn google_error(v: &Value) -> &Value {
    let e = &v["error"];
    assert!(
        e["code"].is_u64() && e["message"].is_string() && e["status"].is_string(),
        "Google error shape: {v}"
    );
    e
}

#[tokio::test]
async fn generate_content_is_forwarded_unchanged_both_ways() {
    let h = start(&[]).await;
    let body = google_request();
    let r = native_post(
        &h,
        &format!("/v1beta/models/{FLASH}:generateContent"),
        &body,
    )
    .await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("\n  \"candidates\""),
        "Google's bytes, not re-serialised: {text}"
    );
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(
        v["candidates"][0]["content"]["parts"][0]["text"]
            .as_str()
            .unwrap()
            .contains("Hi from the SDK")
    );
    let calls = h.upstream_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0].body, body,
        "the body reaches Google unchanged (snake_case kept, nothing injected)"
    );
    assert_eq!(
        calls[0].path,
        format!("/v1beta/models/{FLASH}:generateContent")
    );
    assert!(
        KEYS.contains(&calls[0].api_key.as_deref().unwrap()),
        "a pool key, never the client's password"
    );
}

#[tokio::test]
async fn every_alias_reaches_the_same_upstream_call() {
    let h = start(&[]).await;
    for path in [
        format!("/gemini/v1beta/models/{FLASH}:generateContent"),
        format!("/gemini/v1/models/{FLASH}:generateContent"),
        format!("/v1alpha/models/{FLASH}:generateContent"),
        format!("/v1/models/{FLASH}:generateContent"),
        format!("/v1beta/models/models%2F{FLASH}:generateContent"),
    ] {
        let r = native_post(&h, &path, &google_request()).await;
        assert_eq!(r.status(), 200, "{path}");
    }
    let versions: Vec<String> = h
        .upstream_calls()
        .iter()
        .map(|c| c.path.split('/').nth(1).unwrap().to_owned())
        .collect();
    assert_eq!(
        versions,
        ["v1beta", "v1", "v1alpha", "v1", "v1beta"],
        "the client's API version is kept"
    );
}

#[tokio::test]
async fn the_client_password_is_required_in_google_shape() {
    let h = start(&[]).await;
    let r = h
        .http
        .post(h.url(&format!("/v1beta/models/{FLASH}:generateContent")))
        .header("x-goog-api-key", "wrong")
        .json(&google_request())
        .send()
        .await
        .unwrap();
    let (status, v) = json(r).await;
    assert_eq!(status, 401);
    assert_eq!(google_error(&v)["status"], "UNAUTHENTICATED");
    let r = h
        .http
        .post(h.url(&format!(
            "/v1beta/models/{FLASH}:generateContent?key={PASSWORD}"
        )))
        .json(&google_request())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "?key= works like Google's");
    assert!(
        h.upstream_calls()
            .iter()
            .all(|c| c.query.as_deref().is_none_or(|q| !q.contains("key=")))
    );
}

#[tokio::test]
async fn sse_streams_are_forwarded_event_by_event() {
    let h = start(&[REAL]).await;
    let r = native_post(
        &h,
        &format!("/v1beta/models/{FLASH}:streamGenerateContent?alt=sse"),
        &google_request(),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let text = r.text().await.unwrap();
    let events: Vec<&str> = text.split("\r\n\r\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(events.len(), 3, "the mock's three events: {text:?}");
    for e in &events {
        let data = e.strip_prefix("data: ").expect("data line");
        let v: Value = serde_json::from_str(data).unwrap();
        assert!(v["candidates"].is_array());
    }
    assert!(
        events[2].contains("\"finishReason\": \"STOP\""),
        "Google's own bytes (spacing kept)"
    );
    assert_eq!(h.upstream_calls()[0].query.as_deref(), Some("alt=sse"));
}

#[tokio::test]
async fn native_streaming_adds_no_buffering() {
    let h = start(&[REAL]).await;
    h.mock.add_rule(
        Rule::new(Reply::text("one two").chunks(2).stall_after(1)).action("streamGenerateContent"),
    );
    let r = native_post(
        &h,
        &format!("/v1beta/models/{FLASH}:streamGenerateContent?alt=sse"),
        &google_request(),
    )
    .await;
    assert_eq!(r.status(), 200);
    let mut body = r.bytes_stream();
    let first = tokio::time::timeout(Duration::from_secs(10), body.next())
        .await
        .expect("the first event arrives while the upstream is still streaming")
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&first).starts_with("data: {"));
}

#[tokio::test]
async fn json_array_streams_pass_through() {
    let h = start(&[REAL]).await;
    let path = format!("/v1beta/models/{FLASH}:streamGenerateContent");
    let r = native_post(&h, &path, &google_request()).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let v: Value = serde_json::from_str(&text).expect("a JSON array");
    assert_eq!(v.as_array().map(Vec::len), Some(3));

    // A body Google sent without `alt=sse` (`[{` … `}\n]`) arrives byte for byte.
    let recorded = fixture_text("gemini/streamGenerateContent.json-array.single-element.txt");
    h.mock.add_rule(
        Rule::new(Reply::raw(
            200,
            "application/json; charset=UTF-8",
            recorded.clone(),
        ))
        .action("streamGenerateContent"),
    );
    let r = native_post(&h, &path, &google_request()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), recorded);
    let last = h.upstream_calls().pop().unwrap();
    assert_eq!(last.query, None, "no alt=sse asked of Google");
}

/// Requests that Google accepted (recorded from its SDKs and a proxy's test data: snake_case
/// fields and `role: "tool"`, `parametersJsonSchema` with a forced call, a thinking budget,
/// a token count) reach Google byte-equal and are answered.
#[tokio::test]
async fn recorded_requests_google_accepted_pass_through_unchanged() {
    let h = start(&[REAL]).await;
    for (fixture, action) in [
        ("gemini/countTokens.request.json", "countTokens"),
        (
            "gemini/generateContent.request.parametersJsonSchema-any-mode.json",
            "generateContent",
        ),
        (
            "gemini/generateContent.request.thinking-budget-max-tokens.json",
            "generateContent",
        ),
        (
            "gemini/streamGenerateContent.request.snake-case-role-tool.json",
            "streamGenerateContent?alt=sse",
        ),
    ] {
        let body = fixture_json(fixture);
        let r = native_post(&h, &format!("/v1beta/models/{FLASH}:{action}"), &body).await;
        let status = r.status();
        let text = r.text().await.unwrap();
        assert_eq!(status, 200, "{fixture}: {text}");
        let name = action.split('?').next();
        let sent = h
            .mock
            .requests()
            .into_iter()
            .rev()
            .find(|r| r.action.as_deref() == name);
        assert_eq!(
            sent.map(|r| r.body),
            Some(body),
            "{fixture} reached Google unchanged"
        );
        match action {
            "countTokens" => assert!(text.contains("\"totalTokens\"")),
            "generateContent" => assert!(text.contains("\"candidates\""), "{fixture}: {text}"),
            _ => assert!(text.starts_with("data: {"), "{fixture}: {text}"),
        }
    }
}

#[tokio::test]
async fn count_tokens_and_embeddings_pass_through() {
    let h = start(&[]).await;
    let (status, v) = json(
        native_post(
            &h,
            &format!("/v1beta/models/{FLASH}:countTokens"),
            &json!({"contents": [{"parts": [{"text": "count me"}]}]}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    assert!(v["totalTokens"].as_u64().unwrap() > 0);
    let (status, v) = json(
        native_post(
            &h,
            "/v1beta/models/gemini-embedding-001:embedContent",
            &json!({"content": {"parts": [{"text": "x"}]}, "outputDimensionality": 8}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(v["embedding"]["values"].as_array().map(Vec::len), Some(8));
    let (status, v) = json(
        native_post(
            &h,
            "/v1beta/models/gemini-embedding-001:batchEmbedContents",
            &json!({"requests": [
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "a"}]}},
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "b"}]}}]}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(v["embeddings"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn model_listing_is_google_shaped_with_pagination() {
    let h = start(&[]).await;
    let r = h
        .http
        .get(h.url("/v1beta/models?pageSize=10"))
        .header("x-goog-api-key", PASSWORD)
        .send()
        .await
        .unwrap();
    let (status, v) = json(r).await;
    assert_eq!(status, 200);
    assert_eq!(v["models"].as_array().map(Vec::len), Some(10));
    assert!(
        v["models"][0]["name"]
            .as_str()
            .unwrap()
            .starts_with("models/")
    );
    let token = v["nextPageToken"].as_str().expect("a next page").to_owned();
    let token: String = url::form_urlencoded::byte_serialize(token.as_bytes()).collect();
    let r = h
        .http
        .get(h.url(&format!(
            "/gemini/v1beta/models?pageSize=10&pageToken={token}"
        )))
        .header("x-goog-api-key", PASSWORD)
        .send()
        .await
        .unwrap();
    let (status, v2) = json(r).await;
    assert_eq!(status, 200, "{v2}");
    assert_ne!(v["models"][0]["name"], v2["models"][0]["name"]);
    let (status, m) = json(
        h.http
            .get(h.url("/v1beta/models/gemini-2.5-flash"))
            .header("x-goog-api-key", PASSWORD)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(m["name"], "models/gemini-2.5-flash");
}

#[tokio::test]
async fn googles_request_errors_pass_through_after_one_attempt() {
    let h = start(&[]).await;
    let bad = json!({"contents": [{"parts": [{"text": "x"}]}], "notAField": 1});
    let (status, v) =
        json(native_post(&h, &format!("/v1beta/models/{FLASH}:generateContent"), &bad).await).await;
    assert_eq!(status, 400);
    let e = google_error(&v);
    assert_eq!(e["status"], "INVALID_ARGUMENT");
    assert!(e["message"].as_str().unwrap().contains("notAField"));
    assert_eq!(h.upstream_calls().len(), 1);
    let (status, v) = json(
        native_post(
            &h,
            "/v1beta/models/no-such-model:generateContent",
            &google_request(),
        )
        .await,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(google_error(&v)["status"], "NOT_FOUND");
}

#[tokio::test]
async fn key_failures_are_never_shown_as_key_errors() {
    let h = start(&[]).await;
    h.mock
        .add_rule(Rule::new(Reply::preset("api_key_invalid")).action("generateContent"));
    let (status, v) = json(
        native_post(
            &h,
            &format!("/v1beta/models/{FLASH}:generateContent"),
            &google_request(),
        )
        .await,
    )
    .await;
    assert_eq!(status, 503);
    let e = google_error(&v);
    assert_eq!(e["status"], "UNAVAILABLE");
    assert!(!e["message"].as_str().unwrap().contains("API key not valid"));

    let h = start(&[]).await;
    h.mock
        .add_rule(Rule::new(Reply::preset("quota_429")).action("generateContent"));
    let r = native_post(
        &h,
        &format!("/v1beta/models/{FLASH}:generateContent"),
        &google_request(),
    )
    .await;
    assert!(r.headers().get("retry-after").is_some());
    let (status, v) = json(r).await;
    assert_eq!(status, 429);
    assert_eq!(google_error(&v)["status"], "RESOURCE_EXHAUSTED");
}

#[tokio::test]
async fn a_failing_key_is_replaced_transparently() {
    let h = start(&[]).await;
    h.mock.add_rule(
        Rule::new(Reply::preset("overloaded_503"))
            .action("generateContent")
            .times(1),
    );
    let (status, _) = json(
        native_post(
            &h,
            &format!("/v1beta/models/{FLASH}:generateContent"),
            &google_request(),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(h.upstream_calls().len(), 2);
}

#[tokio::test]
async fn search_models_get_the_search_tool() {
    let h = start(&[("SEARCH_MODE", "true")]).await;
    let (status, _) = json(
        native_post(
            &h,
            &format!("/v1beta/models/{FLASH}-search:generateContent"),
            &google_request(),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    let call = &h.upstream_calls()[0];
    assert_eq!(call.path, format!("/v1beta/models/{FLASH}:generateContent"));
    assert_eq!(call.body["tools"], json!([{"googleSearch": {}}]));
}

#[tokio::test]
async fn a_path_without_an_action_is_a_400() {
    let h = start(&[]).await;
    let (status, v) =
        json(native_post(&h, &format!("/v1beta/models/{FLASH}"), &google_request()).await).await;
    assert_eq!(status, 400);
    google_error(&v);
}

#[tokio::test]
async fn google_sdks_listing_at_v1_get_googles_shape() {
    let h = start(&[]).await;
    let (status, v) = json(
        h.http
            .get(h.url("/v1/models?pageSize=5"))
            .header("x-goog-api-key", PASSWORD)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        v["models"].as_array().map(Vec::len),
        Some(5),
        "Google's shape for Google's SDK: {v}"
    );
    let (status, m) = json(
        h.http
            .get(h.url("/v1/models/gemini-2.5-flash"))
            .header("x-goog-api-key", PASSWORD)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(m["name"], "models/gemini-2.5-flash");
    let (_, o) = json(h.get("/v1/models").await).await;
    assert_eq!(
        o["object"], "list",
        "OpenAI clients (Bearer) keep OpenAI's shape"
    );
}

/// A native stream that fails before its first byte answers with a JSON error, not an SSE
/// content type (SDKs pick their parser by content type); once headers are out, errors stay
/// in-band SSE events.
#[tokio::test]
async fn native_stream_errors_before_the_first_byte_are_json() {
    let stream_path = format!("/v1beta/models/{FLASH}:streamGenerateContent?alt=sse");
    let bad = json!({"contents": [{"parts": [{"text": "x"}]}], "notAField": 1});
    let is_json = |r: &reqwest::Response| {
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(ct.starts_with("application/json"), "content-type {ct}");
    };
    for fake in ["true", "false"] {
        // Google's 400 about the request, forwarded.
        let h = start(&[("FAKE_STREAMING", fake), ("FAKE_STREAMING_INTERVAL", "30")]).await;
        let r = native_post(&h, &stream_path, &bad).await;
        assert_eq!(r.status(), 400, "FAKE_STREAMING={fake}");
        is_json(&r);
        assert_eq!(google_error(&json(r).await.1)["status"], "INVALID_ARGUMENT");
        // No usable key: 503.
        h.mock.add_rule(Rule::new(Reply::preset("api_key_invalid")));
        let r = native_post(&h, &stream_path, &google_request()).await;
        assert_eq!(r.status(), 503, "FAKE_STREAMING={fake}");
        is_json(&r);
        google_error(&json(r).await.1);
        // Our per-IP limit: 429.
        let h = start(&[("FAKE_STREAMING", fake), ("MAX_REQUESTS_PER_MINUTE", "1")]).await;
        let r = native_post(&h, &stream_path, &google_request()).await;
        assert_eq!(r.status(), 200);
        let _ = r.text().await;
        let r = native_post(&h, &stream_path, &google_request()).await;
        assert_eq!(r.status(), 429, "FAKE_STREAMING={fake}");
        is_json(&r);
        google_error(&json(r).await.1);
    }
    // After the first keep-alive went out, an error is an in-band event of the stream.
    let h = start(&[("FAKE_STREAMING_INTERVAL", "0.2")]).await;
    h.mock
        .add_rule(Rule::new(Reply::preset("api_key_invalid").after_ms(600)));
    let r = native_post(&h, &stream_path, &google_request()).await;
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    let text = r.text().await.unwrap();
    assert!(text.contains("\"error\""), "{text}");
}
