//! End-to-end tests of tool use: function-call replies and thought signatures, function-turn,
//! tool, schema, thinking and inline-data validation, forced (ANY) calls, Google Search
//! grounding and JSON mode.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mock_gemini::{CallSpec, MockGemini, Reply, Rule};
use serde_json::{Value, json};
use std::time::Duration;

const FLASH: &str = "gemini-2.5-flash";
const G3: &str = "gemini-3-flash-preview";
const G3_PRO: &str = "gemini-3-pro-preview";

struct Answer {
    status: u16,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }
    fn message(&self) -> String {
        self.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

async fn post(mock: &MockGemini, path: &str, body: &Value) -> Answer {
    let r = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
        .post(format!("{}{path}", mock.url()))
        .header("x-goog-api-key", "k")
        .json(body)
        .send()
        .await
        .unwrap();
    Answer {
        status: r.status().as_u16(),
        text: r.text().await.unwrap(),
    }
}

async fn generate(mock: &MockGemini, model: &str, body: &Value) -> Answer {
    post(
        mock,
        &format!("/v1beta/models/{model}:generateContent"),
        body,
    )
    .await
}

async fn stream(mock: &MockGemini, model: &str, body: &Value) -> Vec<Value> {
    let a = post(
        mock,
        &format!("/v1beta/models/{model}:streamGenerateContent?alt=sse"),
        body,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(a.text.ends_with("\r\n\r\n"), "{:?}", a.text);
    a.text
        .split_terminator("\r\n\r\n")
        .map(|e| serde_json::from_str(e.strip_prefix("data: ").unwrap()).unwrap())
        .collect()
}

/// Expects a 400 INVALID_ARGUMENT whose message contains `needle`.
async fn rejects(mock: &MockGemini, model: &str, body: &Value, needle: &str) -> String {
    let a = generate(mock, model, body).await;
    assert_eq!(a.status, 400, "{body}: {}", a.text);
    assert_eq!(a.json()["error"]["status"], "INVALID_ARGUMENT");
    let msg = a.message();
    assert!(msg.contains(needle), "{msg:?} should contain {needle:?}");
    msg
}

async fn accepts(mock: &MockGemini, model: &str, body: &Value) -> Value {
    let a = generate(mock, model, body).await;
    assert_eq!(a.status, 200, "{body}: {}", a.text);
    a.json()
}

fn user(text: &str) -> Value {
    json!({"role": "user", "parts": [{"text": text}]})
}

fn call_part(name: &str, sig: Option<&str>) -> Value {
    let mut p = json!({"functionCall": {"name": name, "args": {"city": "Paris"}}});
    if let Some(s) = sig {
        p["thoughtSignature"] = json!(s);
    }
    p
}

fn model_calls(parts: Vec<Value>) -> Value {
    json!({"role": "model", "parts": parts})
}

fn responses(names: &[&str]) -> Value {
    let parts: Vec<Value> = names
        .iter()
        .map(|n| json!({"functionResponse": {"name": n, "response": {"output": 18}}}))
        .collect();
    json!({"role": "user", "parts": parts})
}

fn with_contents(contents: Vec<Value>) -> Value {
    json!({ "contents": contents })
}

fn weather_tools() -> Value {
    json!([{"functionDeclarations": [
        {"name": "get_weather", "description": "Weather for a city",
         "parameters": {"type": "OBJECT",
                        "properties": {"city": {"type": "STRING"}, "days": {"type": "INTEGER"},
                                       "unit": {"type": "STRING", "enum": ["C", "F"]}},
                        "required": ["city", "days"]}},
        {"name": "get_time", "parameters": {"type": "object",
            "properties": {"zone": {"type": "string"}, "exact": {"type": "boolean"},
                           "opts": {"type": "object", "properties": {"x": {"type": "number"}}}},
            "required": ["exact", "opts"]}}
    ]}])
}

fn first_parts(v: &Value) -> &Vec<Value> {
    v["candidates"][0]["content"]["parts"].as_array().unwrap()
}

#[tokio::test]
async fn function_call_reply_unary() {
    let mock = MockGemini::start().await.unwrap();
    mock.add_rule(
        Rule::new(Reply::function_call(
            "get_weather",
            json!({"city": "Paris"}),
        ))
        .times(1),
    );
    let v = accepts(&mock, FLASH, &with_contents(vec![user("weather?")])).await;
    let c = &v["candidates"][0];
    assert_eq!(
        c["content"]["parts"],
        json!([{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]),
        "no signature on gemini-2.5 by default"
    );
    assert_eq!(c["content"]["role"], "model");
    assert_eq!(c["finishReason"], "STOP");
    assert_eq!(c["finishMessage"], "Model generated function call(s).");
    assert_eq!(c["index"], 0);
    assert!(v["usageMetadata"]["candidatesTokenCount"].as_u64().unwrap() > 0);
    assert!(mock.issued_signatures().is_empty());

    // The JSON form through the control API: text first, parallel calls, args omitted when
    // absent, and on Gemini 3 a signature on the FIRST call only.
    let rule = json!({"reply": {"kind": "function_call", "text": "Checking.",
        "calls": [{"name": "get_weather", "args": {"city": "Paris"}}, {"name": "get_time"}]}});
    let added = post(&mock, "/__mock/rules", &rule).await;
    assert_eq!(added.status, 200, "{}", added.text);
    let v = accepts(&mock, G3_PRO, &with_contents(vec![user("weather?")])).await;
    let parts = first_parts(&v);
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[0], json!({"text": "Checking."}));
    assert_eq!(parts[1]["functionCall"]["name"], "get_weather");
    let sig = parts[1]["thoughtSignature"].as_str().unwrap();
    assert!((56..=64).contains(&sig.len()), "{sig}");
    assert_eq!(
        parts[2],
        json!({"functionCall": {"name": "get_time"}}),
        "second parallel call has no signature and no args"
    );
    assert_eq!(mock.issued_signatures(), vec![sig.to_owned()]);

    // Explicit signature settings override the model default.
    mock.reset();
    mock.add_rule(
        Rule::new(Reply::function_calls([CallSpec::without_args("f")]).signature(false)).model(G3),
    );
    mock.add_rule(Rule::new(Reply::function_call("f", json!({})).signature(true)).model(FLASH));
    let v = accepts(&mock, G3, &with_contents(vec![user("x")])).await;
    assert_eq!(first_parts(&v)[0], json!({"functionCall": {"name": "f"}}));
    let v = accepts(&mock, FLASH, &with_contents(vec![user("x")])).await;
    assert!(first_parts(&v)[0]["thoughtSignature"].is_string());
    assert_eq!(first_parts(&v)[0]["functionCall"]["args"], json!({}));
    assert_eq!(
        mock.issued_signatures().len(),
        2,
        "signatures survive reset"
    );
}

#[tokio::test]
async fn function_call_reply_streams() {
    let mock = MockGemini::start().await.unwrap();
    mock.add_rule(Rule::new(Reply::function_calls([
        CallSpec::new("a", json!({"x": 1})),
        CallSpec::new("b", json!({"y": "<z>"})),
    ])));
    let events = stream(&mock, G3_PRO, &with_contents(vec![user("x")])).await;
    assert_eq!(events.len(), 2);
    let first = &events[0]["candidates"][0];
    assert!(first.get("finishReason").is_none());
    let parts = first["content"]["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(
        parts[0]["functionCall"],
        json!({"name": "a", "args": {"x": 1}})
    );
    assert!(parts[0]["thoughtSignature"].is_string());
    assert!(parts[1].get("thoughtSignature").is_none());
    assert_eq!(parts[1]["functionCall"]["args"]["y"], "<z>");
    let last = &events[1]["candidates"][0];
    assert_eq!(last["content"]["parts"], json!([{"text": ""}]));
    assert_eq!(last["finishReason"], "STOP");
    assert_eq!(events[0]["responseId"], events[1]["responseId"]);
    assert_eq!(events[1]["modelVersion"], G3_PRO);
    assert_eq!(
        events[0]["usageMetadata"], events[1]["usageMetadata"],
        "usage is final in both events"
    );

    // The JSON-array variant carries the same two elements.
    let a = post(
        &mock,
        &format!("/v1beta/models/{FLASH}:streamGenerateContent"),
        &with_contents(vec![user("x")]),
    )
    .await;
    let arr = a.json();
    assert_eq!(arr.as_array().unwrap().len(), 2);
    assert_eq!(arr[1]["candidates"][0]["finishReason"], "STOP");
    assert!(
        arr[0]["candidates"][0]["content"]["parts"][0]
            .get("thoughtSignature")
            .is_none()
    );
}

#[tokio::test]
async fn gemini3_thought_signatures_are_validated() {
    let mock = MockGemini::start().await.unwrap();
    mock.add_rule(
        Rule::new(Reply::function_call(
            "get_weather",
            json!({"city": "Paris"}),
        ))
        .times(1),
    );
    let v = accepts(&mock, G3, &with_contents(vec![user("weather?")])).await;
    let issued = first_parts(&v)[0].clone();
    let sig = issued["thoughtSignature"].as_str().unwrap().to_owned();

    // Replaying the model content unchanged works.
    let ok = with_contents(vec![
        user("weather?"),
        json!({"role": "model", "parts": [issued.clone()]}),
        responses(&["get_weather"]),
    ]);
    let v = accepts(&mock, G3, &ok).await;
    assert!(first_parts(&v)[0]["text"].is_string());

    // Dropping it is refused, naming the call and the 1-based content position.
    let missing = with_contents(vec![
        user("weather?"),
        model_calls(vec![call_part("get_weather", None)]),
        responses(&["get_weather"]),
    ]);
    let msg = rejects(&mock, G3, &missing, "").await;
    assert_eq!(
        msg,
        "Function call is missing a thought_signature in functionCall parts. This is required for \
         tools to work correctly, and missing thought_signature may lead to degraded model \
         performance. Additional data, function call `default_api:get_weather` , position 2. \
         Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
    );
    // Gemini 2.5 does not check.
    accepts(&mock, FLASH, &missing).await;

    // snake_case spelling, the skip literal, an unknown signature.
    let mut snake = call_part("get_weather", None);
    snake["thought_signature"] = json!(sig);
    let body = with_contents(vec![
        user("weather?"),
        model_calls(vec![snake]),
        responses(&["get_weather"]),
    ]);
    accepts(&mock, G3, &body).await;
    let skip = with_contents(vec![
        user("weather?"),
        model_calls(vec![call_part(
            "get_weather",
            Some("skip_thought_signature_validator"),
        )]),
        responses(&["get_weather"]),
    ]);
    accepts(&mock, G3, &skip).await;
    let forged = with_contents(vec![
        user("weather?"),
        model_calls(vec![call_part("get_weather", Some("Zm9yZ2Vk"))]),
        responses(&["get_weather"]),
    ]);
    rejects(&mock, G3, &forged, "Corrupted thought signature.").await;

    // Parallel calls: only the first needs the signature.
    let parallel = with_contents(vec![
        user("weather?"),
        model_calls(vec![
            call_part("get_weather", Some(&sig)),
            call_part("get_weather", None),
        ]),
        responses(&["get_weather", "get_weather"]),
    ]);
    accepts(&mock, G3, &parallel).await;
    let parallel_bad = with_contents(vec![
        user("weather?"),
        model_calls(vec![
            call_part("get_weather", None),
            call_part("get_weather", Some(&sig)),
        ]),
        responses(&["get_weather", "get_weather"]),
    ]);
    rejects(&mock, G3, &parallel_bad, "position 2").await;

    // Earlier turns (before the last user text) are not checked ...
    let old_turn = with_contents(vec![
        user("weather?"),
        model_calls(vec![call_part("get_weather", None)]),
        responses(&["get_weather"]),
        json!({"role": "model", "parts": [{"text": "18 degrees"}]}),
        user("thanks"),
    ]);
    accepts(&mock, G3, &old_turn).await;
    // ... but a functionResponse-only user content does not end the turn.
    let second_step = with_contents(vec![
        user("weather?"),
        model_calls(vec![call_part("get_weather", Some(&sig))]),
        responses(&["get_weather"]),
        model_calls(vec![call_part("get_time", None)]),
        responses(&["get_time"]),
    ]);
    let msg = rejects(
        &mock,
        G3,
        &second_step,
        "`default_api:get_time` , position 4.",
    )
    .await;
    assert!(msg.starts_with("Function call is missing a thought_signature"));
}

#[tokio::test]
async fn function_turns_are_validated() {
    let mock = MockGemini::start().await.unwrap();
    let count_msg = "Please ensure that the number of function response parts is equal to the number \
                     of function call parts of the function call turn.";
    let order_msg = "Please ensure that function call turn comes immediately after a user turn or \
                     after a function response turn.";
    let too_few = with_contents(vec![
        user("x"),
        model_calls(vec![call_part("a", None), call_part("b", None)]),
        responses(&["a"]),
    ]);
    assert_eq!(rejects(&mock, FLASH, &too_few, "").await, count_msg);
    let orphan = with_contents(vec![user("x"), responses(&["a"])]);
    assert_eq!(rejects(&mock, FLASH, &orphan, "").await, count_msg);
    let after_model = with_contents(vec![
        user("x"),
        json!({"role": "model", "parts": [{"text": "let me check"}]}),
        model_calls(vec![call_part("a", None)]),
        responses(&["a"]),
    ]);
    assert_eq!(rejects(&mock, FLASH, &after_model, "").await, order_msg);

    let no_name = with_contents(vec![
        user("x"),
        model_calls(vec![call_part("a", None)]),
        json!({"role": "user", "parts": [{"functionResponse": {"response": {"ok": true}}}]}),
    ]);
    rejects(
        &mock,
        FLASH,
        &no_name,
        "contents[2].parts[0].function_response.name",
    )
    .await;
    let no_response = with_contents(vec![
        user("x"),
        model_calls(vec![call_part("a", None)]),
        json!({"role": "user", "parts": [{"functionResponse": {"name": "a"}}]}),
    ]);
    rejects(
        &mock,
        FLASH,
        &no_response,
        "contents[2].parts[0].function_response.response",
    )
    .await;
    let not_object = with_contents(vec![
        user("x"),
        model_calls(vec![call_part("a", None)]),
        json!({"role": "user", "parts": [{"functionResponse": {"name": "a", "response": "18C"}}]}),
    ]);
    rejects(
        &mock,
        FLASH,
        &not_object,
        "Invalid value at 'contents[2].parts[0].function_response.response' (type.googleapis.com/google.protobuf.Struct), \"18C\"",
    )
    .await;

    // snake_case parts and the "function"/"tool" roles are fine.
    let snake = with_contents(vec![
        user("x"),
        json!({"role": "model", "parts": [{"function_call": {"name": "a", "args": {}}},
                                          {"function_call": {"name": "b"}}]}),
        json!({"role": "function", "parts": [
            {"function_response": {"name": "a", "response": {"output": 1}}},
            {"function_response": {"name": "b", "response": {}}}]}),
    ]);
    let v = accepts(&mock, FLASH, &snake).await;
    assert_eq!(
        first_parts(&v)[0]["text"],
        "Hello from mock Gemini. You said: x"
    );
}

#[tokio::test]
async fn tools_and_schemas_are_validated() {
    let mock = MockGemini::start().await.unwrap();
    let with_tools = |tools: Value| {
        let mut b = with_contents(vec![user("x")]);
        b["tools"] = tools;
        b
    };
    let msg = rejects(
        &mock,
        FLASH,
        &with_tools(json!([{"googleSearch": {}}, {"webBrowser": {}}])),
        "",
    )
    .await;
    assert_eq!(
        msg,
        "Invalid JSON payload received. Unknown name \"webBrowser\" at 'tools[1]': Cannot find field."
    );
    rejects(
        &mock,
        FLASH,
        &with_tools(json!([{"functionDeclarations": [{"name": "f", "strict": true}]}])),
        "Unknown name \"strict\" at 'tools[0].function_declarations[0]': Cannot find field.",
    )
    .await;
    rejects(
        &mock,
        FLASH,
        &with_tools(json!([{"functionDeclarations": [{"name": "f"}, {"name": "9lives"}, {"description": "x"}]}])),
        "* GenerateContentRequest.tools[0].function_declarations[1].name: Invalid function name.",
    )
    .await;
    // Unknown schema keywords anywhere, reported together with Google's paths.
    let a = generate(
        &mock,
        FLASH,
        &with_tools(json!([{"functionDeclarations": [{"name": "f", "parameters": {
            "$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
            "properties": {"a": {"type": "array", "items": {"type": "object", "additionalProperties": false,
                                                            "properties": {"q": {"type": "string"}}}},
                           "b": {"anyOf": [{"type": "string"}, {"const": "x"}]}}}}]}])),
    )
    .await;
    assert_eq!(a.status, 400);
    let msg = a.message();
    for needle in [
        "Unknown name \"$schema\" at 'tools[0].function_declarations[0].parameters': Cannot find field.",
        "Unknown name \"additionalProperties\" at 'tools[0].function_declarations[0].parameters.properties[0].value.items': Cannot find field.",
        "Unknown name \"const\" at 'tools[0].function_declarations[0].parameters.properties[1].value.any_of[1]': Cannot find field.",
    ] {
        assert!(msg.contains(needle), "{msg}\nshould contain {needle}");
    }
    let violations = &a.json()["error"]["details"][0]["fieldViolations"];
    assert_eq!(violations.as_array().unwrap().len(), 3);
    assert_eq!(
        a.json()["error"]["details"][0]["@type"],
        "type.googleapis.com/google.rpc.BadRequest"
    );

    // Property names are free, enum/default/example values are not inspected.
    let free = json!([{"functionDeclarations": [{"name": "f", "parameters": {"type": "OBJECT",
        "properties": {"type": {"type": "string", "enum": ["$ref", "const"], "default": "const",
                                "example": {"additionalProperties": 1}},
                       "format": {"type": "integer", "format": "int32", "minimum": 0, "maximum": 9},
                       "list": {"type": "array", "items": {"type": "string"}, "minItems": 1}},
        "required": ["type"], "propertyOrdering": ["type", "format"], "nullable": false}}]}]);
    accepts(&mock, FLASH, &with_tools(free)).await;

    rejects(
        &mock,
        FLASH,
        &with_tools(json!([{"functionDeclarations": [{"name": "f", "parameters": {"type": "object",
            "properties": {"a": {"type": ["string", "null"]}}}}]}])),
        "Unknown name \"type\" at 'tools[0].function_declarations[0].parameters.properties[0].value': Proto field is not repeating, cannot start list.",
    )
    .await;
    rejects(
        &mock,
        FLASH,
        &with_tools(
            json!([{"functionDeclarations": [{"name": "f", "parameters": {"type": "float"}}]}]),
        ),
        "Invalid value at 'tools[0].function_declarations[0].parameters.type'",
    )
    .await;
    let msg = rejects(
        &mock,
        FLASH,
        &with_tools(json!([{"functionDeclarations": [{"name": "f", "parameters": {"type": "object", "properties": {}}}]}])),
        "",
    )
    .await;
    assert_eq!(
        msg,
        "* GenerateContentRequest.tools[0].function_declarations[0].parameters.properties: should be non-empty for OBJECT type\n"
    );
    rejects(
        &mock,
        FLASH,
        &with_tools(json!([{"functionDeclarations": [{"name": "f",
            "parameters": {"type": "object", "properties": {"a": {"type": "string"}}},
            "parametersJsonSchema": {"type": "object"}}]}])),
        "parameters_json_schema",
    )
    .await;
    // parametersJsonSchema / responseJsonSchema take any JSON Schema; snake_case fields work;
    // googleSearch next to functionDeclarations is allowed.
    let json_schema = json!({"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
        "additionalProperties": false, "properties": {"a": {"type": ["string", "null"], "format": "date-time"},
        "b": {"anyOf": [{"$ref": "#/$defs/x"}, {"type": "null"}]}}, "$defs": {"x": {"const": 1}},
        "properties_extra": {}});
    let mut body = with_tools(json!([
        {"function_declarations": [{"name": "f", "parameters_json_schema": json_schema.clone(),
                                    "response_json_schema": json_schema.clone(), "behavior": "BLOCKING"}]},
        {"google_search": {}}, {"code_execution": {}}, {"urlContext": {}}
    ]));
    body["generationConfig"] =
        json!({"responseMimeType": "application/json", "responseJsonSchema": json_schema});
    accepts(&mock, FLASH, &body).await;

    // responseSchema is the OpenAPI subset too; it excludes responseJsonSchema.
    let mut body = with_contents(vec![user("x")]);
    body["generationConfig"] = json!({"responseMimeType": "application/json",
        "responseSchema": {"type": "object", "properties": {"a": {"type": "string", "additionalProperties": false}}}});
    rejects(
        &mock,
        FLASH,
        &body,
        "Unknown name \"additionalProperties\" at 'generation_config.response_schema.properties[0].value': Cannot find field.",
    )
    .await;
    body["generationConfig"] = json!({"responseMimeType": "application/json",
        "responseSchema": {"type": "object", "properties": {"a": {"type": "string"}}},
        "responseJsonSchema": {"type": "object"}});
    rejects(&mock, FLASH, &body, "response_json_schema").await;

    // toolConfig.functionCallingConfig.
    let mut body = with_tools(weather_tools());
    body["toolConfig"] = json!({"functionCallingConfig": {"mode": "ANY", "allowed_function_names": ["get_time"], "strict": true}});
    rejects(
        &mock,
        FLASH,
        &body,
        "Unknown name \"strict\" at 'tool_config.function_calling_config': Cannot find field.",
    )
    .await;
    body["toolConfig"] = json!({"function_calling_config": {"mode": "SOMETIMES"}});
    rejects(
        &mock,
        FLASH,
        &body,
        "Invalid value at 'tool_config.function_calling_config.mode'",
    )
    .await;
    body["toolConfig"] = json!({"functionCallingConfig": {"mode": "ANY"}});
    body["generationConfig"] = json!({"responseMimeType": "application/json"});
    let a = generate(&mock, FLASH, &body).await;
    let fixture: Value = serde_json::from_str(include_str!(
        "../../../tests/fixtures/gemini/error.400.any-mode-with-json-mime.json"
    ))
    .unwrap();
    assert_eq!((a.status, a.json()), (400, fixture));
    for mode in ["AUTO", "NONE", "VALIDATED", "auto"] {
        body["toolConfig"] = json!({"functionCallingConfig": {"mode": mode}});
        accepts(&mock, FLASH, &body).await;
    }
}

#[tokio::test]
async fn any_mode_answers_with_a_function_call() {
    let mock = MockGemini::start().await.unwrap();
    let mut body = with_contents(vec![user("weather?")]);
    body["tools"] = weather_tools();
    // AUTO (or no toolConfig) answers text.
    let v = accepts(&mock, FLASH, &body).await;
    assert_eq!(
        first_parts(&v)[0]["text"],
        "Hello from mock Gemini. You said: weather?"
    );
    body["toolConfig"] = json!({"functionCallingConfig": {"mode": "ANY"}});
    let v = accepts(&mock, FLASH, &body).await;
    assert_eq!(
        first_parts(&v),
        &vec![
            json!({"functionCall": {"name": "get_weather", "args": {"city": "sample", "days": 1}}})
        ]
    );
    assert_eq!(
        v["candidates"][0]["finishMessage"],
        "Model generated function call(s)."
    );
    body["toolConfig"] =
        json!({"functionCallingConfig": {"mode": "any", "allowedFunctionNames": ["get_time"]}});
    let v = accepts(&mock, G3, &body).await;
    let part = &first_parts(&v)[0];
    assert_eq!(
        part["functionCall"],
        json!({"name": "get_time", "args": {"exact": true, "opts": {}}})
    );
    let sig = part["thoughtSignature"].as_str().unwrap();
    assert!(mock.issued_signatures().contains(&sig.to_owned()));

    let events = stream(&mock, FLASH, &body).await;
    assert_eq!(events.len(), 2);
    assert_eq!(
        events[0]["candidates"][0]["content"]["parts"][0]["functionCall"]["name"],
        "get_time"
    );
    assert_eq!(
        events[1]["candidates"][0]["content"]["parts"],
        json!([{"text": ""}])
    );

    // A scripted rule still wins.
    mock.add_rule(Rule::new(Reply::text("scripted")));
    let v = accepts(&mock, FLASH, &body).await;
    assert_eq!(first_parts(&v)[0]["text"], "scripted");
}

#[tokio::test]
async fn google_search_grounding() {
    let mock = MockGemini::start().await.unwrap();
    let mut body = with_contents(vec![user("current Google stock price")]);
    body["tools"] = json!([{"googleSearch": {}}]);
    let v = accepts(&mock, FLASH, &body).await;
    let c = &v["candidates"][0];
    let text = c["content"]["parts"][0]["text"].as_str().unwrap();
    let g = &c["groundingMetadata"];
    assert_eq!(g["webSearchQueries"], json!(["current Google stock price"]));
    let chunks = g["groundingChunks"].as_array().unwrap();
    assert_eq!(chunks.len(), 2);
    for ch in chunks {
        assert!(
            ch["web"]["uri"]
                .as_str()
                .unwrap()
                .starts_with("https://vertexaisearch.cloud.google.com/grounding-api-redirect/")
        );
        assert_eq!(ch["web"]["title"], "example.com");
    }
    assert_ne!(chunks[0]["web"]["uri"], chunks[1]["web"]["uri"]);
    let support = &g["groundingSupports"][0];
    let end = support["segment"]["endIndex"].as_u64().unwrap() as usize;
    assert!(end > 0 && end <= text.len());
    assert_eq!(support["segment"]["text"], text[..end]);
    assert_eq!(support["groundingChunkIndices"], json!([0]));
    assert!(
        g["searchEntryPoint"]["renderedContent"]
            .as_str()
            .unwrap()
            .contains("<a class=\"chip\"")
    );
    assert_eq!(g["retrievalMetadata"], json!({}));

    // Streams carry it on the last event only; `<` is escaped in the SSE bytes.
    body["tools"] = json!([{"google_search_retrieval": {}}]);
    let a = post(
        &mock,
        &format!("/v1beta/models/{FLASH}:streamGenerateContent?alt=sse"),
        &body,
    )
    .await;
    assert!(!a.text.contains('<') && a.text.contains("\\u003cstyle"));
    let events = stream(&mock, FLASH, &body).await;
    assert_eq!(events.len(), 3);
    assert!(
        events[..2]
            .iter()
            .all(|e| e["candidates"][0].get("groundingMetadata").is_none())
    );
    assert!(events[2]["candidates"][0]["groundingMetadata"]["groundingChunks"].is_array());

    // Scripted text answers are grounded too; plain requests are not.
    mock.add_rule(Rule::new(Reply::text("Scripted answer. Second.")).times(1));
    let v = accepts(&mock, FLASH, &body).await;
    assert_eq!(
        v["candidates"][0]["groundingMetadata"]["groundingSupports"][0]["segment"]["text"],
        "Scripted answer."
    );
    let v = accepts(&mock, FLASH, &with_contents(vec![user("x")])).await;
    assert!(v["candidates"][0].get("groundingMetadata").is_none());
}

#[tokio::test]
async fn json_mode_answers_json() {
    let mock = MockGemini::start().await.unwrap();
    let mut body = with_contents(vec![user("list it")]);
    body["generationConfig"] = json!({"responseMimeType": "application/json"});
    let v = accepts(&mock, FLASH, &body).await;
    let text = first_parts(&v)[0]["text"].as_str().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(text).unwrap(),
        json!({"answer": "Hello from mock Gemini. You said: list it"})
    );

    body["generationConfig"] = json!({"responseMimeType": "application/json", "responseSchema": {
        "type": "OBJECT", "properties": {"name": {"type": "STRING"}, "age": {"type": "INTEGER"},
        "tags": {"type": "ARRAY", "items": {"type": "STRING"}},
        "address": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}, "zip": {"type": "NUMBER"}}},
        "ok": {"type": "BOOLEAN"}}}});
    let expected = json!({"name": "sample", "age": 1, "tags": [], "ok": true,
                          "address": {"city": "sample", "zip": 1}});
    let v = accepts(&mock, FLASH, &body).await;
    let text = first_parts(&v)[0]["text"].as_str().unwrap();
    assert_eq!(serde_json::from_str::<Value>(text).unwrap(), expected);

    // Streams split the JSON text across events as usual.
    let events = stream(&mock, FLASH, &body).await;
    assert_eq!(events.len(), 3);
    let joined: String = events
        .iter()
        .map(|e| {
            e["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(serde_json::from_str::<Value>(&joined).unwrap(), expected);

    body["generationConfig"] = json!({"response_mime_type": "application/json",
        "response_json_schema": {"type": "object", "properties": {"when": {"type": ["string", "null"]}},
                                 "additionalProperties": false}});
    let v = accepts(&mock, FLASH, &body).await;
    let text = first_parts(&v)[0]["text"].as_str().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(text).unwrap(),
        json!({"when": "sample"})
    );
}

#[tokio::test]
async fn thinking_levels_and_budgets() {
    let mock = MockGemini::start().await.unwrap();
    let think = |cfg: Value| {
        let mut b = with_contents(vec![user("x")]);
        b["generationConfig"] = json!({ "thinkingConfig": cfg });
        b
    };
    rejects(
        &mock,
        G3,
        &think(json!({"thinkingLevel": "EXTREME"})),
        "Invalid value at 'generation_config.thinking_config.thinking_level'",
    )
    .await;
    for level in ["minimal", "LOW", "Medium", "HIGH"] {
        accepts(&mock, G3, &think(json!({ "thinkingLevel": level }))).await;
    }
    let msg = rejects(
        &mock,
        G3_PRO,
        &think(json!({"thinkingLevel": "minimal"})),
        "",
    )
    .await;
    assert_eq!(
        msg,
        "Thinking level MINIMAL is not supported for this model. Please retry with other thinking level."
    );
    rejects(
        &mock,
        G3_PRO,
        &think(json!({"thinkingLevel": "MEDIUM"})),
        "Thinking level MEDIUM is not supported",
    )
    .await;
    accepts(&mock, G3_PRO, &think(json!({"thinkingLevel": "low"}))).await;
    let msg = rejects(&mock, FLASH, &think(json!({"thinkingLevel": "LOW"})), "").await;
    assert_eq!(msg, "Thinking level is not supported for this model.");
    let msg = rejects(
        &mock,
        "gemini-2.5-pro",
        &think(json!({"thinkingBudget": 0})),
        "",
    )
    .await;
    assert_eq!(
        msg,
        "Budget 0 is invalid. This model only works in thinking mode."
    );
    accepts(
        &mock,
        "gemini-2.5-pro",
        &think(json!({"thinkingBudget": 128})),
    )
    .await;
    accepts(&mock, FLASH, &think(json!({"thinking_budget": 0}))).await;
    rejects(
        &mock,
        G3,
        &think(json!({"thinkingBudget": 0, "thinkingLevel": "LOW"})),
        "You can only set only one of thinking budget and thinking level.",
    )
    .await;

    // Gemini 3.1 Pro (recorded): MINIMAL refused.
    mock.set_models(vec![json!({"name": "models/gemini-3.1-pro-preview",
        "supportedGenerationMethods": ["generateContent"], "thinking": true})]);
    rejects(
        &mock,
        "gemini-3.1-pro-preview",
        &think(json!({"thinkingLevel": "MINIMAL"})),
        "Thinking level MINIMAL is not supported for this model.",
    )
    .await;
    accepts(
        &mock,
        "gemini-3.1-pro-preview",
        &think(json!({"thinkingLevel": "HIGH"})),
    )
    .await;
}

#[tokio::test]
async fn inline_data_must_be_base64() {
    let mock = MockGemini::start().await.unwrap();
    let body = |part: Value| {
        with_contents(vec![
            json!({"role": "user", "parts": [{"text": "what is this?"}, part]}),
        ])
    };
    accepts(
        &mock,
        FLASH,
        &body(json!({"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}})),
    )
    .await;
    accepts(
        &mock,
        FLASH,
        &body(json!({"inline_data": {"mime_type": "image/png", "data": "iVBORw0KGgo"}})),
    )
    .await;
    let msg = rejects(
        &mock,
        FLASH,
        &body(json!({"inlineData": {"mimeType": "image/png", "data": "data:image/png;base64,AAAA"}})),
        "Invalid value at 'contents[0].parts[1].inline_data.data' (TYPE_BYTES), Base64 decoding failed",
    )
    .await;
    assert!(msg.contains("data:image/png"), "{msg}");
    rejects(
        &mock,
        FLASH,
        &body(json!({"inline_data": {"mime_type": "image/png", "data": "@@@"}})),
        "'contents[0].parts[1].inline_data.data' (TYPE_BYTES)",
    )
    .await;
}
