//! Real streaming (`FAKE_STREAMING=false`): chunk shapes, `[DONE]`, usage, retries before
//! the first byte, in-band errors after it, no buffering, and cancellation on disconnect.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

mod common;

use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use mock_gemini::{Reply, Rule};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const REAL: (&str, &str) = ("FAKE_STREAMING", "false");

fn content_of(frames: &[Value]) -> String {
    frames
        .iter()
        .filter_map(|f| f["choices"][0]["delta"]["content"].as_str())
        .collect()
}

#[tokio::test]
async fn a_text_stream_has_the_openai_sequence() {
    let h = start(&[REAL]).await;
    h.mock.add_rule(
        Rule::new(Reply::text("The sky is blue today.").chunks(4)).action("streamGenerateContent"),
    );
    let r = h.chat(&hello(FLASH, true)).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let frames = sse(r).await;
    let n = frames.len();
    assert_eq!(frames[n - 1], "[DONE]");
    let chunks = &frames[..n - 1];
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(
        chunks[1..]
            .iter()
            .all(|c| c["choices"][0]["delta"].get("role").is_none()),
        "role only once"
    );
    assert_eq!(content_of(chunks), "The sky is blue today.");
    let last = &chunks[chunks.len() - 1];
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert_eq!(last["choices"][0]["delta"], json!({}));
    let id = &chunks[0]["id"];
    for c in chunks {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["model"], FLASH, "the client's model name on every chunk");
        assert_eq!(&c["id"], id);
        assert!(c.get("usage").is_none());
    }
    let calls = h.upstream_calls();
    assert_eq!(
        calls[0].path,
        format!("/v1beta/models/{FLASH}:streamGenerateContent")
    );
    assert_eq!(calls[0].query.as_deref(), Some("alt=sse"));
}

#[tokio::test]
async fn include_usage_adds_a_final_usage_chunk() {
    let h = start(&[REAL]).await;
    let mut body = hello(FLASH, true);
    body["stream_options"] = json!({"include_usage": true});
    let frames = sse(h.chat(&body).await).await;
    let n = frames.len();
    assert_eq!(frames[n - 1], "[DONE]");
    let usage = &frames[n - 2];
    assert_eq!(usage["choices"], json!([]));
    let u = &usage["usage"];
    assert!(
        u["prompt_tokens"].as_u64().unwrap() > 0 && u["completion_tokens"].as_u64().unwrap() > 0
    );
    assert_eq!(
        u["total_tokens"].as_u64(),
        Some(u["prompt_tokens"].as_u64().unwrap() + u["completion_tokens"].as_u64().unwrap())
    );
    for f in &frames[..n - 2] {
        assert!(
            f.get("usage").is_some_and(Value::is_null),
            "usage: null on every other chunk: {f}"
        );
    }
}

#[tokio::test]
async fn failures_before_the_first_byte_are_retried_on_another_key() {
    let h = start(&[REAL]).await;
    h.mock.add_rule(
        Rule::new(Reply::preset("overloaded_503"))
            .action("streamGenerateContent")
            .times(1),
    );
    h.mock.add_rule(
        Rule::new(Reply::sse([]))
            .action("streamGenerateContent")
            .times(1),
    );
    let frames = sse(h.chat(&hello(FLASH, true)).await).await;
    assert_eq!(frames.last().unwrap(), "[DONE]");
    assert!(content_of(&frames).contains("Hello there"));
    let calls = h.upstream_calls();
    assert_eq!(calls.len(), 3, "503, an empty stream, then an answer");
    assert_ne!(calls[0].api_key, calls[1].api_key);
}

#[tokio::test]
async fn a_stream_that_keeps_breaking_ends_with_an_inband_error() {
    // Every attempt is cut: the rescues spend the retry budget, then the client is told.
    let h = start(&[REAL, ("MAX_RETRY_NUM", "3")]).await;
    h.mock.add_rule(
        Rule::new(
            Reply::text("one two three four five")
                .chunks(5)
                .cut_after(2),
        )
        .action("streamGenerateContent"),
    );
    let r = h.chat(&hello(FLASH, true)).await;
    assert_eq!(r.status(), 200);
    let frames = sse(r).await;
    assert!(
        !frames.iter().any(|f| f == "[DONE]"),
        "no [DONE] after a broken stream"
    );
    let last = frames.last().unwrap();
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("finish reason"),
        "{last}"
    );
    assert!(last["error"]["type"].is_string());
    assert!(!content_of(&frames).is_empty());
}

#[tokio::test]
async fn a_blocked_prompt_stream_is_a_400_before_any_byte() {
    let h = start(&[REAL]).await;
    // Google's whole answer to a blocked prompt: one event, no candidates.
    let events = fixture_jsonl("gemini/streamGenerateContent.chunks.prompt-blocked.jsonl");
    h.mock
        .add_rule(Rule::new(Reply::sse(events)).action("streamGenerateContent"));
    let (status, v) = json(h.chat(&hello(FLASH, true)).await).await;
    assert_eq!(status, 400);
    assert_eq!(openai_error(&v)["code"], "content_filter");
    assert_eq!(h.upstream_calls().len(), 1);
}

#[tokio::test]
async fn an_empty_finished_stream_is_retried() {
    let h = start(&[REAL]).await;
    let empty = json!({"candidates": [{"content": {"parts": [{"text": ""}], "role": "model"}, "finishReason": "STOP", "index": 0}]});
    h.mock.add_rule(
        Rule::new(Reply::sse([empty]))
            .action("streamGenerateContent")
            .times(1),
    );
    let frames = sse(h.chat(&hello(FLASH, true)).await).await;
    assert_eq!(frames.last().unwrap(), "[DONE]");
    assert!(content_of(&frames).contains("Hello there"));
    assert_eq!(h.upstream_calls().len(), 2);
}

/// Streams Google sent (one event with CRLF framing; a reply after a function response and a
/// 120-event answer full of `\u003c` escapes, both LF-framed) reach an OpenAI client whole:
/// the same text, `stop`, and the usage of the last event.
#[tokio::test]
async fn recorded_sse_streams_reach_openai_clients_whole() {
    let h = start(&[REAL]).await;
    for fixture in [
        "gemini/streamGenerateContent.sse.single-event.crlf.txt",
        "gemini/streamGenerateContent.sse.after-function-response.lf.txt",
        "gemini/streamGenerateContent.sse.long-text-escapes.lf.txt",
    ] {
        let recorded = fixture_text(fixture);
        let events: Vec<Value> = recorded
            .replace("\r\n", "\n")
            .split("\n\n")
            .filter_map(|e| e.trim().strip_prefix("data: "))
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        assert!(!events.is_empty(), "{fixture}");
        let text: String = events
            .iter()
            .flat_map(|e| e["candidates"][0]["content"]["parts"].as_array().unwrap())
            .filter_map(|p| p["text"].as_str())
            .collect();
        let meta = &events.last().unwrap()["usageMetadata"];
        let count = |field: &str| meta[field].as_u64().unwrap_or(0);

        h.mock.reset();
        h.mock.add_rule(
            Rule::new(Reply::raw(200, "text/event-stream", recorded))
                .action("streamGenerateContent"),
        );
        let body = json!({"model": FLASH, "stream": true, "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": fixture}]});
        let frames = sse(h.chat(&body).await).await;
        assert_eq!(frames.last().unwrap(), "[DONE]", "{fixture}");
        assert_eq!(content_of(&frames), text, "{fixture}");
        let finishes: Vec<&Value> = frames
            .iter()
            .filter_map(|f| f["choices"][0].get("finish_reason"))
            .filter(|r| !r.is_null())
            .collect();
        assert_eq!(finishes, [&json!("stop")], "{fixture}");
        let usage = &frames[frames.len() - 2]["usage"];
        assert_eq!(
            usage["prompt_tokens"],
            count("promptTokenCount"),
            "{fixture}"
        );
        assert_eq!(
            usage["completion_tokens"],
            count("candidatesTokenCount") + count("thoughtsTokenCount"),
            "{fixture}"
        );
    }
}

#[tokio::test]
async fn thoughts_stream_as_reasoning_content() {
    let h = start(&[REAL]).await;
    h.mock.add_rule(
        Rule::new(Reply::text("Answer.").chunks(2).thought("Let me think."))
            .action("streamGenerateContent"),
    );
    let frames = sse(h.chat(&hello(FLASH, true)).await).await;
    let reasoning: String = frames
        .iter()
        .filter_map(|f| f["choices"][0]["delta"]["reasoning_content"].as_str())
        .collect();
    assert_eq!(reasoning, "Let me think.");
    assert_eq!(content_of(&frames), "Answer.");
}

#[tokio::test]
async fn chunks_are_forwarded_before_the_upstream_finishes() {
    let h = start(&[REAL]).await;
    // The upstream sends one event and then never another byte: only a proxy that forwards
    // events as they arrive lets the client see it.
    h.mock.add_rule(
        Rule::new(Reply::text("first second").chunks(2).stall_after(1))
            .action("streamGenerateContent"),
    );
    let r = h.chat(&hello(FLASH, true)).await;
    assert_eq!(r.status(), 200);
    let mut body = r.bytes_stream();
    let first = tokio::time::timeout(Duration::from_secs(10), body.next())
        .await
        .expect("first chunk arrives while upstream stalls")
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&first);
    assert!(
        text.starts_with("data: ") && text.contains("first"),
        "{text}"
    );
}

#[tokio::test]
async fn large_events_pass_through() {
    let h = start(&[REAL]).await;
    let big = "x".repeat(300 * 1024);
    h.mock
        .add_rule(Rule::new(Reply::text(&big).chunks(1)).action("streamGenerateContent"));
    let frames = sse(h.chat(&hello(FLASH, true)).await).await;
    assert_eq!(content_of(&frames).len(), big.len());
    assert_eq!(frames.last().unwrap(), "[DONE]");
}

/// A one-shot fake upstream that serves one SSE event and reports when the proxy closes
/// the connection.
async fn closing_upstream() -> (String, tokio::sync::mpsc::Receiver<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::task::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::task::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let mut got = Vec::new();
                loop {
                    let n = sock.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    got.extend_from_slice(&buf[..n]);
                    if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map_or(0, |v| v.trim().parse().unwrap_or(0));
                        if got.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                if got.starts_with(b"GET") {
                    let body = r#"{"models": []}"#;
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                    return;
                }
                let event = r#"data: {"candidates": [{"content": {"parts": [{"text": "partial"}],"role": "model"},"index": 0}]}"#;
                let chunk = format!("{event}\r\n\r\n");
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n",
                    chunk.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
                // Wait for the proxy to hang up.
                while sock.read(&mut buf).await.map(|n| n > 0).unwrap_or(false) {}
                let _ = tx.send(()).await;
            });
        }
    });
    (url, rx)
}

#[tokio::test]
async fn a_client_disconnect_cancels_the_upstream_request() {
    let (url, mut closed) = closing_upstream().await;
    let mock = mock_gemini::MockGemini::start().await.unwrap();
    let h = start_with_mock(mock, &[REAL, ("GEMINI_BASE_URL", &url)]).await;
    let r = h.chat(&hello(FLASH, true)).await;
    assert_eq!(r.status(), 200);
    let mut body = r.bytes_stream();
    let first = tokio::time::timeout(Duration::from_secs(10), body.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&first).contains("partial"));
    drop(body);
    tokio::time::timeout(Duration::from_secs(10), closed.recv())
        .await
        .expect("the proxy closed the upstream connection")
        .unwrap();
}

/// Must show (issue 4): a stream cut by the upstream after 5 of 10 chunks reaches the client
/// as one complete answer — the proxy continues on another key and stitches the rest in.
#[tokio::test]
async fn a_stream_cut_midway_is_rescued_into_one_complete_answer() {
    let h = start(&[REAL]).await;
    let words = [
        "one ", "two ", "three ", "four ", "five ", "six ", "seven ", "eight ", "nine ", "ten.",
    ];
    let full: String = words.concat();
    // The mock splits the text into 10 chunks; the first stream stops after 5 of them.
    h.mock.add_rule(
        Rule::new(Reply::text(full.clone()).chunks(10).cut_after(5))
            .action("streamGenerateContent")
            .times(1),
    );
    let r = h.chat(&hello(FLASH, true)).await;
    assert_eq!(r.status(), 200);
    let frames = sse(r).await;
    let calls = h.upstream_calls();
    assert_eq!(calls.len(), 2, "the cut stream and one continuation");
    let contents = calls[1].body["contents"].as_array().unwrap();
    let sent = contents[contents.len() - 2]["parts"][0]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        contents[contents.len() - 2]["role"],
        "model",
        "the continuation carries what was already sent"
    );
    assert!(
        full.starts_with(&sent) && !sent.is_empty() && sent.len() < full.len(),
        "{sent:?}"
    );
    assert!(
        calls[1]
            .body
            .to_string()
            .contains("Continue exactly where it stopped")
    );
    let content = content_of(&frames);
    assert!(content.starts_with(&sent), "{content:?}");
    assert!(
        content.len() > sent.len(),
        "the rest was stitched in: {content:?}"
    );
    assert_eq!(
        frames
            .iter()
            .filter(|f| f["choices"][0]["delta"].get("role").is_some())
            .count(),
        1,
        "one answer, one role"
    );
    assert_eq!(
        frames
            .iter()
            .filter(|f| !f["choices"][0]["finish_reason"].is_null())
            .count(),
        1
    );
    assert_eq!(frames.last().unwrap(), "[DONE]");
    assert!(!frames.iter().any(|f| f.get("error").is_some()));
}
