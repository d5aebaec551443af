//! Prometheus metrics (`GET /metrics`): requests by route, dialect, model and status; request latency
//! and gateway overhead histograms; upstream attempts and their latency; tokens; cache hits;
//! key states; retries. Labels are bounded: a model Google's list does not know is `other`
//! (`crate::labels`), routes are the router's patterns (`unmatched` for any path no route
//! matched), dialects are the fixed names of `translate::dialect::Render::label` (`-` for
//! requests that have none), statuses are numbers.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Latency buckets (seconds): sub-millisecond gateway work up to ten-minute answers.
const BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0,
    300.0,
];

/// Installs the process-wide recorder (once) and returns its handle.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &BUCKETS);
            match builder.and_then(PrometheusBuilder::install_recorder) {
                Ok(handle) => {
                    describe();
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .as_ref()
}

/// The metrics in Prometheus text format.
pub fn render() -> String {
    install()
        .map(|h| {
            h.run_upkeep();
            h.render()
        })
        .unwrap_or_default()
}

fn describe() {
    metrics::describe_counter!(
        "hajimi_requests_total",
        "Requests by route, client dialect, model and status"
    );
    metrics::describe_histogram!(
        "hajimi_request_duration_seconds",
        "Time from request to the end of the response body"
    );
    metrics::describe_histogram!(
        "hajimi_response_headers_seconds",
        "Time from request to response headers"
    );
    metrics::describe_histogram!(
        "hajimi_gateway_overhead_seconds",
        "Time to response headers not spent waiting on Google"
    );
    metrics::describe_counter!(
        "hajimi_upstream_attempts_total",
        "Upstream attempts by model and result"
    );
    metrics::describe_histogram!(
        "hajimi_upstream_duration_seconds",
        "Duration of one upstream attempt"
    );
    metrics::describe_counter!(
        "hajimi_retries_total",
        "Upstream attempts beyond the first of a request"
    );
    metrics::describe_counter!("hajimi_tokens_total", "Tokens by model and kind");
    metrics::describe_counter!(
        "hajimi_cache_hits_total",
        "Answers served from the response cache or an identical request in flight"
    );
    metrics::describe_gauge!("hajimi_keys", "Upstream keys by state");
    metrics::describe_counter!(
        "hajimi_store_dropped_writes_total",
        "Store writes dropped because the queue was full"
    );
}

/// Google's model list has loaded: these models get their own label (with `-search` twins).
pub fn set_known_models(models: impl IntoIterator<Item = String>) {
    crate::labels::global().set_listed(models);
}

/// A bounded model label (`crate::labels::KnownModels::label`).
pub fn model_label(model: &str) -> String {
    crate::labels::global().label(model)
}

pub fn upstream_attempt(model: &str, result: &'static str, took: Duration) {
    let model = model_label(model);
    counter!("hajimi_upstream_attempts_total", "model" => model.clone(), "result" => result)
        .increment(1);
    histogram!("hajimi_upstream_duration_seconds", "model" => model).record(took.as_secs_f64());
}

/// One finished request, as the request log saw it.
pub struct Finished<'a> {
    pub route: &'a str,
    /// The client protocol (`openai`, `gemini`, `anthropic`, `responses`), if any.
    pub dialect: Option<&'static str>,
    /// The model's bounded label ([`model_label`]), if the request named one.
    pub model: Option<&'a str>,
    pub status: u16,
    pub headers: Duration,
    pub total: Duration,
    pub upstream: Duration,
    pub attempts: u32,
    pub cache_hit: bool,
}

/// One finished request (called by the request log when the body ends).
pub fn request(r: &Finished<'_>) {
    let model = r.model.unwrap_or("-").to_owned();
    let route = r.route.to_owned();
    counter!("hajimi_requests_total", "route" => route.clone(), "dialect" => r.dialect.unwrap_or("-"), "model" => model, "status" => r.status.to_string()).increment(1);
    histogram!("hajimi_response_headers_seconds", "route" => route.clone())
        .record(r.headers.as_secs_f64());
    histogram!("hajimi_request_duration_seconds", "route" => route.clone())
        .record(r.total.as_secs_f64());
    if r.attempts > 0 {
        histogram!("hajimi_gateway_overhead_seconds", "route" => route)
            .record(r.headers.saturating_sub(r.upstream).as_secs_f64());
    }
    if r.attempts > 1 {
        counter!("hajimi_retries_total").increment(u64::from(r.attempts - 1));
    }
    if r.cache_hit {
        counter!("hajimi_cache_hits_total").increment(1);
    }
}

pub fn tokens(model: &str, prompt: u64, completion: u64, thoughts: u64, cached: u64) {
    let model = model_label(model);
    for (kind, n) in [
        ("prompt", prompt),
        ("completion", completion),
        ("thoughts", thoughts),
        ("cached", cached),
    ] {
        if n > 0 {
            counter!("hajimi_tokens_total", "model" => model.clone(), "kind" => kind).increment(n);
        }
    }
}

pub fn key_states(active: usize, cooling: usize, invalid: usize, suspended: usize) {
    for (state, n) in [
        ("active", active),
        ("cooling", cooling),
        ("invalid", invalid),
        ("suspended", suspended),
    ] {
        gauge!("hajimi_keys", "state" => state).set(n as f64);
    }
}
