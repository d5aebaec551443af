//! What hajimi writes to OpenAI clients has the shape of what real OpenAI-compatible APIs
//! write (recorded from OpenAI, Google's own OpenAI endpoint, DeepSeek and Groq): every field
//! those answers carry is present with the same JSON type, except the fields listed as not
//! sent, each with its reason. SDKs and front-ends are written against those answers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use mock_gemini::{CallSpec, Reply, Rule};
use serde_json::{Value, json};

/// Fields of real answers that hajimi does not send, by path (`choices.message.refusal`;
/// array elements share their array's path).
#[rustfmt::skip]
const NOT_SENT: &[(&str, &str)] = &[
    ("system_fingerprint", "no backend configuration to fingerprint"),
    ("service_tier", "OpenAI's billing tier"),
    ("obfuscation", "OpenAI's padding against length side channels"),
    ("choices.message.refusal", "Gemini has no separate refusal text"),
    ("choices.message.annotations", "sent with search grounding only"),
    ("usage.prompt_tokens_details.audio_tokens", "no audio"),
    ("usage.completion_tokens_details.audio_tokens", "no audio"),
    ("usage.completion_tokens_details.accepted_prediction_tokens", "no predicted outputs"),
    ("usage.completion_tokens_details.rejected_prediction_tokens", "no predicted outputs"),
    ("usage.prompt_cache_hit_tokens", "DeepSeek's own counter"),
    ("usage.prompt_cache_miss_tokens", "DeepSeek's own counter"),
];

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Where `ours` differs in shape from `recorded`: a field `recorded` has that `ours` lacks, or
/// one of another JSON type. A `null` in the recording accepts any value (it is an optional
/// field that recording left unset); arrays are compared element by element, as far as both
/// go.
fn differences(ours: &Value, recorded: &Value, path: &str, out: &mut Vec<String>) {
    match (ours, recorded) {
        (_, Value::Null) => {}
        (Value::Object(o), Value::Object(r)) => {
            for (name, value) in r {
                let at = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                };
                if NOT_SENT.iter().any(|(p, _)| *p == at) {
                    continue;
                }
                match o.get(name) {
                    None => out.push(format!("{at}: missing (recorded: {value})")),
                    Some(mine) => differences(mine, value, &at, out),
                }
            }
        }
        (Value::Array(o), Value::Array(r)) => {
            for (mine, value) in o.iter().zip(r) {
                differences(mine, value, path, out);
            }
        }
        (o, r) if kind(o) != kind(r) => {
            out.push(format!(
                "{path}: {} where the recording has {}",
                kind(o),
                kind(r)
            ));
        }
        _ => {}
    }
}

#[track_caller]
fn assert_shaped_like(ours: &Value, recorded: &Value, what: &str) {
    let mut out = Vec::new();
    differences(ours, recorded, "", &mut out);
    assert!(out.is_empty(), "{what}:\n{}\nours: {ours}", out.join("\n"));
}

/// The first event of a stream that `pick` accepts.
fn first<'a>(events: &'a [Value], what: &str, pick: impl Fn(&Value) -> bool) -> &'a Value {
    events
        .iter()
        .find(|e| pick(e))
        .unwrap_or_else(|| panic!("no {what} event in {events:#?}"))
}

fn delta(e: &Value) -> &Value {
    &e["choices"][0]["delta"]
}

fn has_text(v: &Value) -> bool {
    v.as_str().is_some_and(|s| !s.is_empty())
}

#[tokio::test]
async fn non_stream_answers_are_shaped_like_openai_google_and_deepseek() {
    let h = start(&[]).await;
    let (status, plain) = json(h.chat(&hello(FLASH, false)).await).await;
    assert_eq!(status, 200, "{plain}");
    for recording in [
        "openai/chat.completions.response.text.json",
        "openai/chat.completions.response.google-openai-compat.json",
    ] {
        assert_shaped_like(&plain, &fixture_json(recording), recording);
    }

    h.mock.add_rule(
        Rule::new(Reply::text("Three.").thought("s-t-r-a-w-b-e-r-r-y: three r."))
            .action("generateContent"),
    );
    let body = json!({"model": FLASH, "messages": [{"role": "user", "content": "How many r in strawberry?"}]});
    let (status, reasoned) = json(h.chat(&body).await).await;
    assert_eq!(status, 200, "{reasoned}");
    let recording = "openai/chat.completions.response.reasoning-content.deepseek.json";
    assert_shaped_like(&reasoned, &fixture_json(recording), recording);
}

#[tokio::test]
async fn stream_chunks_are_shaped_like_openai_deepseek_and_groq() {
    let h = start(&[("FAKE_STREAMING", "false")]).await;
    let mut body = hello(FLASH, true);
    body["stream_options"] = json!({"include_usage": true});
    let ours = sse(h.chat(&body).await).await;
    let recording = "openai/chat.completions.chunks.text-include-usage.jsonl";
    let openai = fixture_jsonl(recording);
    let content = |e: &Value| has_text(&delta(e)["content"]);
    let finish = |e: &Value| e["choices"][0]["finish_reason"].is_string();
    let usage_only = |e: &Value| e["choices"] == json!([]) && e["usage"].is_object();
    for (what, pick) in [
        ("content", &content as &dyn Fn(&Value) -> bool),
        ("finish", &finish),
        ("usage", &usage_only),
    ] {
        assert_shaped_like(
            first(&ours, what, pick),
            first(&openai, what, pick),
            &format!("{recording}, {what} chunk"),
        );
    }

    // Thoughts, then a tool call: DeepSeek streams reasoning_content and tool_calls deltas,
    // Groq sends a whole tool call in one delta, as hajimi does.
    h.mock.add_rule(
        Rule::new(
            Reply::text("Looking.")
                .chunks(1)
                .thought("The user wants the weather."),
        )
        .action("streamGenerateContent")
        .times(1),
    );
    let ours = sse(h.chat(&body).await).await;
    let reasoning = |e: &Value| has_text(&delta(e)["reasoning_content"]);
    let recording = "openai/chat.completions.chunks.reasoning-content-tool-call.deepseek.jsonl";
    let deepseek = fixture_jsonl(recording);
    assert_shaped_like(
        first(&ours, "reasoning", reasoning),
        first(&deepseek, "reasoning", reasoning),
        &format!("{recording}, reasoning chunk"),
    );

    h.mock.add_rule(
        Rule::new(Reply::function_calls([CallSpec::new("weather", json!({}))]))
            .action("streamGenerateContent")
            .times(1),
    );
    let mut body = json!({"model": FLASH, "stream": true, "messages": [{"role": "user", "content": "Weather?"}],
        "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object", "properties": {}}}}]});
    body["stream_options"] = json!({"include_usage": true});
    let ours = sse(h.chat(&body).await).await;
    let tool_call = |e: &Value| delta(e)["tool_calls"].is_array();
    for recording in [
        "openai/chat.completions.chunks.reasoning-content-tool-call.deepseek.jsonl",
        "openai/chat.completions.chunks.tool-call-single-chunk.groq.jsonl",
    ] {
        let recorded = fixture_jsonl(recording);
        assert_shaped_like(
            first(&ours, "tool call", tool_call),
            first(&recorded, "tool call", tool_call),
            &format!("{recording}, tool-call chunk"),
        );
    }
    // The finish chunk's choice (both recorders put the usage into that chunk, where OpenAI
    // sends it in a chunk of its own, compared above; DeepSeek adds an empty content).
    let recording = "openai/chat.completions.chunks.tool-call-single-chunk.groq.jsonl";
    let groq = fixture_jsonl(recording);
    let calls_finish = |e: &Value| e["choices"][0]["finish_reason"] == "tool_calls";
    assert_shaped_like(
        &first(&ours, "tool-call finish", calls_finish)["choices"],
        &first(&groq, "tool-call finish", calls_finish)["choices"],
        &format!("{recording}, finish chunk"),
    );
}

/// OpenAI's error envelope: `message`, `type`, `param`, `code`, the last two a string or
/// null (as the recorded errors show).
#[tokio::test]
async fn error_envelopes_are_shaped_like_openai() {
    let recordings = [
        "openai/error.400.unsupported-parameter-max-tokens.json",
        "openai/error.400.unsupported-parameter-temperature-code-null.json",
        "openai/error.429.insufficient-quota.json",
    ];
    let mut kinds: std::collections::BTreeMap<String, std::collections::BTreeSet<&str>> =
        Default::default();
    for recording in recordings {
        let v = fixture_json(recording);
        for (name, value) in v["error"].as_object().unwrap() {
            kinds.entry(name.clone()).or_default().insert(kind(value));
        }
    }
    assert!(kinds["code"].contains("null") && kinds["code"].contains("string"));

    let h = start(&[]).await;
    h.mock.add_rule(
        Rule::new(Reply::google_error(
            400,
            "INVALID_ARGUMENT",
            "Request contains an invalid argument.",
        ))
        .action("generateContent"),
    );
    let answers = [
        h.chat(&json!({"model": FLASH})).await,
        h.chat(&hello(FLASH, false)).await,
        h.http
            .post(h.url("/v1/chat/completions"))
            .bearer_auth("wrong")
            .json(&hello(FLASH, false))
            .send()
            .await
            .unwrap(),
    ];
    for r in answers {
        let (status, v) = json(r).await;
        assert!(status >= 400, "{v}");
        let error = v["error"].as_object().unwrap();
        let names: std::collections::BTreeSet<&String> = error.keys().collect();
        assert_eq!(names, kinds.keys().collect(), "{v}");
        for (name, value) in error {
            assert!(
                kinds[name].contains(kind(value)),
                "error.{name} is {} in {v}; OpenAI sends {:?}",
                kind(value),
                kinds[name]
            );
        }
    }
}
