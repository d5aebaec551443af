//! `/v1/models`: Google's list through every page, in OpenAI shape, with `EXTRA_MODELS`,
//! `BLOCKED_MODELS` and `WHITELIST_MODELS` applied.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use mock_gemini::{MockGemini, Reply, Rule};
use serde_json::{Value, json};

fn ids(v: &Value) -> Vec<String> {
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn every_page_is_followed_and_shown_without_the_prefix() {
    let mock = MockGemini::start().await.unwrap();
    let models: Vec<Value> = (0..1150)
        .map(|i| json!({"name": format!("models/gemini-test-{i:04}"), "supportedGenerationMethods": ["generateContent"]}))
        .collect();
    mock.set_models(models);
    let h = start_with_mock(mock, &[]).await;
    let (status, v) = json(h.get("/v1/models").await).await;
    assert_eq!(status, 200);
    assert_eq!(v["object"], "list");
    let list = ids(&v);
    assert_eq!(list.len(), 1150, "both pages");
    assert_eq!(list[0], "gemini-test-0000");
    assert_eq!(list[1149], "gemini-test-1149");
    let m = &v["data"][0];
    assert_eq!(m["object"], "model");
    assert_eq!(m["owned_by"], "google");
    assert!(m["created"].is_u64());
    let lists: Vec<_> = h
        .mock
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path == "/v1beta/models")
        .collect();
    assert!(
        lists.len() >= 2
            && lists
                .iter()
                .any(|r| r.query.as_deref().is_some_and(|q| q.contains("pageToken=")))
    );
    assert!(lists.iter().all(|r| !r.key_in_query));
}

#[tokio::test]
async fn the_default_mock_list_includes_models_from_page_two() {
    let h = start(&[]).await;
    let (_, v) = json(h.get("/models").await).await;
    let list = ids(&v);
    assert!(list.contains(&"gemini-2.5-flash".to_owned()), "{list:?}");
    assert!(list.contains(&"gemini-2.0-flash".to_owned()));
    assert!(list.iter().all(|id| !id.starts_with("models/")));
}

#[tokio::test]
async fn extra_blocked_and_whitelisted_models() {
    let h = start(&[
        ("EXTRA_MODELS", "my-custom-model, ,other"),
        ("BLOCKED_MODELS", "gemini-2.0-flash,other"),
    ])
    .await;
    let (_, v) = json(h.get("/aistudio/models").await).await;
    let list = ids(&v);
    assert!(list.contains(&"my-custom-model".to_owned()));
    assert!(!list.contains(&"gemini-2.0-flash".to_owned()));
    assert!(!list.contains(&"other".to_owned()));
    assert!(
        !list.iter().any(String::is_empty),
        "no empty ids (HAJIMI #249)"
    );

    let h = start(&[("WHITELIST_MODELS", "gemini-2.5-flash,gemini-2.5-pro")]).await;
    let (_, v) = json(h.get("/v1/models").await).await;
    assert_eq!(ids(&v), vec!["gemini-2.5-flash", "gemini-2.5-pro"]);
}

#[tokio::test]
async fn a_single_model_can_be_fetched() {
    let h = start(&[]).await;
    let (status, v) = json(h.get("/v1/models/gemini-2.5-flash").await).await;
    assert_eq!(status, 200);
    assert_eq!(v["id"], "gemini-2.5-flash");
    let (status, v) = json(h.get("/v1/models/not-a-model").await).await;
    assert_eq!(status, 404);
    assert_eq!(openai_error(&v)["code"], "model_not_found");
}

#[tokio::test]
async fn listing_needs_the_password() {
    let h = start(&[]).await;
    let r = h.http.get(h.url("/v1/models")).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

/// decisions §6: no list loaded is a 503 saying why, naming the upstream host, never an
/// empty list (SillyTavern shows an empty list as "no models" with no hint).
#[tokio::test]
async fn with_no_key_the_list_is_a_503_naming_the_reason_and_the_host() {
    let h = start(&[("GEMINI_API_KEYS", "")]).await;
    let host = h.mock.url().trim_start_matches("http://").to_owned();
    for path in ["/v1/models", "/v1/models/gemini-2.5-flash"] {
        let (status, v) = json(h.get(path).await).await;
        assert_eq!(status, 503, "{path}: {v}");
        let message = openai_error(&v)["message"].as_str().unwrap().to_owned();
        assert!(
            message.contains("GEMINI_API_KEYS") && message.contains(&host),
            "{message}"
        );
        assert!(message.contains(" / "), "bilingual: {message}");
    }
}

#[tokio::test]
async fn an_unreachable_upstream_makes_the_list_a_503_naming_the_host_and_the_fix() {
    let h = start(&[
        ("GEMINI_BASE_URL", "http://127.0.0.1:9"),
        ("SKIP_CHECK_API_KEY", "true"),
    ])
    .await;
    let (status, v) = json(h.get("/v1/models").await).await;
    assert_eq!(status, 503, "{v}");
    let message = openai_error(&v)["message"].as_str().unwrap().to_owned();
    for needle in ["127.0.0.1:9", "HTTPS_PROXY", "GEMINI_BASE_URL"] {
        assert!(message.contains(needle), "{needle}: {message}");
    }
}

#[tokio::test]
async fn a_key_failing_on_listing_is_skipped() {
    let mock = MockGemini::start().await.unwrap();
    mock.add_rule(Rule::new(Reply::preset("api_key_invalid")).key(KEYS[0]));
    mock.add_rule(Rule::new(Reply::preset("api_key_invalid")).key(KEYS[1]));
    let h = start_with_mock(mock, &[]).await;
    let (status, v) = json(h.get("/v1/models").await).await;
    assert_eq!(status, 200);
    assert!(ids(&v).contains(&"gemini-2.5-flash".to_owned()));
}

/// Google down: one failed fetch, then requests answer at once with the failure, without
/// fetching again for a while (each fetch can take three keys' timeouts).
#[tokio::test]
async fn a_failed_list_fetch_is_not_repeated_by_every_request() {
    let mock = MockGemini::start().await.unwrap();
    mock.add_rule(Rule::new(Reply::preset("overloaded_503")).action("list"));
    let h = start_with_mock(mock, &[]).await;
    let list_fetches = || {
        h.mock
            .requests()
            .iter()
            .filter(|r| {
                r.query
                    .as_deref()
                    .is_some_and(|q| q.contains("pageSize=1000"))
            })
            .count()
    };
    // The start-up fetch runs in the background. Once it has begun, a request waits for it
    // (one fetch at a time) and finds it failed.
    eventually("the start-up fetch to begin", || async {
        list_fetches() > 0
    })
    .await;
    assert_eq!(h.get("/v1/models").await.status(), 503);
    let before = list_fetches();
    for _ in 0..5 {
        // No list could be loaded: 503 with the reason (decisions §6), not an empty list.
        assert_eq!(h.get("/v1/models").await.status(), 503);
    }
    assert_eq!(list_fetches(), before, "no new fetch within the back-off");
}
