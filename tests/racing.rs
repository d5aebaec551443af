//! HAJIMI's racing (`CONCURRENT_REQUESTS` …), the response cache that keeps the surplus for
//! the next identical request, and in-flight sharing of identical requests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashSet;

use common::*;
use mock_gemini::{Reply, Rule};
use serde_json::{Value, json};

fn ask(text: &str) -> Value {
    json!({"model": FLASH, "messages": [{"role": "user", "content": text}]})
}

/// Must show (issue 4): with 3 keys and `CONCURRENT_REQUESTS=2`, every request fires exactly
/// 2 upstream calls on 2 different keys; the surplus answer serves the identical follow-up
/// request with no upstream call.
#[tokio::test]
async fn two_racers_per_request_and_the_surplus_serves_the_regenerate() {
    let h = start(&[("CONCURRENT_REQUESTS", "2")]).await;
    let (status, first) = json(h.chat(&ask("Tell me a story")).await).await;
    assert_eq!(status, 200, "{first}");
    let calls = h.upstream_calls();
    assert_eq!(calls.len(), 2, "exactly two racers");
    let keys: HashSet<_> = calls.iter().map(|c| c.api_key.clone()).collect();
    assert_eq!(keys.len(), 2, "on two different keys");

    let (status, again) = json(h.chat(&ask("Tell me a story")).await).await;
    assert_eq!(status, 200);
    assert_eq!(
        h.upstream_calls().len(),
        2,
        "the regenerate was served from the surplus, no upstream call"
    );
    assert_ne!(first["id"], again["id"], "a fresh completion id");
    assert_eq!(again["model"], FLASH);

    let (status, _) = json(h.chat(&ask("Tell me a story")).await).await;
    assert_eq!(status, 200);
    assert_eq!(
        h.upstream_calls().len(),
        4,
        "the surplus is consumed once; the third request races again"
    );

    let (status, _) = json(h.chat(&ask("Something else")).await).await;
    assert_eq!(status, 200);
    assert_eq!(
        h.upstream_calls().len(),
        6,
        "a different request never gets another's answer"
    );
}

#[tokio::test]
async fn a_failed_batch_widens_the_next_one() {
    let h = start(&[
        ("CONCURRENT_REQUESTS", "2"),
        ("INCREASE_CONCURRENT_ON_FAILURE", "1"),
        ("MAX_CONCURRENT_REQUESTS", "3"),
    ])
    .await;
    h.mock.add_rule(
        Rule::new(Reply::preset("overloaded_503"))
            .action("generateContent")
            .times(2),
    );
    let (status, v) = json(h.chat(&ask("widen")).await).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        h.upstream_calls().len(),
        5,
        "a batch of 2 failed, then a batch of 3"
    );
}

/// Both racers of a batch are refused for penalties: the first refusal fixes the body, the
/// second (sent with the old body) must not end the request.
#[tokio::test]
async fn a_fix_in_a_batch_is_not_undone_by_its_sibling() {
    let h = start(&[("CONCURRENT_REQUESTS", "2")]).await;
    let mut body = ask("penalties in a race");
    body["presence_penalty"] = json!(0.5);
    let (status, v) = json(h.chat(&body).await).await;
    assert_eq!(status, 200, "{v}");
    let calls = h.upstream_calls();
    let with = calls
        .iter()
        .filter(|c| c.body["generationConfig"].get("presencePenalty").is_some())
        .count();
    assert_eq!(with, 2, "the first batch carried the penalty on both keys");
    assert!(
        calls.len() > with,
        "then the fixed body was sent: {}",
        calls.len()
    );
}

#[tokio::test]
async fn losers_can_be_cancelled_instead_of_cached() {
    let h = start(&[("CONCURRENT_REQUESTS", "2"), ("RACE_CANCEL_LOSERS", "true")]).await;
    let (status, _) = json(h.chat(&ask("cancel")).await).await;
    assert_eq!(status, 200);
    let (status, _) = json(h.chat(&ask("cancel")).await).await;
    assert_eq!(status, 200);
    assert!(
        h.upstream_calls().len() >= 3,
        "nothing was kept for the follow-up"
    );
}

#[tokio::test]
async fn the_cache_key_covers_parameters_and_images_but_not_streaming() {
    let h = start(&[("CONCURRENT_REQUESTS", "2"), ("FAKE_STREAMING", "true")]).await;
    let (status, _) = json(h.chat(&ask("keyed")).await).await;
    assert_eq!(status, 200);
    let mut hotter = ask("keyed");
    hotter["temperature"] = json!(1.5);
    let (status, _) = json(h.chat(&hotter).await).await;
    assert_eq!(status, 200);
    assert_eq!(
        h.upstream_calls().len(),
        4,
        "another temperature is another request"
    );
    // The surplus of the first request serves the same request as a (fake) stream.
    let mut streamed = ask("keyed");
    streamed["stream"] = json!(true);
    let frames = sse(h.chat(&streamed).await).await;
    assert_eq!(frames.last().unwrap(), "[DONE]");
    assert_eq!(h.upstream_calls().len(), 4, "served from the cache");
}

#[tokio::test]
async fn identical_requests_in_flight_share_one_answer() {
    let h = start(&[]).await;
    h.mock
        .add_rule(Rule::new(Reply::text("shared answer").after_ms(500)).action("generateContent"));
    let body = ask("same question");
    let (a, b) = tokio::join!(h.chat(&body), h.chat(&body));
    let ((sa, va), (sb, vb)) = (json(a).await, json(b).await);
    assert_eq!((sa, sb), (200, 200));
    assert_eq!(va["choices"][0]["message"]["content"], "shared answer");
    assert_eq!(vb["choices"][0]["message"]["content"], "shared answer");
    assert_eq!(
        h.upstream_calls().len(),
        1,
        "one upstream call for two identical requests"
    );
}

#[tokio::test]
async fn public_mode_turns_in_flight_sharing_off() {
    let h = start(&[("PUBLIC_MODE", "true")]).await;
    h.mock
        .add_rule(Rule::new(Reply::text("x").after_ms(300)).action("generateContent"));
    let body = ask("public");
    let (a, b) = tokio::join!(h.chat(&body), h.chat(&body));
    assert_eq!(
        (a.status(), b.status()),
        (reqwest::StatusCode::OK, reqwest::StatusCode::OK)
    );
    assert_eq!(h.upstream_calls().len(), 2);
}
