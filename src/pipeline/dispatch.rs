//! Attempts across keys for one request (CONTRACT §3): each usable key at most once before
//! any key is tried again, keys retired during the request never again, at most
//! `MAX_RETRY_NUM` attempts and `MAX_EMPTY_RESPONSES` empty answers, all before
//! `REQUEST_DEADLINE`; short cooldowns are waited out. When every attempt failed, the
//! client's status is chosen from the failures, first match wins.
//!
//! Two drivers share that bookkeeping: [`run`] tries one key at a time (streams, where the
//! attempt holds the client's connection), and [`race`] runs HAJIMI's batches
//! (`CONCURRENT_REQUESTS` keys at once, growing by `INCREASE_CONCURRENT_ON_FAILURE` after a
//! failed batch up to `MAX_CONCURRENT_REQUESTS`), whose losers keep running for the response
//! cache unless `RACE_CANCEL_LOSERS`.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::time::Instant;

use crate::config::Settings;
use crate::error::GatewayError;
use crate::keys::{KeyPool, KeySlot, Lease, Limits, Pick};
use crate::mask::KeyId;
use crate::stats::Stats;
use crate::store::Counters;
use crate::telemetry::OutcomeHandle;
use crate::upstream::classify::Failure;

/// The longest cooldown a request waits out instead of answering 429 (CONTRACT §3).
pub const MAX_COOLDOWN_WAIT: Duration = Duration::from_secs(10);

/// What one request may spend on upstream attempts: until when, and how many.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub deadline: Instant,
    pub max_attempts: u32,
}

impl Budget {
    /// A fresh request's budget: `REQUEST_DEADLINE` from now, `MAX_RETRY_NUM` attempts.
    pub fn of(settings: &Settings) -> Self {
        Self {
            deadline: Instant::now() + settings.request_deadline,
            max_attempts: settings.max_retry_num.max(1),
        }
    }
}

pub struct Attempts {
    model: String,
    pub deadline: Instant,
    max_attempts: u32,
    max_empty: u32,
    limits: Limits,
    tried: HashSet<KeyId>,
    failures: Vec<Failure>,
    pub attempts: u32,
    pub empty: u32,
}

impl Attempts {
    pub fn new(settings: &Settings, budget: Budget, model: &str) -> Self {
        Self {
            model: model.to_owned(),
            deadline: budget.deadline,
            max_attempts: budget.max_attempts.max(1),
            max_empty: settings.max_empty_responses.max(1),
            limits: Limits {
                daily_limit: settings.api_key_daily_limit,
                max_in_flight: settings.key_max_concurrency,
            },
            tried: HashSet::new(),
            failures: Vec::new(),
            attempts: 0,
            empty: 0,
        }
    }

    pub fn remaining(&self) -> u32 {
        self.max_attempts.saturating_sub(self.attempts)
    }

    fn take(&mut self, lease: &Lease) {
        self.tried.insert(lease.id);
        self.attempts += 1;
    }

    /// The key for the next attempt (waiting out short cooldowns and busy keys), or the
    /// error that ends the request.
    pub async fn next_key(&mut self, pool: &KeyPool) -> Result<Lease, GatewayError> {
        if self.attempts >= self.max_attempts {
            return Err(self.final_error(pool));
        }
        let signal = pool.release_signal();
        loop {
            // Listening before picking: a lease released after a `Busy` pick still wakes us.
            let released = signal.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            let now = Instant::now();
            match pool.pick(&self.model, &self.tried, now, self.limits) {
                Pick::Key(lease) => {
                    self.take(&lease);
                    return Ok(lease);
                }
                // Every usable key had its turn: a new round may reuse them.
                Pick::AllTried => self.tried.clear(),
                Pick::Busy => {
                    tokio::select! {
                        () = released => {}
                        () = tokio::time::sleep_until(self.deadline) => {
                            return Err(self.deadline_error());
                        }
                    }
                }
                Pick::CoolingUntil(until) => {
                    let wait = until.saturating_duration_since(now);
                    if wait <= MAX_COOLDOWN_WAIT && until < self.deadline {
                        tracing::debug!(
                            wait_ms = wait.as_millis() as u64,
                            "every key is cooling down; waiting"
                        );
                        tokio::time::sleep_until(until).await;
                        continue;
                    }
                    return Err(GatewayError::QuotaExhausted {
                        message: format!(
                            "所有 API 密钥对模型 {m} 都在冷却中（配额用尽），请 {s} 秒后重试 / Every API key is cooling down for model {m} (quota exhausted); retry in {s}s",
                            m = self.model,
                            s = wait.as_secs().max(1)
                        ),
                        retry_after: Some(wait),
                    });
                }
                Pick::NoneUsable => {
                    if self.failures.is_empty() {
                        return Err(GatewayError::Unavailable {
                            message: "没有可用的 API 密钥，请在 GEMINI_API_KEYS 或面板中添加有效密钥 / No usable API key: add valid keys to GEMINI_API_KEYS or from the dashboard".to_owned(),
                        });
                    }
                    return Err(self.final_error(pool));
                }
            }
        }
    }

    /// Another key for the same batch, only if one is free right now and not in the batch.
    fn another_key_now(&mut self, pool: &KeyPool, batch: &HashSet<KeyId>) -> Option<Lease> {
        if self.attempts >= self.max_attempts {
            return None;
        }
        let mut excluded = self.tried.clone();
        excluded.extend(batch.iter().copied());
        match pool.pick(&self.model, &excluded, Instant::now(), self.limits) {
            Pick::Key(lease) => {
                self.take(&lease);
                Some(lease)
            }
            Pick::AllTried => {
                // A new round, but never a key already in this batch.
                self.tried.clear();
                match pool.pick(&self.model, batch, Instant::now(), self.limits) {
                    Pick::Key(lease) => {
                        self.take(&lease);
                        Some(lease)
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// Records a failed attempt and settles the key.
    pub fn fail(&mut self, key: &KeySlot, failure: Failure) {
        key.settle(&failure, &self.model, Instant::now());
        self.record(failure);
    }

    /// Records a failed attempt whose key was already settled.
    fn record(&mut self, failure: Failure) {
        if matches!(failure, Failure::Empty { .. }) {
            self.empty += 1;
        }
        tracing::debug!(
            failure = failure.kind(),
            attempt = self.attempts,
            "upstream attempt failed"
        );
        self.failures.push(failure);
    }

    /// True when the empty-answer budget is spent.
    pub fn empty_exhausted(&self) -> bool {
        self.empty >= self.max_empty
    }

    /// The client's error when no attempt succeeded (CONTRACT §3, first match wins).
    pub fn final_error(&self, pool: &KeyPool) -> GatewayError {
        if let Some(f) = self.failures.iter().find(|f| f.is_request_error()) {
            return request_error(f);
        }
        if self.empty_exhausted() {
            let reason = self.failures.iter().rev().find_map(|f| match f {
                Failure::Empty { reason } => Some(reason.as_str()),
                _ => None,
            });
            return GatewayError::BadGateway {
                message: format!(
                    "空响应次数达到上限（{n} 次），请修改输入提示词 / The model returned empty answers {n} times ({r}); try changing the prompt",
                    n = self.empty,
                    r = reason.unwrap_or("empty")
                ),
            };
        }
        if !self.failures.is_empty()
            && self
                .failures
                .iter()
                .all(|f| matches!(f, Failure::Quota { .. }))
        {
            let now = Instant::now();
            let retry_after = pool
                .earliest_cooldown_end(&self.model, now)
                .map(|u| u.saturating_duration_since(now));
            return GatewayError::QuotaExhausted {
                message: format!(
                    "所有 API 密钥的配额均已用尽（{n} 次尝试） / Every attempt hit an upstream quota limit ({n} attempts)",
                    n = self.failures.len()
                ),
                retry_after,
            };
        }
        if !self.failures.is_empty() && self.failures.iter().all(|f| matches!(f, Failure::Timeout))
        {
            return GatewayError::Timeout {
                message: format!(
                    "上游在规定时间内没有响应（{n} 次尝试） / The upstream did not answer in time ({n} attempts)",
                    n = self.failures.len()
                ),
            };
        }
        GatewayError::Unavailable {
            message: format!(
                "所有 API 密钥均请求失败 / All upstream attempts failed: {}",
                self.summary()
            ),
        }
    }

    /// `2× overloaded (503), 1× invalid key`-style summary of the failures.
    pub fn summary(&self) -> String {
        let mut counts: Vec<(&'static str, usize)> = Vec::new();
        for f in &self.failures {
            match counts.iter_mut().find(|(l, _)| *l == f.label()) {
                Some((_, n)) => *n += 1,
                None => counts.push((f.label(), 1)),
            }
        }
        let mut out = String::new();
        for (i, (label, n)) in counts.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            let _ = write!(out, "{n}× {label}");
        }
        if out.is_empty() {
            out.push_str("no attempt was made");
        }
        out
    }

    /// The error for the deadline passing before an answer started.
    pub fn deadline_error(&self) -> GatewayError {
        GatewayError::Timeout {
            message: format!(
                "请求超时：在 REQUEST_DEADLINE 内未得到上游响应（{} 次尝试） / Deadline exceeded: no upstream answer within REQUEST_DEADLINE ({} attempts{})",
                self.attempts,
                self.attempts,
                if self.failures.is_empty() {
                    String::new()
                } else {
                    format!("; {}", self.summary())
                }
            ),
        }
    }
}

/// Counts one upstream attempt in the statistics and metrics.
pub fn record_attempt(
    stats: &Stats,
    key: KeyId,
    model: &str,
    took: Duration,
    result: Result<(), &Failure>,
) {
    let ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
    let mut c = Counters {
        calls: 1,
        latency_ms: ms,
        ..Counters::default()
    };
    let kind = match result {
        Ok(()) => {
            c.successes = 1;
            "success"
        }
        Err(f) => {
            c.failures = 1;
            c.failure_kinds.insert(f.kind().to_owned(), 1);
            f.kind()
        }
    };
    stats.record(Some(key), model, &c);
    crate::metrics::upstream_attempt(model, kind, took);
}

/// A request error from the upstream, as the client sees it (CONTRACT §3).
pub fn request_error(f: &Failure) -> GatewayError {
    match f {
        Failure::ModelNotFound { message } => GatewayError::NotFound {
            message: message.clone(),
            code: "model_not_found",
        },
        Failure::Location { message } => GatewayError::BadRequest {
            message: format!("上游不支持服务器所在地区 / {message}"),
            param: None,
            code: Some("unsupported_country_region_territory"),
        },
        Failure::BadRequest { message, .. } | Failure::PenaltyUnsupported { message } => {
            GatewayError::BadRequest {
                message: message.clone(),
                param: None,
                code: Some("upstream_invalid_request"),
            }
        }
        other => GatewayError::BadGateway {
            message: other.label().to_owned(),
        },
    }
}

/// A prompt the upstream refused to answer (CONTRACT §4).
pub fn prompt_blocked(reason: &str) -> GatewayError {
    GatewayError::BadRequest {
        message: format!(
            "提示词被上游安全策略拦截（{reason}） / The prompt was blocked by the upstream safety filter ({reason})"
        ),
        param: Some("messages".to_owned()),
        code: Some("content_filter"),
    }
}

/// Runs attempts one key at a time until one succeeds. `attempt` makes one upstream attempt
/// with a key; `fix` may correct the request after a known, fixable refusal and asks for an
/// immediate retry by returning true. Request errors end the loop at once; other failures
/// settle the key and move on. The winning key's lease is returned with the value.
#[expect(
    clippy::too_many_arguments,
    reason = "the attempt loop's knobs, as for `race`; grouping them would only move the list"
)]
pub async fn run<T, Fut>(
    pool: &KeyPool,
    stats: &Arc<Stats>,
    settings: &Settings,
    budget: Budget,
    model: &str,
    outcome: &OutcomeHandle,
    mut attempt: impl FnMut(Arc<KeySlot>) -> Fut,
    mut fix: impl FnMut(&Failure) -> bool,
) -> Result<(T, Lease), GatewayError>
where
    Fut: Future<Output = Result<T, Failure>>,
{
    let mut attempts = Attempts::new(settings, budget, model);
    loop {
        if attempts.empty_exhausted() {
            return Err(attempts.final_error(pool));
        }
        let lease = tokio::time::timeout_at(attempts.deadline, attempts.next_key(pool))
            .await
            .map_err(|_| attempts.deadline_error())??;
        let (id, n) = (lease.id, attempts.attempts);
        outcome.update(|o| {
            o.key = Some(id);
            o.attempts = n;
        });
        let started = Instant::now();
        let result =
            tokio::time::timeout_at(attempts.deadline, attempt(Arc::clone(lease.slot()))).await;
        let took = started.elapsed();
        outcome.update(|o| o.upstream_ms += took.as_secs_f64() * 1000.0);
        match result {
            Err(_) => {
                record_attempt(stats, lease.id, model, took, Err(&Failure::Timeout));
                return Err(attempts.deadline_error());
            }
            Ok(Ok(value)) => {
                record_attempt(stats, lease.id, model, took, Ok(()));
                lease.record_success();
                return Ok((value, lease));
            }
            Ok(Err(failure)) => {
                record_attempt(stats, lease.id, model, took, Err(&failure));
                if fix(&failure) {
                    continue;
                }
                if failure.ends_request() {
                    return Err(request_error(&failure));
                }
                attempts.fail(&lease, failure);
            }
        }
    }
}

/// One raced attempt's result, as it reaches the request (or the leftover collector).
pub type RaceResult<T> = (KeyId, Result<T, Failure>);

/// What a won race leaves behind: the attempts still running, whose results arrive on
/// `rx` (`remaining` of them). Dropping it lets them finish unobserved.
pub struct Leftovers<T> {
    pub rx: tokio::sync::mpsc::Receiver<RaceResult<T>>,
    pub remaining: usize,
}

/// Runs HAJIMI's batches of attempts on distinct keys (CONTRACT: `CONCURRENT_REQUESTS`,
/// `INCREASE_CONCURRENT_ON_FAILURE`, `MAX_CONCURRENT_REQUESTS`, `MAX_RETRY_NUM`). Each attempt
/// runs as its own task and settles its key itself; the first success answers. The
/// attempts still running are returned as [`Leftovers`] (or cancelled with
/// `RACE_CANCEL_LOSERS`).
#[expect(
    clippy::too_many_arguments,
    reason = "the race driver's knobs; grouping them would only move the list"
)]
pub async fn race<T: Send + 'static>(
    pool: &KeyPool,
    stats: &Arc<Stats>,
    settings: &Settings,
    budget: Budget,
    model: &str,
    outcome: &OutcomeHandle,
    spawn: &(dyn Fn(BoxFuture<'static, ()>) -> tokio::task::AbortHandle + Sync),
    attempt: &(dyn Fn(Arc<KeySlot>) -> BoxFuture<'static, Result<T, Failure>> + Sync),
    mut fix: impl FnMut(&Failure) -> bool,
) -> Result<(T, Option<Leftovers<T>>), GatewayError> {
    let mut attempts = Attempts::new(settings, budget, model);
    let mut width = settings.concurrent_requests.max(1);
    let max_width = settings.max_concurrent_requests.max(1).max(width);
    loop {
        if attempts.empty_exhausted() {
            return Err(attempts.final_error(pool));
        }
        let first = tokio::time::timeout_at(attempts.deadline, attempts.next_key(pool))
            .await
            .map_err(|_| attempts.deadline_error())??;
        let mut batch_ids = HashSet::from([first.id]);
        let mut leases = vec![first];
        while leases.len() < width.min(attempts.remaining() + 1) as usize {
            match attempts.another_key_now(pool, &batch_ids) {
                Some(lease) => {
                    batch_ids.insert(lease.id);
                    leases.push(lease);
                }
                None => break,
            }
        }
        let n = attempts.attempts;
        outcome.update(|o| o.attempts = n);
        let (tx, mut rx) = tokio::sync::mpsc::channel::<RaceResult<T>>(leases.len());
        let mut handles = Vec::with_capacity(leases.len());
        let model_owned = model.to_owned();
        for lease in leases {
            let tx = tx.clone();
            let work = attempt(Arc::clone(lease.slot()));
            let model = model_owned.clone();
            let stats = Arc::clone(stats);
            handles.push(spawn(Box::pin(async move {
                let started = Instant::now();
                let result = work.await;
                record_attempt(
                    &stats,
                    lease.id,
                    &model,
                    started.elapsed(),
                    result.as_ref().map(|_| ()),
                );
                match &result {
                    Ok(_) => lease.record_success(),
                    Err(f) if !f.ends_request() => lease.settle(f, &model, Instant::now()),
                    Err(_) => {}
                }
                let id = lease.id;
                drop(lease);
                let _ = tx.send((id, result)).await;
            })));
        }
        drop(tx);
        let mut pending = handles.len();
        let mut fixed = false;
        while pending > 0 {
            let received = tokio::time::timeout_at(attempts.deadline, rx.recv()).await;
            let Ok(Some((id, result))) = received else {
                for h in &handles {
                    h.abort();
                }
                return Err(attempts.deadline_error());
            };
            pending -= 1;
            match result {
                Ok(value) => {
                    outcome.update(|o| o.key = Some(id));
                    if settings.race_cancel_losers || pending == 0 {
                        for h in &handles {
                            h.abort();
                        }
                        return Ok((value, None));
                    }
                    return Ok((
                        value,
                        Some(Leftovers {
                            rx,
                            remaining: pending,
                        }),
                    ));
                }
                Err(failure) => {
                    outcome.update(|o| o.key = Some(id));
                    if fix(&failure) {
                        fixed = true;
                        continue;
                    }
                    if fixed && failure.ends_request() {
                        // Sent with the body as it was before this batch's fix: the retry
                        // with the fixed body decides.
                        continue;
                    }
                    if failure.ends_request() {
                        for h in &handles {
                            h.abort();
                        }
                        return Err(request_error(&failure));
                    }
                    attempts.record(failure);
                }
            }
        }
        if !fixed {
            // HAJIMI: a batch without a success widens the next one.
            width = (width + settings.increase_concurrent_on_failure).min(max_width);
        }
    }
}
