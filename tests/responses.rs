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

/// A server on `mock` (with storage in `dir` when given), configured like `start`.
async fn boot(mock: &MockGemini, dir: Option<&Path>, extra: &[(&str, &str)]) -> hajimi::Server {
    let mut env: Vec<(String, String)> = vec![
        ("HOST".into(), "127.0.0.1".into()),
        ("PORT".into(), "0".into()),
        ("PASSWORD".into(), PASSWORD.into()),
        ("GEMINI_API_KEYS".into(), KEYS.join(",")),
        ("GEMINI_BASE_URL".into(), mock.url()),
        ("ENABLE_STORAGE".into(), dir.is_some().to_string()),
        ("RANDOM_STRING".into(), "false".into()),
    ];
    if let Some(dir) = dir {
        env.push(("STORAGE_DIR".into(), dir.display().to_string()));
    }
    for (k, v) in extra {
        env.push(((*k).to_owned(), (*v).to_owned()));
    }
    let config = Config::from_sources(Vec::new(), env, &CliOverrides::default()).unwrap();
    hajimi::Server::start(config).await.unwrap()
}

async fn post(server: &hajimi::Server, path: &str, body: &Value) -> (u16, Value) {
    let r = client()
        .post(format!("{}{path}", server.url()))
        .bearer_auth(PASSWORD)
        .json(body)
        .send()
        .await
        .unwrap();
    json(r).await
}

async fn get(server: &hajimi::Server, path: &str) -> (u16, Value) {
    let r = client()
        .get(format!("{}{path}", server.url()))
        .bearer_auth(PASSWORD)
        .send()
        .await
        .unwrap();
    json(r).await
}

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

#[tokio::test]
async fn a_tool_round_trip_keeps_the_call_ids() {
    let h = start(&[]).await;
    h.mock.add_rule(
        Rule::new(Reply::function_call(
            "get_weather",
            json!({"city": "Paris"}),
        ))
        .action("generateContent")
        .times(1),
    );
    let ask = json!({"role": "user", "content": "Weather in Paris?"});
    let (status, r) = create(
        &h,
        &json!({"model": FLASH, "store": false, "input": [ask], "tools": [weather_tool()]}),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    let [call] = output_of(&r, "function_call")[..] else {
        panic!("one call: {r}");
    };
    let call_id = call["call_id"].as_str().unwrap();
    assert!(call_id.starts_with("call_"), "{call}");
    assert_eq!(call["name"], "get_weather");
    assert_eq!(
        serde_json::from_str::<Value>(call["arguments"].as_str().unwrap()).unwrap(),
        json!({"city": "Paris"})
    );
    assert_eq!(r["status"], "completed");
    let decl = &h.upstream_calls()[0].body["tools"][0]["functionDeclarations"][0];
    assert_eq!(decl["name"], "get_weather");

    let (status, r) = create(
        &h,
        &json!({"model": FLASH, "store": false, "tools": [weather_tool()], "input": [
            ask, call, {"type": "function_call_output", "call_id": call_id, "output": "18C and sunny"}]}),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    let up = &h.upstream_calls()[1].body;
    assert_eq!(
        up["contents"][1]["parts"][0]["functionCall"]["name"],
        "get_weather"
    );
    let result = &up["contents"][2]["parts"][0]["functionResponse"];
    assert_eq!(result["name"], "get_weather", "found by call id");
    assert_eq!(result["response"]["output"], "18C and sunny");
    assert!(output_text(&r).contains("Hello"), "{r}");
}

#[tokio::test]
async fn thoughts_come_back_as_a_reasoning_item_with_a_summary() {
    let h = start(&[]).await;
    h.mock.add_rule(Rule::new(
        Reply::text("Three.").thought("s-t-r-a-w-b-e-r-r-y: three r."),
    ));
    let (status, r) = create(
        &h,
        &json!({"model": FLASH, "input": "How many r in strawberry?", "reasoning": {"effort": "low", "summary": "auto"}}),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    let out = r["output"].as_array().unwrap();
    assert_eq!(out[0]["type"], "reasoning", "{r}");
    assert_eq!(
        out[0]["summary"],
        json!([{"type": "summary_text", "text": "s-t-r-a-w-b-e-r-r-y: three r."}])
    );
    assert_eq!(out[1]["type"], "message");
    assert_eq!(output_text(&r), "Three.");
    assert!(
        r["usage"]["output_tokens_details"]["reasoning_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
    let thinking = &h.upstream_calls()[0].body["generationConfig"]["thinkingConfig"];
    assert_eq!(thinking["includeThoughts"], true, "{thinking}");
}

/// Codex's way (`store: false`): the signature rides in the reasoning item's
/// `encrypted_content` and comes back with the replayed items; a server that never saw the
/// first answer (no signature memory) still sends it upstream.
#[tokio::test]
async fn a_gemini3_signature_returns_through_encrypted_content() {
    let mock = MockGemini::start().await.unwrap();
    mock.add_rule(
        Rule::new(Reply::function_call(
            "get_weather",
            json!({"city": "Paris"}),
        ))
        .action("generateContent")
        .times(1),
    );
    let first = start_with_mock(mock, &[]).await;
    let ask = json!({"role": "user", "content": "Weather in Paris?"});
    let (status, r) = create(
        &first,
        &json!({"model": GEMINI3, "store": false, "include": ["reasoning.encrypted_content"],
            "input": [ask], "tools": [weather_tool()]}),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    let out = r["output"].as_array().unwrap().clone();
    assert_eq!(out[0]["type"], "reasoning", "{r}");
    assert!(out[0]["encrypted_content"].is_string(), "{r}");
    assert_eq!(out[1]["type"], "function_call");
    let [issued] = &first.mock.issued_signatures()[..] else {
        panic!("one signature issued");
    };

    // Another server on the same mock: no signature memory of the first answer.
    let fresh = boot(&first.mock, None, &[]).await;
    let mut input = vec![ask];
    input.extend(out.iter().cloned());
    input.push(
        json!({"type": "function_call_output", "call_id": out[1]["call_id"], "output": "18C"}),
    );
    let (status, r) = post(
        &fresh,
        "/v1/responses",
        &json!({"model": GEMINI3, "store": false, "input": input, "tools": [weather_tool()]}),
    )
    .await;
    assert_eq!(
        status, 200,
        "the mock accepts only signatures it issued: {r}"
    );
    let calls = first.upstream_calls();
    let up = &calls.last().unwrap().body;
    assert_eq!(
        up["contents"][1]["parts"][0]["thoughtSignature"],
        issued.as_str(),
        "the client-carried signature reaches Google"
    );
    fresh.shutdown().await.unwrap();
}

#[tokio::test]
async fn previous_response_id_continues_the_stored_conversation() {
    let h = start(&[]).await;
    let (status, first) = create(
        &h,
        &json!({"model": FLASH, "instructions": "Be brief.", "input": "My name is Ana."}),
    )
    .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["store"], true, "store defaults to true");
    let id = first["id"].as_str().unwrap();
    let (status, second) = create(
        &h,
        &json!({"model": FLASH, "previous_response_id": id, "input": "What is my name?"}),
    )
    .await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["previous_response_id"], id);
    assert_ne!(second["id"], first["id"]);
    let up = &h.upstream_calls()[1].body;
    let contents = up["contents"].as_array().unwrap();
    assert_eq!(contents.len(), 3, "{up}");
    assert_eq!(contents[0]["parts"][0]["text"], "My name is Ana.");
    assert_eq!(contents[1]["role"], "model");
    assert_eq!(
        contents[1]["parts"][0]["text"],
        output_text(&first).as_str()
    );
    assert_eq!(contents[2]["parts"][0]["text"], "What is my name?");
    assert!(
        up.get("systemInstruction").is_none(),
        "instructions are not carried over (OpenAI's rule)"
    );

    // A third turn continues the second, the whole chain included.
    let id2 = second["id"].as_str().unwrap();
    let (status, _) = create(
        &h,
        &json!({"model": FLASH, "previous_response_id": id2, "input": "Thanks."}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        h.upstream_calls()[2].body["contents"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
}

#[tokio::test]
async fn a_tool_loop_continues_from_the_stored_call() {
    let h = start(&[REAL]).await;
    h.mock.add_rule(
        Rule::new(Reply::function_call(
            "get_weather",
            json!({"city": "Paris"}),
        ))
        .action("streamGenerateContent")
        .times(1),
    );
    let r = h
        .post(
            "/v1/responses",
            &json!({"model": GEMINI3, "input": "Weather in Paris?", "tools": [weather_tool()], "stream": true}),
        )
        .await;
    let ev = events(&r.text().await.unwrap());
    let done = &ev.last().unwrap().1["response"];
    assert_eq!(ev.last().unwrap().0, "response.completed");
    let [call] = output_of(done, "function_call")[..] else {
        panic!("one call: {done}");
    };
    let args: Vec<&str> = ev
        .iter()
        .filter(|(n, _)| n == "response.function_call_arguments.done")
        .map(|(_, d)| d["arguments"].as_str().unwrap())
        .collect();
    assert_eq!(args, [call["arguments"].as_str().unwrap()]);
    let (status, r) = create(
        &h,
        &json!({"model": GEMINI3, "previous_response_id": done["id"], "tools": [weather_tool()],
            "input": [{"type": "function_call_output", "call_id": call["call_id"], "output": "18C"}]}),
    )
    .await;
    assert_eq!(status, 200, "the mock checks the Gemini 3 signature: {r}");
    let up = &h.upstream_calls()[1].body;
    assert_eq!(
        up["contents"][1]["parts"][0]["functionCall"]["name"],
        "get_weather"
    );
    assert_eq!(
        up["contents"][1]["parts"][0]["thoughtSignature"],
        h.mock.issued_signatures()[0].as_str()
    );
    assert_eq!(
        up["contents"][2]["parts"][0]["functionResponse"]["response"]["output"],
        "18C"
    );
}

#[tokio::test]
async fn an_unknown_previous_response_id_is_a_clear_400() {
    let h = start(&[]).await;
    let (status, v) = create(
        &h,
        &json!({"model": FLASH, "previous_response_id": "resp_nope", "input": "hi"}),
    )
    .await;
    assert_eq!(status, 400, "{v}");
    let e = openai_error(&v);
    assert_eq!(e["param"], "previous_response_id");
    assert_eq!(e["code"], "previous_response_not_found");
    assert!(e["message"].as_str().unwrap().contains("resp_nope"));
    assert!(h.upstream_calls().is_empty(), "nothing sent upstream");

    // `store: false` responses are not kept.
    let (_, r) = create(&h, &json!({"model": FLASH, "store": false, "input": "hi"})).await;
    let (status, _) = create(
        &h,
        &json!({"model": FLASH, "previous_response_id": r["id"], "input": "again"}),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_stored_response_is_read_back_by_id() {
    let h = start(&[]).await;
    let (_, r) = create(&h, &json!({"model": FLASH, "input": "keep me"})).await;
    let id = r["id"].as_str().unwrap();
    let (status, got) = json(h.get(&format!("/v1/responses/{id}")).await).await;
    assert_eq!(status, 200);
    assert_eq!(got, r, "the same object");
    let (status, got) = json(h.get(&format!("/responses/{id}")).await).await;
    assert_eq!((status, &got["id"]), (200, &r["id"]));

    let (status, v) = json(h.get("/v1/responses/resp_unknown").await).await;
    assert_eq!(status, 404, "{v}");
    openai_error(&v);
    let (_, r) = create(
        &h,
        &json!({"model": FLASH, "store": false, "input": "forget me"}),
    )
    .await;
    let (status, _) = json(
        h.get(&format!("/v1/responses/{}", r["id"].as_str().unwrap()))
            .await,
    )
    .await;
    assert_eq!(status, 404, "store: false is not kept");

    let r = h
        .http
        .get(h.url(&format!("/v1/responses/{id}")))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "OpenAI auth");
}

#[tokio::test]
async fn stored_responses_survive_a_restart_with_storage_on() {
    let dir = tempfile::tempdir().unwrap();
    let mock = MockGemini::start().await.unwrap();
    let server = boot(&mock, Some(dir.path()), &[]).await;
    let (status, first) = post(
        &server,
        "/v1/responses",
        &json!({"model": FLASH, "input": "My name is Ana."}),
    )
    .await;
    assert_eq!(status, 200, "{first}");
    let id = first["id"].as_str().unwrap().to_owned();
    server.shutdown().await.unwrap();

    let server = boot(&mock, Some(dir.path()), &[]).await;
    let (status, got) = get(&server, &format!("/v1/responses/{id}")).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got, first);
    mock.reset();
    let (status, second) = post(
        &server,
        "/v1/responses",
        &json!({"model": FLASH, "previous_response_id": id, "input": "What is my name?"}),
    )
    .await;
    assert_eq!(status, 200, "{second}");
    let calls: Vec<_> = mock
        .requests()
        .into_iter()
        .filter(|r| r.action.as_deref() == Some("generateContent"))
        .collect();
    let contents = calls[0].body["contents"].as_array().unwrap();
    assert_eq!(contents.len(), 3);
    assert_eq!(contents[0]["parts"][0]["text"], "My name is Ana.");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn hosted_tools_are_dropped_and_web_search_is_google_search() {
    let h = start(&[]).await;
    let hosted = [
        json!({"type": "file_search", "vector_store_ids": ["vs_1"]}),
        json!({"type": "computer_use_preview", "display_width": 1024, "display_height": 768, "environment": "browser"}),
        json!({"type": "code_interpreter", "container": {"type": "auto"}}),
        json!({"type": "local_shell"}),
        json!({"type": "image_generation"}),
        json!({"type": "mcp", "server_label": "x", "server_url": "https://example.com"}),
    ];
    let mut tools = vec![weather_tool()];
    tools.extend(hosted.iter().cloned());
    let (status, r) = create(&h, &json!({"model": FLASH, "input": "hi", "tools": tools})).await;
    assert_eq!(status, 200, "never a 400: {r}");
    let up = &h.upstream_calls()[0].body;
    assert_eq!(
        up["tools"],
        json!([{"functionDeclarations": [{"name": "get_weather", "description": "Current weather",
            "parametersJsonSchema": weather_tool()["parameters"]}]}]),
        "only the function tool reaches Google"
    );

    let (status, r) = create(
        &h,
        &json!({"model": FLASH, "input": "news?", "tools": [{"type": "web_search", "external_web_access": true}]}),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        h.upstream_calls()[1].body["tools"],
        json!([{"googleSearch": {}}])
    );
}

#[tokio::test]
async fn a_custom_tool_is_a_one_string_function() {
    let h = start(&[]).await;
    h.mock.add_rule(
        Rule::new(Reply::function_call(
            "apply_patch",
            json!({"input": "*** Begin Patch\n*** End Patch"}),
        ))
        .times(1),
    );
    let tool = json!({"type": "custom", "name": "apply_patch", "description": "Apply a patch",
        "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}});
    let (status, r) = create(
        &h,
        &json!({"model": FLASH, "input": "patch it", "tools": [tool]}),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    let [call] = output_of(&r, "custom_tool_call")[..] else {
        panic!("a custom tool call: {r}");
    };
    assert_eq!(call["name"], "apply_patch");
    assert_eq!(call["input"], "*** Begin Patch\n*** End Patch");
    let decl = &h.upstream_calls()[0].body["tools"][0]["functionDeclarations"][0];
    assert_eq!(
        decl["parametersJsonSchema"]["properties"]["input"]["type"],
        "string"
    );
    assert!(
        decl["description"]
            .as_str()
            .unwrap()
            .contains("start: /.+/")
    );

    let (status, r) = create(
        &h,
        &json!({"model": FLASH, "previous_response_id": r["id"], "tools": [tool],
            "input": [{"type": "custom_tool_call_output", "call_id": call["call_id"], "output": "Done!"}]}),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    let result = &h.upstream_calls()[1].body["contents"][2]["parts"][0]["functionResponse"];
    assert_eq!(result["name"], "apply_patch");
    assert_eq!(result["response"]["output"], "Done!");
}

#[tokio::test]
async fn parallel_tool_calls_false_keeps_the_first_call_only() {
    let h = start(&[]).await;
    let two = || {
        Reply::function_calls([
            CallSpec::new("get_weather", json!({"city": "Paris"})),
            CallSpec::new("get_weather", json!({"city": "Rome"})),
        ])
    };
    h.mock.add_rule(Rule::new(two()).times(2));
    let body = json!({"model": FLASH, "input": "Paris and Rome?", "tools": [weather_tool()]});
    let (_, r) = create(&h, &body).await;
    assert_eq!(output_of(&r, "function_call").len(), 2, "{r}");
    let mut single = body.clone();
    single["parallel_tool_calls"] = json!(false);
    let (status, r) = create(&h, &single).await;
    assert_eq!(status, 200);
    let calls = output_of(&r, "function_call");
    assert_eq!(calls.len(), 1, "{r}");
    assert!(calls[0]["arguments"].as_str().unwrap().contains("Paris"));
    assert_eq!(r["parallel_tool_calls"], false);
}

#[tokio::test]
async fn keep_alives_flow_while_a_slow_answer_is_awaited() {
    let h = start(&[("FAKE_STREAMING_INTERVAL", "0.2")]).await;
    h.mock
        .add_rule(Rule::new(Reply::text("slow but sure").after_ms(1000)).action("generateContent"));
    let r = h
        .post(
            "/v1/responses",
            &json!({"model": FLASH, "input": "take your time", "stream": true}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let first_keepalive = text.find(": keep-alive\n\n").expect("keep-alives");
    let created = text.find("event: response.created").unwrap();
    let completed = text.find("event: response.completed").unwrap();
    assert!(
        created < first_keepalive && first_keepalive < completed,
        "{text}"
    );
    let ev = events(&text);
    assert_eq!(ev[0].0, "response.created");
    for (i, (_, data)) in ev.iter().enumerate() {
        assert_eq!(data["sequence_number"], i);
    }
    assert_eq!(
        output_text(&ev.last().unwrap().1["response"]),
        "slow but sure"
    );
}

#[tokio::test]
async fn a_failure_after_the_start_is_an_error_event_then_response_failed() {
    let h = start(&[("FAKE_STREAMING_INTERVAL", "0.2"), ("MAX_RETRY_NUM", "1")]).await;
    h.mock.add_rule(
        Rule::new(Reply::preset("overloaded_503").after_ms(800)).action("generateContent"),
    );
    let r = h
        .post(
            "/v1/responses",
            &json!({"model": FLASH, "input": "hi", "stream": true}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let ev = events(&r.text().await.unwrap());
    let n = names(&ev);
    assert_eq!(
        n,
        [
            "response.created",
            "response.in_progress",
            "error",
            "response.failed"
        ]
    );
    assert!(
        ev[2].1["message"].as_str().unwrap().contains("503"),
        "{:?}",
        ev[2]
    );
    assert_eq!(ev[3].1["response"]["status"], "failed");
    assert!(ev[3].1["response"]["error"]["code"].is_string());
}

#[tokio::test]
async fn errors_before_the_answer_keep_their_status_in_openais_envelope() {
    let h = start(&[]).await;
    let r = h
        .http
        .post(h.url("/v1/responses"))
        .bearer_auth("wrong")
        .json(&json!({"model": FLASH, "input": "hi"}))
        .send()
        .await
        .unwrap();
    let (status, v) = json(r).await;
    assert_eq!(status, 401);
    openai_error(&v);
    let (status, v) = create(
        &h,
        &json!({"model": FLASH, "input": "hi", "text": {"format": {"type": "yaml"}}}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(openai_error(&v)["param"], "text.format");
    h.mock.add_rule(Rule::new(Reply::preset("quota_429")));
    let (status, v) = create(&h, &json!({"model": FLASH, "input": "hi"})).await;
    assert_eq!(status, 429, "{v}");
    openai_error(&v);
}

/// Everything behind the dialect is shared: a real stream cut midway is continued on another
/// key and reaches the client as one completed response, in the Responses dialect.
#[tokio::test]
async fn a_cut_stream_is_rescued_into_one_completed_response() {
    let h = start(&[REAL]).await;
    let full = "one two three four five six seven eight nine ten.";
    h.mock.add_rule(
        Rule::new(Reply::text(full).chunks(10).cut_after(5))
            .action("streamGenerateContent")
            .times(1),
    );
    let r = h
        .post(
            "/v1/responses",
            &json!({"model": FLASH, "input": "count", "stream": true}),
        )
        .await;
    let ev = events(&r.text().await.unwrap());
    assert_eq!(
        h.upstream_calls().len(),
        2,
        "the cut stream and its continuation"
    );
    let n = names(&ev);
    assert_eq!(
        n.iter()
            .filter(|n| **n == "response.output_item.added")
            .count(),
        1,
        "{ev:?}"
    );
    assert_eq!(n.last(), Some(&"response.completed"), "{n:?}");
    let deltas: String = ev
        .iter()
        .filter(|(n, _)| n == "response.output_text.delta")
        .map(|(_, d)| d["delta"].as_str().unwrap())
        .collect();
    let done = output_text(&ev.last().unwrap().1["response"]);
    assert_eq!(deltas, done, "the final response holds what was streamed");
    assert!(
        done.starts_with("one two") && done.len() > full.len() / 2,
        "{done:?}"
    );
    for (i, (_, data)) in ev.iter().enumerate() {
        assert_eq!(
            data["sequence_number"], i,
            "one numbering across the rescue"
        );
    }
}

async fn delete(server: &hajimi::Server, path: &str) -> (u16, Value) {
    let r = client()
        .delete(format!("{}{path}", server.url()))
        .bearer_auth(PASSWORD)
        .send()
        .await
        .unwrap();
    json(r).await
}

#[tokio::test]
async fn a_deleted_response_is_gone_for_good_also_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mock = MockGemini::start().await.unwrap();
    let server = boot(&mock, Some(dir.path()), &[]).await;
    let (_, kept) = post(
        &server,
        "/v1/responses",
        &json!({"model": FLASH, "input": "keep"}),
    )
    .await;
    let kept_id = kept["id"].as_str().unwrap().to_owned();
    let (_, gone) = post(
        &server,
        "/v1/responses",
        &json!({"model": FLASH, "input": "drop"}),
    )
    .await;
    let gone_id = gone["id"].as_str().unwrap().to_owned();

    let (status, v) = delete(&server, &format!("/v1/responses/{gone_id}")).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v,
        json!({"id": gone_id, "object": "response", "deleted": true})
    );
    let (status, v) = get(&server, &format!("/v1/responses/{gone_id}")).await;
    assert_eq!(status, 404, "{v}");
    let (status, v) = delete(&server, &format!("/responses/{gone_id}")).await;
    assert_eq!(status, 404, "deleting twice: {v}");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    let (status, v) = post(
        &server,
        "/v1/responses",
        &json!({"model": FLASH, "previous_response_id": gone_id, "input": "again"}),
    )
    .await;
    assert_eq!(status, 400, "a deleted response cannot be continued: {v}");
    server.shutdown().await.unwrap();

    let server = boot(&mock, Some(dir.path()), &[]).await;
    let (status, _) = get(&server, &format!("/v1/responses/{gone_id}")).await;
    assert_eq!(status, 404, "the delete reached the store");
    let (status, got) = get(&server, &format!("/v1/responses/{kept_id}")).await;
    assert_eq!((status, got), (200, kept), "the other response stays");
    let r = client()
        .delete(format!("{}/v1/responses/{kept_id}", server.url()))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "deleting needs the password");
    server.shutdown().await.unwrap();
}
