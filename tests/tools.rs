//! Tool calling, thought signatures, reasoning, structured output and search through the
//! OpenAI surface, against a mock that validates like Google (schemas, turn order, Gemini 3
//! signatures).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use mock_gemini::{CallSpec, Reply, Rule};
use serde_json::{Value, json};

const GEMINI3: &str = "gemini-3-pro-preview";
const REAL: (&str, &str) = ("FAKE_STREAMING", "false");

fn weather_tool() -> Value {
    json!({"type": "function", "function": {"name": "get_weather", "description": "Current weather", "strict": true,
        "parameters": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "additionalProperties": false,
                       "properties": {"city": {"type": "string"}, "unit": {"type": ["string", "null"], "enum": ["c", "f", null]}},
                       "required": ["city", "unit"]}}})
}

#[tokio::test]
async fn a_strict_schema_with_additional_properties_reaches_the_model() {
    let h = start(&[]).await;
    let body = json!({"model": FLASH, "messages": [{"role": "user", "content": "Weather?"}], "tools": [weather_tool()], "tool_choice": "required"});
    let (status, v) = json(h.chat(&body).await).await;
    assert_eq!(status, 200, "no upstream 400: {v}");
    let call = &v["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    let upstream = &h.upstream_calls()[0].body;
    assert_eq!(
        upstream["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"]["additionalProperties"],
        false
    );
    assert_eq!(
        upstream["toolConfig"]["functionCallingConfig"]["mode"],
        "ANY"
    );
}

#[tokio::test]
async fn models_that_refuse_json_schema_get_the_sanitised_subset() {
    let h = start(&[]).await;
    let refusal = "Invalid JSON payload received. Unknown name \"parametersJsonSchema\" at 'tools[0].function_declarations[0]': Cannot find field.";
    h.mock.add_rule(
        Rule::new(Reply::google_error(400, "INVALID_ARGUMENT", refusal))
            .action("generateContent")
            .times(1),
    );
    let body = json!({"model": FLASH, "messages": [{"role": "user", "content": "Weather?"}], "tools": [weather_tool()]});
    let (status, v) = json(h.chat(&body).await).await;
    assert_eq!(status, 200, "{v}");
    let calls = h.upstream_calls();
    assert_eq!(calls.len(), 2);
    let decl = &calls[1].body["tools"][0]["functionDeclarations"][0];
    assert!(decl.get("parametersJsonSchema").is_none());
    assert_eq!(
        decl["parameters"]["properties"]["unit"]["nullable"], true,
        "accepted by the mock's strict Schema check"
    );
}

/// One full OpenAI tool loop against Gemini 3: the client drops `extra_content`, the proxy
/// restores the thought signatures it kept, and the mock (which rejects a missing or
/// unknown signature like Google) accepts every step.
#[tokio::test]
async fn a_gemini3_tool_loop_works_when_the_client_drops_signatures() {
    let h = start(&[]).await;
    h.mock.add_rule(
        Rule::new(Reply::function_call(
            "get_weather",
            json!({"city": "Paris"}),
        ))
        .model(GEMINI3)
        .times(1),
    );
    h.mock.add_rule(
        Rule::new(Reply::function_call("get_weather", json!({"city": "Rome"})))
            .model(GEMINI3)
            .times(1),
    );
    let mut messages = vec![json!({"role": "user", "content": "Weather in Paris, then Rome?"})];
    for step in 0..2 {
        let body = json!({"model": GEMINI3, "messages": messages, "tools": [weather_tool()]});
        let (status, v) = json(h.chat(&body).await).await;
        assert_eq!(status, 200, "step {step}: {v}");
        let msg = &v["choices"][0]["message"];
        let calls = msg["tool_calls"].as_array().expect("a tool call");
        assert!(
            calls[0]["extra_content"]["google"]["thought_signature"].is_string(),
            "Google-compat signature is emitted"
        );
        // A client that keeps only the standard fields.
        let stripped: Vec<Value> = calls
            .iter()
            .map(|c| json!({"id": c["id"], "type": "function", "function": c["function"]}))
            .collect();
        messages.push(json!({"role": "assistant", "content": null, "tool_calls": stripped}));
        messages.push(
            json!({"role": "tool", "tool_call_id": calls[0]["id"], "content": "{\"tempC\": 18}"}),
        );
    }
    let body = json!({"model": GEMINI3, "messages": messages, "tools": [weather_tool()]});
    let (status, v) = json(h.chat(&body).await).await;
    assert_eq!(status, 200, "final step: {v}");
    assert!(v["choices"][0]["message"]["content"].is_string());
    let issued = h.mock.issued_signatures();
    let last = h.upstream_calls().last().unwrap().body.clone();
    let model_turns: Vec<&Value> = last["contents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["role"] == "model")
        .collect();
    assert_eq!(model_turns.len(), 2);
    for turn in model_turns {
        let sig = turn["parts"][0]["thoughtSignature"].as_str().unwrap();
        assert!(
            issued.iter().any(|s| s == sig),
            "the real signature was restored, not a placeholder"
        );
    }
}

#[tokio::test]
async fn an_unknown_call_history_on_gemini3_uses_the_documented_placeholder() {
    let h = start(&[]).await;
    let messages = json!([
        {"role": "user", "content": "hi"},
        {"role": "assistant", "tool_calls": [{"id": "call_from_elsewhere", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
        {"role": "tool", "tool_call_id": "call_from_elsewhere", "content": "cold"}
    ]);
    let (status, v) = json(
        h.chat(&json!({"model": GEMINI3, "messages": messages, "tools": [weather_tool()]}))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        h.upstream_calls()[0].body["contents"][1]["parts"][0]["thoughtSignature"],
        "skip_thought_signature_validator"
    );
}

/// A recorded function call in the older shape (per-candidate `safetyRatings`,
/// `promptFeedback`, no `usageMetadata`) becomes one OpenAI tool call with the same arguments.
#[tokio::test]
async fn a_recorded_function_call_with_safety_ratings_becomes_a_tool_call() {
    let h = start(&[]).await;
    let recorded =
        fixture_json("gemini/generateContent.response.function-call-safety-ratings.json");
    let call = &recorded["candidates"][0]["content"]["parts"][0]["functionCall"];
    h.mock
        .add_rule(Rule::new(Reply::json(recorded.clone())).action("generateContent"));
    let body = json!({"model": FLASH, "messages": [{"role": "user", "content": "Which theaters show Barbie?"}],
        "tools": [{"type": "function", "function": {"name": "find_theaters", "parameters": {"type": "object",
            "properties": {"movie": {"type": "string"}, "location": {"type": "string"}}}}}]});
    let (status, v) = json(h.chat(&body).await).await;
    assert_eq!(status, 200, "{v}");
    let choice = &v["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    let calls = choice["message"]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1, "{v}");
    assert_eq!(calls[0]["type"], "function");
    assert_eq!(calls[0]["function"]["name"], call["name"]);
    let args: Value =
        serde_json::from_str(calls[0]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, call["args"]);
    assert_eq!(v["usage"]["total_tokens"], 0, "no usageMetadata, no tokens");
}

#[tokio::test]
async fn streamed_tool_calls_carry_index_id_and_name() {
    let h = start(&[REAL]).await;
    h.mock.add_rule(
        Rule::new(Reply::function_calls([
            CallSpec::new("get_weather", json!({"city": "Paris"})),
            CallSpec::new("get_weather", json!({"city": "Rome"})),
        ]))
        .action("streamGenerateContent"),
    );
    let body = json!({"model": FLASH, "stream": true, "messages": [{"role": "user", "content": "Both cities"}], "tools": [weather_tool()]});
    let frames = sse(h.chat(&body).await).await;
    let deltas: Vec<&Value> = frames
        .iter()
        .filter_map(|f| f["choices"][0]["delta"]["tool_calls"].as_array())
        .flatten()
        .collect();
    assert_eq!(deltas.len(), 2);
    for (i, d) in deltas.iter().enumerate() {
        assert_eq!(d["index"], i);
        assert!(d["id"].as_str().unwrap().starts_with("call_"));
        assert_eq!(d["type"], "function");
        assert_eq!(d["function"]["name"], "get_weather");
        assert!(
            serde_json::from_str::<Value>(d["function"]["arguments"].as_str().unwrap()).is_ok()
        );
    }
    assert_ne!(deltas[0]["id"], deltas[1]["id"]);
    assert!(
        frames
            .iter()
            .any(|f| f["choices"][0]["finish_reason"] == "tool_calls")
    );
    assert_eq!(frames.last().unwrap(), "[DONE]");
}

#[tokio::test]
async fn json_schema_output_is_requested_and_returned() {
    let h = start(&[]).await;
    let body = json!({"model": FLASH, "messages": [{"role": "user", "content": "A person"}], "response_format": {"type": "json_schema",
        "json_schema": {"name": "person", "strict": true, "schema": {"type": "object", "additionalProperties": false,
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}, "required": ["name", "age"]}}}});
    let (status, v) = json(h.chat(&body).await).await;
    assert_eq!(status, 200, "{v}");
    let content: Value =
        serde_json::from_str(v["choices"][0]["message"]["content"].as_str().unwrap())
            .expect("JSON content");
    assert!(
        content["name"].is_string() && content["age"].is_i64(),
        "{content}"
    );
    let cfg = &h.upstream_calls()[0].body["generationConfig"];
    assert_eq!(cfg["responseMimeType"], "application/json");
    assert_eq!(
        cfg["responseJsonSchema"]["required"],
        json!(["name", "age"])
    );
}

#[tokio::test]
async fn reasoning_effort_and_thoughts_round_trip() {
    let h = start(&[]).await;
    let body = json!({"model": FLASH, "reasoning_effort": "medium", "messages": [{"role": "user", "content": "Think"}]});
    let (status, v) = json(h.chat(&body).await).await;
    assert_eq!(status, 200, "{v}");
    assert!(
        v["choices"][0]["message"]["reasoning_content"]
            .as_str()
            .is_some_and(|r| !r.is_empty())
    );
    assert!(
        !v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .contains("Thinking about it"),
        "thoughts never mixed into content"
    );
    assert!(
        v["usage"]["completion_tokens_details"]["reasoning_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert_eq!(
        h.upstream_calls()[0].body["generationConfig"]["thinkingConfig"],
        json!({"thinkingBudget": 8192, "includeThoughts": true})
    );

    let body = json!({"model": GEMINI3, "reasoning_effort": "minimal", "messages": [{"role": "user", "content": "Think"}]});
    let (status, v) = json(h.chat(&body).await).await;
    assert_eq!(
        status, 200,
        "3 Pro refuses MINIMAL; the proxy clamps to LOW: {v}"
    );
    assert_eq!(
        h.upstream_calls()[1].body["generationConfig"]["thinkingConfig"]["thinkingLevel"],
        "LOW"
    );

    let body = json!({"model": "gemini-2.0-flash", "reasoning_effort": "high", "messages": [{"role": "user", "content": "x"}]});
    let (status, v) = json(h.chat(&body).await).await;
    assert_eq!(
        status, 200,
        "a non-thinking model gets no thinkingConfig (HAJIMI #304): {v}"
    );
}

#[tokio::test]
async fn streamed_reasoning_arrives_as_reasoning_content() {
    let h = start(&[REAL]).await;
    let body =
        json!({"model": FLASH, "stream": true, "messages": [{"role": "user", "content": "Think"}]});
    let frames = sse(h.chat(&body).await).await;
    let reasoning: String = frames
        .iter()
        .filter_map(|f| f["choices"][0]["delta"]["reasoning_content"].as_str())
        .collect();
    let content: String = frames
        .iter()
        .filter_map(|f| f["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(!reasoning.is_empty());
    assert!(!content.contains(&reasoning));
}

#[tokio::test]
async fn search_models_are_listed_and_ground_their_answers() {
    let h = start(&[("SEARCH_MODE", "true")]).await;
    let (_, list) = json(h.get("/v1/models").await).await;
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"gemini-2.5-flash-search"));
    assert!(ids.contains(&"gemini-3-pro-preview-search"));
    assert!(
        !ids.contains(&"gemini-embedding-001-search"),
        "only generating models of 2.x and later"
    );
    let body = json!({"model": "gemini-2.5-flash-search", "messages": [{"role": "user", "content": "News?"}]});
    let (status, v) = json(h.chat(&body).await).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["model"], "gemini-2.5-flash-search");
    let ann = v["choices"][0]["message"]["annotations"]
        .as_array()
        .expect("grounding sources reach the client");
    assert_eq!(ann[0]["type"], "url_citation");
    let call = &h.upstream_calls()[0];
    assert_eq!(call.path, format!("/v1beta/models/{FLASH}:generateContent"));
    assert_eq!(call.body["tools"], json!([{"googleSearch": {}}]));
}

#[tokio::test]
async fn data_url_images_reach_the_model_inline() {
    let h = start(&[]).await;
    let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABpfZFQAAAAABJRU5ErkJggg==";
    let body = json!({"model": FLASH, "messages": [{"role": "user", "content": [{"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{png}")}}]}]});
    let (status, v) = json(h.chat(&body).await).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        h.upstream_calls()[0].body["contents"][0]["parts"][1]["inlineData"],
        json!({"mimeType": "image/png", "data": png})
    );
}
