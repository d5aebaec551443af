//! Anthropic dialect tests against recorded payloads: Claude Code's real request
//! (`tests/fixtures/anthropic/messages.request.claude-code-*.json`), Gemini answers and
//! streams (`tests/fixtures/gemini/`), and golden renderings under
//! `tests/fixtures/golden/` (regenerated with `HAJIMI_UPDATE_GOLDEN=1`; the Python SDK
//! check parses them).

use serde_json::{Value, json};

use super::answer::{AnswerOptions, Blocks, to_message_with};
use super::*;
use crate::translate::dialect::Context;
use crate::translate::history::testing::{fixture_text, golden};
use crate::translate::history::{IdMint, SKIP_VALIDATOR, carry};
use crate::wire::anthropic::MessagesRequest;
use crate::wire::gemini::GenerateContentResponse;

fn request(body: Value) -> MessagesRequest {
    serde_json::from_value(body).expect("messages request")
}

fn translate(body: Value) -> (Translated, Value) {
    translate_with(body, &Context::default())
}

fn translate_with(body: Value, opts: &Context<'_>) -> (Translated, Value) {
    let t = to_gemini(&request(body), opts).expect("translates");
    let v = serde_json::to_value(&t.request).expect("json");
    (t, v)
}

fn response(v: Value) -> GenerateContentResponse {
    serde_json::from_value(v).expect("gemini response")
}

fn events_jsonl(path: &str) -> Vec<GenerateContentResponse> {
    fixture_text(path)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("event"))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Requests

#[test]
fn claude_code_tool_loop_translates_with_its_signature_on_the_call() {
    let body: Value = serde_json::from_str(&fixture_text(
        "anthropic/messages.request.claude-code-2.1.332.tool-loop.json",
    ))
    .expect("json");
    let (t, g) = translate(body.clone());
    assert_eq!(t.upstream_model, "gemini-3-pro-preview");
    assert!(t.thinking_blocks, "Claude Code sends adaptive thinking");
    // adaptive + display omitted + effort high: the level, no thought text.
    assert_eq!(
        g["generationConfig"],
        json!({"maxOutputTokens": 32000, "thinkingConfig": {"thinkingLevel": "HIGH"}})
    );
    let system = g["systemInstruction"]["parts"].as_array().expect("system");
    assert_eq!(system.len(), body["system"].as_array().map_or(0, Vec::len));
    let decls = g["tools"][0]["functionDeclarations"]
        .as_array()
        .expect("decls");
    let names: Vec<&str> = decls.iter().filter_map(|d| d["name"].as_str()).collect();
    assert!(
        names.contains(&"Read") && names.contains(&"Bash"),
        "{names:?}"
    );
    assert_eq!(decls.len(), body["tools"].as_array().map_or(0, Vec::len));
    let c = g["contents"].as_array().expect("contents");
    assert_eq!(c.len(), 3, "user (+ the system turn), model call, results");
    assert_eq!(c[0]["role"], "user");
    assert!(
        c[0]["parts"][2]["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("# Environment")),
        "the mid-conversation system turn stays in place as user text"
    );
    assert_eq!(
        c[1],
        json!({"role": "model", "parts": [{
            "functionCall": {"name": "Read", "args": {"file_path": "/tmp/ha-capture/cc/hello.txt"}},
            "thoughtSignature": "T05MWVNJRw=="
        }]}),
        "the thinking block right before the call carries its signature; no ids upstream"
    );
    assert_eq!(
        c[2],
        json!({"role": "user", "parts": [{"functionResponse": {
            "name": "Read", "response": {"output": "1\thello from the file\n2\t"}}}]})
    );
}

fn tool_loop(model: &str, sig_model: &str) -> Value {
    json!({
        "model": model, "max_tokens": 1024,
        "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "tools": [
            {"name": "get_weather", "description": "Weather", "input_schema": {"type": "object",
              "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false}},
            {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}
        ],
        "tool_choice": {"type": "auto"},
        "messages": [
            {"role": "user", "content": "Weather and time in Paris?"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Two tools.", "signature": ""},
                {"type": "text", "text": "Checking."},
                {"type": "thinking", "thinking": "", "signature": carry(sig_model, "U0lHLTE=")},
                {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_b", "name": "get_time", "input": {}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_b", "content": [{"type": "text", "text": "12:00"}]},
                {"type": "tool_result", "tool_use_id": "toolu_a", "content": "{\"tempC\": 18}"},
                {"type": "text", "text": "And tomorrow?"}
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "", "signature": carry(sig_model, "U0lHLTI=")},
                {"type": "tool_use", "id": "toolu_c", "name": "get_weather", "input": {"city": "Paris", "day": 1}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_c", "content": "rate limited", "is_error": true}
            ]}
        ]
    })
}

#[test]
fn gemini3_tool_loop_matches_the_golden_request() {
    let (_, g) = translate(tool_loop("gemini-3-pro-preview", "gemini-3-pro-preview"));
    let text = serde_json::to_string_pretty(&g).expect("json") + "\n";
    golden("anthropic.request.gemini3-tool-loop.json", &text);
    // What the golden file shows, spelled out.
    assert_eq!(
        g["contents"][1]["parts"][0],
        json!({"text": "Checking."}),
        "thought text is not sent back"
    );
    assert_eq!(g["contents"][1]["parts"][1]["thoughtSignature"], "U0lHLTE=");
    assert!(
        g["contents"][1]["parts"][2]
            .get("thoughtSignature")
            .is_none(),
        "only the first call"
    );
    assert_eq!(
        g["contents"][2]["parts"][0]["functionResponse"]["name"], "get_weather",
        "call order"
    );
    assert_eq!(
        g["contents"][2]["parts"][1]["functionResponse"]["response"],
        json!({"output": "12:00"})
    );
    assert_eq!(
        g["contents"][3],
        json!({"role": "user", "parts": [{"text": "And tomorrow?"}]})
    );
    assert_eq!(g["contents"][4]["parts"][0]["thoughtSignature"], "U0lHLTI=");
    assert_eq!(
        g["contents"][5]["parts"][0]["functionResponse"]["response"],
        json!({"error": "rate limited"})
    );
}

#[test]
fn signatures_from_another_model_or_missing_are_recalled_or_replaced() {
    let (_, g) = translate(tool_loop("gemini-3-flash-preview", "gemini-3-pro-preview"));
    assert_eq!(
        g["contents"][1]["parts"][1]["thoughtSignature"], SKIP_VALIDATOR,
        "a foreign signature is dropped; the first call gets the placeholder"
    );
    assert!(
        g["contents"][1]["parts"][0]
            .get("thoughtSignature")
            .is_none()
    );
    let recall = |id: &str, _: &str| (id == "toolu_c").then(|| "UkVNRU1CRVJFRA==".to_owned());
    let opts = Context {
        recall_signature: &recall,
        ..Context::default()
    };
    let (_, g) = translate_with(
        tool_loop("gemini-3-flash-preview", "gemini-3-pro-preview"),
        &opts,
    );
    assert_eq!(
        g["contents"][4]["parts"][0]["thoughtSignature"],
        "UkVNRU1CRVJFRA=="
    );
    let (_, g) = translate(tool_loop("gemini-2.5-flash", "gemini-3-pro-preview"));
    assert!(
        g["contents"][1]["parts"][1]
            .get("thoughtSignature")
            .is_none(),
        "2.5 needs no placeholder"
    );
}

#[test]
fn tool_results_need_a_known_call() {
    let body = json!({"model": "gemini-2.5-flash", "max_tokens": 10, "messages": [
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x", "content": "1"}]}]});
    let err = to_gemini(&request(body), &Context::default()).expect_err("unknown id");
    assert!(err.to_string().contains("toolu_x"));
}

#[test]
fn media_blocks_become_inline_data_or_fetch_markers() {
    let (_, g) = translate(
        json!({"model": "gemini-2.5-flash", "max_tokens": 10, "messages": [
        {"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}},
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain words"}},
            {"type": "text", "text": "Describe."}
        ]}]}),
    );
    assert_eq!(
        g["contents"][0]["parts"],
        json!([
            {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
            {"fileData": {"fileUri": "https://example.com/cat.jpg"}},
            {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
            {"text": "plain words"},
            {"text": "Describe."}
        ])
    );
    let body = json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "file", "file_id": "file_1"}}]}]});
    assert!(to_gemini(&request(body), &Context::default()).is_err());
}

#[test]
fn tool_choice_and_hosted_tools() {
    let mut body = tool_loop("gemini-2.5-flash", "gemini-2.5-flash");
    for (choice, expected) in [
        (json!({"type": "any"}), json!({"mode": "ANY"})),
        (
            json!({"type": "tool", "name": "get_time"}),
            json!({"mode": "ANY", "allowedFunctionNames": ["get_time"]}),
        ),
        (json!({"type": "none"}), json!({"mode": "NONE"})),
    ] {
        body["tool_choice"] = choice;
        assert_eq!(
            translate(body.clone()).1["toolConfig"]["functionCallingConfig"],
            expected
        );
    }
    body["tools"].as_array_mut().expect("tools").extend([
        json!({"type": "web_search_20250305", "name": "web_search", "max_uses": 3}),
        json!({"type": "bash_20250124", "name": "bash"}),
    ]);
    let (_, g) = translate(body.clone());
    assert_eq!(
        g["tools"].as_array().map(Vec::len),
        Some(1),
        "2.5 cannot mix search and functions; bash dropped"
    );
    body["model"] = json!("gemini-3-pro-preview");
    let (_, g) = translate(body);
    assert_eq!(g["tools"][1], json!({"googleSearch": {}}));
    let decls = &g["tools"][0]["functionDeclarations"];
    assert_eq!(
        decls[0]["parametersJsonSchema"]["additionalProperties"],
        false
    );
    assert!(
        decls[1].get("parametersJsonSchema").is_none(),
        "no-argument tools omit parameters"
    );
}

#[test]
fn thinking_maps_to_the_effort_tables() {
    let cfg = |model: &str, thinking: Value, effort: Option<&str>| {
        let mut body = json!({"model": model, "max_tokens": 100, "messages": [{"role": "user", "content": "x"}]});
        if !thinking.is_null() {
            body["thinking"] = thinking;
        }
        if let Some(e) = effort {
            body["output_config"] = json!({"effort": e});
        }
        translate(body).1["generationConfig"]["thinkingConfig"].clone()
    };
    assert_eq!(
        cfg("gemini-2.5-flash", Value::Null, None),
        Value::Null,
        "no thinking, no thoughts"
    );
    assert_eq!(
        cfg(
            "gemini-2.5-flash",
            json!({"type": "enabled", "budget_tokens": 2048}),
            None
        ),
        json!({"thinkingBudget": 2048, "includeThoughts": true})
    );
    assert_eq!(
        cfg("gemini-2.5-pro", json!({"type": "disabled"}), None),
        json!({"thinkingBudget": 128}),
        "2.5 Pro cannot turn thinking off"
    );
    assert_eq!(
        cfg("gemini-2.5-flash", json!({"type": "disabled"}), None),
        json!({"thinkingBudget": 0})
    );
    assert_eq!(
        cfg(
            "gemini-3-pro-preview",
            json!({"type": "enabled", "budget_tokens": 1024}),
            None
        ),
        json!({"thinkingLevel": "LOW", "includeThoughts": true})
    );
    assert_eq!(
        cfg(
            "gemini-3-flash-preview",
            json!({"type": "adaptive"}),
            Some("medium")
        ),
        json!({"thinkingLevel": "MEDIUM", "includeThoughts": true})
    );
    assert_eq!(
        cfg(
            "gemini-3-flash-preview",
            json!({"type": "adaptive"}),
            Some("ultra")
        ),
        json!({"includeThoughts": true})
    );
    assert_eq!(
        cfg(
            "gemini-2.0-flash",
            json!({"type": "enabled", "budget_tokens": 2048}),
            None
        ),
        Value::Null
    );
}

#[test]
fn generation_parameters_are_passed_as_sent() {
    let (t, g) = translate(
        json!({"model": "models/gemini-2.5-flash", "max_tokens": 256,
        "temperature": 0.2, "top_p": 0.9, "top_k": 40, "stop_sequences": ["\n\nHuman:", ""],
        "metadata": {"user_id": "u-1"},
        "output_config": {"format": {"type": "json_schema", "schema": {"type": "object", "properties": {"a": {"type": "integer"}}}}},
        "messages": [{"role": "user", "content": "x"}]}),
    );
    assert_eq!(t.upstream_model, "gemini-2.5-flash");
    assert!(!t.thinking_blocks);
    assert_eq!(
        g["generationConfig"],
        json!({"temperature": 0.2, "topP": 0.9, "topK": 40, "maxOutputTokens": 256,
               "stopSequences": ["\n\nHuman:"], "responseMimeType": "application/json",
               "responseJsonSchema": {"type": "object", "properties": {"a": {"type": "integer"}}}})
    );
    assert_eq!(g["safetySettings"][0]["threshold"], "OFF");
}

#[test]
fn count_tokens_wraps_the_request() {
    let (t, _) = translate(tool_loop("gemini-2.5-flash", "gemini-2.5-flash"));
    let counting = crate::translate::dialect::Counting {
        dialect: "anthropic",
        requested: t.upstream_model.clone(),
        model: t.upstream_model,
        request: t.request,
    };
    let body = counting.body();
    let inner = &body["generateContentRequest"];
    assert_eq!(inner["model"], "models/gemini-2.5-flash");
    assert!(inner["systemInstruction"].is_object() && inner["tools"].is_array());
    assert!(inner.get("generationConfig").is_none() && inner.get("safetySettings").is_none());
    let gemini: Value =
        serde_json::from_str(&fixture_text("gemini/countTokens.response.json")).expect("json");
    assert_eq!(
        serde_json::to_value(count_tokens_answer(&gemini)).expect("json"),
        json!({"input_tokens": 11})
    );
}

// ---------------------------------------------------------------------------------------
// Complete answers

fn answer_opts(thinking_blocks: bool, upstream: &str) -> AnswerOptions {
    AnswerOptions {
        id: "msg_test".into(),
        model: "claude-sonnet-4-5".into(),
        upstream_model: upstream.into(),
        thinking_blocks,
    }
}

fn answer(
    resp: &GenerateContentResponse,
    thinking: bool,
    upstream: &str,
) -> (Value, Vec<(String, String)>) {
    let blocks = Blocks::new(upstream, thinking).with_ids(IdMint::Sequential(0));
    let a = to_message_with(resp, &answer_opts(thinking, upstream), blocks);
    (
        serde_json::to_value(&a.message).expect("json"),
        a.signatures,
    )
}

#[test]
fn a_text_answer_is_a_message_shaped_like_anthropics() {
    let resp = response(
        serde_json::from_str(&fixture_text(
            "gemini/generateContent.response.gemini3-text-thought-signature.json",
        ))
        .expect("json"),
    );
    let (m, sigs) = answer(&resp, true, "gemini-3-pro-preview");
    let text = resp.candidates.as_deref().unwrap_or_default()[0].parts()[0]
        .text
        .clone();
    assert_eq!(
        m,
        json!({"id": "msg_test", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
               "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": null,
               "usage": {"input_tokens": 9, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 272}}),
        "a text signature is not forwarded"
    );
    assert!(sigs.is_empty());
    // Same keys as Anthropic's own answer.
    let real: Value =
        serde_json::from_str(&fixture_text("anthropic/messages.response.text.json")).expect("json");
    for key in [
        "id",
        "type",
        "role",
        "model",
        "content",
        "stop_reason",
        "stop_sequence",
        "usage",
    ] {
        assert!(real.get(key).is_some() && m.get(key).is_some(), "{key}");
    }
}

#[test]
fn a_function_call_signature_travels_in_a_thinking_block_when_thinking_is_on() {
    let resp = response(
        serde_json::from_str(&fixture_text(
            "gemini/generateContent.response.function-call-thought-signature.json",
        ))
        .expect("json"),
    );
    let sig = resp.candidates.as_deref().unwrap_or_default()[0].parts()[0]
        .thought_signature
        .clone()
        .expect("signature");
    let (m, sigs) = answer(&resp, true, "gemini-2.5-flash");
    golden(
        "anthropic.message.tool-use.json",
        &(serde_json::to_string_pretty(&m).expect("json") + "\n"),
    );
    let id = "toolu_000000000000000000000001";
    assert_eq!(
        m["content"],
        json!([
            {"type": "thinking", "thinking": "", "signature": carry("gemini-2.5-flash", &sig)},
            {"type": "tool_use", "id": id, "name": "concatStringFunction", "input": {"firstString": "hello", "secondString": "world"}}
        ])
    );
    assert_eq!(m["stop_reason"], "tool_use");
    assert_eq!(
        m["usage"]["output_tokens"],
        22 + 69,
        "thoughts count as output"
    );
    assert_eq!(
        sigs,
        vec![(id.to_owned(), sig.clone())],
        "also remembered by id"
    );
    let (m, sigs) = answer(&resp, false, "gemini-2.5-flash");
    assert_eq!(
        m["content"].as_array().map(Vec::len),
        Some(1),
        "no thinking block unless asked"
    );
    assert_eq!(sigs.len(), 1);
}

#[test]
fn limits_and_blocks_map_to_stop_reasons() {
    let resp = response(
        serde_json::from_str(&fixture_text(
            "gemini/generateContent.response.max-tokens-no-parts.json",
        ))
        .expect("json"),
    );
    let (m, _) = answer(&resp, false, "gemini-2.5-flash");
    assert_eq!(m["stop_reason"], "max_tokens");
    assert_eq!(m["content"], json!([]));
    let safety = response(
        json!({"candidates": [{"content": {"parts": [{"text": "Partial"}]}, "finishReason": "SAFETY"}]}),
    );
    assert_eq!(answer(&safety, false, "m").0["stop_reason"], "refusal");
    let blocked = response(
        serde_json::from_str(&fixture_text(
            "gemini/generateContent.response.prompt-blocked-safety.json",
        ))
        .expect("json"),
    );
    assert_eq!(answer(&blocked, false, "m").0["stop_reason"], "refusal");
    let cached = response(
        json!({"candidates": [{"content": {"parts": [{"text": "a"}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 100, "cachedContentTokenCount": 60, "candidatesTokenCount": 5, "thoughtsTokenCount": 7}}),
    );
    assert_eq!(
        answer(&cached, false, "m").0["usage"],
        json!({"input_tokens": 40, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 60, "output_tokens": 12})
    );
}

// ---------------------------------------------------------------------------------------
// Streams

fn stream(
    events: &[GenerateContentResponse],
    thinking: bool,
    upstream: &str,
) -> (String, Vec<(String, Value)>) {
    let mut s = MessageStream::new(
        "msg_test".into(),
        "claude-sonnet-4-5".into(),
        upstream,
        thinking,
    )
    .with_ids(IdMint::Sequential(0));
    let mut out = Vec::new();
    for e in events {
        s.map_event(e, &mut out);
    }
    assert!(s.is_finished());
    s.finish(&mut out);
    let raw: String = out
        .iter()
        .map(|b| std::str::from_utf8(b).expect("utf8"))
        .collect();
    (raw.clone(), parse_sse(&raw))
}

/// `(event name, payload)` per frame, checking the framing and that the name is the type.
pub(crate) fn parse_sse(raw: &str) -> Vec<(String, Value)> {
    assert!(raw.ends_with("\n\n"));
    raw.trim_end_matches('\n')
        .split("\n\n")
        .map(|frame| {
            let (event, data) = frame.split_once('\n').expect("two lines");
            let name = event.strip_prefix("event: ").expect("event line");
            let payload: Value =
                serde_json::from_str(data.strip_prefix("data: ").expect("data line"))
                    .expect("json");
            assert_eq!(payload["type"], name, "{frame}");
            (name.to_owned(), payload)
        })
        .collect()
}

fn names(frames: &[(String, Value)]) -> Vec<&str> {
    frames.iter().map(|(n, _)| n.as_str()).collect()
}

#[test]
fn a_text_stream_has_the_exact_event_sequence() {
    let events =
        events_jsonl("gemini/streamGenerateContent.chunks.gemini3-empty-text-signature.jsonl");
    let (raw, frames) = stream(&events, false, "gemini-3-pro-preview");
    golden("anthropic.stream.text.sse", &raw);
    assert_eq!(
        names(&frames),
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(
        frames[0].1,
        json!({"type": "message_start", "message": {"id": "msg_test", "type": "message", "role": "assistant",
            "model": "claude-sonnet-4-5", "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 9, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 0}}})
    );
    assert_eq!(
        frames[1].1,
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
    );
    assert_eq!(
        frames[2].1["delta"],
        json!({"type": "text_delta", "text": "There are **3**"})
    );
    assert_eq!(
        frames[4].1,
        json!({"type": "content_block_stop", "index": 0})
    );
    assert_eq!(
        frames[5].1,
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
               "usage": {"input_tokens": 9, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 208}})
    );
    assert_eq!(frames[6].1, json!({"type": "message_stop"}));
    // The same shape as Anthropic's recorded stream.
    let real: Vec<String> = fixture_text("anthropic/messages.stream.text.jsonl")
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] != "ping")
        .filter_map(|v| v["type"].as_str().map(str::to_owned))
        .collect();
    let mut ours: Vec<&str> = names(&frames);
    ours.dedup();
    let mut theirs: Vec<&str> = real.iter().map(String::as_str).collect();
    theirs.dedup();
    assert_eq!(ours, theirs);
}

fn thinking_then_call() -> Vec<GenerateContentResponse> {
    vec![
        response(
            json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "The user wants", "thought": true}]}, "index": 0}],
            "usageMetadata": {"promptTokenCount": 20, "totalTokenCount": 20}}),
        ),
        response(
            json!({"candidates": [{"content": {"role": "model", "parts": [{"text": " the weather.", "thought": true}]}, "index": 0}]}),
        ),
        response(
            json!({"candidates": [{"content": {"role": "model", "parts": [
            {"functionCall": {"name": "weather", "args": {"location": "Paris"}}, "thoughtSignature": "U0lHTkFUVVJF"},
            {"functionCall": {"name": "clock"}}
        ]}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 20, "candidatesTokenCount": 10, "thoughtsTokenCount": 30, "totalTokenCount": 60}}),
        ),
    ]
}

#[test]
fn thinking_with_a_signature_then_tool_calls_stream_in_order() {
    let (raw, frames) = stream(&thinking_then_call(), true, "gemini-3-pro-preview");
    golden("anthropic.stream.thinking-tool-use.sse", &raw);
    assert_eq!(
        names(&frames),
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(
        frames[1].1["content_block"],
        json!({"type": "thinking", "thinking": "", "signature": ""})
    );
    assert_eq!(
        frames[2].1["delta"],
        json!({"type": "thinking_delta", "thinking": "The user wants"})
    );
    assert_eq!(
        frames[4].1["delta"],
        json!({"type": "signature_delta", "signature": "hjm1:gemini-3-pro-preview:U0lHTkFUVVJF"}),
        "the signature closes the thinking block"
    );
    assert_eq!(
        frames[6].1,
        json!({"type": "content_block_start", "index": 1, "content_block":
            {"type": "tool_use", "id": "toolu_000000000000000000000001", "name": "weather", "input": {}}})
    );
    assert_eq!(
        frames[7].1["delta"],
        json!({"type": "input_json_delta", "partial_json": "{\"location\":\"Paris\"}"})
    );
    assert_eq!(
        frames[10].1["delta"],
        json!({"type": "input_json_delta", "partial_json": ""}),
        "a call without arguments streams an empty partial_json, as Anthropic does"
    );
    assert_eq!(frames[12].1["delta"]["stop_reason"], "tool_use");
    assert_eq!(frames[12].1["usage"]["output_tokens"], 40);
}

#[test]
fn the_streamed_answer_and_the_complete_answer_agree() {
    let events = thinking_then_call();
    let (_, frames) = stream(&events, true, "gemini-3-pro-preview");
    let mut merged = events[0].clone();
    let parts: Vec<_> = events
        .iter()
        .flat_map(|e| {
            e.candidates.as_deref().unwrap_or_default()[0]
                .parts()
                .to_vec()
        })
        .collect();
    if let Some(c) = merged.candidates.as_mut().and_then(|c| c.first_mut()) {
        c.content = Some(crate::wire::gemini::Content {
            role: Some("model".into()),
            parts,
        });
        c.finish_reason = Some("STOP".into());
    }
    let (m, _) = answer(&merged, true, "gemini-3-pro-preview");
    let streamed: Vec<Value> = frames
        .iter()
        .filter(|(n, _)| n == "content_block_start")
        .map(|(_, v)| v["content_block"]["type"].clone())
        .collect();
    let complete: Vec<Value> = m["content"]
        .as_array()
        .expect("content")
        .iter()
        .map(|b| b["type"].clone())
        .collect();
    assert_eq!(streamed, complete);
    assert_eq!(m["content"][0]["thinking"], "The user wants the weather.");
    assert_eq!(m["content"][2]["input"], json!({}));
}

#[test]
fn thinking_is_hidden_unless_asked_but_signatures_are_remembered() {
    let mut s = MessageStream::new("msg_t".into(), "m".into(), "gemini-3-pro-preview", false)
        .with_ids(IdMint::Sequential(0));
    let mut out = Vec::new();
    for e in &thinking_then_call() {
        s.map_event(e, &mut out);
    }
    let raw: String = out
        .iter()
        .map(|b| std::str::from_utf8(b).expect("utf8"))
        .collect();
    let frames = parse_sse(&raw);
    assert!(
        frames
            .iter()
            .all(|(_, v)| v["content_block"]["type"] != "thinking"),
        "{raw}"
    );
    assert_eq!(
        s.drain_signatures(),
        vec![(
            "toolu_000000000000000000000001".to_owned(),
            "U0lHTkFUVVJF".to_owned()
        )]
    );
}

#[test]
fn a_recorded_gemini3_call_stream_ends_with_tool_use() {
    let events = events_jsonl("gemini/streamGenerateContent.chunks.gemini3-function-call.jsonl");
    let (_, frames) = stream(&events, true, "gemini-3-pro-preview");
    assert_eq!(
        names(&frames)[1..5],
        [
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start"
        ]
    );
    assert_eq!(frames[1].1["content_block"]["type"], "thinking");
    assert_eq!(frames[4].1["content_block"]["name"], "weather");
    let last_delta = frames
        .iter()
        .find(|(n, _)| n == "message_delta")
        .expect("delta");
    assert_eq!(last_delta.1["delta"]["stop_reason"], "tool_use");
}

#[test]
fn safety_and_max_tokens_end_streams_with_their_stop_reasons() {
    let events = vec![
        response(
            json!({"candidates": [{"content": {"parts": [{"text": "Here is"}]}, "index": 0}]}),
        ),
        response(
            json!({"candidates": [{"content": {"parts": []}, "finishReason": "SAFETY", "index": 0}]}),
        ),
    ];
    let (raw, frames) = stream(&events, false, "gemini-2.5-flash");
    golden("anthropic.stream.refusal.sse", &raw);
    assert_eq!(
        frames[frames.len() - 2].1["delta"]["stop_reason"],
        "refusal"
    );
    let events: Vec<GenerateContentResponse> = serde_json::from_str(&fixture_text(
        "gemini/streamGenerateContent.chunks.text-max-tokens.json",
    ))
    .expect("array");
    let (raw, frames) = stream(&events, false, "gemini-2.5-flash");
    golden("anthropic.stream.max-tokens.sse", &raw);
    assert_eq!(
        frames[frames.len() - 2].1["delta"]["stop_reason"],
        "max_tokens"
    );
    // A prompt block after the start ends the message as a refusal.
    let events = vec![
        response(json!({"candidates": [{"content": {"parts": [{"text": "a"}]}, "index": 0}]})),
        response(json!({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}})),
    ];
    let (_, frames) = stream(&events, false, "m");
    assert_eq!(
        frames[frames.len() - 2].1["delta"]["stop_reason"],
        "refusal"
    );
}

#[test]
fn pings_and_errors_are_framed_as_anthropic_events() {
    let s = MessageStream::new("msg_t".into(), "m".into(), "m", false);
    assert_eq!(&s.ping()[..], b"event: ping\ndata: {\"type\":\"ping\"}\n\n");
    let err = crate::error::GatewayError::Unavailable {
        message: "busy".into(),
    };
    assert_eq!(
        &s.error(&err)[..],
        &b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"busy\"}}\n\n"[..]
    );
}

#[test]
fn a_rescued_stream_continues_its_text_block() {
    let mut s = MessageStream::new("msg_t".into(), "m".into(), "m", false);
    let mut out = Vec::new();
    s.map_event(
        &response(
            json!({"candidates": [{"content": {"parts": [{"text": "Hello"}]}}],
        "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 1}}),
        ),
        &mut out,
    );
    assert_eq!(s.rescuable(), Some("Hello"));
    s.begin_rescue();
    s.map_event(&response(json!({"candidates": [{"content": {"parts": [{"text": " world"}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 6, "candidatesTokenCount": 2}})), &mut out);
    let raw: String = out
        .iter()
        .map(|b| std::str::from_utf8(b).expect("utf8"))
        .collect();
    let frames = parse_sse(&raw);
    assert_eq!(
        names(&frames)
            .iter()
            .filter(|n| **n == "content_block_start")
            .count(),
        1
    );
    assert_eq!(
        frames[frames.len() - 2].1["usage"]["output_tokens"],
        3,
        "both streams counted"
    );
    assert_eq!(s.rescuable(), None);
}

// ---------------------------------------------------------------------------------------
// Errors

#[test]
fn gateway_errors_render_in_anthropics_envelope_and_statuses() {
    use crate::error::{Flavor, GatewayError};
    use std::time::Duration;
    let cases: Vec<(GatewayError, u16, &str)> = vec![
        (GatewayError::bad_request("x"), 400, "invalid_request_error"),
        (GatewayError::Unauthorized, 401, "authentication_error"),
        (GatewayError::ForbiddenClient, 403, "permission_error"),
        (
            GatewayError::NotFound {
                message: "m".into(),
                code: "model_not_found",
            },
            404,
            "not_found_error",
        ),
        (
            GatewayError::PayloadTooLarge { limit: 1 },
            413,
            "request_too_large",
        ),
        (
            GatewayError::QuotaExhausted {
                message: "q".into(),
                retry_after: Some(Duration::from_secs(3)),
            },
            429,
            "rate_limit_error",
        ),
        (
            GatewayError::InsufficientQuota {
                message: "q".into(),
                retry_after: None,
                retired: false,
            },
            402,
            "billing_error",
        ),
        (
            GatewayError::Unavailable {
                message: "u".into(),
            },
            529,
            "overloaded_error",
        ),
        (
            GatewayError::Timeout {
                message: "t".into(),
            },
            504,
            "timeout_error",
        ),
        (
            GatewayError::BadGateway {
                message: "b".into(),
            },
            502,
            "api_error",
        ),
    ];
    for (err, status, kind) in cases {
        let response = err.render(Flavor::Anthropic);
        assert_eq!(response.status().as_u16(), status, "{err:?}");
        let body = err.anthropic_body();
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["type"], kind, "{err:?}");
        assert_eq!(
            crate::wire::anthropic::error_type_for_status(status),
            kind,
            "the status table agrees"
        );
    }
    let limited = GatewayError::QuotaExhausted {
        message: "q".into(),
        retry_after: Some(Duration::from_secs(3)),
    };
    assert!(
        limited
            .render(Flavor::Anthropic)
            .headers()
            .contains_key(axum::http::header::RETRY_AFTER)
    );
}

/// What hajimi sent Google for Claude Code 2.1.332's second turn (recorded by
/// tests/e2e/test_agent_claude_code.py against the mock, which validates like Google): the
/// translation's promises, checked on a real agent's twelve tools and its tool loop.
#[test]
fn claude_codes_tool_loop_reached_google_as_gemini_wants_it() {
    let text = fixture_text(
        "gemini/streamGenerateContent.request.claude-code-2.1.332.via-hajimi.turn2.json",
    );
    let g: Value = serde_json::from_str(&text).expect("json");
    let roles: Vec<&str> = g["contents"]
        .as_array()
        .expect("contents")
        .iter()
        .map(|c| c["role"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(roles, ["user", "model", "user"]);
    assert!(g["systemInstruction"]["parts"][0]["text"].is_string());
    let call = &g["contents"][1]["parts"]
        .as_array()
        .expect("parts")
        .last()
        .cloned()
        .unwrap_or_default();
    assert_eq!(call["functionCall"]["name"], "Read");
    assert!(
        call["functionCall"].get("id").is_none(),
        "ids stay with hajimi"
    );
    assert!(
        call["thoughtSignature"]
            .as_str()
            .is_some_and(|s| !s.is_empty() && s != SKIP_VALIDATOR),
        "the signature Claude Code carried back"
    );
    let response = &g["contents"][2]["parts"][0]["functionResponse"];
    assert_eq!(response["name"], "Read");
    assert!(response.get("id").is_none());
    assert_eq!(
        g["generationConfig"]["thinkingConfig"],
        json!({"thinkingLevel": "HIGH"}),
        "adaptive thinking without shown thoughts: Gemini 3's level, no thought text"
    );
    let tools = g["tools"].as_array().expect("tools");
    assert_eq!(tools.len(), 1, "function declarations only");
    let declarations = tools[0]["functionDeclarations"]
        .as_array()
        .expect("declarations");
    assert!(declarations.len() >= 10, "Claude Code's tools");
    for d in declarations {
        assert!(
            d["name"].is_string()
                && d.get("parametersJsonSchema").is_none_or(Value::is_object)
                && d.get("parameters").is_none(),
            "{d}"
        );
    }
}

/// Large base64 payloads (turns, documents, tool results, `data:` URLs) leave the request
/// before its translation and come back into the Gemini parts: one copy in memory.
#[test]
fn inline_payloads_travel_through_the_dialect_without_being_copied() {
    let big = "A".repeat(4096);
    let body = json!({"model": "gemini-2.5-flash", "max_tokens": 8, "messages": [
        {"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": big}},
            {"type": "image", "source": {"type": "url", "url": format!("data:image/gif;base64,{big}")}},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "c21hbGw="}},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": big}}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "shot", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/webp", "data": big}}]}]}]});
    let mut req = request(body.clone());
    assert_eq!(dialect::stash(&mut req).len(), 4, "the large ones only");
    let prepared = dialect::prepare(request(body), &Context::default()).expect("prepared");
    let crate::translate::dialect::UpstreamBody::Typed(g) = prepared.body else {
        panic!("typed");
    };
    let blobs: Vec<(String, usize)> = g
        .contents
        .iter()
        .flat_map(|c| c.parts.iter())
        .filter_map(|p| p.inline_data.as_ref())
        .map(|b| (b.mime_type.clone(), b.data.len()))
        .collect();
    assert_eq!(
        blobs,
        [
            ("image/png".to_owned(), 4096),
            ("image/gif".to_owned(), 4096),
            ("image/png".to_owned(), 8),
            ("application/pdf".to_owned(), 4096),
            ("image/webp".to_owned(), 4096),
        ]
    );
    assert!(
        g.contents
            .iter()
            .flat_map(|c| c.parts.iter())
            .filter_map(|p| p.inline_data.as_ref())
            .all(|b| !b.data.contains(crate::translate::inline::MARK))
    );
}
