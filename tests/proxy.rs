//! Outbound proxies: `HTTP_PROXY`/`HTTPS_PROXY`/`ALL_PROXY` carry upstream calls, `NO_PROXY`
//! exempts hosts, and loopback is never proxied. The mock Gemini doubles as the proxy: an
//! HTTP proxy receives absolute-form requests, which the mock routes by path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

#[tokio::test]
async fn upstream_calls_go_through_the_configured_proxy() {
    let mock = mock_gemini::MockGemini::start().await.unwrap();
    let proxy = mock.url();
    // `gemini.invalid` cannot resolve: only a proxy can deliver this request.
    let h = start_with_mock(
        mock,
        &[
            ("GEMINI_BASE_URL", "http://gemini.invalid"),
            ("HTTP_PROXY", &proxy),
        ],
    )
    .await;
    let (status, v) = json(h.chat(&hello(FLASH, false)).await).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(h.upstream_calls().len(), 1);
}

#[tokio::test]
async fn all_proxy_is_used_too() {
    let mock = mock_gemini::MockGemini::start().await.unwrap();
    let proxy = mock.url();
    let h = start_with_mock(
        mock,
        &[
            ("GEMINI_BASE_URL", "http://gemini.invalid"),
            ("all_proxy", &proxy),
        ],
    )
    .await;
    let (status, _) = json(h.chat(&hello(FLASH, false)).await).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn no_proxy_hosts_are_contacted_directly() {
    let mock = mock_gemini::MockGemini::start().await.unwrap();
    let proxy = mock.url();
    let h = start_with_mock(
        mock,
        &[
            ("GEMINI_BASE_URL", "http://gemini.invalid"),
            ("HTTP_PROXY", &proxy),
            ("NO_PROXY", "gemini.invalid"),
            ("MAX_RETRY_NUM", "1"),
        ],
    )
    .await;
    let (status, v) = json(h.chat(&hello(FLASH, false)).await).await;
    assert_eq!(status, 503, "direct to an unresolvable host fails: {v}");
    assert!(
        openai_error(&v)["message"]
            .as_str()
            .unwrap()
            .contains("connection")
    );
    assert!(h.upstream_calls().is_empty());
}

#[tokio::test]
async fn loopback_is_never_proxied() {
    // The proxy address is dead; the mock on 127.0.0.1 is still reached directly.
    let h = start(&[
        ("HTTP_PROXY", "http://127.0.0.1:9"),
        ("ALL_PROXY", "http://127.0.0.1:9"),
    ])
    .await;
    let (status, v) = json(h.chat(&hello(FLASH, false)).await).await;
    assert_eq!(status, 200, "{v}");
}
