//! Talking to Google: one POST/GET to an [`UpstreamUrl`] (built only by [`endpoint`]) with the
//! key in the `x-goog-api-key` header (never in the URL), redirects never followed, bounded
//! body reads with an idle timeout, and the typed event stream of
//! `streamGenerateContent?alt=sse`. Failures come back classified.

pub mod classify;
pub mod endpoint;
pub mod http;
pub mod sse;
pub mod target;

use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};

use crate::config::Settings;
use crate::wire::gemini::GenerateContentResponse;
use classify::Failure;
pub use endpoint::UpstreamUrl;
use sse::SseParser;
pub use target::{Auth, Target};

/// Upper bound of an upstream error body we read.
const ERROR_BODY_LIMIT: usize = 1024 * 1024;
/// Upper bound of a non-stream upstream answer (images come back inline).
pub const ANSWER_LIMIT: usize = 256 * 1024 * 1024;
/// Upper bound of one SSE event (thought signatures can be large; 128 KiB is not enough).
pub const EVENT_LIMIT: usize = 64 * 1024 * 1024;

#[derive(Clone)]
pub struct Upstream {
    client: reqwest::Client,
}

impl Upstream {
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        Ok(Self {
            client: http::build_client(settings)?,
        })
    }

    /// The HTTP client (the Vertex token endpoint uses it too).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// POSTs a JSON body; returns once a 2xx answer's headers arrived (within `idle`).
    /// A non-2xx answer is read (bounded) and classified.
    pub async fn post(
        &self,
        url: &UpstreamUrl,
        auth: &Auth,
        body: Bytes,
        idle: Duration,
    ) -> Result<reqwest::Response, Failure> {
        let request = authenticated(self.client.post(url.to_url()), auth)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        self.send(request, idle).await
    }

    /// Sends a request and returns the answer whatever its status (only transport failures
    /// and redirects are errors), for the native passthrough that forwards Google's own errors.
    pub async fn send_any(
        &self,
        method: reqwest::Method,
        url: &UpstreamUrl,
        auth: &Auth,
        body: Option<Bytes>,
        idle: Duration,
    ) -> Result<reqwest::Response, Failure> {
        let mut request = authenticated(self.client.request(method, url.to_url()), auth);
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        match tokio::time::timeout(idle, request.send()).await {
            Err(_) => Err(Failure::Timeout),
            Ok(Err(e)) => Err(transport_failure(&e)),
            Ok(Ok(r)) => refuse_redirect(r),
        }
    }

    pub async fn get(
        &self,
        url: &UpstreamUrl,
        auth: &Auth,
        idle: Duration,
    ) -> Result<reqwest::Response, Failure> {
        self.send(authenticated(self.client.get(url.to_url()), auth), idle)
            .await
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        idle: Duration,
    ) -> Result<reqwest::Response, Failure> {
        let response = match tokio::time::timeout(idle, request.send()).await {
            Err(_) => return Err(Failure::Timeout),
            Ok(Err(e)) => return Err(transport_failure(&e)),
            Ok(Ok(r)) => refuse_redirect(r)?,
        };
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(response);
        }
        let body = read_body(response, idle, ERROR_BODY_LIMIT)
            .await
            .unwrap_or_default();
        Err(classify::classify(status, &body))
    }
}

/// Adds a credential's authentication to a request (a key only ever in a header).
fn authenticated(request: reqwest::RequestBuilder, auth: &Auth) -> reqwest::RequestBuilder {
    match auth {
        Auth::ApiKey(key) => request.header("x-goog-api-key", key.as_str()),
        Auth::Bearer(token) => request.bearer_auth(token),
    }
}

/// A redirect from the upstream is a failed attempt, never followed (the client does not
/// follow redirects, see [`http::build_client`]): Google's API does not redirect, so one
/// comes from something in between (a relay, a proxy, a captive portal) that must not get
/// our keys. Not the key's fault; another key may be tried, as after any unusable answer.
fn refuse_redirect(response: reqwest::Response) -> Result<reqwest::Response, Failure> {
    let status = response.status();
    if !status.is_redirection() {
        return Ok(response);
    }
    let to = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|l| response.url().join(l).ok())
        .map(|u| u.host_str().unwrap_or_default().to_owned())
        .unwrap_or_default();
    tracing::warn!(
        status = status.as_u16(),
        from = response.url().host_str().unwrap_or_default(),
        to = %to,
        "the upstream answered with a redirect, which is not followed; check GEMINI_BASE_URL and any proxy in between"
    );
    Err(Failure::Garbage {
        detail: format!("upstream redirect {} not followed", status.as_u16()),
    })
}

/// Maps a transport error (never printing its URL). A connect timeout is a connection
/// error: nothing reached Google (a blocked route usually shows up as one).
pub fn transport_failure(e: &reqwest::Error) -> Failure {
    if e.is_connect() {
        Failure::Connection
    } else if e.is_timeout() {
        Failure::Timeout
    } else {
        Failure::Connection
    }
}

/// Reads a whole body, failing on `idle` silence between chunks or past `limit` bytes.
/// Reads an error body (bounded) and classifies it.
pub async fn classify_response(
    response: reqwest::Response,
    idle: Duration,
) -> (u16, Bytes, Failure) {
    let status = response.status().as_u16();
    let body = read_body(response, idle, ERROR_BODY_LIMIT)
        .await
        .unwrap_or_default();
    let failure = classify::classify(status, &body);
    (status, body, failure)
}

pub async fn read_body(
    response: reqwest::Response,
    idle: Duration,
    limit: usize,
) -> Result<Bytes, Failure> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(Failure::Garbage {
            detail: format!("upstream body larger than {limit} bytes"),
        });
    }
    let mut stream = response.bytes_stream();
    let mut buf = BytesMut::new();
    loop {
        match tokio::time::timeout(idle, stream.next()).await {
            Err(_) => return Err(Failure::Timeout),
            Ok(None) => return Ok(buf.freeze()),
            Ok(Some(Err(e))) => return Err(transport_failure(&e)),
            Ok(Some(Ok(chunk))) => {
                if buf.len() + chunk.len() > limit {
                    return Err(Failure::Garbage {
                        detail: format!("upstream body larger than {limit} bytes"),
                    });
                }
                buf.extend_from_slice(&chunk);
            }
        }
    }
}

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// The events of one `streamGenerateContent?alt=sse` answer, parsed incrementally.
pub struct GeminiEvents {
    body: ByteStream,
    parser: SseParser,
    pending: VecDeque<Bytes>,
    idle: Duration,
    eof: bool,
}

impl GeminiEvents {
    pub fn new(response: reqwest::Response, idle: Duration) -> Self {
        Self::from_stream(Box::pin(response.bytes_stream()), idle)
    }

    pub fn from_stream(body: ByteStream, idle: Duration) -> Self {
        Self {
            body,
            parser: SseParser::new(EVENT_LIMIT),
            pending: VecDeque::new(),
            idle,
            eof: false,
        }
    }

    /// The next event; `None` when the upstream closed the stream. An event carrying an
    /// `error` object is returned as its classified failure.
    pub async fn next(&mut self) -> Option<Result<GenerateContentResponse, Failure>> {
        self.next_raw().await.map(|r| r.map(|(_, event)| event))
    }

    /// Like [`Self::next`], with the event's `data` bytes exactly as Google sent them.
    pub async fn next_raw(&mut self) -> Option<Result<(Bytes, GenerateContentResponse), Failure>> {
        loop {
            if let Some(data) = self.pending.pop_front() {
                return Some(parse_event(&data).map(|event| (data, event)));
            }
            if self.eof {
                return None;
            }
            let mut out = Vec::new();
            match tokio::time::timeout(self.idle, self.body.next()).await {
                Err(_) => return Some(Err(Failure::Timeout)),
                Ok(Some(Err(e))) => return Some(Err(transport_failure(&e))),
                Ok(Some(Ok(chunk))) => {
                    if let Err(e) = self.parser.push(&chunk, &mut out) {
                        return Some(Err(Failure::Garbage {
                            detail: e.to_string(),
                        }));
                    }
                }
                Ok(None) => {
                    self.eof = true;
                    if let Err(e) = self.parser.finish(&mut out) {
                        return Some(Err(Failure::Garbage {
                            detail: e.to_string(),
                        }));
                    }
                }
            }
            self.pending.extend(out);
        }
    }
}

fn parse_event(data: &[u8]) -> Result<GenerateContentResponse, Failure> {
    match serde_json::from_slice::<GenerateContentResponse>(data) {
        Ok(event) => match &event.error {
            Some(err) => {
                let status = err
                    .get("code")
                    .and_then(serde_json::Value::as_u64)
                    .and_then(|c| u16::try_from(c).ok())
                    .unwrap_or(500);
                let body = serde_json::json!({ "error": err }).to_string();
                Err(classify::classify(status, body.as_bytes()))
            }
            None => Ok(event),
        },
        Err(e) => Err(Failure::Garbage {
            detail: format!("unreadable stream event: {e}"),
        }),
    }
}
