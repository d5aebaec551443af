//! Logging set-up (`LOG_FORMAT=text|json`, `LOG_LEVEL` or `RUST_LOG`) and the per-request
//! log line: one line per request when its response body ends (streams included), with
//! request id, route, model, key id, attempts, status and latency. Keys appear only as
//! `KeyId`; `?key=` is redacted from logged URIs.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, Settings};
use crate::error::ErrorSeen;
use crate::mask::{KeyId, redact_query};

/// The longest raw path written to a log line.
const MAX_LOGGED_PATH: usize = 256;

pub fn init(settings: &Settings) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .or_else(|| {
            EnvFilter::try_new(format!(
                "{},hyper=warn,reqwest=warn,h2=warn",
                settings.log_level
            ))
            .ok()
        })
        .unwrap_or_else(|| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout())
        && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi);
    // A second init (tests start several servers in one process) is not an error.
    let _ = match settings.log_format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// What a handler tells the request log (through the request's [`OutcomeHandle`]).
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub model: Option<String>,
    pub key: Option<KeyId>,
    pub attempts: u32,
    pub stream: bool,
    pub cache_hit: bool,
    /// The client protocol that served the request (`openai`, `gemini`, `anthropic`, …).
    pub dialect: Option<&'static str>,
    /// Tokens of the answer (prompt and completion), when Google reported them.
    pub tokens: u64,
    /// Time spent waiting on Google (all attempts), for the gateway-overhead metric.
    pub upstream_ms: f64,
}

/// A handler's [`Outcome`], shared with the request log: streams and deferred answers keep
/// updating it after the response headers are out.
#[derive(Clone, Debug, Default)]
pub struct OutcomeHandle(std::sync::Arc<std::sync::Mutex<Outcome>>);

impl OutcomeHandle {
    pub fn update(&self, change: impl FnOnce(&mut Outcome)) {
        let mut guard = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        change(&mut guard);
    }

    pub fn get(&self) -> Outcome {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Request id assigned by the logging middleware, also returned as `x-request-id`.
#[derive(Clone, Debug)]
pub struct RequestId(pub Arc<str>);

pub async fn log_requests(
    axum::extract::State(stats): axum::extract::State<Arc<crate::stats::Stats>>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let id: Arc<str> = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(
            || Arc::from(uuid::Uuid::now_v7().simple().to_string()),
            Arc::from,
        );
    request.extensions_mut().insert(RequestId(Arc::clone(&id)));
    // Handlers report what they did through this handle (`routes::ClientCall::outcome`);
    // streams keep updating it until their body ends.
    let outcome = OutcomeHandle::default();
    request.extensions_mut().insert(outcome.clone());
    let method = request.method().clone();
    // The route is the router's pattern, never the raw path: one label for every path no
    // route matched, so probing paths cannot grow the metrics.
    let route = request.extensions().get::<MatchedPath>().map_or_else(
        || crate::labels::UNMATCHED.to_owned(),
        |p| p.as_str().to_owned(),
    );
    let path = crate::labels::capped(request.uri().path(), MAX_LOGGED_PATH).into_owned();
    let query = request.uri().query().map(redact_query);

    let mut response = next.run(request).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    let error = response.extensions().get::<ErrorSeen>().map(|e| e.0);
    let line = LogLine {
        id,
        method: method.to_string(),
        route,
        path,
        query,
        status: response.status().as_u16(),
        outcome,
        error,
        started,
        headers_ms: started.elapsed().as_secs_f64() * 1000.0,
        stats,
    };
    let (parts, body) = response.into_parts();
    Response::from_parts(
        parts,
        Body::new(LoggedBody {
            inner: body,
            line: Some(line),
        }),
    )
}

struct LogLine {
    id: Arc<str>,
    method: String,
    route: String,
    /// The raw path, capped: for the log line only.
    path: String,
    query: Option<String>,
    status: u16,
    outcome: OutcomeHandle,
    error: Option<&'static str>,
    started: Instant,
    headers_ms: f64,
    stats: Arc<crate::stats::Stats>,
}

impl LogLine {
    fn emit(&self, completed: bool) {
        let total_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        let outcome = self.outcome.get();
        let key = outcome.key.map(|k| k.to_string());
        // The log line shows what the client asked for (capped); what is kept and counted
        // (metrics, dashboard log) is the bounded label.
        let asked = outcome
            .model
            .as_deref()
            .map_or(std::borrow::Cow::Borrowed("-"), |m| {
                crate::labels::capped(m, crate::labels::MAX_NAME)
            });
        let label = outcome.model.as_deref().map(|m| self.stats.model_label(m));
        let model = label.as_deref().unwrap_or("-");
        if self.route == "/health" || self.route == "/ready" {
            tracing::debug!(request_id = %self.id, route = %self.route, status = self.status, "request");
            return;
        }
        tracing::info!(
            request_id = %self.id,
            method = %self.method,
            route = %self.route,
            path = %self.path,
            query = %self.query.as_deref().unwrap_or("-"),
            model = %asked,
            dialect = %outcome.dialect.unwrap_or("-"),
            key = %key.as_deref().unwrap_or("-"),
            attempts = outcome.attempts,
            stream = outcome.stream,
            cache_hit = outcome.cache_hit,
            status = self.status,
            error = %self.error.unwrap_or("-"),
            latency_ms = format_args!("{:.2}", self.headers_ms),
            total_ms = format_args!("{total_ms:.2}"),
            completed,
            "request"
        );
        let ms = |v: f64| std::time::Duration::from_secs_f64((v / 1000.0).max(0.0));
        crate::metrics::request(&crate::metrics::Finished {
            route: &self.route,
            dialect: outcome.dialect,
            model: label.as_deref(),
            status: self.status,
            headers: ms(self.headers_ms),
            total: ms(total_ms),
            upstream: ms(outcome.upstream_ms),
            attempts: outcome.attempts,
            cache_hit: outcome.cache_hit,
        });
        if let Some(dialect) = outcome.dialect {
            self.stats
                .count_dialect(dialect, self.status < 400, outcome.tokens);
        }
        if outcome.model.is_some() {
            let at = jiff::ZonedDateTime::now()
                .strftime("%Y-%m-%d %H:%M:%S")
                .to_string();
            let level = if self.status >= 500 {
                "ERROR"
            } else if self.status >= 400 {
                "WARNING"
            } else {
                "INFO"
            };
            let kind = if outcome.stream {
                "stream"
            } else {
                "non-stream"
            };
            let message = format!(
                "{} {} {}ms{}{}",
                self.method,
                self.route,
                total_ms.round(),
                if outcome.cache_hit { " (cache)" } else { "" },
                if outcome.attempts > 1 {
                    format!(" ({} attempts)", outcome.attempts)
                } else {
                    String::new()
                }
            );
            let key = key.unwrap_or_default();
            let formatted = format!(
                "[{at}] [{level}] [{key}]-{kind}-[{model}]-{}: {message}",
                self.status
            );
            self.stats.log(crate::stats::LogEntry {
                timestamp: at,
                level: level.to_owned(),
                key,
                request_type: kind.to_owned(),
                model: model.to_owned(),
                dialect: outcome.dialect.unwrap_or_default().to_owned(),
                status_code: self.status.to_string(),
                message,
                error_message: self.error.unwrap_or_default().to_owned(),
                formatted,
            });
        }
    }
}

/// Logs the request line when the body is finished or dropped (client gone).
struct LoggedBody {
    inner: Body,
    line: Option<LogLine>,
}

impl http_body::Body for LoggedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let poll = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = poll
            && let Some(line) = self.line.take()
        {
            line.emit(true);
        }
        poll
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        if let Some(line) = self.line.take() {
            line.emit(http_body::Body::is_end_stream(&self.inner));
        }
    }
}
