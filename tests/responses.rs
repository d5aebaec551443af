//! The OpenAI Responses dialect end to end (`POST /v1/responses`, `GET /v1/responses/{id}`)
//! against the mock: complete answers, the typed stream events, tool round trips with call
//! ids, reasoning and signatures, stored responses behind `previous_response_id` (across a
//! restart with storage on), hosted tools, keep-alives and errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::*;
use hajimi::config::{CliOverrides, Config};
use mock_gemini::{CallSpec, MockGemini, Reply, Rule};
use serde_json::{Value, json};

const GEMINI3: &str = "gemini-3-pro-preview";
const REAL: (&str, &str) = ("FAKE_STREAMING", "false");

async fn create(h: &Harness, body: &Value) -> (u16, Value) {
    json(h.post("/v1/responses", body).await).await
}

/// The events of a Responses stream: `(event name, data)`, keep-alive comments skipped.
fn events(text: &str) -> Vec<(String, Value)> {
    assert!(text.ends_with("\n\n"), "ends with a blank line: {text:?}");
    text.split("\n\n")
        .filter(|f| !f.is_empty() && !f.starts_with(':'))
        .map(|f| {
            let (event, data) = f.split_once('\n').expect("event and data lines");
            let name = event.strip_prefix("event: ").expect("event line");
            let data: Value =
                serde_json::from_str(data.strip_prefix("data: ").expect("data line")).unwrap();
            assert_eq!(data["type"], name, "the event name is the payload's type");
            (name.to_owned(), data)
        })
        .collect()
}

fn names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(n, _)| n.as_str()).collect()
}

fn weather_tool() -> Value {
    json!({"type": "function", "name": "get_weather", "description": "Current weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}})
}

fn output_of<'a>(response: &'a Value, kind: &str) -> Vec<&'a Value> {
    response["output"]
        .as_array()
        .expect("output")
        .iter()
        .filter(|i| i["type"] == kind)
        .collect()
}

fn output_text(response: &Value) -> String {
    output_of(response, "message")
        .iter()
        .flat_map(|m| m["content"].as_array().into_iter().flatten())
        .filter_map(|c| c["text"].as_str())
        .collect()
}

#[tokio::test]
async fn a_response_is_created_with_its_output_and_usage() {
    let h = start(&[]).await;
    let (status, r) = create(
        &h,
        &json!({"model": FLASH, "instructions": "Be brief.", "input": "ping 42", "max_output_tokens": 100}),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    assert!(r["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(r["object"], "response");
    assert_eq!(r["status"], "completed");
    assert_eq!(r["model"], FLASH);
    assert!(output_text(&r).contains("ping 42"), "{r}");
    let usage = &r["usage"];
    assert!(usage["input_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["input_tokens"].as_u64().unwrap() + usage["output_tokens"].as_u64().unwrap()
    );
    let up = &h.upstream_calls()[0].body;
    assert_eq!(up["systemInstruction"]["parts"][0]["text"], "Be brief.");
    assert_eq!(up["contents"][0]["parts"][0]["text"], "ping 42");
    assert_eq!(up["generationConfig"]["maxOutputTokens"], 100);
    // `/responses` without `/v1` too.
    let (status, _) = json(
        h.post("/responses", &json!({"model": FLASH, "input": "x"}))
            .await,
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_real_stream_is_the_typed_event_sequence_with_sequence_numbers() {
    let h = start(&[REAL]).await;
    h.mock.add_rule(
        Rule::new(Reply::text("The sky is blue today.").chunks(3)).action("streamGenerateContent"),
    );
    let r = h
        .post(
            "/v1/responses",
            &json!({"model": FLASH, "input": "sky?", "stream": true}),
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
    assert!(!text.contains("[DONE]"), "no [DONE] in Responses streams");
    let ev = events(&text);
    let n = names(&ev);
    assert_eq!(
        n[..5],
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta"
        ]
    );
    assert_eq!(
        n[n.len() - 5..],
        [
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    for (i, (_, data)) in ev.iter().enumerate() {
        assert_eq!(data["sequence_number"], i, "numbered from 0");
    }
    let deltas: String = ev
        .iter()
        .filter(|(n, _)| n == "response.output_text.delta")
        .map(|(_, d)| d["delta"].as_str().unwrap())
        .collect();
    assert_eq!(deltas, "The sky is blue today.");
    let done = &ev.last().unwrap().1["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(output_text(done), "The sky is blue today.");
    assert_eq!(done["id"], ev[0].1["response"]["id"], "one response id");
    assert_eq!(
        h.upstream_calls()[0].action.as_deref(),
        Some("streamGenerateContent")
    );
}
