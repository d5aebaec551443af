//! Shared harness: a mock Gemini on 127.0.0.1 and the real hajimi server on a random port,
//! configured through the same code path as the binary (`Config::from_sources`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use hajimi::config::{CliOverrides, Config};
use mock_gemini::MockGemini;
use serde_json::Value;

pub const PASSWORD: &str = "test-password";
pub const KEYS: [&str; 3] = [
    "AIzaSyTESTKEY00000000000000000000000001",
    "AIzaSyTESTKEY00000000000000000000000002",
    "AIzaSyTESTKEY00000000000000000000000003",
];
pub const FLASH: &str = "gemini-2.5-flash";

pub struct Harness {
    pub mock: MockGemini,
    pub server: hajimi::Server,
    pub http: reqwest::Client,
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Starts a mock and a server with `KEYS`, `PASSWORD` and the given extra variables.
pub async fn start(extra: &[(&str, &str)]) -> Harness {
    let mock = MockGemini::start().await.expect("mock starts");
    start_with_mock(mock, extra).await
}

pub async fn start_with_mock(mock: MockGemini, extra: &[(&str, &str)]) -> Harness {
    let keys = KEYS.join(",");
    let mut env: Vec<(String, String)> = vec![
        ("HOST".into(), "127.0.0.1".into()),
        ("PORT".into(), "0".into()),
        ("PASSWORD".into(), PASSWORD.into()),
        ("GEMINI_API_KEYS".into(), keys),
        ("GEMINI_BASE_URL".into(), mock.url()),
        ("ENABLE_STORAGE".into(), "false".into()),
        ("RANDOM_STRING".into(), "false".into()),
    ];
    for (k, v) in extra {
        env.retain(|(name, _)| name != k);
        env.push(((*k).to_owned(), (*v).to_owned()));
    }
    let config =
        Config::from_sources(Vec::new(), env, &CliOverrides::default()).expect("valid config");
    let server = hajimi::Server::start(config).await.expect("server starts");
    Harness {
        mock,
        server,
        http: client(),
    }
}

impl Harness {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(PASSWORD)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn chat(&self, body: &Value) -> reqwest::Response {
        self.post("/v1/chat/completions", body).await
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(PASSWORD)
            .send()
            .await
            .expect("request sent")
    }

    /// Upstream generate/stream requests the mock saw (model listing excluded).
    pub fn upstream_calls(&self) -> Vec<mock_gemini::Recorded> {
        self.mock
            .requests()
            .into_iter()
            .filter(|r| {
                matches!(
                    r.action.as_deref(),
                    Some("generateContent" | "streamGenerateContent")
                )
            })
            .collect()
    }
}

pub fn hello(model: &str, stream: bool) -> Value {
    serde_json::json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "Hello there"}]})
}

pub async fn json(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, value)
}

/// The `data:` payloads of an SSE body, in order (`[DONE]` included as a string).
pub async fn sse(response: reqwest::Response) -> Vec<Value> {
    let text = response.text().await.expect("body");
    assert!(
        text.ends_with("\n\n"),
        "SSE body must end with a blank line: {text:?}"
    );
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let data = e
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not a data event: {e:?}"));
            if data == "[DONE]" {
                Value::String("[DONE]".into())
            } else {
                serde_json::from_str(data).expect("event JSON")
            }
        })
        .collect()
}

/// Asserts an OpenAI error envelope and returns it.
pub fn openai_error(body: &Value) -> &Value {
    let e = &body["error"];
    assert!(e["message"].is_string(), "message: {body}");
    assert!(e["type"].is_string(), "type: {body}");
    assert!(
        e.get("param").is_some() && e.get("code").is_some(),
        "param/code present: {body}"
    );
    e
}
