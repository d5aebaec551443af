//! Responses dialect tests against recorded payloads: Codex's real request
//! (`tests/fixtures/openai/responses.request.codex-*.json`), OpenAI's recorded failure
//! stream, Gemini answers and streams, and golden renderings under `tests/fixtures/golden/`
//! (regenerated with `HAJIMI_UPDATE_GOLDEN=1`; the Python SDK check parses them).

use serde_json::{Value, json};

use super::answer::{Items, to_response_with};
use super::*;
use crate::translate::history::testing::{fixture_text, golden};
use crate::translate::history::{IdMint, SKIP_VALIDATOR, carry};
use crate::wire::gemini::{Content, GenerateContentResponse, Part};
use crate::wire::responses::CreateResponse;

fn request(body: Value) -> CreateResponse {
    serde_json::from_value(body).expect("responses request")
}

type Recall<'a> = &'a dyn Fn(&str) -> Option<String>;

/// What a test varies of the server's context.
#[derive(Default)]
struct Options<'a> {
    enable_thinking: bool,
    recall_signature: Option<Recall<'a>>,
    previous: Option<&'a StoredConversation>,
}

fn translate_req(
    req: &CreateResponse,
    o: &Options<'_>,
) -> Result<Translated, crate::error::GatewayError> {
    let thinks = |_: &str| None;
    let recall = |id: &str, _: &str| o.recall_signature.and_then(|f| f(id));
    let kept = |_: &str| None;
    let ctx = crate::translate::dialect::Context {
        enable_thinking: o.enable_thinking,
        model_thinks: &thinks,
        search_prompt: None,
        recall_signature: &recall,
        random_string: None,
        inband_errors: false,
        cache: None,
        recall_kept: &kept,
        aliases: crate::translate::aliases::ModelAliases::none(),
    };
    to_gemini(req, &ctx, o.previous)
}

fn translate_with(body: Value, opts: &Options<'_>) -> (Translated, Value) {
    let t = translate_req(&request(body), opts).expect("translates");
    let v = serde_json::to_value(&t.request).expect("json");
    (t, v)
}

fn translate(body: Value) -> (Translated, Value) {
    translate_with(body, &Options::default())
}

fn response(v: Value) -> GenerateContentResponse {
    serde_json::from_value(v).expect("gemini response")
}

// ---------------------------------------------------------------------------------------
// Requests

#[test]
fn codex_tool_loop_translates_with_its_signature_on_the_call() {
    let body: Value = serde_json::from_str(&fixture_text(
        "openai/responses.request.codex-0.171.0.tool-loop.json",
    ))
    .expect("json");
    let opts = Options {
        enable_thinking: true,
        ..Options::default()
    };
    let (t, g) = translate_with(body.clone(), &opts);
    assert_eq!(t.upstream_model, "gemini-3-pro-preview");
    let developer_parts: usize = body["input"]
        .as_array()
        .expect("input")
        .iter()
        .take_while(|i| i["role"] == "developer")
        .map(|i| i["content"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(
        g["systemInstruction"]["parts"].as_array().map(Vec::len),
        Some(developer_parts),
        "the leading developer messages"
    );
    let c = g["contents"].as_array().expect("contents");
    assert_eq!(c.len(), 3);
    assert_eq!(
        c[0]["parts"].as_array().map(Vec::len),
        Some(2),
        "the user messages, merged"
    );
    assert_eq!(
        c[1],
        json!({"role": "model", "parts": [{
            "functionCall": {"name": "exec_command", "args": {"cmd": "cat /tmp/ha-capture/cx/hello.txt"}},
            "thoughtSignature": "U0lH"}]}),
        "the reasoning item's encrypted_content carries the signature to the call"
    );
    assert_eq!(c[2]["parts"][0]["functionResponse"]["name"], "exec_command");
    assert!(
        c[2]["parts"][0]["functionResponse"]["response"]["output"]
            .as_str()
            .is_some_and(|o| o.contains("hello from the file"))
    );
    let decls = g["tools"][0]["functionDeclarations"]
        .as_array()
        .expect("decls");
    let names: Vec<&str> = decls.iter().filter_map(|d| d["name"].as_str()).collect();
    assert!(
        names.contains(&"exec_command") && names.contains(&"close_agent"),
        "{names:?}"
    );
    assert_eq!(
        t.answer.namespaces.get("close_agent").map(String::as_str),
        Some("multi_agent_v1")
    );
    assert_eq!(
        g["tools"][1],
        json!({"googleSearch": {}}),
        "Gemini 3 combines search and functions"
    );
    assert_eq!(
        g["toolConfig"],
        json!({"functionCallingConfig": {"mode": "AUTO"}})
    );
    assert_eq!(
        g["generationConfig"],
        json!({"thinkingConfig": {"includeThoughts": true}})
    );
    assert_eq!(
        t.conversation[1].parts[0]
            .function_call
            .as_ref()
            .and_then(|f| f.id.as_deref()),
        Some("call_cap1"),
        "the stored conversation keeps call ids"
    );
}

fn tool_loop(model: &str) -> Value {
    json!({
        "model": model,
        "instructions": "Be brief.",
        "reasoning": {"effort": "low", "summary": "auto"},
        "max_output_tokens": 2048,
        "tools": [
            {"type": "function", "name": "get_weather", "description": "Weather", "strict": true,
             "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false}},
            {"type": "custom", "name": "apply_patch", "description": "Apply a patch.",
             "format": {"type": "grammar", "syntax": "lark", "definition": "start: \"*** Begin Patch\""}},
            {"type": "file_search", "vector_store_ids": ["vs_1"]},
            {"type": "code_interpreter", "container": {"type": "auto"}},
            {"type": "local_shell"}
        ],
        "input": [
            {"role": "user", "content": "Weather in Paris, then patch the notes."},
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Two steps."}],
             "encrypted_content": carry("gemini-3-pro-preview", "U0lHLTE=")},
            {"type": "function_call", "call_id": "call_a", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
            {"type": "custom_tool_call", "call_id": "call_b", "name": "apply_patch", "input": "*** Begin Patch"},
            {"type": "custom_tool_call_output", "call_id": "call_b", "output": "Done"},
            {"type": "function_call_output", "call_id": "call_a", "output": [{"type": "input_text", "text": "{\"tempC\": 18}"}]},
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Answer in French."}]},
            {"type": "item_reference", "id": "msg_old"}
        ]
    })
}

#[test]
fn gemini3_tool_loop_matches_the_golden_request() {
    let opts = Options {
        enable_thinking: true,
        ..Options::default()
    };
    let (t, g) = translate_with(tool_loop("gemini-3-pro-preview"), &opts);
    let text = serde_json::to_string_pretty(&g).expect("json") + "\n";
    golden("responses.request.gemini3-tool-loop.json", &text);
    assert_eq!(
        g["systemInstruction"],
        json!({"parts": [{"text": "Be brief."}]})
    );
    assert_eq!(g["contents"][1]["parts"][0]["thoughtSignature"], "U0lHLTE=");
    assert_eq!(
        g["contents"][1]["parts"][1]["functionCall"],
        json!({"name": "apply_patch", "args": {"input": "*** Begin Patch"}})
    );
    assert_eq!(
        g["contents"][2]["parts"][0]["functionResponse"]["name"], "get_weather",
        "call order"
    );
    assert_eq!(
        g["contents"][2]["parts"][0]["functionResponse"]["response"],
        json!({"tempC": 18})
    );
    assert_eq!(
        g["contents"][2]["parts"][1]["functionResponse"]["response"],
        json!({"output": "Done"})
    );
    assert_eq!(
        g["contents"][3],
        json!({"role": "user", "parts": [{"text": "Answer in French."}]})
    );
    assert_eq!(
        g["tools"].as_array().map(Vec::len),
        Some(1),
        "hosted tools dropped, never refused"
    );
    let custom = &g["tools"][0]["functionDeclarations"][1];
    assert!(
        custom["description"]
            .as_str()
            .is_some_and(|d| d.contains("lark grammar"))
    );
    assert_eq!(custom["parametersJsonSchema"]["required"], json!(["input"]));
    assert!(t.answer.custom_tools.contains("apply_patch"));
    assert_eq!(
        g["generationConfig"],
        json!({"maxOutputTokens": 2048, "thinkingConfig": {"thinkingLevel": "LOW", "includeThoughts": true}})
    );
}

#[test]
fn missing_or_foreign_signatures_are_recalled_or_replaced() {
    let (_, g) = translate(tool_loop("gemini-3-flash-preview"));
    assert_eq!(
        g["contents"][1]["parts"][0]["thoughtSignature"],
        SKIP_VALIDATOR
    );
    let recall = |id: &str| (id == "call_a").then(|| "UkVD".to_owned());
    let opts = Options {
        recall_signature: Some(&recall),
        ..Options::default()
    };
    let (_, g) = translate_with(tool_loop("gemini-3-flash-preview"), &opts);
    assert_eq!(g["contents"][1]["parts"][0]["thoughtSignature"], "UkVD");
}

#[test]
fn unknown_call_ids_and_file_ids_are_400s() {
    let body = json!({"model": "m", "input": [{"type": "function_call_output", "call_id": "call_x", "output": "1"}]});
    let err = translate_req(&request(body), &Options::default()).expect_err("unknown call");
    assert!(err.to_string().contains("call_x"));
    let body = json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file_1", "detail": "auto"}]}]});
    assert!(translate_req(&request(body), &Options::default()).is_err());
    let body =
        json!({"model": "gemini-2.5-flash", "reasoning": {"effort": "extreme"}, "input": "x"});
    assert!(
        translate_req(&request(body), &Options::default()).is_err(),
        "same effort table as chat"
    );
}

#[test]
fn simple_inputs_media_and_formats() {
    let (_, g) = translate(
        json!({"model": "gemini-2.5-flash", "input": "Hello", "temperature": 0.3, "top_p": 0.8,
        "text": {"format": {"type": "json_schema", "name": "r", "strict": true, "schema": {"type": "object"}}},
        "tools": [{"type": "web_search_preview"}], "tool_choice": "required"}),
    );
    assert_eq!(
        g["contents"],
        json!([{"role": "user", "parts": [{"text": "Hello"}]}])
    );
    assert_eq!(
        g["generationConfig"],
        json!({"temperature": 0.3, "topP": 0.8, "responseMimeType": "application/json", "responseJsonSchema": {"type": "object"}})
    );
    assert_eq!(g["tools"], json!([{"googleSearch": {}}]));
    assert!(
        g.get("toolConfig").is_none(),
        "no functions, nothing to force"
    );
    let (_, g) = translate(json!({"model": "m", "input": [{"role": "user", "content": [
        {"type": "input_text", "text": "What is this?"},
        {"type": "input_image", "image_url": "data:image/png;base64,iVBOR", "detail": "low"},
        {"type": "input_image", "image_url": "https://example.com/x.png", "detail": "auto"},
        {"type": "input_file", "filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}
    ]}]}));
    assert_eq!(
        g["contents"][0]["parts"],
        json!([{"text": "What is this?"}, {"inlineData": {"mimeType": "image/png", "data": "iVBOR"}},
               {"fileData": {"fileUri": "https://example.com/x.png"}},
               {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}}])
    );
    let mut body = tool_loop("gemini-2.5-flash");
    for (choice, expected) in [
        (json!("none"), json!({"mode": "NONE"})),
        (
            json!({"type": "function", "name": "get_weather"}),
            json!({"mode": "ANY", "allowedFunctionNames": ["get_weather"]}),
        ),
        (
            json!({"type": "custom", "name": "apply_patch"}),
            json!({"mode": "ANY", "allowedFunctionNames": ["apply_patch"]}),
        ),
        (
            json!({"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "get_weather"}]}),
            json!({"mode": "ANY", "allowedFunctionNames": ["get_weather"]}),
        ),
    ] {
        body["tool_choice"] = choice;
        assert_eq!(
            translate(body.clone()).1["toolConfig"]["functionCallingConfig"],
            expected
        );
    }
}

#[test]
fn a_stored_conversation_is_continued() {
    let first = translate(json!({"model": "gemini-3-pro-preview", "instructions": "Be brief.", "input": "Weather in Paris?"})).0;
    let answer = Content {
        role: Some("model".into()),
        parts: vec![Part {
            function_call: Some(crate::wire::gemini::FunctionCall {
                id: Some("call_1".into()),
                name: "get_weather".into(),
                args: Some(json!({"city": "Paris"})),
            }),
            thought_signature: Some("U0lH".into()),
            ..Part::default()
        }],
    };
    let stored = StoredConversation::new(&first.upstream_model, first.conversation, Some(answer));
    let stored: StoredConversation =
        serde_json::from_str(&serde_json::to_string(&stored).expect("ser")).expect("round trip");
    let next = json!({"model": "gemini-3-pro-preview", "previous_response_id": "resp_1",
        "input": [{"type": "function_call_output", "call_id": "call_1", "output": "18C"}]});
    let opts = Options {
        previous: Some(&stored),
        ..Options::default()
    };
    let (t, g) = translate_with(next.clone(), &opts);
    assert!(
        g.get("systemInstruction").is_none(),
        "instructions are not carried over"
    );
    assert_eq!(g["contents"][0]["parts"][0]["text"], "Weather in Paris?");
    assert_eq!(g["contents"][1]["parts"][0]["thoughtSignature"], "U0lH");
    assert!(
        g["contents"][1]["parts"][0]["functionCall"]
            .get("id")
            .is_none(),
        "no ids upstream"
    );
    assert_eq!(
        g["contents"][2]["parts"][0]["functionResponse"]["name"],
        "get_weather"
    );
    assert_eq!(t.conversation.len(), 3);
    let mut other = next;
    other["model"] = json!("gemini-3-flash-preview");
    let (_, g) = translate_with(other, &opts);
    assert_eq!(
        g["contents"][1]["parts"][0]["thoughtSignature"], SKIP_VALIDATOR,
        "another model's signature is dropped"
    );
}

// ---------------------------------------------------------------------------------------
// Answers

fn meta(req: Value) -> ResponseMeta {
    ResponseMeta::new(&request(req), "resp_test".into(), 1_700_000_000)
}

fn ctx(custom: &[&str], single: bool) -> AnswerContext {
    AnswerContext {
        upstream_model: "gemini-3-pro-preview".into(),
        custom_tools: custom.iter().map(|s| (*s).to_owned()).collect(),
        single_call: single,
        ..AnswerContext::default()
    }
}

fn complete(resp: &GenerateContentResponse, c: AnswerContext) -> Answer {
    let m = meta(json!({"model": "gpt-5", "input": "x"}));
    to_response_with(resp, &m, Items::new(c).with_ids(IdMint::Sequential(0)))
}

#[test]
fn a_text_answer_is_a_completed_response() {
    let resp = response(
        serde_json::from_str(&fixture_text(
            "gemini/generateContent.response.gemini3-text-thought-signature.json",
        ))
        .expect("json"),
    );
    let a = complete(&resp, ctx(&[], false));
    let v = serde_json::to_value(&a.response).expect("json");
    golden(
        "responses.response.text.json",
        &(serde_json::to_string_pretty(&v).expect("json") + "\n"),
    );
    assert_eq!(v["status"], "completed");
    assert_eq!(v["object"], "response");
    assert_eq!(v["model"], "gpt-5");
    assert_eq!(v["output"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["output"][0]["type"], "message");
    assert_eq!(v["output"][0]["content"][0]["type"], "output_text");
    assert_eq!(
        v["usage"],
        json!({"input_tokens": 9, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
               "output_tokens": 272, "output_tokens_details": {"reasoning_tokens": 244}, "total_tokens": 281})
    );
    assert!(a.signatures.is_empty());
}

#[test]
fn a_function_call_comes_with_its_signature_in_a_reasoning_item() {
    let resp = response(
        serde_json::from_str(&fixture_text(
            "gemini/generateContent.response.function-call-thought-signature.json",
        ))
        .expect("json"),
    );
    let sig = resp.candidates.as_deref().unwrap_or_default()[0].parts()[0]
        .thought_signature
        .clone()
        .expect("sig");
    let a = complete(&resp, ctx(&[], false));
    let v = serde_json::to_value(&a.response).expect("json");
    golden(
        "responses.response.function-call.json",
        &(serde_json::to_string_pretty(&v).expect("json") + "\n"),
    );
    assert_eq!(v["output"][0]["type"], "reasoning");
    assert_eq!(
        v["output"][0]["encrypted_content"],
        carry("gemini-3-pro-preview", &sig)
    );
    assert_eq!(
        v["output"][1],
        json!({"type": "function_call", "id": "fc_000000000000000000000003", "call_id": "call_000000000000000000000001",
               "name": "concatStringFunction", "arguments": "{\"firstString\":\"hello\",\"secondString\":\"world\"}", "status": "completed"})
    );
    assert_eq!(
        a.signatures,
        vec![("call_000000000000000000000001".to_owned(), sig.clone())]
    );
    let call = &a.model_turn.parts[0];
    assert_eq!(
        call.function_call.as_ref().and_then(|c| c.id.as_deref()),
        Some("call_000000000000000000000001")
    );
    assert_eq!(call.thought_signature.as_deref(), Some(sig.as_str()));
}

#[test]
fn custom_tools_single_calls_grounding_and_limits() {
    let calls = response(json!({"candidates": [{"content": {"parts": [
        {"functionCall": {"name": "apply_patch", "args": {"input": "*** Begin Patch"}}},
        {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}}
    ]}, "finishReason": "STOP"}]}));
    let v = serde_json::to_value(complete(&calls, ctx(&["apply_patch"], false)).response)
        .expect("json");
    assert_eq!(v["output"][0]["type"], "custom_tool_call");
    assert_eq!(v["output"][0]["input"], "*** Begin Patch");
    assert_eq!(v["output"][1]["type"], "function_call");
    let v =
        serde_json::to_value(complete(&calls, ctx(&["apply_patch"], true)).response).expect("json");
    assert_eq!(
        v["output"].as_array().map(Vec::len),
        Some(1),
        "parallel_tool_calls: false keeps the first"
    );

    let grounded = response(
        serde_json::from_str(&fixture_text(
            "gemini/generateContent.response.google-search-grounding.json",
        ))
        .expect("json"),
    );
    let v = serde_json::to_value(complete(&grounded, ctx(&[], false)).response).expect("json");
    let message = v["output"]
        .as_array()
        .expect("output")
        .iter()
        .find(|i| i["type"] == "message")
        .cloned()
        .expect("message");
    let ann = &message["content"][0]["annotations"][0];
    assert_eq!(ann["type"], "url_citation");
    assert!(
        ann["url"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://"))
    );

    let max = response(
        serde_json::from_str(&fixture_text(
            "gemini/generateContent.response.max-tokens-text.json",
        ))
        .expect("json"),
    );
    let v = serde_json::to_value(complete(&max, ctx(&[], false)).response).expect("json");
    assert_eq!(v["status"], "incomplete");
    assert_eq!(
        v["incomplete_details"],
        json!({"reason": "max_output_tokens"})
    );
    assert_eq!(v["output"][0]["status"], "incomplete");
    let safety = response(
        json!({"candidates": [{"content": {"parts": [{"text": "Part"}]}, "finishReason": "SAFETY"}]}),
    );
    let v = serde_json::to_value(complete(&safety, ctx(&[], false)).response).expect("json");
    assert_eq!(v["incomplete_details"], json!({"reason": "content_filter"}));
}

// ---------------------------------------------------------------------------------------
// Streams

fn run(events: &[GenerateContentResponse], c: AnswerContext) -> (String, Vec<(String, Value)>) {
    let mut s = ResponseStream::new(
        meta(json!({"model": "gpt-5", "input": "x", "stream": true})),
        c,
    )
    .with_ids(IdMint::Sequential(0));
    let mut out = Vec::new();
    for e in events {
        s.map_event(e, &mut out);
    }
    s.finish(&mut out);
    assert!(s.final_response().is_some());
    let raw: String = out
        .iter()
        .map(|b| std::str::from_utf8(b).expect("utf8"))
        .collect();
    (raw.clone(), parse(&raw))
}

fn parse(raw: &str) -> Vec<(String, Value)> {
    raw.trim_end_matches('\n')
        .split("\n\n")
        .enumerate()
        .map(|(n, frame)| {
            let (event, data) = frame.split_once('\n').expect("two lines");
            let name = event.strip_prefix("event: ").expect("event line");
            let v: Value =
                serde_json::from_str(data.strip_prefix("data: ").expect("data")).expect("json");
            assert_eq!(v["type"], name);
            assert_eq!(
                v["sequence_number"], n as u64,
                "numbered from 0 without gaps"
            );
            (name.to_owned(), v)
        })
        .collect()
}

fn names(frames: &[(String, Value)]) -> Vec<&str> {
    frames.iter().map(|(n, _)| n.as_str()).collect()
}

#[test]
fn a_text_stream_has_the_exact_event_sequence() {
    let text =
        fixture_text("gemini/streamGenerateContent.chunks.gemini3-empty-text-signature.jsonl");
    let events: Vec<GenerateContentResponse> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).expect("e"))
        .collect();
    let (raw, frames) = run(&events, ctx(&[], false));
    golden("responses.stream.text.sse", &raw);
    assert_eq!(
        names(&frames),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    assert_eq!(frames[0].1["response"]["status"], "in_progress");
    assert_eq!(frames[0].1["response"]["output"], json!([]));
    assert_eq!(
        frames[2].1,
        json!({"type": "response.output_item.added", "sequence_number": 2, "output_index": 0,
               "item": {"type": "message", "id": "msg_000000000000000000000001", "status": "in_progress", "role": "assistant", "content": []}})
    );
    assert_eq!(frames[4].1["delta"], "There are **3**");
    assert_eq!(
        frames[6].1["text"],
        "There are **3** \"r\"s in strawberry.\n\nst**r**awbe**rr**y"
    );
    let done = &frames[9].1["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["output"][0]["content"][0]["text"], frames[6].1["text"]);
    assert_eq!(
        done["usage"]["output_tokens_details"]["reasoning_tokens"],
        185
    );
    // The lifecycle events carry the same Response fields OpenAI sends.
    let real: Value = serde_json::from_str(
        fixture_text("openai/responses.stream.error-insufficient-quota.jsonl")
            .lines()
            .next()
            .expect("line"),
    )
    .expect("json");
    for key in real["response"].as_object().expect("obj").keys() {
        let optional = [
            "max_tool_calls",
            "prompt_cache_key",
            "prompt_cache_retention",
            "safety_identifier",
            "service_tier",
            "top_logprobs",
            "user",
        ];
        assert!(
            optional.contains(&key.as_str()) || frames[0].1["response"].get(key).is_some(),
            "{key}"
        );
    }
}

#[test]
fn thoughts_then_a_signed_call_stream_in_order() {
    let events = vec![
        response(
            json!({"candidates": [{"content": {"parts": [{"text": "Weather first.", "thought": true}]}}]}),
        ),
        response(json!({"candidates": [{"content": {"parts": [
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "U0lH"}
        ]}, "finishReason": "STOP"}], "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "thoughtsTokenCount": 20}})),
    ];
    let (raw, frames) = run(&events, ctx(&[], false));
    golden("responses.stream.reasoning-function-call.sse", &raw);
    assert_eq!(
        names(&frames),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    assert_eq!(
        frames[7].1["item"],
        json!({"type": "reasoning", "id": "rs_000000000000000000000001",
               "summary": [{"type": "summary_text", "text": "Weather first."}],
               "encrypted_content": "hjm1:gemini-3-pro-preview:U0lH", "status": "completed"})
    );
    assert_eq!(frames[8].1["output_index"], 1);
    assert_eq!(frames[8].1["item"]["arguments"], "");
    assert_eq!(frames[10].1["arguments"], "{\"city\":\"Paris\"}");
    assert_eq!(
        frames[12].1["response"]["output"].as_array().map(Vec::len),
        Some(2)
    );
}

#[test]
fn custom_tool_calls_stream_their_input() {
    let events = vec![response(json!({"candidates": [{"content": {"parts": [
        {"functionCall": {"name": "apply_patch", "args": {"input": "*** Begin Patch\n*** End Patch"}}}
    ]}, "finishReason": "STOP"}]}))];
    let (raw, frames) = run(&events, ctx(&["apply_patch"], false));
    golden("responses.stream.custom-tool-call.sse", &raw);
    assert_eq!(
        names(&frames)[2..6],
        [
            "response.output_item.added",
            "response.custom_tool_call_input.delta",
            "response.custom_tool_call_input.done",
            "response.output_item.done"
        ]
    );
    assert_eq!(
        frames[5].1["item"]["input"],
        "*** Begin Patch\n*** End Patch"
    );
}

#[test]
fn max_tokens_ends_as_incomplete() {
    let events: Vec<GenerateContentResponse> = serde_json::from_str(&fixture_text(
        "gemini/streamGenerateContent.chunks.text-max-tokens.json",
    ))
    .expect("array");
    let (raw, frames) = run(&events, ctx(&[], false));
    golden("responses.stream.max-tokens.sse", &raw);
    let last = frames.last().expect("last");
    assert_eq!(last.0, "response.incomplete");
    assert_eq!(
        last.1["response"]["incomplete_details"],
        json!({"reason": "max_output_tokens"})
    );
}

#[test]
fn failures_are_an_error_event_then_response_failed_like_openais() {
    let mut s = ResponseStream::new(
        meta(json!({"model": "gpt-5", "input": "x"})),
        ctx(&[], false),
    );
    let mut out = Vec::new();
    let err = crate::error::GatewayError::InsufficientQuota {
        message: "今日配额已用完 / Quota exhausted for today".into(),
        retry_after: None,
        retired: false,
    };
    s.fail(&err, &mut out);
    let raw: String = out
        .iter()
        .map(|b| std::str::from_utf8(b).expect("utf8"))
        .collect();
    golden("responses.stream.failed.sse", &raw);
    let frames = parse(&raw);
    assert_eq!(
        names(&frames),
        [
            "response.created",
            "response.in_progress",
            "error",
            "response.failed"
        ]
    );
    let real: Vec<Value> = fixture_text("openai/responses.stream.error-insufficient-quota.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let real_names: Vec<&str> = real.iter().filter_map(|v| v["type"].as_str()).collect();
    assert_eq!(names(&frames), real_names, "the same sequence OpenAI sends");
    assert_eq!(frames[2].1["error"]["code"], real[2]["error"]["code"]);
    assert_eq!(frames[2].1["error"]["type"], real[2]["error"]["type"]);
    assert_eq!(frames[3].1["response"]["status"], "failed");
    assert_eq!(
        frames[3].1["response"]["error"]["code"],
        real[3]["response"]["error"]["code"]
    );
    assert_eq!(&s.keepalive()[..], b": keep-alive\n\n");
}

#[test]
fn stream_and_complete_answers_agree_and_store_the_same_turn() {
    let events = vec![
        response(json!({"candidates": [{"content": {"parts": [{"text": "Hi "}]}}]})),
        response(
            json!({"candidates": [{"content": {"parts": [{"text": "there."},
            {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "U0lH"}]}, "finishReason": "STOP"}]}),
        ),
    ];
    let mut s = ResponseStream::new(
        meta(json!({"model": "gpt-5", "input": "x"})),
        ctx(&[], false),
    )
    .with_ids(IdMint::Sequential(0));
    let mut out = Vec::new();
    for e in &events {
        s.map_event(e, &mut out);
    }
    let merged = response(
        json!({"candidates": [{"content": {"parts": [{"text": "Hi "}, {"text": "there."},
        {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "U0lH"}]}, "finishReason": "STOP"}]}),
    );
    let a = complete(&merged, ctx(&[], false));
    assert_eq!(
        s.final_response().map(|r| &r.output),
        Some(&a.response.output)
    );
    assert_eq!(s.model_turn(), a.model_turn);
    assert_eq!(
        a.model_turn.parts.len(),
        2,
        "streamed text is stored as one part"
    );
    assert_eq!(s.rescuable(), None, "a call was made");
}

/// What the OpenAI SDK gives back when a client replays `response.output` as the next input
/// (`item.model_dump(exclude_none=True)` of the streamed answer above), plus the call's output.
#[test]
fn replayed_output_items_continue_the_tool_loop() {
    let (_, g) = translate(json!({"model": "gemini-3-pro-preview", "input": [
        {"role": "user", "content": "Weather in Paris?"},
        {"id": "rs_000000000000000000000001", "summary": [{"text": "Weather first.", "type": "summary_text"}],
         "type": "reasoning", "encrypted_content": "hjm1:gemini-3-pro-preview:U0lH", "status": "completed"},
        {"arguments": "{\"city\":\"Paris\"}", "call_id": "call_000000000000000000000002", "name": "get_weather",
         "type": "function_call", "id": "fc_000000000000000000000003", "status": "completed"},
        {"type": "function_call_output", "call_id": "call_000000000000000000000002", "output": "18C"}
    ]}));
    assert_eq!(
        g["contents"][1],
        json!({"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "U0lH"}]})
    );
    assert_eq!(
        g["contents"][2],
        json!({"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"output": "18C"}}}]})
    );
}

// ---------------------------------------------------------------------------------------
// The dialect: prepare + Render

fn context_with<'a>(
    kept: &'a dyn Fn(&str) -> Option<bytes::Bytes>,
    recall: &'a dyn Fn(&str, &str) -> Option<String>,
) -> crate::translate::dialect::Context<'a> {
    crate::translate::dialect::Context {
        enable_thinking: true,
        model_thinks: &|_| None,
        search_prompt: None,
        recall_signature: recall,
        random_string: None,
        inband_errors: false,
        cache: Some(crate::translate::cache_key::KeyRule {
            last_n: 6,
            precise: false,
        }),
        recall_kept: kept,
        aliases: crate::translate::aliases::ModelAliases::none(),
    }
}

/// What Codex 0.171.0 sent through hajimi in the e2e agent test (its second request: the
/// tool loop, `store: false`, the signature in the replayed reasoning item).
#[test]
fn codex_through_hajimi_is_prepared_with_its_carried_signature_and_nothing_kept() {
    let body: Value = serde_json::from_str(&fixture_text(
        "openai/responses.request.codex-0.171.0.through-hajimi.json",
    ))
    .expect("json");
    let carried = body["input"]
        .as_array()
        .expect("input")
        .iter()
        .find(|i| i["type"] == "reasoning")
        .and_then(|i| i["encrypted_content"].as_str())
        .expect("a carried signature")
        .to_owned();
    let signature = crate::translate::history::uncarry(&carried, "gemini-3-pro-preview")
        .expect("hajimi's own carry")
        .to_owned();
    let kept = |_: &str| None;
    let recall = |_: &str, _: &str| None;
    let ctx = context_with(&kept, &recall);
    let mut prepared = dialect::prepare(request(body), &ctx).expect("prepares");
    assert_eq!(prepared.model, "gemini-3-pro-preview");
    assert!(prepared.stream);
    assert!(prepared.cache_key.is_some());
    let crate::translate::dialect::UpstreamBody::Typed(g) = &prepared.body else {
        panic!("typed");
    };
    let g = serde_json::to_value(g.as_ref()).expect("json");
    let call = &g["contents"][1]["parts"][0];
    assert_eq!(call["functionCall"]["name"], "exec_command");
    assert_eq!(call["thoughtSignature"], signature.as_str());
    assert!(
        g["contents"][2]["parts"][0]["functionResponse"]["response"]["output"]
            .as_str()
            .is_some_and(|o| o.contains("hello from the file"))
    );

    let render = &mut prepared.render;
    assert_eq!(render.label(), "responses");
    let mut out = Vec::new();
    render.open(&mut out);
    let answer = response(
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "It says hello."}]}, "finishReason": "STOP"}]}),
    );
    render.event(&bytes::Bytes::new(), Some(&answer), &mut out);
    render.finish(&mut out);
    assert!(render.is_finished());
    let text: String = out
        .iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    assert!(text.starts_with("event: response.created\n"));
    assert!(text.contains("event: response.completed\n"));
    assert!(render.keep().is_none(), "store: false keeps nothing");
}

#[test]
fn a_stored_answer_is_kept_and_continued_by_id() {
    let kept = |_: &str| None;
    let recall = |_: &str, _: &str| None;
    let ctx = context_with(&kept, &recall);
    let mut prepared = dialect::prepare(
        request(json!({"model": "gemini-2.5-flash", "input": "My name is Ana."})),
        &ctx,
    )
    .expect("prepares");
    let answer = crate::translate::dialect::Answer {
        status: 200,
        raw: bytes::Bytes::new(),
        parsed: Some(std::sync::Arc::new(response(
            json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Hi Ana."}]}, "finishReason": "STOP"}]}),
        ))),
    };
    let (_, body) = prepared.render.complete(&answer).expect("answers");
    let shown: Value = serde_json::from_slice(&body).expect("json");
    let keep = prepared.render.keep().expect("stored by default");
    assert_eq!(keep.id, shown["id"].as_str().expect("id"));
    let stored = dialect::stored(&keep.data).expect("reads back");
    assert_eq!(serde_json::to_value(&stored.response).expect("json"), shown);
    assert_eq!(stored.conversation.contents.len(), 2);

    let data = keep.data.clone();
    let id = keep.id.clone();
    let kept = move |asked: &str| (asked == id).then(|| data.clone());
    let ctx = context_with(&kept, &recall);
    let next = dialect::prepare(
        request(
            json!({"model": "gemini-2.5-flash", "previous_response_id": keep.id, "input": "Name?"}),
        ),
        &ctx,
    )
    .expect("continues");
    let crate::translate::dialect::UpstreamBody::Typed(g) = &next.body else {
        panic!("typed");
    };
    assert_eq!(g.contents.len(), 3);
    let err = dialect::prepare(
        request(
            json!({"model": "gemini-2.5-flash", "previous_response_id": "resp_gone", "input": "x"}),
        ),
        &ctx,
    )
    .err()
    .expect("unknown id");
    assert_eq!(err.status().as_u16(), 400);
    assert!(err.to_string().contains("resp_gone"));
}
