//! Shared harness: a mock Gemini on 127.0.0.1 and the real hajimi server on a random port,
//! configured through the same code path as the binary (`Config::from_sources`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use hajimi::config::{CliOverrides, Config};
use mock_gemini::MockGemini;
use serde_json::Value;

mod poll;
pub use poll::*;

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

/// A file under `tests/fixtures/` (e.g. `"gemini/countTokens.request.json"`) as text.
pub fn fixture_text(path: &str) -> String {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// A JSON file under `tests/fixtures/`.
pub fn fixture_json(path: &str) -> Value {
    serde_json::from_str(&fixture_text(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A `.jsonl` file under `tests/fixtures/`: one JSON value a line.
pub fn fixture_jsonl(path: &str) -> Vec<Value> {
    fixture_text(path)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{path}: {e}: {l}")))
        .collect()
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

/// The real `hajimi` binary as a child process, its output collected line by line.
pub struct Proc {
    pub child: std::process::Child,
    pub out: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    pub url: String,
    /// The threads reading stdout and stderr; they end when the process has exited.
    readers: Vec<std::thread::JoinHandle<()>>,
}

pub const BIN: &str = env!("CARGO_BIN_EXE_hajimi");

/// Starts the binary in `dir` (its working directory) with a clean environment plus `env`,
/// and waits for its "listening on" line.
pub fn spawn_in(dir: &std::path::Path, env: &[(&str, &str)]) -> Proc {
    let mut cmd = std::process::Command::new(BIN);
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd.env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .env("ENABLE_STORAGE", "false");
    for (k, v) in env {
        cmd.env(k, v);
    }
    spawn_command(cmd)
}

/// Starts the binary from a prepared command and waits for its "listening on" line.
pub fn spawn_command(mut cmd: std::process::Command) -> Proc {
    use std::io::{BufRead, BufReader};
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let mut readers = Vec::new();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let out = std::sync::Arc::clone(&out);
        let tx = tx.clone();
        readers.push(std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if let Some(pos) = line.find("listening on http://") {
                    let url: String = line[pos + 13..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || ":/.".contains(*c))
                        .collect();
                    let _ = tx.send(url);
                }
                out.lock().unwrap().push(line);
            }
        }));
    }
    let url = rx
        .recv_timeout(PATIENCE)
        .unwrap_or_else(|_| panic!("no address reported: {:?}", out.lock().unwrap()));
    Proc {
        child,
        out,
        url,
        readers,
    }
}

/// A child process killed when the test ends, whether it passed or failed.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Proc {
    /// A test that fails before `stop` leaves no server behind.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Starts the binary in a fresh temporary directory.
pub fn spawn(env: &[(&str, &str)]) -> Proc {
    let dir = tempfile::tempdir().unwrap();
    let p = spawn_in(dir.path(), env);
    std::mem::forget(dir);
    p
}

impl Proc {
    pub fn signal(&self, sig: &str) {
        std::process::Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
    }

    /// SIGTERM, wait, and the exit code with every line printed.
    pub fn stop(mut self) -> (Option<i32>, Vec<String>) {
        self.signal("TERM");
        let status = self.child.wait().unwrap();
        // The readers end at the end of the output, once everything is collected.
        for reader in self.readers.drain(..) {
            reader.join().unwrap();
        }
        let lines = self.out.lock().unwrap().clone();
        (status.code(), lines)
    }

    /// The lines printed so far.
    pub fn lines(&self) -> Vec<String> {
        self.out.lock().unwrap().clone()
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(mut self) {
        self.signal("KILL");
        let _ = self.child.wait();
    }
}
