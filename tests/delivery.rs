//! Fake streaming and keep-alives (HAJIMI's behaviour, done right): keep-alive chunks while the
//! upstream works, then the answer and `[DONE]`; headers only when the first keep-alive is
//! due, so fast failures keep their status; in-band errors after that; the same for native
//! streams and for non-stream whitespace padding.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt;
use mock_gemini::{Reply, Rule};
use serde_json::{Value, json};

fn slow(ms: u64, text: &str) -> Rule {
    Rule::new(Reply::text(text).after_ms(ms)).action("generateContent")
}

/// Reads an SSE body, noting when each event arrived.
async fn timed_events(r: reqwest::Response, started: Instant) -> Vec<(Duration, String)> {
    let mut out = Vec::new();
    let mut buf = String::new();
    let mut body = r.bytes_stream();
    while let Some(chunk) = body.next().await {
        buf.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            out.push((
                started.elapsed(),
                event.trim_end().trim_start_matches("data: ").to_owned(),
            ));
        }
    }
    out
}

/// Must show (issue 4): with a 6 s upstream, the client sees keep-alives from the first
/// second and a correct answer ending in `[DONE]`.
#[tokio::test]
async fn a_slow_answer_is_kept_alive_then_delivered() {
    let h = start(&[]).await; // FAKE_STREAMING=true and a 1 s interval are the defaults
    h.mock.add_rule(slow(6000, "Worth the wait."));
    let started = Instant::now();
    let r = h.chat(&hello(FLASH, true)).await;
    assert_eq!(r.status(), 200);
    let events = timed_events(r, started).await;
    let (done_at, done) = events.last().unwrap();
    assert_eq!(done, "[DONE]");
    let keepalives: Vec<&(Duration, String)> = events
        .iter()
        .filter(|(_, e)| e.contains("\"delta\":{}") && e.contains("\"finish_reason\":null"))
        .collect();
    // About one a second while the upstream works (no upper bound on when the first one came:
    // a loaded machine may be late; the count shows they came early and kept coming).
    assert!(
        keepalives.len() >= 4,
        "a keep-alive about every second: {}",
        keepalives.len()
    );
    assert!(*done_at >= Duration::from_secs(6));
    let chunks: Vec<Value> = events
        .iter()
        .filter(|(_, e)| e != "[DONE]")
        .map(|(_, e)| serde_json::from_str(e).unwrap())
        .collect();
    let id = &chunks[0]["id"];
    assert!(
        chunks.iter().all(|c| &c["id"] == id
            && c["model"] == FLASH
            && c["object"] == "chat.completion.chunk")
    );
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "Worth the wait.");
    assert_eq!(
        chunks
            .iter()
            .filter(|c| c["choices"][0]["finish_reason"] == "stop")
            .count(),
        1
    );
}

#[tokio::test]
async fn keepalives_follow_the_configured_interval_and_carry_usage_null_when_asked() {
    let h = start(&[("FAKE_STREAMING_INTERVAL", "0.2")]).await;
    h.mock.add_rule(slow(1200, "ok"));
    let mut body = hello(FLASH, true);
    body["stream_options"] = json!({"include_usage": true});
    let frames = sse(h.chat(&body).await).await;
    let keepalives = frames
        .iter()
        .filter(|f| f["choices"][0]["delta"] == json!({}))
        .count();
    assert!(keepalives >= 3, "{keepalives} keep-alives");
    let n = frames.len();
    assert_eq!(frames[n - 1], "[DONE]");
    assert_eq!(frames[n - 2]["choices"], json!([]), "usage chunk last");
    assert!(
        frames[..n - 2]
            .iter()
            .all(|f| f.get("usage").is_some_and(Value::is_null))
    );
}

#[tokio::test]
async fn a_fast_failure_keeps_its_real_status() {
    let h = start(&[]).await;
    h.mock
        .add_rule(Rule::new(Reply::preset("overloaded_503")).action("generateContent"));
    let (status, v) = json(h.chat(&hello(FLASH, true)).await).await;
    assert_eq!(status, 503, "no header was sent before the failure: {v}");
    openai_error(&v);
}

#[tokio::test]
async fn a_failure_after_keepalives_is_an_inband_error_without_done() {
    let h = start(&[("FAKE_STREAMING_INTERVAL", "0.2"), ("MAX_RETRY_NUM", "1")]).await;
    h.mock.add_rule(
        Rule::new(Reply::preset("overloaded_503").after_ms(800)).action("generateContent"),
    );
    let r = h.chat(&hello(FLASH, true)).await;
    assert_eq!(r.status(), 200);
    let frames = sse(r).await;
    assert!(!frames.iter().any(|f| f == "[DONE]"));
    let last = frames.last().unwrap();
    assert!(
        last["error"]["message"].as_str().unwrap().contains("503"),
        "{last}"
    );
}

#[tokio::test]
async fn non_stream_answers_are_padded_while_waiting() {
    let h = start(&[("NONSTREAM_KEEPALIVE_INTERVAL", "0.2")]).await;
    h.mock.add_rule(slow(1000, "padded"));
    let r = h.chat(&hello(FLASH, false)).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(
        text.starts_with('\n'),
        "whitespace keep-alives first: {text:?}"
    );
    let v: Value = serde_json::from_str(&text).expect("one valid JSON document after the padding");
    assert_eq!(v["choices"][0]["message"]["content"], "padded");
}

#[tokio::test]
async fn a_non_stream_failure_after_padding_is_the_openai_error_object() {
    let h = start(&[
        ("NONSTREAM_KEEPALIVE_INTERVAL", "0.2"),
        ("MAX_RETRY_NUM", "1"),
    ])
    .await;
    h.mock.add_rule(
        Rule::new(Reply::preset("overloaded_503").after_ms(800)).action("generateContent"),
    );
    let text = h.chat(&hello(FLASH, false)).await.text().await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    openai_error(&v);
}

#[tokio::test]
async fn keepalive_off_answers_plain_json() {
    let h = start(&[("NONSTREAM_KEEPALIVE_ENABLED", "false")]).await;
    h.mock.add_rule(slow(300, "plain"));
    let text = h.chat(&hello(FLASH, false)).await.text().await.unwrap();
    assert!(text.starts_with('{'));
}

#[tokio::test]
async fn hajimis_inband_errors_are_an_option() {
    let h = start(&[("INBAND_ERRORS", "true"), ("MAX_RETRY_NUM", "2")]).await;
    h.mock
        .add_rule(Rule::new(Reply::preset("overloaded_503")).action("generateContent"));
    let (status, v) = json(h.chat(&hello(FLASH, false)).await).await;
    assert_eq!(status, 200);
    assert_eq!(v["choices"][0]["message"]["role"], "error");
    assert!(
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .contains("503")
    );
    let frames = sse(h.chat(&hello(FLASH, true)).await).await;
    assert_eq!(frames[0]["choices"][0]["delta"]["role"], "error");
}

#[tokio::test]
async fn native_fake_sse_keepalives_are_valid_responses() {
    let h = start(&[("FAKE_STREAMING_INTERVAL", "0.2")]).await;
    h.mock.add_rule(slow(1000, "native slow"));
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
    let r = h
        .http
        .post(h.url(&format!(
            "/v1beta/models/{FLASH}:streamGenerateContent?alt=sse"
        )))
        .header("x-goog-api-key", PASSWORD)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let events: Vec<Value> = text
        .split("\r\n\r\n")
        .filter(|e| !e.is_empty())
        .map(|e| serde_json::from_str(e.strip_prefix("data: ").unwrap()).unwrap())
        .collect();
    assert!(events.len() >= 3);
    for e in &events {
        assert!(e["candidates"].is_array(), "Google SDKs need an array: {e}");
    }
    let last = events.last().unwrap();
    assert_eq!(
        last["candidates"][0]["content"]["parts"][0]["text"],
        "native slow"
    );
    assert_eq!(
        h.upstream_calls()[0].action.as_deref(),
        Some("generateContent"),
        "faked with a complete answer"
    );
}

#[tokio::test]
async fn native_fake_json_array_streams_open_early_and_close_with_the_answer() {
    let h = start(&[("FAKE_STREAMING_INTERVAL", "0.2")]).await;
    h.mock.add_rule(slow(700, "array slow"));
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
    let text = h
        .http
        .post(h.url(&format!("/v1beta/models/{FLASH}:streamGenerateContent")))
        .header("x-goog-api-key", PASSWORD)
        .json(&body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.starts_with("[\n"), "{text:?}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v[0]["candidates"][0]["content"]["parts"][0]["text"],
        "array slow"
    );
}
