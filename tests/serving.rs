//! How connections are served: a connection that sends nothing is closed after
//! `HEADER_READ_TIMEOUT`, an idle one after `KEEPALIVE_TIMEOUT`, neither ever cuts an answer
//! being sent; `MAX_CONNECTIONS_PER_IP` caps one address's connections (loopback and trusted
//! proxies exempt); hundreds of bare sockets do not starve `/health`; repeated slashes in a
//! request path are collapsed before routing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

mod common;

use std::time::Duration;

use common::*;
use hajimi::config::{CliOverrides, Config};
use mock_gemini::{MockGemini, Reply, Rule};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Generous bound for "the server closes this connection" (a failure bound, not a timing
/// assertion: the configured timeouts are a fraction of it).
const CLOSE_BOUND: Duration = Duration::from_secs(20);

/// Reads until the server closes the connection; `None` if it is still open after
/// [`CLOSE_BOUND`]. Returns what was read.
async fn read_until_closed(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(CLOSE_BOUND, read_all).await.ok()?;
    Some(seen)
}

/// Must not be possible (issue 8 item 5): a socket that connects and sends nothing holds a
/// file descriptor forever.
#[tokio::test]
async fn a_bare_socket_is_never_kept_open_past_the_header_read_timeout() {
    let h = start(&[("HEADER_READ_TIMEOUT", "300ms")]).await;
    let mut bare = TcpStream::connect(h.server.addr).await.unwrap();
    assert!(
        read_until_closed(&mut bare).await.is_some(),
        "the server closes a connection that never sends a request"
    );
    // A socket that sends half a request head is closed too.
    let mut slow = TcpStream::connect(h.server.addr).await.unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let seen = read_until_closed(&mut slow).await;
    assert!(seen.is_some(), "a head that never ends is not waited for");
    assert_eq!(h.get("/health").await.status(), 200);
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_keepalive_timeout() {
    let h = start(&[
        ("HEADER_READ_TIMEOUT", "60s"),
        ("KEEPALIVE_TIMEOUT", "300ms"),
    ])
    .await;
    let mut s = TcpStream::connect(h.server.addr).await.unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let seen = read_until_closed(&mut s)
        .await
        .expect("closed once idle for KEEPALIVE_TIMEOUT");
    let text = String::from_utf8_lossy(&seen);
    assert!(
        text.starts_with("HTTP/1.1 200") && text.contains("\"ok\""),
        "the answer came first: {text}"
    );
}

/// An HTTP/2 (prior knowledge) connection that opens and then sends nothing is closed too.
#[tokio::test]
async fn an_idle_http2_connection_is_never_kept_open() {
    let h = start(&[
        ("HEADER_READ_TIMEOUT", "300ms"),
        ("KEEPALIVE_TIMEOUT", "300ms"),
    ])
    .await;
    let mut s = TcpStream::connect(h.server.addr).await.unwrap();
    // The client preface and an empty SETTINGS frame, then silence (no SETTINGS ack, no PING ack).
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    s.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap();
    assert!(
        read_until_closed(&mut s).await.is_some(),
        "an idle HTTP/2 connection is closed"
    );
}

/// None of the timeouts cuts an answer being sent: a real stream, a fake stream and a slow
/// non-stream answer (with and without keep-alive padding) all last several times the
/// timeouts, over HTTP/1 and HTTP/2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_longer_than_the_timeouts_are_never_cut() {
    for (fake, padded) in [("false", "true"), ("true", "true"), ("true", "false")] {
        let h = start(&[
            ("HEADER_READ_TIMEOUT", "200ms"),
            ("KEEPALIVE_TIMEOUT", "200ms"),
            ("FAKE_STREAMING", fake),
            ("FAKE_STREAMING_INTERVAL", "100ms"),
            ("NONSTREAM_KEEPALIVE_ENABLED", padded),
            ("NONSTREAM_KEEPALIVE_INTERVAL", "100ms"),
        ])
        .await;
        h.mock.add_rule(
            Rule::new(
                Reply::text("one two three four five six")
                    .chunks(6)
                    .chunk_delay_ms(150),
            )
            .action("streamGenerateContent"),
        );
        h.mock.add_rule(
            Rule::new(Reply::text("slow but whole").after_ms(800)).action("generateContent"),
        );
        let h2 = reqwest::Client::builder()
            .no_proxy()
            .http2_prior_knowledge()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        for http in [&h.http, &h2] {
            let r = http
                .post(h.url("/v1/chat/completions"))
                .bearer_auth(PASSWORD)
                .json(&hello(FLASH, true))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let frames = sse(r).await;
            assert_eq!(
                frames.last().unwrap(),
                "[DONE]",
                "fake={fake}: the stream ran to its end"
            );
            let text: String = frames
                .iter()
                .filter_map(|f| f["choices"][0]["delta"]["content"].as_str())
                .collect();
            let want = if fake == "true" {
                "slow but whole"
            } else {
                "one two three four five six"
            };
            assert_eq!(text, want, "fake={fake}");
            let r = http
                .post(h.url("/v1/chat/completions"))
                .bearer_auth(PASSWORD)
                .json(&hello(FLASH, false))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
            assert_eq!(
                v["choices"][0]["message"]["content"], "slow but whole",
                "padded={padded}"
            );
        }
    }
}

/// The original finding: hundreds of bare sockets against a process with few file
/// descriptors, and `/health` no longer answered. The binary runs with 128 descriptors here;
/// the bare sockets are closed after `HEADER_READ_TIMEOUT`, so `/health` gets its turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_while_hundreds_of_bare_sockets_are_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg("ulimit -n 128 && exec \"$0\"")
        .arg(BIN)
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .env("ENABLE_STORAGE", "false")
        .env("PASSWORD", PASSWORD)
        .env("SKIP_CHECK_API_KEY", "true")
        .env("HEADER_READ_TIMEOUT", "1s");
    let p = spawn_command(cmd);
    let addr = p.url.trim_start_matches("http://").to_owned();
    let mut bare = Vec::new();
    for _ in 0..320 {
        bare.push(TcpStream::connect(&addr).await.unwrap());
    }
    let r = client()
        .get(format!("{}/health", p.url))
        .timeout(Duration::from_secs(30))
        .send()
        .await;
    let status = r.map(|r| r.status().as_u16());
    drop(bare);
    let (_, lines) = p.stop();
    assert_eq!(status.ok(), Some(200), "/health answered; log: {lines:#?}");
    assert!(
        lines.iter().any(|l| l.contains("open-file limit")),
        "the open-file limit is logged at start: {lines:#?}"
    );
}

/// A server whose connection cap also applies to loopback peers (the test's own address).
async fn capped(mock: &MockGemini, cap: &str, exempt_loopback: bool) -> hajimi::Server {
    let env: Vec<(String, String)> = [
        ("HOST", "127.0.0.1"),
        ("PORT", "0"),
        ("PASSWORD", PASSWORD),
        ("GEMINI_API_KEYS", KEYS[0]),
        ("GEMINI_BASE_URL", &mock.url()),
        ("ENABLE_STORAGE", "false"),
        ("SKIP_CHECK_API_KEY", "true"),
        ("HEADER_READ_TIMEOUT", "60s"),
        ("KEEPALIVE_TIMEOUT", "60s"),
        ("MAX_CONNECTIONS_PER_IP", cap),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let mut config = Config::from_sources(Vec::new(), env, &CliOverrides::default()).unwrap();
    config.settings.connection_cap_exempts_loopback = exempt_loopback;
    hajimi::Server::start(config).await.unwrap()
}

/// One fresh connection (no pooling) asking for `/health`.
async fn health_once(server: &hajimi::Server) -> Option<u16> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    http.get(format!("{}/health", server.url()))
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

/// Must not be possible (issue 8 item 5): one address opening connections without end.
#[tokio::test]
async fn one_address_never_holds_more_connections_than_the_cap() {
    let mock = MockGemini::start().await.unwrap();
    let server = capped(&mock, "3", false).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(server.addr).await.unwrap());
    }
    let mut extra = TcpStream::connect(server.addr).await.unwrap();
    assert!(
        read_until_closed(&mut extra).await.is_some(),
        "a connection over the cap is closed at once"
    );
    assert_eq!(health_once(&server).await, None, "no room for a fourth");
    // A freed slot is usable again.
    drop(held.pop());
    let answered = eventually("the freed slot to take a connection", || async {
        health_once(&server).await
    })
    .await;
    assert_eq!(answered, 200);
}

#[tokio::test]
async fn loopback_peers_are_not_capped() {
    let mock = MockGemini::start().await.unwrap();
    let server = capped(&mock, "3", true).await;
    let mut held = Vec::new();
    for _ in 0..6 {
        held.push(TcpStream::connect(server.addr).await.unwrap());
    }
    assert_eq!(health_once(&server).await, Some(200));
}

/// SillyTavern with a base URL ending in `/` asks for `/v1//models`.
#[tokio::test]
async fn repeated_slashes_in_request_paths_are_collapsed() {
    let h = start(&[]).await;
    let (status, v) = json(h.get("/v1//models").await).await;
    assert_eq!(status, 200, "{v}");
    assert!(
        v["data"].as_array().is_some_and(|d| !d.is_empty()),
        "the model list: {v}"
    );
    let (status, v) = json(h.post("//v1/chat/completions", &hello(FLASH, false)).await).await;
    assert_eq!(status, 200, "{v}");
    assert!(v["choices"][0]["message"]["content"].is_string());
    // The query survives.
    let r = h
        .http
        .get(h.url(&format!("/v1beta//models?key={PASSWORD}")))
        .send()
        .await
        .unwrap();
    let (status, v) = json(r).await;
    assert_eq!(status, 200, "{v}");
    assert!(v["models"].is_array(), "{v}");
}
