//! Obtaining a complete answer: from the response cache, from an identical request in
//! flight, or from HAJIMI's raced attempts across credentials, whose surplus answers go to
//! the cache (HAJIMI's free "regenerate"; decisions §6).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use tokio::time::Instant;

use crate::cache::{Answer, Join, follow};
use crate::config::Settings;
use crate::error::GatewayError;
use crate::keys::KeySlot;
use crate::pipeline::dispatch::{self, Leftovers};
use crate::pipeline::request_body::RequestBody;
use crate::state::AppState;
use crate::telemetry::OutcomeHandle;
use crate::translate::assess::{Assessment, assess};
use crate::upstream::classify::Failure;
use crate::upstream::{ANSWER_LIMIT, Target, UpstreamUrl, classify_response, read_body};
use crate::vertex::send::Caller;
use crate::wire::gemini::GenerateContentResponse;

/// What to ask Google for.
pub struct Plan {
    /// The upstream model (URL and key cooldown scope).
    pub model: String,
    /// Where it goes and how credentials authenticate there.
    pub target: Target,
    /// The full `:generateContent` URL.
    pub url: UpstreamUrl,
    pub body: Arc<RequestBody>,
    /// Response-cache key, when this request may use the cache.
    pub cache_key: Option<u64>,
    /// Google's refusals of the request come back as answers, forwarded as they are (the
    /// identity dialect), not as errors.
    pub forward: bool,
}

/// Gets an answer: from the cache, from an identical request in flight, or from raced
/// attempts whose surplus answers go to the cache.
pub async fn obtain(
    state: AppState,
    snap: Arc<Settings>,
    plan: Plan,
    outcome: OutcomeHandle,
) -> Result<Answer, GatewayError> {
    let budget = dispatch::Budget::of(&snap);
    let deadline = budget.deadline;
    if let Some(key) = plan.cache_key
        && let Some(answer) = cached(&state, &snap, key, deadline).await
    {
        outcome.update(|o| o.cache_hit = true);
        return Ok(answer);
    }
    let leader = match plan.cache_key.filter(|_| !snap.public_mode) {
        Some(key) => match state.inflight.join(key) {
            Join::Follower(rx) => {
                if let Some(shared) = follow(rx, deadline).await {
                    outcome.update(|o| o.cache_hit = true);
                    return shared;
                }
                None
            }
            Join::Leader(guard) => Some(guard),
            Join::Untracked => None,
        },
        None => None,
    };
    let result = race(&state, &snap, budget, &plan, &outcome).await;
    if let Ok(answer) = &result {
        record_tokens(
            &state.stats,
            &outcome,
            &plan.model,
            answer
                .parsed
                .as_ref()
                .and_then(|p| p.usage_metadata.as_ref()),
        );
    }
    if let Some(guard) = &leader {
        guard.publish(&result);
    }
    result
}

/// A cached answer for `key` (when the cache is on), waiting until `until` for surplus
/// answers known to be on their way.
pub async fn cached(state: &AppState, snap: &Settings, key: u64, until: Instant) -> Option<Answer> {
    let caching = snap.max_cache_entries > 0 && !snap.cache_expiry_time.is_zero();
    if !caching {
        return None;
    }
    state.cache.take(key, until).await
}

async fn race(
    state: &AppState,
    snap: &Arc<Settings>,
    budget: dispatch::Budget,
    plan: &Plan,
    outcome: &OutcomeHandle,
) -> Result<Answer, GatewayError> {
    let upstream = state.caller();
    let url = Arc::new(plan.url.clone());
    let body = Arc::clone(&plan.body);
    let idle = snap.upstream_timeout;
    let forward = plan.forward;
    let target = Arc::new(plan.target.clone());
    let attempt = move |key: Arc<KeySlot>| -> BoxFuture<'static, Result<Answer, Failure>> {
        let upstream = upstream.clone();
        let url = Arc::clone(&url);
        let target = Arc::clone(&target);
        let bytes = body.bytes();
        let blocked_moves_on = body.has_fallbacks();
        Box::pin(async move {
            let call = Attempt {
                upstream: &upstream,
                target: &target,
                url: &url,
                idle,
                forward,
                blocked_moves_on,
            };
            call.generate(&key, bytes).await
        })
    };
    let (answer, leftovers) = dispatch::race(
        &dispatch::Dispatch::to(state, &plan.target, snap, &plan.model, outcome),
        budget,
        &attempt,
        |f| plan.body.fix(f),
    )
    .await?;
    if let (Some(left), Some(key)) = (leftovers, plan.cache_key) {
        keep_surplus(state, snap, key, left);
    }
    Ok(answer)
}

/// Counts an answer's tokens in the statistics, the metrics and the request's outcome (the
/// credential that answered is the outcome's).
pub fn record_tokens(
    stats: &crate::stats::Stats,
    outcome: &OutcomeHandle,
    model: &str,
    usage: Option<&crate::wire::gemini::UsageMetadata>,
) {
    let Some(u) = usage else { return };
    let c = crate::store::Counters {
        prompt_tokens: u.prompt_token_count + u.tool_use_prompt_token_count,
        completion_tokens: u.candidates_token_count + u.thoughts_token_count,
        thought_tokens: u.thoughts_token_count,
        cached_tokens: u.cached_content_token_count,
        ..crate::store::Counters::default()
    };
    let mut key = None;
    outcome.update(|o| {
        o.tokens += c.prompt_tokens + c.completion_tokens;
        key = o.key;
    });
    stats.record(key, model, &c);
    crate::metrics::tokens(
        model,
        c.prompt_tokens,
        c.completion_tokens,
        c.thought_tokens,
        c.cached_tokens,
    );
}

/// Collects a won race's other answers into the cache (HAJIMI's free "regenerate").
fn keep_surplus(state: &AppState, snap: &Settings, key: u64, left: Leftovers<Answer>) {
    let caching = snap.max_cache_entries > 0 && !snap.cache_expiry_time.is_zero();
    if !caching {
        return;
    }
    state.cache.expect(key, left.remaining);
    let owner = state.clone();
    let (ttl, max) = (snap.cache_expiry_time, snap.max_cache_entries);
    state.spawn_tracked(async move { collect_surplus(&owner.cache, key, left, ttl, max).await });
}

/// Puts each leftover answer in the cache as it comes, and settles every expected one, even
/// those that never come (their attempts were cancelled), so no request waits for them.
async fn collect_surplus(
    cache: &crate::cache::ResponseCache,
    key: u64,
    mut left: Leftovers<Answer>,
    ttl: Duration,
    max: usize,
) {
    let mut outstanding = left.remaining;
    while outstanding > 0 {
        match left.rx.recv().await {
            Some((_, Ok(answer))) => {
                if answer.status == 200 {
                    cache.put(key, answer, ttl, max);
                }
            }
            Some((_, Err(_))) => {}
            // The senders are gone: none of the rest will come.
            None => break,
        }
        cache.settled(key);
        outstanding -= 1;
    }
    for _ in 0..outstanding {
        cache.settled(key);
    }
}

/// What one POST to the upstream returned.
pub enum Posted {
    /// A 2xx answer, its body still to read.
    Ok(reqwest::Response),
    /// Google refused the request: its answer, keys scrubbed, forwarded as it is.
    Refused(Answer),
}

/// POSTs a request body with a credential. A non-2xx answer is read and classified: the
/// request's own fault is a [`Posted::Refused`] answer when `forward` (the identity
/// dialect), every other failure an error.
pub async fn post(
    upstream: &Caller,
    target: &Target,
    url: &UpstreamUrl,
    key: &KeySlot,
    body: Bytes,
    idle: Duration,
    forward: bool,
) -> Result<Posted, Failure> {
    let response = upstream
        .send(target, reqwest::Method::POST, url, key, Some(body), idle)
        .await?;
    if response.status().is_success() {
        return Ok(Posted::Ok(response));
    }
    let (status, raw, failure) = classify_response(response, idle).await;
    if forward && failure.ends_request() {
        let text = crate::mask::scrub_keys(&String::from_utf8_lossy(&raw));
        return Ok(Posted::Refused(Answer {
            status,
            raw: Bytes::from(text),
            parsed: None,
        }));
    }
    Err(failure)
}

/// One `generateContent` attempt's means.
struct Attempt<'a> {
    upstream: &'a Caller,
    target: &'a Target,
    url: &'a UpstreamUrl,
    idle: Duration,
    forward: bool,
    /// A blocked prompt is an empty answer, so the next body is tried (Vertex `-auto`).
    blocked_moves_on: bool,
}

impl Attempt<'_> {
    /// A 2xx answer with nothing usable is an empty answer (retried); with `forward`,
    /// Google's refusals of the request are answers too.
    async fn generate(&self, key: &KeySlot, body: Bytes) -> Result<Answer, Failure> {
        let response = match post(
            self.upstream,
            self.target,
            self.url,
            key,
            body,
            self.idle,
            self.forward,
        )
        .await?
        {
            Posted::Ok(response) => response,
            Posted::Refused(answer) => return Ok(answer),
        };
        let raw = read_body(response, self.idle, ANSWER_LIMIT).await?;
        let parsed: GenerateContentResponse =
            serde_json::from_slice(&raw).map_err(|e| Failure::Garbage {
                detail: format!("unreadable answer: {e}"),
            })?;
        match assess(&parsed) {
            Assessment::Empty(reason) => return Err(Failure::Empty { reason }),
            Assessment::PromptBlocked(reason) if self.blocked_moves_on => {
                return Err(Failure::Empty {
                    reason: format!("prompt blocked ({reason}); the next variant is tried"),
                });
            }
            _ => {}
        }
        Ok(Answer {
            status: 200,
            raw,
            parsed: Some(Arc::new(parsed)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three leftovers expected, their attempts gone without a word: a later identical
    /// request must not wait for them.
    #[tokio::test]
    async fn surplus_that_never_comes_is_settled() {
        let cache = crate::cache::ResponseCache::default();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        drop(tx);
        cache.expect(7, 3);
        collect_surplus(
            &cache,
            7,
            Leftovers { rx, remaining: 3 },
            Duration::from_secs(60),
            10,
        )
        .await;
        let waited = tokio::time::timeout(
            Duration::from_secs(5),
            cache.take(7, Instant::now() + Duration::from_secs(3600)),
        )
        .await;
        assert!(matches!(waited, Ok(None)), "nothing to wait for");
    }
}
