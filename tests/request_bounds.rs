//! What one request may expand to (issue 8, item 3): `MAX_MESSAGES` and `MAX_CONTENT_PARTS`
//! are counted while the body is parsed, on OpenAI and native routes alike; remote
//! `image_url`s may fetch at most `MAX_FETCHED_BYTES` in all; a cached answer is served
//! without fetching the request's remote images again.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::http::header;
use axum::routing::get;
use common::*;
use serde_json::{Value, json};

fn user(text: &str) -> Value {
    json!({"role": "user", "content": text})
}

fn text_parts(n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| json!({"type": "text", "text": format!("part {i}")}))
            .collect(),
    )
}

fn message_of(body: &Value) -> String {
    openai_error(body)["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn more_messages_than_max_messages_are_refused_before_any_upstream_call() {
    let h = start(&[("MAX_MESSAGES", "3")]).await;
    let four: Vec<Value> = (0..4).map(|i| user(&format!("m{i}"))).collect();
    let (status, v) = json(h.chat(&json!({"model": FLASH, "messages": four})).await).await;
    assert_eq!(status, 400, "{v}");
    let message = message_of(&v);
    assert!(
        message.contains("MAX_MESSAGES"),
        "names the setting: {message}"
    );
    assert!(message.contains('3'), "names the limit: {message}");
    assert!(h.upstream_calls().is_empty(), "nothing went upstream");

    let three: Vec<Value> = (0..3).map(|i| user(&format!("m{i}"))).collect();
    let (status, v) = json(h.chat(&json!({"model": FLASH, "messages": three})).await).await;
    assert_eq!(status, 200, "at the limit is fine: {v}");
}

#[tokio::test]
async fn more_content_parts_than_max_content_parts_across_messages_are_refused() {
    let h = start(&[("MAX_CONTENT_PARTS", "3")]).await;
    let body = json!({"model": FLASH, "messages": [
        {"role": "user", "content": text_parts(2)},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": text_parts(2)}]});
    let (status, v) = json(h.chat(&body).await).await;
    assert_eq!(status, 400, "{v}");
    let message = message_of(&v);
    assert!(
        message.contains("MAX_CONTENT_PARTS"),
        "names the setting: {message}"
    );
    assert!(h.upstream_calls().is_empty(), "nothing went upstream");

    let body = json!({"model": FLASH, "messages": [{"role": "user", "content": text_parts(3)}]});
    let (status, v) = json(h.chat(&body).await).await;
    assert_eq!(status, 200, "at the limit is fine: {v}");
}

#[tokio::test]
async fn native_bodies_are_bounded_by_the_same_settings() {
    let h = start(&[("MAX_MESSAGES", "2"), ("MAX_CONTENT_PARTS", "4")]).await;
    let content = |n: usize| json!({"role": "user", "parts": (0..n).map(|i| json!({"text": format!("p{i}")})).collect::<Vec<_>>()});
    let url = format!("/v1beta/models/{FLASH}:generateContent");
    for (body, setting) in [
        (
            json!({"contents": [content(1), content(1), content(1)]}),
            "MAX_MESSAGES",
        ),
        (
            json!({"contents": [content(3), content(2)]}),
            "MAX_CONTENT_PARTS",
        ),
    ] {
        let (status, v) = json(h.post(&url, &body).await).await;
        assert_eq!(status, 400, "{v}");
        assert_eq!(
            v["error"]["status"], "INVALID_ARGUMENT",
            "Google's shape: {v}"
        );
        let message = v["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(setting), "{setting}: {message}");
    }
    assert!(h.upstream_calls().is_empty(), "nothing went upstream");
    let (status, v) = json(
        h.post(&url, &json!({"contents": [content(2), content(2)]}))
            .await,
    )
    .await;
    assert_eq!(status, 200, "at the limits is fine: {v}");
}

/// An image server whose `/img/{n}.png` answers `n` KiB and counts every request.
async fn counting_image_server() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    let app = Router::new().route(
        "/img/{name}",
        get(
            move |axum::extract::Path(name): axum::extract::Path<String>| {
                let counter = Arc::clone(&counter);
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let kib: usize = name.trim_end_matches(".png").parse().unwrap_or(1);
                    ([(header::CONTENT_TYPE, "image/png")], vec![7u8; kib * 1024])
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, hits)
}

fn with_images(urls: &[String]) -> Value {
    let mut parts = vec![json!({"type": "text", "text": "Describe these."})];
    parts.extend(
        urls.iter()
            .map(|u| json!({"type": "image_url", "image_url": {"url": u}})),
    );
    json!({"model": FLASH, "messages": [{"role": "user", "content": parts}]})
}

#[tokio::test]
async fn remote_images_beyond_max_fetched_bytes_are_refused_and_nothing_goes_upstream() {
    let (images, _) = counting_image_server().await;
    let h = start(&[
        ("IMAGE_FETCH_ALLOW_LOOPBACK", "true"),
        ("MAX_FETCHED_BYTES", "1MiB"),
    ])
    .await;
    let two = with_images(&[
        format!("{images}/img/600.png"),
        format!("{images}/img/601.png"),
    ]);
    let (status, v) = json(h.chat(&two).await).await;
    assert_eq!(status, 400, "{v}");
    let message = message_of(&v);
    assert!(
        message.contains("MAX_FETCHED_BYTES"),
        "names the setting: {message}"
    );
    assert!(h.upstream_calls().is_empty(), "nothing went upstream");

    let one = with_images(&[format!("{images}/img/600.png")]);
    let (status, v) = json(h.chat(&one).await).await;
    assert_eq!(status, 200, "under the limit is fine: {v}");
    assert_eq!(h.upstream_calls().len(), 1);
}

#[tokio::test]
async fn a_cached_answer_is_served_without_fetching_the_images_again() {
    let (images, hits) = counting_image_server().await;
    let h = start(&[
        ("IMAGE_FETCH_ALLOW_LOOPBACK", "true"),
        ("CONCURRENT_REQUESTS", "2"),
    ])
    .await;
    let body = with_images(&[format!("{images}/img/3.png")]);
    let (status, v) = json(h.chat(&body).await).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        h.upstream_calls().len(),
        2,
        "a race of two: one surplus answer"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    let (status, v) = json(h.chat(&body).await).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(h.upstream_calls().len(), 2, "served from the cache");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "a cache hit does not fetch the image again"
    );
}

#[tokio::test]
async fn embedding_inputs_are_bounded_while_parsing() {
    let h = start(&[]).await;
    // A million and one empty strings (~3 MB): refused by the scan, before a value is built
    // for each (the later `input` count of 10,000 would only see them afterwards).
    let mut body = String::from(r#"{"model":"gemini-embedding-001","input":["#);
    body.push_str(&vec![r#""""#; 1_000_001].join(","));
    body.push_str("]}");
    let response = h
        .http
        .post(h.url("/v1/embeddings"))
        .bearer_auth(PASSWORD)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let (status, v) = json(response).await;
    assert_eq!(status, 400, "{v}");
    let message = message_of(&v);
    assert!(message.contains("1000000"), "{message}");
}
