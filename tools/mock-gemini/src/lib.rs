//! mock-gemini: a fast, faithful mock of Google's Generative Language API (AI Studio;
//! v1beta, v1alpha and v1 paths) on 127.0.0.1, for hajimi's tests and benchmarks.
//!
//! Control API on the same port (no auth): `POST /__mock/rules` (a [`Rule`] or an array),
//! `POST /__mock/reset`, `GET /__mock/requests`, `POST /__mock/models` (array of Model
//! objects), `POST /__mock/latency` `{"ms": N}`, `GET /__mock/health` → `ok`.
//!
//! Vertex AI (see the `vertex` module): `POST /token` (the JWT-bearer grant, assertions
//! checked against registered public keys), `/v1/projects/{p}/locations/{l}/publishers/google/models/{m}:{action}`
//! (Bearer token), `/v1/publishers/google/models/{m}:{action}` (express key),
//! `GET /v1beta1/publishers/google/models`. Control: `POST /__mock/vertex/accounts`
//! `{"client_email","project_id"}` → a generated key file, `POST /__mock/vertex/refuse`
//! `{"client_email","refuse":true,"description"?}`, `POST /__mock/vertex/token_lifetime`
//! `{"secs": N}`, `POST /__mock/vertex/expire_tokens`, `POST /__mock/vertex/express_keys`
//! `["key", …]`, `GET /__mock/vertex/stats`. Rules match Vertex calls with the account's
//! email (or the express key) as `key`.
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
//! // Builders for the rest: a slow stream in 4 events with a thought, cut after 2.
//! let reply = Reply::text("one two three four").chunks(4).thought("Hmm.").cut_after(2);
//! mock.add_rule(Rule::new(reply.after_ms(500)).action("streamGenerateContent"));
//! let base = mock.url(); // "http://127.0.0.1:PORT"
//! # let _ = base; Ok(()) }
//! ```

mod generate;
mod models;
mod rules;
mod server;
mod tools;
mod validate;
mod vertex;
mod wire;

pub use rules::{CallSpec, Reply, Rule};
pub use vertex::{GeneratedAccount, VertexCall, generate_account};
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
    /// Set for the Vertex paths: project, location and the credential that authenticated.
    pub vertex: Option<VertexCall>,
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
        let shared = Arc::new(server::Shared::new(&opts, format!("http://{addr}/token")));
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

    /// The mock's OAuth token endpoint (`http://127.0.0.1:PORT/token`).
    pub fn token_uri(&self) -> String {
        self.shared.vertex.token_uri().to_owned()
    }

    /// A new service account of `project`: a throwaway RSA key generated now, its public key
    /// registered with the token endpoint, and the key file returned (its `token_uri` is this
    /// mock). Rules match its calls with `client_email` as the key.
    pub fn vertex_account(
        &self,
        client_email: &str,
        project: &str,
    ) -> std::io::Result<GeneratedAccount> {
        let account = generate_account(client_email, project, self.shared.vertex.token_uri())?;
        self.shared
            .vertex
            .register(client_email, project, account.public_key_der.clone());
        Ok(account)
    }

    /// Registers an account whose key the caller made (public key as X.509 SPKI DER).
    pub fn vertex_register(&self, client_email: &str, project: &str, public_key_der: Vec<u8>) {
        self.shared
            .vertex
            .register(client_email, project, public_key_der);
    }

    /// The token endpoint refuses the account with `invalid_grant` and `description`
    /// (`None`: accepts it again).
    pub fn vertex_refuse(&self, client_email: &str, description: Option<&str>) {
        self.shared.vertex.refuse(client_email, description);
    }

    /// `expires_in` of the tokens issued from now on (default 3599 s). Expiry is measured on
    /// tokio's clock, so a test may advance it.
    pub fn vertex_token_lifetime(&self, secs: u64) {
        self.shared.vertex.set_lifetime(secs);
    }

    /// Every token issued so far expires now (the next call with one gets 401).
    pub fn vertex_expire_tokens(&self) {
        self.shared.vertex.expire_tokens();
    }

    /// Accepts `key` on the express path.
    pub fn vertex_express_key(&self, key: &str) {
        self.shared.vertex.add_express_key(key);
    }

    /// Token requests received (all, or those whose assertion named `client_email`), since
    /// the start or the last [`MockGemini::reset`].
    pub fn vertex_token_requests(&self, client_email: Option<&str>) -> u64 {
        self.shared.vertex.token_requests(client_email)
    }

    /// The project an account was registered with.
    pub fn vertex_project_of(&self, client_email: &str) -> Option<String> {
        self.shared.vertex.project_of(client_email)
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
