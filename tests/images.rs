//! Remote `image_url`s are fetched by the proxy and sent inline, with the address checks and
//! limits of decisions §5 (loopback is admitted only by the test-only switch).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

mod common;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use base64::Engine as _;
use common::*;
use serde_json::{Value, json};

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n-not-really-a-png-but-bytes";

/// A small image server on 127.0.0.1: `/cat.png`, redirect chains and a huge file.
async fn image_server() -> String {
    let app = Router::new()
        .route(
            "/cat.png",
            get(|| async { ([(header::CONTENT_TYPE, "image/png")], PNG) }),
        )
        .route(
            "/noext",
            get(|| async { ([(header::CONTENT_TYPE, "image/webp; charset=binary")], PNG) }),
        )
        .route(
            "/page.html",
            get(|| async { ([(header::CONTENT_TYPE, "text/html")], "<html>") }),
        )
        .route("/r1", get(|| async { redirect("/cat.png") }))
        .route("/r4", get(|| async { redirect("/r3") }))
        .route("/r3", get(|| async { redirect("/r2") }))
        .route("/r2", get(|| async { redirect("/r1") }))
        .route(
            "/to-private",
            get(|| async { redirect("http://10.0.0.1/cat.png") }),
        )
        .route(
            "/huge.png",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "image/png")],
                    vec![0u8; 21 * 1024 * 1024],
                )
            }),
        )
        .route("/missing.png", get(|| async { StatusCode::NOT_FOUND }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn redirect(to: &str) -> impl IntoResponse {
    let mut h = HeaderMap::new();
    h.insert(header::LOCATION, to.parse().unwrap());
    (StatusCode::FOUND, h)
}

fn with_image(url: &str) -> Value {
    json!({"model": FLASH, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is in the picture?"},
        {"type": "image_url", "image_url": {"url": url}}]}]})
}

#[tokio::test]
async fn a_remote_image_is_fetched_and_sent_inline() {
    let images = image_server().await;
    let h = start(&[("IMAGE_FETCH_ALLOW_LOOPBACK", "true")]).await;
    for (path, mime) in [
        ("/cat.png", "image/png"),
        ("/noext", "image/webp"),
        ("/r1", "image/png"),
    ] {
        let (status, v) = json(h.chat(&with_image(&format!("{images}{path}"))).await).await;
        assert_eq!(status, 200, "{path}: {v}");
        let calls = h.upstream_calls();
        let part = &calls.last().unwrap().body["contents"][0]["parts"][1]["inlineData"];
        assert_eq!(part["mimeType"], mime, "{path}");
        let data = base64::engine::general_purpose::STANDARD
            .decode(part["data"].as_str().unwrap())
            .unwrap();
        assert_eq!(data, PNG);
    }
}

#[tokio::test]
async fn loopback_and_private_addresses_are_refused() {
    let images = image_server().await;
    let port = images.rsplit(':').next().unwrap().to_owned();
    let h = start(&[]).await;
    for url in [
        format!("{images}/cat.png"),
        format!("http://localhost:{port}/cat.png"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://[::1]/x.png".to_owned(),
        "http://10.0.0.1/x.png".to_owned(),
    ] {
        let (status, v) = json(h.chat(&with_image(&url)).await).await;
        assert_eq!(status, 400, "{url}: {v}");
        assert!(
            openai_error(&v)["message"]
                .as_str()
                .unwrap()
                .contains("Refused"),
            "{url}: {v}"
        );
    }
    assert!(h.upstream_calls().is_empty());
}

#[tokio::test]
async fn redirects_are_checked_and_bounded() {
    let images = image_server().await;
    let h = start(&[("IMAGE_FETCH_ALLOW_LOOPBACK", "true")]).await;
    let (status, v) = json(h.chat(&with_image(&format!("{images}/to-private"))).await).await;
    assert_eq!(
        status, 400,
        "a redirect to a private address is refused: {v}"
    );
    let (status, v) = json(h.chat(&with_image(&format!("{images}/r4"))).await).await;
    assert_eq!(status, 400, "four redirects are too many: {v}");
    assert!(
        openai_error(&v)["message"]
            .as_str()
            .unwrap()
            .contains("redirects")
    );
}

#[tokio::test]
async fn size_type_and_http_errors_are_clear_400s() {
    let images = image_server().await;
    let h = start(&[("IMAGE_FETCH_ALLOW_LOOPBACK", "true")]).await;
    for (path, needle) in [
        ("/huge.png", "20 MiB"),
        ("/page.html", "content type"),
        ("/missing.png", "HTTP 404"),
    ] {
        let (status, v) = json(h.chat(&with_image(&format!("{images}{path}"))).await).await;
        assert_eq!(status, 400, "{path}: {v}");
        assert!(
            openai_error(&v)["message"]
                .as_str()
                .unwrap()
                .contains(needle),
            "{path}: {v}"
        );
    }
    let (status, _) = json(h.chat(&with_image("ftp://example.com/x.png")).await).await;
    assert_eq!(status, 400);
}
