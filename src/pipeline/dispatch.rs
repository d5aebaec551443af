//! The drivers of a request's attempts (their bookkeeping is [`super::attempts`]): [`run`]
//! tries one credential at a time (streams, where the attempt holds the client's connection),
//! and [`race`] runs HAJIMI's batches (`CONCURRENT_REQUESTS` credentials at once, growing by
//! `INCREASE_CONCURRENT_ON_FAILURE` after a failed batch up to `MAX_CONCURRENT_REQUESTS`),
//! whose losers keep running for the response cache unless `RACE_CANCEL_LOSERS`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::time::Instant;

pub use super::attempts::{Attempts, Budget, request_error};
use crate::config::Settings;
use crate::error::GatewayError;
use crate::keys::{KeyPool, KeySlot, Lease, Only};
use crate::mask::KeyId;
use crate::stats::Stats;
use crate::store::Counters;
use crate::telemetry::OutcomeHandle;
use crate::upstream::Target;
use crate::upstream::classify::Failure;

/// Whom one request's attempts go through: the credential pool, where attempts are counted,
/// the settings, the upstream model (the cooldown scope), the request's log outcome, and
/// where raced attempts run (they may outlive the request, for the cache).
#[derive(Clone, Copy)]
pub struct Dispatch<'a> {
    pub pool: &'a KeyPool,
    pub stats: &'a Arc<Stats>,
    pub settings: &'a Settings,
    pub model: &'a str,
    pub outcome: &'a OutcomeHandle,
    pub tasks: &'a tokio_util::task::TaskTracker,
    /// Which credentials of the pool may serve, and the host named when none is reachable
    /// (`None`: AI Studio's `GEMINI_BASE_URL`, every credential).
    pub through: Option<(Only, &'a str)>,
}

impl<'a> Dispatch<'a> {
    /// A request's dispatch through the server's key pool.
    pub fn new(
        state: &'a crate::state::AppState,
        settings: &'a Settings,
        model: &'a str,
        outcome: &'a OutcomeHandle,
    ) -> Self {
        Self {
            pool: &state.keys,
            stats: &state.stats,
            settings,
            model,
            outcome,
            tasks: &state.tasks,
            through: None,
        }
    }

    /// A request's dispatch to `target`: AI Studio's key pool, or the Vertex credentials
    /// (those the model's prefix admits).
    pub fn to(
        state: &'a crate::state::AppState,
        target: &'a Target,
        settings: &'a Settings,
        model: &'a str,
        outcome: &'a OutcomeHandle,
    ) -> Self {
        let mut d = Self::new(state, settings, model, outcome);
        if let Target::Vertex(v) = target {
            d.pool = &state.vertex.pool;
            d.through = Some((v.only, v.base.as_str()));
        }
        d
    }

    fn attempts(&self, budget: Budget) -> Attempts {
        let attempts = Attempts::new(self.settings, budget, self.model);
        match self.through {
            Some((only, base)) => attempts.through(only, base),
            None => attempts,
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
        // The request's own fault (a wrong model, a refused file): a call, not a failure of
        // the key; the request log still shows it (issue 8 item 13).
        Err(f) if f.ends_request() => f.kind(),
        Err(f) => {
            c.failures = 1;
            c.failure_kinds.insert(f.kind().to_owned(), 1);
            f.kind()
        }
    };
    stats.record(Some(key), model, &c);
    crate::metrics::upstream_attempt(model, kind, took);
}

/// Runs attempts one key at a time until one succeeds. `attempt` makes one upstream attempt
/// with a key; `fix` may correct the request after a known, fixable refusal and asks for an
/// immediate retry by returning true. Request errors end the loop at once; other failures
/// settle the key and move on. The winning key's lease is returned with the value.
pub async fn run<T, Fut>(
    ctx: &Dispatch<'_>,
    budget: Budget,
    mut attempt: impl FnMut(Arc<KeySlot>) -> Fut,
    mut fix: impl FnMut(&Failure) -> bool,
) -> Result<(T, Lease), GatewayError>
where
    Fut: Future<Output = Result<T, Failure>>,
{
    let Dispatch {
        pool,
        stats,
        model,
        outcome,
        ..
    } = *ctx;
    let mut attempts = ctx.attempts(budget);
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
                    return Err(request_error(&failure, model));
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

/// Runs HAJIMI's batches of attempts on distinct keys (settings `CONCURRENT_REQUESTS`,
/// `INCREASE_CONCURRENT_ON_FAILURE`, `MAX_CONCURRENT_REQUESTS`, `MAX_RETRY_NUM`). Each attempt
/// runs as its own task and settles its key itself; the first success answers. The
/// attempts still running are returned as [`Leftovers`] (or cancelled with
/// `RACE_CANCEL_LOSERS`).
pub async fn race<T: Send + 'static>(
    ctx: &Dispatch<'_>,
    budget: Budget,
    attempt: &(dyn Fn(Arc<KeySlot>) -> BoxFuture<'static, Result<T, Failure>> + Sync),
    mut fix: impl FnMut(&Failure) -> bool,
) -> Result<(T, Option<Leftovers<T>>), GatewayError> {
    let Dispatch {
        pool,
        stats,
        settings,
        model,
        outcome,
        tasks,
        ..
    } = *ctx;
    let spawn = |fut: BoxFuture<'static, ()>| tasks.spawn(fut).abort_handle();
    let mut attempts = ctx.attempts(budget);
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
                        return Err(request_error(&failure, model));
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
