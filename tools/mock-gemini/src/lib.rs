//! mock-gemini: a fast, faithful mock of Google's Generative Language API (AI Studio;
//! v1beta, v1alpha and v1 paths) on 127.0.0.1, for hajimi's tests and benchmarks.
//!
//! Control API on the same port (no auth): `POST /__mock/rules` (a [`Rule`] or an array),
//! `POST /__mock/reset`, `GET /__mock/requests`, `POST /__mock/models` (array of Model
//! objects), `POST /__mock/latency` `{"ms": N}`, `GET /__mock/health` → `ok`.
//!
//! Beyond text, the default answers follow the request like Gemini does: `toolConfig`
//! mode `ANY` with function declarations answers a function call (args sampled from the
//! schema's required properties), `googleSearch` adds `groundingMetadata`,
//! `responseMimeType: application/json` answers JSON, and Gemini 3 models sign function calls
//! and reject replayed calls of the current turn without a signature the mock issued (see
//! [`MockGemini::issued_signatures`]). Tools, schemas, function turns, thinking settings and
//! inline data are validated with Google's messages. Scripted function calls:
//! `{"kind":"function_call","calls":[{"name":"get_weather","args":{"city":"Paris"}}]}`.
//!
//! This module owns the public API: [`Options`], the running server handle [`MockGemini`]
//! and the [`Recorded`] request log entries. Scripting lives in [`Rule`] / [`Reply`].
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use mock_gemini::{MockGemini, Reply, Rule};
//! let mock = MockGemini::start().await?;
//! mock.add_rule(Rule::new(Reply::preset("quota_429")).key("key-a").times(1));
//! let base = mock.url(); // "http://127.0.0.1:PORT"
//! # let _ = base; Ok(()) }
//! ```

mod generate;
mod models;
mod rules;
mod server;
mod tools;
mod validate;
mod wire;

pub use rules::{CallSpec, Reply, Rule};
/// Names accepted by [`Reply::Preset`].
pub use wire::PRESETS;

use serde::Serialize;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use tokio::task::JoinHandle;

/// Server options. `Default` gives 127.0.0.1:0, no latency, 3 stream chunks, echo and recording on.
#[derive(Clone, Debug)]
pub struct Options {
    pub addr: SocketAddr,
    /// Delay before the response headers of every API request.
    pub latency_ms: u64,
    /// Events per streamed answer.
    pub stream_chunks: usize,
    /// Delay between streamed events.
    pub chunk_delay_ms: u64,
    /// Answer text includes the last user text ("Hello from mock Gemini. You said: …").
    pub echo: bool,
    /// Keep the last 10 000 requests for [`MockGemini::requests`].
    pub record: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            latency_ms: 0,
            stream_chunks: 3,
            chunk_delay_ms: 0,
            echo: true,
            record: true,
        }
    }
}

/// One request as received (control API calls are not recorded).
#[derive(Clone, Debug, Serialize)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// From the `x-goog-api-key` header, else the `key` query parameter.
    pub api_key: Option<String>,
    pub key_in_query: bool,
    /// Without the `models/` prefix.
    pub model: Option<String>,
    /// generateContent, streamGenerateContent, countTokens, embedContent, batchEmbedContents, …;
    /// `None` for the model GETs.
    pub action: Option<String>,
    pub headers: Vec<(String, String)>,
    /// `Null` when the body was empty or not JSON.
    pub body: serde_json::Value,
}

/// A running mock server. Dropping it stops the server and closes all its connections.
pub struct MockGemini {
    shared: Arc<server::Shared>,
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl MockGemini {
    /// Starts with [`Options::default`].
    pub async fn start() -> std::io::Result<MockGemini> {
        MockGemini::start_with(Options::default()).await
    }

    pub async fn start_with(opts: Options) -> std::io::Result<MockGemini> {
        let listener = tokio::net::TcpListener::bind(opts.addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(server::Shared::new(&opts));
        // The mock owns its task (aborted on drop); hajimi's TaskTracker rule does not apply here.
        #[allow(clippy::disallowed_methods)]
        let task = tokio::spawn(server::serve(listener, shared.clone()));
        Ok(MockGemini { shared, addr, task })
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Appends a rule; rules are tried in insertion order, first match with `times` left wins.
    pub fn add_rule(&self, rule: Rule) {
        self.shared.add_rules([rule]);
    }

    /// Clears rules and recorded requests (the model list stays).
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Recorded requests in arrival order (the last 10 000).
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests()
    }

    /// Replaces the model list (Model objects as returned by models.get).
    pub fn set_models(&self, models: Vec<serde_json::Value>) {
        self.shared.set_models(models);
    }

    pub fn set_latency_ms(&self, ms: u64) {
        self.shared.set_latency_ms(ms);
    }

    /// Thought signatures the mock put on function calls, oldest first (the last 10 000).
    /// They survive [`MockGemini::reset`], like real signatures stay valid.
    pub fn issued_signatures(&self) -> Vec<String> {
        self.shared.issued_signatures()
    }
}

impl Drop for MockGemini {
    fn drop(&mut self) {
        self.task.abort();
    }
}
