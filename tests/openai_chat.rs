//! OpenAI chat completions against the real server and a mock Gemini: translation on the
//! wire, auth and error shapes, retries across keys, statuses when every attempt fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use mock_gemini::{Reply, Rule};
use serde_json::{Value, json};

#[tokio::test]
async fn non_stream_chat_is_translated_both_ways() {
    let h = start(&[]).await;
    let body = json!({"model": FLASH, "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello there"},
        {"role": "assistant", "content": "Hi!"},
        {"role": "user", "content": [{"type": "text", "text": "How are you?"}]}
    ], "temperature": 0.2, "max_tokens": 50, "stop": "END"});
    let (status, v) = json(h.chat(&body).await).await;
    assert_eq!(status, 200, "{v}");
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], FLASH);
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert!(
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .contains("How are you?")
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    let u = &v["usage"];
    assert_eq!(
        u["total_tokens"].as_u64(),
        Some(u["prompt_tokens"].as_u64().unwrap() + u["completion_tokens"].as_u64().unwrap())
    );
    assert!(u["completion_tokens_details"]["reasoning_tokens"].is_u64());

    let calls = h.upstream_calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.path, format!("/v1beta/models/{FLASH}:generateContent"));
    assert!(
        !call.key_in_query && call.query.as_deref().is_none_or(|q| !q.contains("key=")),
        "the key travels in a header"
    );
    assert!(KEYS.contains(&call.api_key.as_deref().unwrap()));
    assert_eq!(
        call.body["systemInstruction"],
        json!({"parts": [{"text": "Be brief."}]})
    );
    assert_eq!(
        call.body["contents"][1],
        json!({"role": "model", "parts": [{"text": "Hi!"}]})
    );
    assert_eq!(
        call.body["generationConfig"],
        json!({"temperature": 0.2, "maxOutputTokens": 50, "stopSequences": ["END"],
               "thinkingConfig": {"includeThoughts": true}}),
        "only what the client sent, plus includeThoughts for a thinking model (ENABLE_THINKING)"
    );
}

#[tokio::test]
async fn completion_ids_are_unique() {
    let h = start(&[]).await;
    let (_, a) = json(h.chat(&hello(FLASH, false)).await).await;
    let (_, b) = json(h.chat(&hello(FLASH, false)).await).await;
    assert_ne!(a["id"], b["id"]);
}

#[tokio::test]
async fn every_password_source_is_accepted_and_wrong_ones_get_401() {
    let h = start(&[]).await;
    let url = h.url("/v1/chat/completions");
    let body = hello(FLASH, false);
    let ok = [
        h.http.post(&url).bearer_auth(PASSWORD).json(&body),
        h.http
            .post(&url)
            .header("x-goog-api-key", PASSWORD)
            .json(&body),
        h.http.post(format!("{url}?key={PASSWORD}")).json(&body),
        h.http
            .post(&url)
            .header("x-goog-api-key", "wrong")
            .bearer_auth(PASSWORD)
            .json(&body),
    ];
    for req in ok {
        assert_eq!(req.send().await.unwrap().status(), 200);
    }
    for req in [
        h.http.post(&url).json(&body),
        h.http.post(&url).bearer_auth("nope").json(&body),
    ] {
        let (status, v) = json(req.send().await.unwrap()).await;
        assert_eq!(status, 401);
        let e = openai_error(&v);
        assert_eq!(e["type"], "invalid_request_error");
        assert_eq!(e["code"], "invalid_api_key");
    }
    assert!(
        h.upstream_calls().len() == 4,
        "unauthorised requests never reach Google"
    );
}

#[tokio::test]
async fn bad_bodies_get_protocol_shaped_errors() {
    let h = start(&[("MAX_BODY_SIZE", "2048")]).await;
    let url = h.url("/v1/chat/completions");
    let big = json!({"model": FLASH, "messages": [{"role": "user", "content": "x".repeat(5000)}]});
    let (status, v) = json(h.chat(&big).await).await;
    assert_eq!(status, 413);
    assert_eq!(openai_error(&v)["code"], "request_too_large");

    let r = h
        .http
        .post(&url)
        .bearer_auth(PASSWORD)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (status, v) = json(r).await;
    assert_eq!(status, 400);
    assert_eq!(openai_error(&v)["type"], "invalid_request_error");

    for body in [
        json!({"model": FLASH}),
        json!({"model": FLASH, "messages": []}),
        json!({"model": FLASH, "messages": [{"role": "robot", "content": "x"}]}),
    ] {
        let (status, v) = json(h.chat(&body).await).await;
        assert_eq!(status, 400, "{body}");
        openai_error(&v);
    }
    assert!(h.upstream_calls().is_empty());
}

#[tokio::test]
async fn unknown_routes_and_methods_are_openai_shaped() {
    let h = start(&[]).await;
    let (status, v) = json(h.get("/v1/nothing-here").await).await;
    assert_eq!(status, 404);
    assert_eq!(openai_error(&v)["code"], "unknown_url");
    let (status, v) = json(h.get("/v1/chat/completions").await).await;
    assert_eq!(status, 405);
    openai_error(&v);
}

#[tokio::test]
async fn an_invalid_key_is_retired_and_another_key_answers() {
    let h = start(&[]).await;
    h.mock
        .add_rule(Rule::new(Reply::preset("api_key_invalid")).key(KEYS[0]));
    for _ in 0..6 {
        let (status, v) = json(h.chat(&hello(FLASH, false)).await).await;
        assert_eq!(status, 200, "{v}");
    }
    let bad_calls = h
        .upstream_calls()
        .iter()
        .filter(|c| c.api_key.as_deref() == Some(KEYS[0]))
        .count();
    assert!(bad_calls <= 1, "the invalid key was used {bad_calls} times");
}

#[tokio::test]
async fn a_request_error_is_not_replayed_on_other_keys() {
    let h = start(&[]).await;
    h.mock.add_rule(Rule::new(Reply::google_error(
        400,
        "INVALID_ARGUMENT",
        "Request contains an invalid argument.",
    )));
    let (status, v) = json(h.chat(&hello(FLASH, false)).await).await;
    assert_eq!(status, 400);
    assert!(
        openai_error(&v)["message"]
            .as_str()
            .unwrap()
            .contains("invalid argument")
    );
    assert_eq!(h.upstream_calls().len(), 1);
}

#[tokio::test]
async fn an_unknown_model_is_sent_to_google_and_gets_404() {
    let h = start(&[]).await;
    let (status, v) = json(h.chat(&hello("gemini-9-ultra-nonexistent", false)).await).await;
    assert_eq!(status, 404, "{v}");
    assert_eq!(openai_error(&v)["code"], "model_not_found");
    assert_eq!(h.upstream_calls().len(), 1, "Google decides, once");
}

#[tokio::test]
async fn quota_on_every_key_is_429_with_retry_after() {
    let h = start(&[]).await;
    h.mock.add_rule(Rule::new(Reply::preset("quota_429")));
    let r = h.chat(&hello(FLASH, false)).await;
    let retry_after: u64 = r
        .headers()
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let (status, v) = json(r).await;
    assert_eq!(status, 429);
    assert!((30..=35).contains(&retry_after), "{retry_after}");
    openai_error(&v);
    assert_eq!(h.upstream_calls().len(), 3, "each key once");
    // The keys are now cooling: the next request is refused without calling Google.
    let (status, _) = json(h.chat(&hello(FLASH, false)).await).await;
    assert_eq!(status, 429);
    assert_eq!(h.upstream_calls().len(), 3);
}

#[tokio::test]
async fn overload_everywhere_is_503_naming_the_cause_and_keys_stay_active() {
    let h = start(&[("MAX_RETRY_NUM", "4")]).await;
    h.mock.add_rule(
        Rule::new(Reply::preset("overloaded_503"))
            .action("generateContent")
            .times(4),
    );
    let (status, v) = json(h.chat(&hello(FLASH, false)).await).await;
    assert_eq!(status, 503);
    let msg = openai_error(&v)["message"].as_str().unwrap().to_owned();
    assert!(msg.contains("4× ") && msg.contains("503"), "{msg}");
    assert_eq!(
        h.upstream_calls().len(),
        4,
        "MAX_RETRY_NUM bounds the attempts"
    );
    let (status, _) = json(h.chat(&hello(FLASH, false)).await).await;
    assert_eq!(status, 200, "a 503 never disables a key");
}

#[tokio::test]
async fn mixed_failures_are_503_with_counts() {
    let h = start(&[]).await;
    h.mock.add_rule(
        Rule::new(Reply::preset("api_key_invalid"))
            .key(KEYS[0])
            .action("generateContent"),
    );
    h.mock.add_rule(
        Rule::new(Reply::preset("internal_500"))
            .key(KEYS[1])
            .action("generateContent"),
    );
    h.mock.add_rule(
        Rule::new(Reply::preset("suspended_403"))
            .key(KEYS[2])
            .action("generateContent"),
    );
    let (status, v) = json(h.chat(&hello(FLASH, false)).await).await;
    assert_eq!(status, 503, "{v}");
    let msg = openai_error(&v)["message"].as_str().unwrap();
    assert!(
        msg.contains("invalid key") && msg.contains("5xx") && msg.contains("suspended"),
        "{msg}"
    );
    assert!(!msg.contains("AIza"), "no key in messages");
    let (status, v) = json(h.chat(&hello(FLASH, false)).await).await;
    assert_eq!(status, 503, "{v}");
    let calls = h.upstream_calls();
    assert_eq!(
        calls.len(),
        30,
        "MAX_RETRY_NUM (15) attempts per request, rounds over the usable keys"
    );
    for retired in [KEYS[0], KEYS[2]] {
        assert_eq!(
            calls
                .iter()
                .filter(|c| c.api_key.as_deref() == Some(retired))
                .count(),
            1,
            "a retired key is never tried again"
        );
    }
}

#[tokio::test]
async fn penalties_are_dropped_once_when_the_model_rejects_them() {
    let h = start(&[]).await;
    let body = json!({"model": FLASH, "messages": [{"role": "user", "content": "hi"}], "presence_penalty": 0.5, "frequency_penalty": 0.3});
    let (status, v) = json(h.chat(&body).await).await;
    assert_eq!(status, 200, "{v}");
    let calls = h.upstream_calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].body["generationConfig"]["presencePenalty"], 0.5);
    assert!(
        calls[1]
            .body
            .get("generationConfig")
            .is_none_or(|g| g.get("presencePenalty").is_none())
    );
}

#[tokio::test]
async fn empty_answers_are_retried_then_502() {
    let h = start(&[("MAX_EMPTY_RESPONSES", "2")]).await;
    let empty = json!({"candidates": [{"content": {"parts": [{"text": ""}], "role": "model"}, "finishReason": "STOP", "index": 0}]});
    h.mock.add_rule(
        Rule::new(Reply::json(empty.clone()))
            .action("generateContent")
            .times(1),
    );
    let (status, v) = json(h.chat(&hello(FLASH, false)).await).await;
    assert_eq!(status, 200, "one empty answer, then a real one: {v}");
    assert_eq!(h.upstream_calls().len(), 2);

    h.mock
        .add_rule(Rule::new(Reply::json(empty)).action("generateContent"));
    let (status, v) = json(h.chat(&hello(FLASH, false)).await).await;
    assert_eq!(status, 502);
    assert!(
        openai_error(&v)["message"]
            .as_str()
            .unwrap()
            .contains("empty")
    );
    assert_eq!(h.upstream_calls().len(), 4);
}

#[tokio::test]
async fn a_blocked_prompt_is_a_400_content_filter_without_retries() {
    let h = start(&[]).await;
    let blocked = json!({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9}});
    h.mock.add_rule(Rule::new(Reply::json(blocked)));
    let (status, v) = json(h.chat(&hello(FLASH, false)).await).await;
    assert_eq!(status, 400);
    let e = openai_error(&v);
    assert_eq!(e["code"], "content_filter");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("PROHIBITED_CONTENT")
    );
    assert_eq!(h.upstream_calls().len(), 1);
}

#[tokio::test]
async fn safety_finish_returns_what_was_produced_as_content_filter() {
    let h = start(&[]).await;
    h.mock
        .add_rule(Rule::new(Reply::text("partial").finish("SAFETY")));
    let (status, v) = json(h.chat(&hello(FLASH, false)).await).await;
    assert_eq!(status, 200);
    assert_eq!(v["choices"][0]["finish_reason"], "content_filter");
    assert_eq!(h.upstream_calls().len(), 1);
}

/// A recorded Gemini 3 answer that ran code: the code and both results (one a traceback)
/// reach the client as fenced blocks before the model's text, and the tool-use prompt tokens
/// count as prompt tokens, so the total is Google's.
#[tokio::test]
async fn a_recorded_code_execution_answer_reaches_the_client_whole() {
    let h = start(&[]).await;
    let recorded = fixture_json("gemini/generateContent.response.code-execution.json");
    h.mock
        .add_rule(Rule::new(Reply::json(recorded.clone())).action("generateContent"));
    let (status, v) = json(h.chat(&hello(FLASH, false)).await).await;
    assert_eq!(status, 200, "{v}");
    let content = v["choices"][0]["message"]["content"].as_str().unwrap();
    let parts = recorded["candidates"][0]["content"]["parts"]
        .as_array()
        .unwrap();
    let code = parts[0]["executableCode"]["code"].as_str().unwrap();
    let ok = parts[1]["codeExecutionResult"]["output"].as_str().unwrap();
    let failed = parts[2]["codeExecutionResult"]["output"].as_str().unwrap();
    let answer = parts[3]["text"].as_str().unwrap();
    let at = |needle: &str| {
        content
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing from {content:?}"))
    };
    assert!(at(&format!("```python\n{code}\n```")) < at(&format!("```\n{ok}\n```")));
    assert!(at(&format!("```\n{failed}\n```")) < at(answer));
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    let meta = &recorded["usageMetadata"];
    assert_eq!(
        v["usage"]["prompt_tokens"],
        meta["promptTokenCount"].as_u64().unwrap()
            + meta["toolUsePromptTokenCount"].as_u64().unwrap()
    );
    assert_eq!(
        v["usage"]["completion_tokens"],
        meta["candidatesTokenCount"]
    );
    assert_eq!(v["usage"]["total_tokens"], meta["totalTokenCount"]);
}

/// A recorded Gemini 2.5 answer with thinking (and fields we do not know, such as
/// `usageMetadata.serviceTier`): thoughts count as completion and reasoning tokens, and the
/// total is Google's.
#[tokio::test]
async fn a_recorded_thinking_answer_reports_googles_token_counts() {
    let h = start(&[]).await;
    let exchange = fixture_json("gemini/generateContent.exchange.block-none-threshold.json");
    let recorded = &exchange["response"]["body"];
    assert!(recorded["usageMetadata"]["serviceTier"].is_string());
    h.mock
        .add_rule(Rule::new(Reply::json(recorded.clone())).action("generateContent"));
    let (status, v) = json(h.chat(&hello(FLASH, false)).await).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["choices"][0]["message"]["content"], exchange["text"]);
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    let meta = &recorded["usageMetadata"];
    let usage = &v["usage"];
    assert_eq!(usage["prompt_tokens"], meta["promptTokenCount"]);
    assert_eq!(
        usage["completion_tokens"],
        meta["candidatesTokenCount"].as_u64().unwrap()
            + meta["thoughtsTokenCount"].as_u64().unwrap()
    );
    assert_eq!(
        usage["completion_tokens_details"]["reasoning_tokens"],
        meta["thoughtsTokenCount"]
    );
    assert_eq!(usage["total_tokens"], meta["totalTokenCount"]);
}

#[tokio::test]
async fn n_candidates_become_n_choices() {
    let h = start(&[]).await;
    let body = json!({"model": FLASH, "n": 2, "messages": [{"role": "user", "content": "hi"}]});
    let (status, v) = json(h.chat(&body).await).await;
    assert_eq!(status, 200);
    let choices = v["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 2);
    assert_eq!(choices[1]["index"], 1);
    assert_eq!(
        h.upstream_calls()[0].body["generationConfig"]["candidateCount"],
        2
    );
}

#[tokio::test]
async fn hanging_upstreams_time_out_per_attempt_then_504() {
    let h = start(&[("UPSTREAM_TIMEOUT", "0.3"), ("MAX_RETRY_NUM", "2")]).await;
    h.mock
        .add_rule(Rule::new(Reply::Hang).action("generateContent").times(1));
    let (status, v) = json(h.chat(&hello(FLASH, false)).await).await;
    assert_eq!(status, 200, "the second key answers: {v}");
    h.mock
        .add_rule(Rule::new(Reply::Hang).action("generateContent"));
    let (status, v) = json(h.chat(&hello(FLASH, false)).await).await;
    assert_eq!(status, 504, "{v}");
    assert_eq!(openai_error(&v)["code"], "timeout");
}

#[tokio::test]
async fn the_request_deadline_bounds_all_attempts() {
    let h = start(&[("UPSTREAM_TIMEOUT", "60"), ("REQUEST_DEADLINE", "0.4")]).await;
    h.mock
        .add_rule(Rule::new(Reply::Hang).action("generateContent"));
    // Only the deadline can end it: the 60 s upstream timeout would outlast the client's own
    // 30 s timeout, and the request would fail instead of answering.
    let (status, v) = json(h.chat(&hello(FLASH, false)).await).await;
    assert_eq!(status, 504, "{v}");
    assert_eq!(openai_error(&v)["code"], "timeout");
}

#[tokio::test]
async fn no_keys_at_all_is_503() {
    let h = start(&[("GEMINI_API_KEYS", "")]).await;
    let (status, v) = json(h.chat(&hello(FLASH, false)).await).await;
    assert_eq!(status, 503);
    assert!(
        openai_error(&v)["message"]
            .as_str()
            .unwrap()
            .contains("GEMINI_API_KEYS")
    );
}

#[tokio::test]
async fn user_agent_whitelist_admits_prefixes_case_insensitively() {
    let h = start(&[("WHITELIST_USER_AGENT", "SillyTavern")]).await;
    let url = h.url("/v1/chat/completions");
    let body = hello(FLASH, false);
    let r = h
        .http
        .post(&url)
        .bearer_auth(PASSWORD)
        .header("user-agent", "sillytavern/1.12.0")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (status, v) = json(
        h.http
            .post(&url)
            .bearer_auth(PASSWORD)
            .header("user-agent", "curl/8")
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 403);
    openai_error(&v);
}

#[tokio::test]
async fn vertex_routes_without_vertex_credentials_answer_503() {
    let h = start(&[]).await;
    let (status, v) = json(
        h.post("/vertex/chat/completions", &hello(FLASH, false))
            .await,
    )
    .await;
    assert_eq!(status, 503);
    assert!(
        openai_error(&v)["message"]
            .as_str()
            .unwrap()
            .contains("VERTEX_EXPRESS_API_KEY")
    );
    assert!(h.upstream_calls().is_empty(), "never AI Studio instead");
}

#[tokio::test]
async fn aliases_serve_the_same_chat() {
    let h = start(&[]).await;
    for path in ["/chat/completions", "/aistudio/chat/completions"] {
        let (status, v) = json(h.post(path, &hello(FLASH, false)).await).await;
        assert_eq!(status, 200, "{path}: {v}");
        assert_eq!(v["object"], "chat.completion");
    }
}

#[tokio::test]
async fn health_ready_and_index_need_no_password() {
    let h = start(&[]).await;
    assert_eq!(
        h.http.get(h.url("/health")).send().await.unwrap().status(),
        200
    );
    assert_eq!(
        h.http.get(h.url("/ready")).send().await.unwrap().status(),
        200
    );
    let index = h.http.get(h.url("/")).send().await.unwrap();
    assert_eq!(index.status(), 200);
    assert!(index.text().await.unwrap().contains("hajimi"));
    assert_eq!(h.http.head(h.url("/")).send().await.unwrap().status(), 200);
    let v: Value = h
        .http
        .get(h.url("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "ok");
}
