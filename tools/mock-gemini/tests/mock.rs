//! End-to-end tests of the mock over real HTTP: wire framing, validation, rules, presets,
//! pagination, recording, the control API and the binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mock_gemini::{MockGemini, Options, PRESETS, Reply, Rule};
use serde_json::{Value, json};
use std::time::Duration;

#[path = "../../../tests/common/poll.rs"]
mod poll;
use poll::eventually;

const FLASH: &str = "gemini-2.5-flash";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn hello(text: &str) -> Value {
    json!({"contents": [{"role": "user", "parts": [{"text": text}]}]})
}

struct Answer {
    status: u16,
    content_type: String,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }
    fn error_status(&self) -> String {
        self.json()["error"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

async fn call(mock: &MockGemini, key: Option<&str>, path: &str, body: Option<&Value>) -> Answer {
    let url = format!("{}{path}", mock.url());
    let c = client();
    let mut req = match body {
        Some(b) => c.post(url).json(b),
        None => c.get(url),
    };
    if let Some(k) = key {
        req = req.header("x-goog-api-key", k);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    Answer {
        status,
        content_type,
        text: r.text().await.unwrap(),
    }
}

fn sse_events(body: &str) -> Vec<Value> {
    assert!(body.ends_with("\r\n\r\n"), "{body:?}");
    body.split_terminator("\r\n\r\n")
        .map(|e| serde_json::from_str(e.strip_prefix("data: ").unwrap()).unwrap())
        .collect()
}

#[tokio::test]
async fn unary_echo_and_usage() {
    let mock = MockGemini::start().await.unwrap();
    let mut body = hello("ping");
    body["generationConfig"] = json!({"candidateCount": 2});
    let a = call(
        &mock,
        Some("k"),
        &format!("/v1beta/models/{FLASH}:generateContent"),
        Some(&body),
    )
    .await;
    assert_eq!(
        (a.status, a.content_type.as_str()),
        (200, "application/json; charset=UTF-8")
    );
    assert!(
        a.text.starts_with("{\n  \"candidates\": [\n"),
        "pretty-printed: {}",
        a.text
    );
    let v = a.json();
    assert_eq!(
        v["candidates"][0]["content"]["parts"][0]["text"],
        "Hello from mock Gemini. You said: ping"
    );
    assert_eq!(
        v["candidates"][1]["content"]["parts"][0]["text"],
        "Hello from mock Gemini. You said: ping [1]"
    );
    assert_eq!(v["candidates"][1]["index"], 1);
    assert_eq!(v["candidates"][0]["finishReason"], "STOP");
    assert_eq!(v["modelVersion"], FLASH);
    assert!(v["responseId"].as_str().unwrap().len() >= 20);
    let u = &v["usageMetadata"];
    let (p, c) = (
        u["promptTokenCount"].as_u64().unwrap(),
        u["candidatesTokenCount"].as_u64().unwrap(),
    );
    assert_eq!(u["totalTokenCount"].as_u64(), Some(p + c));
    assert_eq!(u["promptTokensDetails"][0]["tokenCount"].as_u64(), Some(p));

    // `:` may arrive percent-encoded, v1alpha works, and thoughts come first when asked for.
    let mut body = hello("x");
    body["generation_config"] = json!({"thinking_config": {"include_thoughts": true}});
    let a = call(
        &mock,
        Some("k"),
        &format!("/v1alpha/models/{FLASH}%3AgenerateContent"),
        Some(&body),
    )
    .await;
    let v = a.json();
    assert_eq!(
        v["candidates"][0]["content"]["parts"][0],
        json!({"text": "Thinking about it...", "thought": true})
    );
    assert!(v["usageMetadata"]["thoughtsTokenCount"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn sse_framing_is_googles() {
    let mock = MockGemini::start().await.unwrap();
    let path = format!("/v1beta/models/{FLASH}:streamGenerateContent?alt=sse");
    let a = call(&mock, Some("k"), &path, Some(&hello("a <tag> b"))).await;
    assert_eq!(
        (a.status, a.content_type.as_str()),
        (200, "text/event-stream")
    );
    assert!(
        a.text
            .starts_with("data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \""),
        "{}",
        a.text
    );
    assert!(a.text.contains("\\u003ctag\\u003e"), "escaped: {}", a.text);
    assert!(
        !a.text.contains('<') && !a.text.contains(", \""),
        "compact: {}",
        a.text
    );
    assert!(
        a.text.contains("\"role\": \"model\"},\"index\": 0}"),
        "{}",
        a.text
    );
    let events = sse_events(&a.text);
    assert_eq!(events.len(), 3);
    let text: String = events
        .iter()
        .map(|e| {
            e["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(text, "Hello from mock Gemini. You said: a <tag> b");
    assert!(
        events[..2]
            .iter()
            .all(|e| e["candidates"][0].get("finishReason").is_none())
    );
    assert_eq!(events[2]["candidates"][0]["finishReason"], "STOP");
    assert!(
        events
            .iter()
            .all(|e| e["responseId"] == events[0]["responseId"] && e["modelVersion"] == FLASH)
    );
    let counts: Vec<u64> = events
        .iter()
        .map(|e| {
            e["usageMetadata"]["candidatesTokenCount"]
                .as_u64()
                .unwrap_or(0)
        })
        .collect();
    assert!(
        counts.windows(2).all(|w| w[0] <= w[1]) && counts[2] > 0,
        "cumulative: {counts:?}"
    );
}

#[tokio::test]
async fn json_array_stream_variant() {
    let mock = MockGemini::start().await.unwrap();
    let path = format!("/v1beta/models/{FLASH}:streamGenerateContent");
    let a = call(&mock, Some("k"), &path, Some(&hello("hi"))).await;
    assert_eq!(
        (a.status, a.content_type.as_str()),
        (200, "application/json; charset=UTF-8")
    );
    assert!(a.text.starts_with("[{\n  \"candidates\""), "{}", a.text);
    assert_eq!(a.text.matches("\n,\r\n{").count(), 2);
    assert!(a.text.ends_with("}\n]"));
    let arr = a.json();
    assert_eq!(arr.as_array().unwrap().len(), 3);
    assert_eq!(arr[2]["candidates"][0]["finishReason"], "STOP");

    // Errors in array mode come wrapped in an array.
    let a = call(
        &mock,
        Some("k"),
        "/v1beta/models/nope:streamGenerateContent",
        Some(&hello("hi")),
    )
    .await;
    assert_eq!(a.status, 404);
    assert_eq!(a.json()[0]["error"]["status"], "NOT_FOUND");
}

#[tokio::test]
async fn rules_times_and_keys() {
    let mock = MockGemini::start().await.unwrap();
    mock.add_rule(Rule::new(Reply::preset("quota_429")).key("A").times(1));
    let path = format!("/v1beta/models/{FLASH}:generateContent");
    let first = call(&mock, Some("A"), &path, Some(&hello("x"))).await;
    assert_eq!(first.status, 429);
    assert_eq!(first.json()["error"]["details"][1]["retryDelay"], "34.4s");
    assert_eq!(
        call(&mock, Some("B"), &path, Some(&hello("x")))
            .await
            .status,
        200
    );
    assert_eq!(
        call(&mock, Some("A"), &path, Some(&hello("x")))
            .await
            .status,
        200
    );

    // Model + action matching, custom text with chunks and candidates, Error kind.
    mock.add_rule(
        Rule::new(Reply::error(418, json!({"error": {"code": 418}})))
            .model("models/gemini-2.5-pro"),
    );
    let text = Reply::text("one two three four")
        .chunks(4)
        .finish("MAX_TOKENS");
    mock.add_rule(Rule::new(text).action("streamGenerateContent"));
    let a = call(
        &mock,
        Some("A"),
        "/v1beta/models/gemini-2.5-pro:generateContent",
        Some(&hello("x")),
    )
    .await;
    assert_eq!(a.status, 418);
    let a = call(
        &mock,
        Some("A"),
        &format!("/v1beta/models/{FLASH}:streamGenerateContent?alt=sse"),
        Some(&hello("x")),
    )
    .await;
    let events = sse_events(&a.text);
    assert_eq!(events.len(), 4);
    assert_eq!(events[3]["candidates"][0]["finishReason"], "MAX_TOKENS");

    // A key can be made to fail on model listing too.
    mock.reset();
    mock.add_rule(Rule::new(Reply::preset("api_key_invalid")).key("bad"));
    assert_eq!(
        call(&mock, Some("bad"), "/v1beta/models", None)
            .await
            .status,
        400
    );
    assert_eq!(
        call(&mock, Some("good"), "/v1beta/models", None)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn every_preset_has_its_status_and_reason() {
    let mock = MockGemini::start().await.unwrap();
    let expected: &[(&str, u16, &str, Option<&str>)] = &[
        (
            "api_key_invalid",
            400,
            "INVALID_ARGUMENT",
            Some("API_KEY_INVALID"),
        ),
        ("quota_429", 429, "RESOURCE_EXHAUSTED", None),
        ("quota_429_daily", 429, "RESOURCE_EXHAUSTED", None),
        ("overloaded_503", 503, "UNAVAILABLE", None),
        ("internal_500", 500, "INTERNAL", None),
        ("penalty_400", 400, "INVALID_ARGUMENT", None),
        ("model_not_found_404", 404, "NOT_FOUND", None),
        ("permission_denied_403", 403, "PERMISSION_DENIED", None),
        (
            "suspended_403",
            403,
            "PERMISSION_DENIED",
            Some("CONSUMER_SUSPENDED"),
        ),
        ("location_400", 400, "FAILED_PRECONDITION", None),
        ("billing_400", 400, "FAILED_PRECONDITION", None),
        (
            "vertex_permission_denied_403",
            403,
            "PERMISSION_DENIED",
            Some("IAM_PERMISSION_DENIED"),
        ),
        ("vertex_quota_429", 429, "RESOURCE_EXHAUSTED", None),
    ];
    assert_eq!(expected.len(), PRESETS.len());
    for &(name, status, grpc, reason) in expected {
        mock.reset();
        mock.add_rule(Rule::new(Reply::preset(name)));
        let a = call(
            &mock,
            Some("k1"),
            "/v1beta/models/gemini-2.0-flash:generateContent",
            Some(&hello("x")),
        )
        .await;
        assert_eq!(
            (a.status, a.error_status().as_str()),
            (status, grpc),
            "{name}"
        );
        assert!(
            a.text.starts_with("{\n  \"error\": {\n"),
            "{name} is pretty-printed"
        );
        let v = a.json();
        assert_eq!(
            v["error"]["code"].as_u64(),
            Some(u64::from(status)),
            "{name}"
        );
        if let Some(reason) = reason {
            assert_eq!(v["error"]["details"][0]["reason"], reason, "{name}");
        }
    }
    let daily = {
        mock.reset();
        mock.add_rule(Rule::new(Reply::preset("quota_429_daily")));
        call(
            &mock,
            Some("k"),
            "/v1beta/models/gemini-2.0-flash:generateContent",
            Some(&hello("x")),
        )
        .await
        .text
    };
    assert!(
        daily.contains("GenerateRequestsPerDayPerProjectPerModel-FreeTier")
            && !daily.contains("RetryInfo")
    );
}

#[tokio::test]
async fn model_list_pagination() {
    let mock = MockGemini::start().await.unwrap();
    let page1 = call(&mock, Some("k"), "/v1beta/models", None).await.json();
    assert_eq!(page1["models"].as_array().unwrap().len(), 50);
    let token = page1["nextPageToken"].as_str().unwrap().to_owned();
    assert!(token.ends_with('='), "{token}");
    let names = |p: &Value| -> Vec<String> {
        p["models"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(names(&page1).contains(&"models/gemini-2.0-flash".to_owned()));
    assert!(!names(&page1).contains(&format!("models/{FLASH}")));
    let encoded = token
        .replace('=', "%3D")
        .replace('+', "%2B")
        .replace('/', "%2F");
    let page2 = call(
        &mock,
        Some("k"),
        &format!("/v1beta/models?pageToken={encoded}"),
        None,
    )
    .await
    .json();
    assert!(page2.get("nextPageToken").is_none());
    let names2 = names(&page2);
    assert_eq!(names2.len(), 7);
    assert_eq!(names2[0], format!("models/{FLASH}"));
    assert_eq!(names2[6], "models/gemini-embedding-001");

    let small = call(&mock, Some("k"), "/v1beta/models?pageSize=1000", None)
        .await
        .json();
    assert_eq!(small["models"].as_array().unwrap().len(), 57);
    let bad = call(&mock, Some("k"), "/v1beta/models?pageToken=garbage", None).await;
    assert_eq!(
        (bad.status, bad.error_status().as_str()),
        (400, "INVALID_ARGUMENT")
    );

    let one = call(&mock, Some("k"), "/v1/models/gemini-3-pro-preview", None).await;
    assert_eq!(
        (one.status, one.json()["thinking"].as_bool()),
        (200, Some(true))
    );
    assert_eq!(
        call(&mock, Some("k"), "/v1beta/models/nope", None)
            .await
            .status,
        404
    );

    mock.set_models(vec![
        json!({"name": "models/only", "supportedGenerationMethods": ["generateContent"]}),
    ]);
    let only = call(&mock, Some("k"), "/v1beta/models", None).await.json();
    assert_eq!(names(&only), ["models/only"]);
    assert_eq!(
        call(
            &mock,
            Some("k"),
            &format!("/v1beta/models/{FLASH}:generateContent"),
            Some(&hello("x"))
        )
        .await
        .status,
        404
    );
}

#[tokio::test]
async fn request_validation_like_google() {
    let mock = MockGemini::start().await.unwrap();
    let gen_path = |m: &str| format!("/v1beta/models/{m}:generateContent");
    let check = |body: Value, model: &'static str, status: u16, needle: &'static str| {
        let mock = &mock;
        let path = gen_path(model);
        async move {
            let a = call(mock, Some("k"), &path, Some(&body)).await;
            let msg = a.json()["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            assert_eq!(a.status, status, "{body}: {}", a.text);
            assert!(msg.contains(needle), "{msg:?} should contain {needle:?}");
        }
    };
    check(
        json!({"contents": [], "foo": 1}),
        FLASH,
        400,
        "Unknown name \"foo\": Cannot find field.",
    )
    .await;
    check(
        json!({"contents": [], "generationConfig": {"max_tokens": 1}}),
        FLASH,
        400,
        "Unknown name \"max_tokens\" at 'generation_config': Cannot find field.",
    )
    .await;
    check(
        json!({}),
        FLASH,
        400,
        "* GenerateContentRequest.contents: contents is not specified\n",
    )
    .await;
    check(
        json!({"contents": [{"role": "user", "parts": []}]}),
        FLASH,
        400,
        "* GenerateContentRequest.contents[0].parts: contents.parts must not be empty.\n",
    )
    .await;
    check(
        json!({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}),
        FLASH,
        400,
        "Please use a valid role: user, model.",
    )
    .await;
    let mut both = hello("x");
    both["generationConfig"] =
        json!({"thinkingConfig": {"thinkingBudget": 10, "thinkingLevel": "low"}});
    check(
        both,
        FLASH,
        400,
        "You can only set only one of thinking budget and thinking level.",
    )
    .await;
    let mut penalty = hello("x");
    penalty["generationConfig"] = json!({"presencePenalty": 0.5});
    check(
        penalty.clone(),
        FLASH,
        400,
        "Penalty is not enabled for models/gemini-2.5-flash",
    )
    .await;
    check(penalty, "gemini-2.0-flash", 200, "").await;
    let mut think = hello("x");
    think["generationConfig"] = json!({"thinkingConfig": {"thinkingBudget": 0}});
    check(
        think.clone(),
        "gemini-2.0-flash",
        400,
        "Thinking is not supported by this model.",
    )
    .await;
    check(think, "gemini-3-flash-preview", 200, "").await;
    check(hello("x"), "custom-gemini-2.0-flash", 404,
        "models/custom-gemini-2.0-flash is not found for API version v1beta, or is not supported for generateContent.").await;

    let raw = client()
        .post(format!("{}{}", mock.url(), gen_path(FLASH)))
        .header("x-goog-api-key", "k")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 400);
    assert!(
        raw.text()
            .await
            .unwrap()
            .contains("Invalid JSON payload received.")
    );
    let anon = call(&mock, None, &gen_path(FLASH), Some(&hello("x"))).await;
    assert_eq!(
        (anon.status, anon.error_status().as_str()),
        (403, "PERMISSION_DENIED")
    );
    assert!(
        anon.text
            .contains("Method doesn't allow unregistered callers")
    );
    assert_eq!(
        call(&mock, Some("k"), "/v2/whatever", None).await.status,
        404
    );
}

#[tokio::test]
async fn truncated_and_stalled_streams() {
    let mock = MockGemini::start().await.unwrap();
    let cut = Reply::text("abcdefghij").chunks(5).cut_after(2);
    mock.add_rule(Rule::new(cut).key("cut"));
    let path = format!("/v1beta/models/{FLASH}:streamGenerateContent?alt=sse");
    let a = call(&mock, Some("cut"), &path, Some(&hello("x"))).await;
    let events = sse_events(&a.text);
    assert_eq!(events.len(), 2);
    assert!(!a.text.contains("finishReason"));

    // stall_after: events arrive, then nothing and the connection stays open.
    let json = serde_json::to_value(Rule::new(Reply::text("abc")).key("stall")).unwrap();
    let mut json = json;
    json["reply"]["stall_after"] = json!(1);
    let added = client()
        .post(format!("{}/__mock/rules", mock.url()))
        .json(&json)
        .send()
        .await
        .unwrap();
    assert_eq!(added.status().as_u16(), 200);
    let mut resp = client()
        .post(format!("{}{path}", mock.url()))
        .header("x-goog-api-key", "stall")
        .json(&hello("x"))
        .send()
        .await
        .unwrap();
    let first = resp.chunk().await.unwrap().unwrap();
    assert!(first.starts_with(b"data: "));
    let next = tokio::time::timeout(Duration::from_millis(300), resp.chunk()).await;
    assert!(next.is_err(), "stalled stream must not send more");

    // Hang: no headers at all.
    mock.add_rule(Rule::new(Reply::Hang.after_ms(1)).key("hang"));
    let req = client()
        .post(format!("{}{path}", mock.url()))
        .header("x-goog-api-key", "hang")
        .json(&hello("x"));
    assert!(
        tokio::time::timeout(Duration::from_millis(300), req.send())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn recording_and_control_api() {
    let mock = MockGemini::start().await.unwrap();
    let path = format!("/v1beta/models/{FLASH}:generateContent?key=qk");
    call(&mock, None, &path, Some(&hello("remember me"))).await;
    call(&mock, Some("hk"), "/v1beta/models", None).await;
    let recs = mock.requests();
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].api_key.as_deref(), Some("qk"));
    assert!(recs[0].key_in_query);
    assert_eq!(
        (recs[0].model.as_deref(), recs[0].action.as_deref()),
        (Some(FLASH), Some("generateContent"))
    );
    assert_eq!(
        recs[0].body["contents"][0]["parts"][0]["text"],
        "remember me"
    );
    assert_eq!(recs[1].api_key.as_deref(), Some("hk"));
    assert!(!recs[1].key_in_query && recs[1].action.is_none() && recs[1].body.is_null());
    assert!(
        recs[1]
            .headers
            .iter()
            .any(|(k, v)| k == "x-goog-api-key" && v == "hk")
    );

    let c = client();
    let u = |p: &str| format!("{}/__mock/{p}", mock.url());
    assert_eq!(
        c.get(u("health"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "ok"
    );
    let listed: Value = c
        .get(u("requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["api_key"], "qk");
    let rules = json!([{"key": "r", "times": 1, "reply": {"kind": "json", "status": 202, "body": {"x": 1}}},
                       {"key": "r", "reply": {"kind": "raw", "status": 200, "content_type": "text/html", "body": "<html>"}}]);
    assert_eq!(
        c.post(u("rules"))
            .json(&rules)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    let bad = c
        .post(u("rules"))
        .json(&json!({"reply": {"kind": "preset", "name": "nope"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    let gen_url = format!("/v1beta/models/{FLASH}:generateContent");
    let a = call(&mock, Some("r"), &gen_url, Some(&hello("x"))).await;
    assert_eq!((a.status, a.json()), (202, json!({"x": 1})));
    let a = call(&mock, Some("r"), &gen_url, Some(&hello("x"))).await;
    assert_eq!(
        (a.content_type.as_str(), a.text.as_str()),
        ("text/html", "<html>")
    );
    let sse = json!({"reply": {"kind": "sse", "events": [{"a": "<"}, {"b": 2}]}, "key": "s"});
    c.post(u("rules")).json(&sse).send().await.unwrap();
    let a = call(
        &mock,
        Some("s"),
        &format!("/v1beta/models/{FLASH}:streamGenerateContent?alt=sse"),
        Some(&hello("x")),
    )
    .await;
    assert_eq!(
        a.text,
        "data: {\"a\": \"\\u003c\"}\r\n\r\ndata: {\"b\": 2}\r\n\r\n"
    );

    c.post(u("models"))
        .json(&json!([{"name": "models/m1"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        call(&mock, Some("k"), "/v1beta/models/m1", None)
            .await
            .status,
        200
    );
    c.post(u("latency"))
        .json(&json!({"ms": 150}))
        .send()
        .await
        .unwrap();
    let t = std::time::Instant::now();
    call(&mock, Some("k"), "/v1beta/models/m1", None).await;
    assert!(t.elapsed() >= Duration::from_millis(150));
    c.post(u("reset")).send().await.unwrap();
    assert!(mock.requests().is_empty());
    assert_eq!(
        call(&mock, Some("r"), &gen_url, Some(&hello("x")))
            .await
            .status,
        404,
        "models survive reset"
    );
}

#[tokio::test]
async fn count_tokens_and_embeddings() {
    let mock = MockGemini::start_with(Options {
        echo: false,
        ..Options::default()
    })
    .await
    .unwrap();
    let a = call(
        &mock,
        Some("k"),
        &format!("/v1beta/models/{FLASH}:generateContent"),
        Some(&hello("x")),
    )
    .await;
    assert_eq!(
        a.json()["candidates"][0]["content"]["parts"][0]["text"],
        "Hello from mock Gemini."
    );
    let n = call(
        &mock,
        Some("k"),
        &format!("/v1beta/models/{FLASH}:countTokens"),
        Some(&hello("12345678")),
    )
    .await
    .json();
    assert_eq!(
        (
            n["totalTokens"].as_u64(),
            n["promptTokensDetails"][0]["tokenCount"].as_u64()
        ),
        (Some(2), Some(2))
    );
    let wrapped = json!({"generateContentRequest": {"model": "models/gemini-2.5-flash", "contents": hello("1234")["contents"]}});
    let n = call(
        &mock,
        Some("k"),
        &format!("/v1beta/models/{FLASH}:countTokens"),
        Some(&wrapped),
    )
    .await
    .json();
    assert_eq!(n["totalTokens"], 1);

    let emb = "/v1beta/models/gemini-embedding-001";
    let req = json!({"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "hi"}]}, "output_dimensionality": 8});
    let one = call(&mock, Some("k"), &format!("{emb}:embedContent"), Some(&req))
        .await
        .json();
    assert_eq!(one["embedding"]["values"].as_array().unwrap().len(), 8);
    let full = json!({"content": {"parts": [{"text": "hi"}]}});
    let full = call(
        &mock,
        Some("k"),
        &format!("{emb}:embedContent"),
        Some(&full),
    )
    .await
    .json();
    assert_eq!(full["embedding"]["values"].as_array().unwrap().len(), 3072);
    assert_eq!(
        full["embedding"]["values"].as_array().unwrap()[..8],
        one["embedding"]["values"].as_array().unwrap()[..],
        "deterministic"
    );
    let batch = json!({"requests": [req.clone(), req.clone()]});
    let b = call(
        &mock,
        Some("k"),
        &format!("{emb}:batchEmbedContents"),
        Some(&batch),
    )
    .await
    .json();
    assert_eq!(b["embeddings"][1], one["embedding"]);
    let many = json!({"requests": vec![req.clone(); 101]});
    let over = call(
        &mock,
        Some("k"),
        &format!("{emb}:batchEmbedContents"),
        Some(&many),
    )
    .await;
    assert_eq!(over.status, 400);
    assert!(
        over.text
            .contains("at most 100 requests can be in one batch")
    );
    let wrong =
        json!({"requests": [{"model": "models/other", "content": {"parts": [{"text": "x"}]}}]});
    assert_eq!(
        call(
            &mock,
            Some("k"),
            &format!("{emb}:batchEmbedContents"),
            Some(&wrong)
        )
        .await
        .status,
        400
    );
    assert_eq!(
        call(
            &mock,
            Some("k"),
            &format!("{emb}:generateContent"),
            Some(&hello("x"))
        )
        .await
        .status,
        404
    );
}

#[tokio::test]
async fn drop_stops_the_server() {
    let mock = MockGemini::start().await.unwrap();
    let addr = mock.addr();
    drop(mock);
    eventually("the dropped mock to stop listening", || async {
        tokio::net::TcpStream::connect(addr).await.is_err()
    })
    .await;
}

#[tokio::test]
async fn binary_prints_its_address() {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mock-gemini"))
        .args(["--threads", "1", "--stream-chunks", "2"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next_line().await.unwrap().unwrap();
    let url = line.strip_prefix("listening on ").unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    let health = client()
        .get(format!("{url}/__mock/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.text().await.unwrap(), "ok");
    child.kill().await.unwrap();
}

#[tokio::test]
async fn redirect_replies_carry_status_and_location() {
    let mock = MockGemini::start().await.unwrap();
    mock.add_rule(
        Rule::new(Reply::redirect(307, "http://127.0.0.1:9/elsewhere")).action("generateContent"),
    );
    let c = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = c
        .post(format!(
            "{}/v1beta/models/{FLASH}:generateContent",
            mock.url()
        ))
        .header("x-goog-api-key", "k")
        .json(&hello("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 307);
    assert_eq!(
        r.headers().get("location").and_then(|v| v.to_str().ok()),
        Some("http://127.0.0.1:9/elsewhere")
    );
}
