//! Anthropic Messages through the real server and the mock: complete answers and streams,
//! a tool round trip, thinking blocks whose signatures carry Gemini's thought signatures
//! across turns (and servers), errors in Anthropic's envelope and statuses, `count_tokens`,
//! `MODEL_ALIASES` in every dialect, and Anthropic's model list.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

mod common;

use common::*;
use mock_gemini::{Reply, Rule};
use serde_json::{Value, json};

const GEMINI3: &str = "gemini-3-pro-preview";
const REAL: (&str, &str) = ("FAKE_STREAMING", "false");
const VERSION: &str = "2023-06-01";

/// `POST path` as Anthropic's SDK sends it: `x-api-key` and `anthropic-version`.
async fn messages_at(h: &Harness, path: &str, body: &Value) -> reqwest::Response {
    h.http
        .post(h.url(path))
        .header("x-api-key", PASSWORD)
        .header("anthropic-version", VERSION)
        .json(body)
        .send()
        .await
        .expect("request sent")
}

async fn messages(h: &Harness, body: &Value) -> reqwest::Response {
    messages_at(h, "/v1/messages", body).await
}

fn ask(model: &str, text: &str) -> Value {
    json!({"model": model, "max_tokens": 256, "messages": [{"role": "user", "content": text}]})
}

/// The named events of an Anthropic stream, each checked: `event:` equals the payload's
/// `type`, LF framing, no `[DONE]`.
async fn events(response: reqwest::Response) -> Vec<(String, Value)> {
    assert_eq!(response.status(), 200);
    let ct = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    let text = response.text().await.expect("body");
    assert!(text.ends_with("\n\n"), "{text:?}");
    assert!(!text.contains("[DONE]"));
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let (event, data) = e.split_once('\n').unwrap_or_else(|| panic!("{e:?}"));
            let name = event
                .strip_prefix("event: ")
                .expect("event line")
                .to_owned();
            let payload: Value =
                serde_json::from_str(data.strip_prefix("data: ").expect("data line")).unwrap();
            assert_eq!(payload["type"], name.as_str(), "{e}");
            (name, payload)
        })
        .collect()
}

fn names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(n, _)| n.as_str()).collect()
}

/// The content blocks a stream built, as a complete answer would hold them.
fn blocks_of(events: &[(String, Value)]) -> Vec<Value> {
    let mut blocks: Vec<Value> = Vec::new();
    let mut json_buf = String::new();
    for (name, e) in events {
        match name.as_str() {
            "content_block_start" => {
                assert_eq!(e["index"].as_u64().unwrap() as usize, blocks.len());
                blocks.push(e["content_block"].clone());
                json_buf.clear();
            }
            "content_block_delta" => {
                let b = blocks.last_mut().unwrap();
                let d = &e["delta"];
                match d["type"].as_str().unwrap() {
                    "text_delta" => {
                        b["text"] = json!(format!(
                            "{}{}",
                            b["text"].as_str().unwrap(),
                            d["text"].as_str().unwrap()
                        ));
                    }
                    "thinking_delta" => {
                        b["thinking"] = json!(format!(
                            "{}{}",
                            b["thinking"].as_str().unwrap(),
                            d["thinking"].as_str().unwrap()
                        ));
                    }
                    "signature_delta" => b["signature"] = d["signature"].clone(),
                    "input_json_delta" => json_buf.push_str(d["partial_json"].as_str().unwrap()),
                    other => panic!("unknown delta {other}"),
                }
            }
            "content_block_stop" => {
                let b = blocks.last_mut().unwrap();
                if b["type"] == "tool_use" && !json_buf.is_empty() {
                    b["input"] = serde_json::from_str(&json_buf).unwrap();
                }
            }
            _ => {}
        }
    }
    blocks
}

/// The Anthropic error envelope, its type checked; returns the message.
fn anthropic_error(body: &Value, kind: &str) -> String {
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], kind, "{body}");
    body["error"]["message"]
        .as_str()
        .expect("message")
        .to_owned()
}

#[tokio::test]
async fn a_message_is_answered_in_anthropics_shape() {
    let h = start(&[]).await;
    h.mock
        .add_rule(Rule::new(Reply::text("Hi from Gemini")).action("generateContent"));
    let mut body = ask(FLASH, "Hello");
    body["system"] =
        json!([{"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}}]);
    body["metadata"] = json!({"user_id": "u-1"});
    let (status, v) = json(messages(&h, &body).await).await;
    assert_eq!(status, 200, "{v}");
    assert!(v["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["model"], FLASH);
    assert_eq!(
        v["content"],
        json!([{"type": "text", "text": "Hi from Gemini"}])
    );
    assert_eq!(v["stop_reason"], "end_turn");
    assert!(v["stop_sequence"].is_null());
    assert!(v["usage"]["input_tokens"].as_u64().unwrap() > 0);
    assert!(v["usage"]["output_tokens"].as_u64().unwrap() > 0);
    let up = &h.upstream_calls()[0];
    assert_eq!(up.model.as_deref(), Some(FLASH));
    assert_eq!(
        up.body["systemInstruction"]["parts"][0]["text"],
        "Be terse."
    );
    assert_eq!(up.body["generationConfig"]["maxOutputTokens"], 256);
    assert!(up.body.get("metadata").is_none());
}

#[tokio::test]
async fn the_password_is_accepted_as_x_api_key_or_bearer_on_both_paths() {
    let h = start(&[]).await;
    for path in ["/v1/messages", "/messages", "/v1/messages?beta=true"] {
        let (status, v) = json(messages_at(&h, path, &ask(FLASH, "hi")).await).await;
        assert_eq!(status, 200, "{path}: {v}");
    }
    let (status, v) = json(h.post("/messages", &ask(FLASH, "hi")).await).await;
    assert_eq!(status, 200, "Bearer: {v}");
    let wrong = h
        .http
        .post(h.url("/v1/messages"))
        .header("x-api-key", "nope")
        .header("anthropic-version", VERSION)
        .json(&ask(FLASH, "hi"))
        .send()
        .await
        .unwrap();
    let (status, v) = json(wrong).await;
    assert_eq!(status, 401);
    anthropic_error(&v, "authentication_error");
    // x-api-key is Anthropic's header: the OpenAI routes do not read it.
    let openai = h
        .http
        .post(h.url("/v1/chat/completions"))
        .header("x-api-key", PASSWORD)
        .json(&hello(FLASH, false))
        .send()
        .await
        .unwrap();
    let (status, v) = json(openai).await;
    assert_eq!(status, 401);
    openai_error(&v);
}

#[tokio::test]
async fn a_stream_has_anthropics_exact_event_sequence() {
    let h = start(&[REAL]).await;
    h.mock
        .add_rule(Rule::new(Reply::text("one two three").chunks(3)));
    let mut body = ask(FLASH, "Count");
    body["stream"] = json!(true);
    let ev = events(messages(&h, &body).await).await;
    assert_eq!(
        names(&ev),
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let start = &ev[0].1["message"];
    assert_eq!(start["model"], FLASH);
    assert_eq!(start["content"], json!([]));
    assert!(start["stop_reason"].is_null());
    assert_eq!(
        blocks_of(&ev),
        [json!({"type": "text", "text": "one two three"})]
    );
    let delta = &ev[6].1;
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert!(delta["usage"]["output_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn a_slow_fake_stream_is_kept_alive_with_pings() {
    let h = start(&[
        ("FAKE_STREAMING", "true"),
        ("FAKE_STREAMING_INTERVAL", "0.1"),
    ])
    .await;
    h.mock
        .add_rule(Rule::new(Reply::text("late").after_ms(700)).action("generateContent"));
    let mut body = ask(FLASH, "Wait");
    body["stream"] = json!(true);
    let ev = events(messages(&h, &body).await).await;
    let n = names(&ev);
    assert_eq!(n[0], "message_start");
    assert_eq!(n[1], "ping", "{n:?}");
    let pings = n.iter().filter(|e| **e == "ping").count();
    assert!(pings >= 2, "{n:?}");
    assert_eq!(n[n.len() - 2..], ["message_delta", "message_stop"]);
    assert_eq!(blocks_of(&ev), [json!({"type": "text", "text": "late"})]);
}

#[tokio::test]
async fn a_real_stream_silent_midway_is_kept_alive_with_pings() {
    let h = start(&[REAL, ("FAKE_STREAMING_INTERVAL", "0.1")]).await;
    h.mock.add_rule(Rule::new(
        Reply::text("one two three").chunks(3).chunk_delay_ms(700),
    ));
    let mut body = ask(FLASH, "Slowly");
    body["stream"] = json!(true);
    let ev = events(messages(&h, &body).await).await;
    let n = names(&ev);
    let first_delta = n.iter().position(|e| *e == "content_block_delta").unwrap();
    let pings = n[first_delta..].iter().filter(|e| **e == "ping").count();
    assert!(pings >= 2, "pings while the upstream is silent: {n:?}");
    assert_eq!(n[n.len() - 2..], ["message_delta", "message_stop"]);
    assert_eq!(
        blocks_of(&ev),
        [json!({"type": "text", "text": "one two three"})]
    );
}

fn weather_tools() -> Value {
    json!([{"name": "get_weather", "description": "Current weather",
            "input_schema": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
                             "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false}}])
}

#[tokio::test]
async fn a_tool_round_trip_keeps_ids_and_ends_with_text() {
    let h = start(&[]).await;
    h.mock.add_rule(
        Rule::new(Reply::function_call(
            "get_weather",
            json!({"city": "Paris"}),
        ))
        .model(FLASH)
        .times(1),
    );
    h.mock
        .add_rule(Rule::new(Reply::text("18C and sunny")).model(FLASH));
    let mut body = ask(FLASH, "Weather in Paris?");
    body["tools"] = weather_tools();
    body["tool_choice"] = json!({"type": "auto"});
    let (status, first) = json(messages(&h, &body).await).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["stop_reason"], "tool_use");
    let call = first["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "tool_use")
        .expect("a tool_use block")
        .clone();
    assert_eq!(call["name"], "get_weather");
    assert_eq!(call["input"], json!({"city": "Paris"}));
    let id = call["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("toolu_"), "{id}");
    assert!(
        first["content"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["type"] != "thinking"),
        "no thinking asked, no thinking block: {first}"
    );
    let up = &h.upstream_calls()[0].body;
    assert_eq!(
        up["tools"][0]["functionDeclarations"][0]["name"],
        "get_weather"
    );
    assert_eq!(up["toolConfig"]["functionCallingConfig"]["mode"], "AUTO");

    body["messages"] = json!([
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": first["content"]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": id,
            "content": [{"type": "text", "text": "18C"}], "is_error": false}]}
    ]);
    let (status, second) = json(messages(&h, &body).await).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["stop_reason"], "end_turn");
    assert_eq!(second["content"][0]["text"], "18C and sunny");
    let up = &h.upstream_calls()[1].body;
    let contents = up["contents"].as_array().unwrap();
    assert_eq!(
        contents[1]["parts"][0]["functionCall"]["name"],
        "get_weather"
    );
    let response = &contents[2]["parts"][0]["functionResponse"];
    assert_eq!(
        response["name"], "get_weather",
        "the name found from the tool_use id"
    );
    assert!(response["response"].to_string().contains("18C"));
}

#[tokio::test]
async fn a_streamed_tool_use_sends_its_input_as_json_deltas() {
    let h = start(&[REAL]).await;
    h.mock.add_rule(Rule::new(Reply::function_call(
        "get_weather",
        json!({"city": "Rome"}),
    )));
    let mut body = ask(FLASH, "Weather in Rome?");
    body["tools"] = weather_tools();
    body["tool_choice"] = json!({"type": "tool", "name": "get_weather"});
    body["stream"] = json!(true);
    let ev = events(messages(&h, &body).await).await;
    let blocks = blocks_of(&ev);
    let call = blocks
        .iter()
        .find(|b| b["type"] == "tool_use")
        .expect("tool_use");
    assert_eq!(call["input"], json!({"city": "Rome"}));
    let (_, delta) = ev.iter().find(|(n, _)| n == "message_delta").unwrap();
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    let cfg = &h.upstream_calls()[0].body["toolConfig"]["functionCallingConfig"];
    assert_eq!(cfg["mode"], "ANY");
    assert_eq!(cfg["allowedFunctionNames"], json!(["get_weather"]));
}

/// A second server in front of the same mock: it shares no memory with the first.
async fn second_server(h: &Harness) -> hajimi::Server {
    let env: Vec<(String, String)> = [
        ("HOST", "127.0.0.1"),
        ("PORT", "0"),
        ("PASSWORD", PASSWORD),
        ("ENABLE_STORAGE", "false"),
        ("RANDOM_STRING", "false"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .chain([
        ("GEMINI_API_KEYS".to_owned(), KEYS.join(",")),
        ("GEMINI_BASE_URL".to_owned(), h.mock.url()),
    ])
    .collect();
    let config = hajimi::config::Config::from_sources(
        Vec::new(),
        env,
        &hajimi::config::CliOverrides::default(),
    )
    .expect("valid config");
    hajimi::Server::start(config).await.expect("server starts")
}

/// Gemini 3 rejects a tool loop whose call comes back without the signature it issued (the
/// mock too). With thinking asked for, the signature travels inside the thinking block's
/// `signature`; the second turn goes to another server, which has no memory of the first,
/// so only the signature the client sent back can satisfy the mock.
#[tokio::test]
async fn thinking_signatures_carry_a_gemini3_tool_loop_across_turns_and_servers() {
    let h = start(&[REAL]).await;
    h.mock.add_rule(
        Rule::new(Reply::function_call(
            "get_weather",
            json!({"city": "Paris"}),
        ))
        .model(GEMINI3)
        .times(1),
    );
    h.mock
        .add_rule(Rule::new(Reply::text("Sunny").thought("The tool said sunny.")).model(GEMINI3));
    let mut body = ask(GEMINI3, "Weather in Paris?");
    body["tools"] = weather_tools();
    body["thinking"] = json!({"type": "enabled", "budget_tokens": 2048});
    body["stream"] = json!(true);
    let ev = events(messages(&h, &body).await).await;
    let blocks = blocks_of(&ev);
    let kinds: Vec<&str> = blocks.iter().map(|b| b["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["thinking", "tool_use"], "{blocks:?}");
    let signature = blocks[0]["signature"].as_str().unwrap();
    assert!(
        signature.starts_with("hjm1:gemini-3-pro-preview:"),
        "{signature}"
    );
    let sig_pos = ev
        .iter()
        .position(|(_, e)| e["delta"]["type"] == "signature_delta")
        .unwrap();
    assert_eq!(
        ev[sig_pos + 1].0,
        "content_block_stop",
        "the signature just before the stop"
    );
    let issued = h.mock.issued_signatures();
    assert!(
        issued.iter().any(|s| signature.ends_with(s.as_str())),
        "{issued:?}"
    );
    let up = &h.upstream_calls()[0].body;
    assert_eq!(
        up["generationConfig"]["thinkingConfig"]["includeThoughts"],
        true
    );

    let other = second_server(&h).await;
    let id = blocks[1]["id"].as_str().unwrap();
    body["stream"] = json!(false);
    body["messages"] = json!([
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": blocks},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": id, "content": "sunny"}]}
    ]);
    let r = h
        .http
        .post(format!("{}/v1/messages", other.url()))
        .header("x-api-key", PASSWORD)
        .header("anthropic-version", VERSION)
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, v) = json(r).await;
    assert_eq!(status, 200, "the mock accepted the replayed call: {v}");
    assert_eq!(v["content"][0]["type"], "thinking");
    assert_eq!(v["content"][0]["thinking"], "The tool said sunny.");
    assert_eq!(v["content"][1], json!({"type": "text", "text": "Sunny"}));
    let replayed = &h.upstream_calls()[1].body["contents"][1]["parts"][0];
    assert!(replayed["functionCall"].is_object());
    assert!(signature.ends_with(replayed["thoughtSignature"].as_str().unwrap()));
}

#[tokio::test]
async fn without_thinking_asked_no_thinking_block_comes_back() {
    let h = start(&[REAL]).await;
    h.mock
        .add_rule(Rule::new(Reply::text("Plain").thought("private")));
    let (status, v) = json(messages(&h, &ask(GEMINI3, "hi")).await).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["content"], json!([{"type": "text", "text": "Plain"}]));
    let mut body = ask(GEMINI3, "hi");
    body["stream"] = json!(true);
    let ev = events(messages(&h, &body).await).await;
    assert_eq!(blocks_of(&ev), [json!({"type": "text", "text": "Plain"})]);
}

#[tokio::test]
async fn errors_use_anthropics_envelope_and_statuses() {
    let h = start(&[("MAX_RETRY_NUM", "3")]).await;
    // The request itself.
    let (status, v) = json(
        messages(
            &h,
            &json!({"model": FLASH, "max_tokens": 5, "messages": []}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 400);
    anthropic_error(&v, "invalid_request_error");
    let (status, v) = json(messages(&h, &json!({"messages": "nope"})).await).await;
    assert_eq!(status, 400);
    anthropic_error(&v, "invalid_request_error");
    let r = h
        .http
        .get(h.url("/v1/messages"))
        .header("x-api-key", PASSWORD)
        .send()
        .await
        .unwrap();
    let (status, v) = json(r).await;
    assert_eq!(status, 405);
    anthropic_error(&v, "invalid_request_error");
    // Google refusing the request.
    h.mock.add_rule(
        Rule::new(Reply::google_error(400, "INVALID_ARGUMENT", "Bad schema."))
            .model("gemini-2.0-flash")
            .times(1),
    );
    let (status, v) = json(messages(&h, &ask("gemini-2.0-flash", "x")).await).await;
    assert_eq!(status, 400);
    assert!(anthropic_error(&v, "invalid_request_error").contains("Bad schema."));
    let (status, v) = json(messages(&h, &ask("gemini-made-up", "x")).await).await;
    assert_eq!(status, 404, "{v}");
    anthropic_error(&v, "not_found_error");
    // Every credential overloaded: 529, which agents retry.
    h.mock.add_rule(
        Rule::new(Reply::preset("overloaded_503"))
            .model(FLASH)
            .times(3),
    );
    let (status, v) = json(messages(&h, &ask(FLASH, "x")).await).await;
    assert_eq!(status, 529, "{v}");
    anthropic_error(&v, "overloaded_error");
    // Every credential out of quota for a while: 429 with retry-after.
    h.mock
        .add_rule(Rule::new(Reply::quota_retry("30s")).model(FLASH).times(3));
    let r = messages(&h, &ask(FLASH, "x")).await;
    assert_eq!(r.headers()["retry-after"], "30");
    let (status, v) = json(r).await;
    assert_eq!(status, 429, "{v}");
    anthropic_error(&v, "rate_limit_error");
}

#[tokio::test]
async fn quota_gone_for_the_day_is_a_402_billing_error() {
    let h = start(&[("MAX_RETRY_NUM", "3")]).await;
    h.mock.add_rule(Rule::new(Reply::preset("quota_429_daily")));
    let (status, v) = json(messages(&h, &ask(FLASH, "x")).await).await;
    assert_eq!(status, 402, "{v}");
    let message = anthropic_error(&v, "billing_error");
    assert!(message.contains(" / "), "bilingual: {message}");
}

#[tokio::test]
async fn a_stream_that_breaks_for_good_ends_with_an_error_event() {
    let h = start(&[REAL, ("MAX_RETRY_NUM", "1")]).await;
    h.mock
        .add_rule(Rule::new(Reply::text("a b c d").chunks(4).cut_after(2)));
    let mut body = ask(FLASH, "x");
    body["stream"] = json!(true);
    let ev = events(messages(&h, &body).await).await;
    let n = names(&ev);
    assert_eq!(n[0], "message_start");
    assert_eq!(*n.last().unwrap(), "error", "{n:?}");
    assert!(!n.contains(&"message_stop"));
    let (_, err) = ev.last().unwrap();
    assert!(err["error"]["type"].is_string() && err["error"]["message"].is_string());
}

#[tokio::test]
async fn count_tokens_goes_through_gemini_count_tokens() {
    let h = start(&[("MODEL_ALIASES", "claude-haiku-*=gemini-2.5-flash")]).await;
    let mut body = ask(
        "claude-haiku-4-5-20251001",
        "How many tokens is this sentence?",
    );
    body.as_object_mut().unwrap().remove("max_tokens");
    body["system"] = json!("Be terse.");
    body["tools"] = weather_tools();
    let (status, v) = json(messages_at(&h, "/v1/messages/count_tokens", &body).await).await;
    assert_eq!(status, 200, "{v}");
    let n = v["input_tokens"].as_u64().unwrap();
    assert!(n > 0, "{v}");
    assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
    let calls: Vec<_> = h
        .mock
        .requests()
        .into_iter()
        .filter(|r| r.action.as_deref() == Some("countTokens"))
        .collect();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].model.as_deref(), Some(FLASH));
    let inner = &calls[0].body["generateContentRequest"];
    assert_eq!(inner["model"], "models/gemini-2.5-flash");
    assert_eq!(inner["systemInstruction"]["parts"][0]["text"], "Be terse.");
    assert!(inner["tools"].is_array());
    assert!(h.upstream_calls().is_empty(), "nothing generated");
    // Google's refusal is the client's error, in Anthropic's shape.
    let (status, v) =
        json(messages_at(&h, "/v1/messages/count_tokens", &ask("gemini-made-up", "x")).await).await;
    assert_eq!(status, 404, "{v}");
    anthropic_error(&v, "not_found_error");
}

#[tokio::test]
async fn model_aliases_apply_in_every_dialect_and_answers_keep_the_clients_name() {
    let h = start(&[(
        "MODEL_ALIASES",
        "claude-sonnet-4-5=gemini-2.5-flash, claude-*=gemini-2.5-pro",
    )])
    .await;
    let (status, v) = json(messages(&h, &ask("claude-sonnet-4-5", "hi")).await).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["model"], "claude-sonnet-4-5");
    let (status, v) = json(messages(&h, &ask("claude-opus-4-1-20250805", "hi")).await).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["model"], "claude-opus-4-1-20250805");
    let (status, v) = json(h.chat(&hello("claude-sonnet-4-5", false)).await).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["model"], "claude-sonnet-4-5");
    let native = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
    let (status, v) = json(
        h.post("/v1beta/models/claude-sonnet-4-5:generateContent", &native)
            .await,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let models: Vec<String> = h
        .upstream_calls()
        .iter()
        .map(|r| r.model.clone().unwrap())
        .collect();
    assert_eq!(models, [FLASH, "gemini-2.5-pro", FLASH, FLASH]);
}

#[tokio::test]
async fn the_model_list_has_anthropics_shape_with_anthropic_version() {
    let h = start(&[(
        "MODEL_ALIASES",
        "claude-sonnet-4-5=gemini-2.5-flash, claude-haiku-*=gemini-2.5-flash",
    )])
    .await;
    let r = h
        .http
        .get(h.url("/v1/models"))
        .header("x-api-key", PASSWORD)
        .header("anthropic-version", VERSION)
        .send()
        .await
        .unwrap();
    let (status, v) = json(r).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["has_more"], false);
    let data = v["data"].as_array().unwrap();
    assert!(data.iter().all(|m| m["type"] == "model"
        && m["created_at"].is_string()
        && m["display_name"].is_string()));
    assert_eq!(v["first_id"], data[0]["id"]);
    assert_eq!(v["last_id"], data[data.len() - 1]["id"]);
    let flash = data
        .iter()
        .find(|m| m["id"] == FLASH)
        .expect("flash listed");
    assert_ne!(
        flash["display_name"], FLASH,
        "Google's display name: {flash}"
    );
    let alias = data
        .iter()
        .find(|m| m["id"] == "claude-sonnet-4-5")
        .expect("the exact alias listed");
    assert!(alias["display_name"].as_str().unwrap().contains(FLASH));
    assert!(
        !data.iter().any(|m| m["id"].as_str().unwrap().contains('*')),
        "prefix aliases are not models"
    );
    let r = h
        .http
        .get(h.url("/v1/models/claude-sonnet-4-5"))
        .header("x-api-key", PASSWORD)
        .header("anthropic-version", VERSION)
        .send()
        .await
        .unwrap();
    let (status, one) = json(r).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["type"], "model");
    // Without the header: OpenAI's list, the alias in it too.
    let (status, v) = json(h.get("/v1/models").await).await;
    assert_eq!(status, 200);
    assert_eq!(v["object"], "list");
    assert!(
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == "claude-sonnet-4-5")
    );
    // Anthropic's list wants Anthropic's credentials and errors.
    let r = h
        .http
        .get(h.url("/v1/models"))
        .header("x-api-key", "wrong")
        .header("anthropic-version", VERSION)
        .send()
        .await
        .unwrap();
    let (status, v) = json(r).await;
    assert_eq!(status, 401);
    anthropic_error(&v, "authentication_error");
}

/// Statistics per dialect: the request log, `/api/usage` (and the dashboard's data) and the
/// `dialect` label of `/metrics`.
#[tokio::test]
async fn statistics_count_each_dialect() {
    let h = start(&[]).await;
    let (status, _) = json(messages(&h, &ask(FLASH, "hi")).await).await;
    assert_eq!(status, 200);
    let (status, _) = json(messages(&h, &ask("gemini-made-up", "hi")).await).await;
    assert_eq!(status, 404);
    let (status, _) = json(h.chat(&hello(FLASH, false)).await).await;
    assert_eq!(status, 200);
    // The request log is written when a body ends: wait for it.
    let usage = eventually("three dialect requests counted", || async {
        let v: Value = h.get("/api/usage").await.json().await.unwrap();
        let d = &v["dialects_today"];
        if d["anthropic"]["requests"] == 2 && d["openai"]["requests"] == 1 {
            Ok(v)
        } else {
            Err(v)
        }
    })
    .await;
    let anthropic = &usage["dialects_today"]["anthropic"];
    assert_eq!(anthropic["failures"], 1, "{usage}");
    assert!(anthropic["tokens"].as_u64().unwrap() > 0, "{usage}");
    let dash: Value = h.get("/api/dashboard-data").await.json().await.unwrap();
    assert_eq!(dash["dialects_today"], usage["dialects_today"]);
    let logs: Value = h.get("/api/logs").await.json().await.unwrap();
    let dialects: Vec<&str> = logs["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["dialect"].as_str().unwrap())
        .collect();
    assert_eq!(dialects, ["anthropic", "anthropic", "openai"]);
    let metrics = h.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("hajimi_requests_total{")
                && l.contains("route=\"/v1/messages\"")
                && l.contains("dialect=\"anthropic\"")),
        "{metrics}"
    );
}

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n-not-really-a-png-but-bytes";

/// A one-image server on 127.0.0.1.
async fn image_server() -> String {
    use axum::http::header;
    let app = axum::Router::new().route(
        "/cat.png",
        axum::routing::get(|| async { ([(header::CONTENT_TYPE, "image/png")], PNG) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// Images (base64, and URLs through the SSRF-checked fetcher) and documents, in a turn and in
/// a tool result, reach Gemini as inline data with their own bytes.
#[tokio::test]
async fn images_and_documents_reach_gemini_inline() {
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let images = image_server().await;
    let h = start(&[("IMAGE_FETCH_ALLOW_LOOPBACK", "true")]).await;
    let big = "A".repeat(8192);
    let pdf = b64(b"%PDF-1.4 not really");
    let body = json!({"model": FLASH, "max_tokens": 64, "messages": [
        {"role": "user", "content": [
            {"type": "text", "text": "Look"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": big}},
            {"type": "image", "source": {"type": "url", "url": format!("{images}/cat.png")}},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": pdf}}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "shot", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [
            {"type": "text", "text": "the screenshot"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": b64(PNG)}}]}]}
    ]});
    let (status, v) = json(messages(&h, &body).await).await;
    assert_eq!(status, 200, "{v}");
    let up = &h.upstream_calls()[0].body;
    let inline: Vec<(String, String)> = up["contents"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["parts"].as_array().unwrap().iter())
        .filter_map(|p| p.get("inlineData"))
        .map(|d| {
            (
                d["mimeType"].as_str().unwrap().to_owned(),
                d["data"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        inline,
        [
            ("image/jpeg".to_owned(), big),
            ("image/png".to_owned(), b64(PNG)),
            ("application/pdf".to_owned(), pdf),
            ("image/png".to_owned(), b64(PNG)),
        ]
    );
    // Without the test-only switch, loopback is refused before anything is sent.
    let h = start(&[]).await;
    let body = json!({"model": FLASH, "max_tokens": 64, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "url", "url": format!("{images}/cat.png")}}]}]});
    let (status, v) = json(messages(&h, &body).await).await;
    assert_eq!(status, 400, "{v}");
    assert!(anthropic_error(&v, "invalid_request_error").contains("Refused"));
    assert!(h.upstream_calls().is_empty());
}
