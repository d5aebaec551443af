//! One request's attempts across credentials (decisions §3): each usable credential at most
//! once before any is tried again, credentials retired during the request never again, at
//! most `MAX_RETRY_NUM` attempts and `MAX_EMPTY_RESPONSES` empty answers, all before
//! `REQUEST_DEADLINE`; short cooldowns are waited out. When every attempt failed, the
//! client's status is chosen from the failures, first match wins ([`Attempts::final_error`]).

use std::collections::HashSet;
use std::fmt::Write as _;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::Settings;
use crate::error::GatewayError;
use crate::keys::{KeyPool, KeySlot, Lease, Limits, Pick};
use crate::mask::KeyId;
use crate::upstream::classify::Failure;

/// The longest cooldown a request waits out instead of answering 429 (decisions §3).
pub const MAX_COOLDOWN_WAIT: Duration = Duration::from_secs(10);

/// Beyond this wait for a key, OpenAI-shaped routes answer 503 `insufficient_quota` with the
/// wait in words, not 429 (decisions §3). Why: SillyTavern's server retries every 429 five
/// times with backoff (5+10+20+40+80 s), so a user whose keys are out for the day waited
/// 155 s to read the error, and retrying such a request soon cannot help. Native Gemini
/// routes keep Google's 429 (see `GatewayError::InsufficientQuota`).
pub const LONG_WAIT: Duration = Duration::from_secs(60);

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
    /// `GEMINI_BASE_URL`, named when nothing reached it.
    base_url: String,
    /// `KEY_RECHECK_INTERVAL`, said when every key is retired.
    recheck: Duration,
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
            base_url: settings.gemini_base_url.clone(),
            recheck: settings.key_recheck_interval,
            deadline: budget.deadline,
            max_attempts: budget.max_attempts.max(1),
            max_empty: settings.max_empty_responses.max(1),
            limits: Limits {
                daily_limit: settings.api_key_daily_limit,
                max_in_flight: settings.key_max_concurrency,
                only: crate::keys::Only::Any,
            },
            tried: HashSet::new(),
            failures: Vec::new(),
            attempts: 0,
            empty: 0,
        }
    }

    /// Attempts through another upstream than AI Studio: only these credentials of its pool,
    /// and its host named when it cannot be reached.
    pub fn through(mut self, only: crate::keys::Only, base_url: &str) -> Self {
        self.limits.only = only;
        base_url.clone_into(&mut self.base_url);
        self
    }

    pub fn remaining(&self) -> u32 {
        self.max_attempts.saturating_sub(self.attempts)
    }

    pub(super) fn take(&mut self, lease: &Lease) {
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
                    return Err(self.cooling_error(pool, now));
                }
                Pick::NoneUsable => {
                    if !self.failures.is_empty() {
                        return Err(self.final_error(pool));
                    }
                    if pool.is_empty() {
                        return Err(GatewayError::Unavailable {
                            message: "没有配置 API 密钥，请在 GEMINI_API_KEYS 或面板中添加密钥 / No API key is configured: add keys to GEMINI_API_KEYS or from the dashboard".to_owned(),
                        });
                    }
                    // Every key is retired: nothing changes before the next key check.
                    return Err(GatewayError::InsufficientQuota {
                        message: crate::pipeline::wait::retired_message(pool.len(), self.recheck),
                        retry_after: Some(self.recheck),
                        retired: true,
                    });
                }
            }
        }
    }

    /// Another key for the same batch, only if one is free right now and not in the batch.
    pub(super) fn another_key_now(
        &mut self,
        pool: &KeyPool,
        batch: &HashSet<KeyId>,
    ) -> Option<Lease> {
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
    pub(super) fn record(&mut self, failure: Failure) {
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

    /// Every key is cooling down for this model (or, after quota failures, out of quota):
    /// 429 with `Retry-After` for a short wait, the long-wait answer beyond [`LONG_WAIT`].
    fn cooling_error(&self, pool: &KeyPool, now: Instant) -> GatewayError {
        let Some((until, daily)) = pool.earliest_return(&self.model, now) else {
            return GatewayError::QuotaExhausted {
                message: format!(
                    "模型 {m} 的配额已用尽（{n} 次尝试） / Upstream quota exhausted for model {m} ({n} attempts)",
                    m = self.model,
                    n = self.failures.len()
                ),
                retry_after: None,
            };
        };
        let wait = until.saturating_duration_since(now);
        if wait > LONG_WAIT {
            return GatewayError::InsufficientQuota {
                message: crate::pipeline::wait::quota_message(
                    &self.model,
                    wait,
                    daily,
                    jiff::Timestamp::now(),
                ),
                retry_after: Some(wait),
                retired: false,
            };
        }
        GatewayError::QuotaExhausted {
            message: format!(
                "所有 API 密钥对模型 {m} 都在冷却中（配额用尽），请约 {s} 秒后重试 / Every API key is cooling down for model {m} (quota exhausted); retry in about {s} s",
                m = self.model,
                s = wait.as_secs().max(1)
            ),
            retry_after: Some(wait),
        }
    }

    /// The client's error when no attempt succeeded (decisions §3, first match wins): a
    /// request error; the empty-answer limit; all quota (429, or the long-wait answer); all
    /// timeouts (504); all connection errors (503 naming the upstream host); otherwise 503
    /// naming the causes and counts.
    pub fn final_error(&self, pool: &KeyPool) -> GatewayError {
        if let Some(f) = self.failures.iter().find(|f| f.is_request_error()) {
            return request_error(f, &self.model);
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
        let all =
            |p: fn(&Failure) -> bool| !self.failures.is_empty() && self.failures.iter().all(p);
        if all(|f| matches!(f, Failure::Quota { .. })) {
            return self.cooling_error(pool, Instant::now());
        }
        if all(|f| matches!(f, Failure::Timeout)) {
            return GatewayError::Timeout {
                message: format!(
                    "上游在规定时间内没有响应（{n} 次尝试） / The upstream did not answer in time ({n} attempts)",
                    n = self.failures.len()
                ),
            };
        }
        if all(|f| matches!(f, Failure::Connection)) {
            return GatewayError::Unavailable {
                message: unreachable_message(&self.base_url, self.failures.len()),
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

/// Nothing reached Google: name the host and say how to get there (issue 8 item 14).
fn unreachable_message(base_url: &str, attempts: usize) -> String {
    let host = reqwest::Url::parse(base_url)
        .ok()
        .and_then(|u| {
            let host = u.host_str()?.to_owned();
            Some(match u.port() {
                Some(port) => format!("{host}:{port}"),
                None => host,
            })
        })
        .unwrap_or_else(|| "generativelanguage.googleapis.com".to_owned());
    format!(
        "无法连接上游 {host}（{attempts} 次尝试均为连接错误）。如果本机不能直连 Google，请设置 HTTPS_PROXY 代理，或用 GEMINI_BASE_URL 指向可访问的地址 / Could not connect to the upstream {host} ({attempts} attempts, all connection errors). If this server cannot reach Google directly, set HTTPS_PROXY to a proxy, or point GEMINI_BASE_URL at an address it can reach"
    )
}

/// A request error from the upstream, as the client sees it (decisions §3). `model` is the
/// model the request named upstream.
pub fn request_error(f: &Failure, model: &str) -> GatewayError {
    match f {
        Failure::ModelNotFound { .. } => GatewayError::NotFound {
            message: format!(
                "模型 {model} 不存在，可用模型见 /v1/models / The model `{model}` does not exist; see /v1/models for the models you can use"
            ),
            code: "model_not_found",
        },
        Failure::Denied { status, message } => GatewayError::Forbidden {
            message: format!(
                "Google 拒绝了此请求（{status}，不是代理密钥的问题） / Google refused this request ({status}; not a problem with the proxy's keys): {message}"
            ),
            code: "upstream_permission_denied",
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CliOverrides, Config};
    use crate::error::Flavor;
    use axum::http::StatusCode;

    fn settings() -> Settings {
        let env = vec![(
            "GEMINI_BASE_URL".to_owned(),
            "https://gemini.example:8443".to_owned(),
        )];
        Config::from_sources(Vec::new(), env, &CliOverrides::default())
            .expect("config")
            .settings
    }

    fn pool(n: usize) -> KeyPool {
        KeyPool::new((0..n).map(|i| format!("AIzaSyTEST{i:029}")).collect())
    }

    fn attempts(failures: Vec<Failure>) -> Attempts {
        let s = settings();
        let mut a = Attempts::new(&s, Budget::of(&s), "m");
        for f in failures {
            a.record(f);
        }
        a
    }

    fn quota() -> Failure {
        Failure::Quota {
            retry_after: Some(Duration::from_secs(30)),
            daily: false,
        }
    }

    fn cool_all(pool: &KeyPool, rest: Duration, daily: bool) {
        for s in pool.slots().iter() {
            s.cool("m", Instant::now() + rest, daily);
        }
    }

    fn message(e: &GatewayError) -> String {
        e.to_string()
    }

    #[test]
    fn a_request_error_wins_over_every_other_failure() {
        let a = attempts(vec![
            quota(),
            Failure::Connection,
            Failure::ModelNotFound {
                message: "models/m is not found".into(),
            },
            Failure::Timeout,
        ]);
        let e = a.final_error(&pool(3));
        assert_eq!(e.status(), StatusCode::NOT_FOUND);
        let body = e.openai_body();
        assert_eq!(body["error"]["code"], "model_not_found");
        let msg = message(&e);
        assert!(msg.contains("`m`") && msg.contains("/v1/models"), "{msg}");

        let a = attempts(vec![
            Failure::Overloaded,
            Failure::Denied {
                status: 401,
                message: "Request had invalid authentication credentials.".into(),
            },
        ]);
        let e = a.final_error(&pool(3));
        assert_eq!(
            e.status(),
            StatusCode::FORBIDDEN,
            "never 401 on OpenAI routes"
        );
        assert_eq!(e.openai_body()["error"]["type"], "permission_error");
    }

    #[test]
    fn the_empty_answer_limit_comes_before_quota() {
        let mut failures = vec![quota()];
        failures.extend((0..5).map(|_| Failure::Empty {
            reason: "STOP without text".into(),
        }));
        let e = attempts(failures).final_error(&pool(3));
        assert_eq!(e.status(), StatusCode::BAD_GATEWAY);
    }

    #[tokio::test(start_paused = true)]
    async fn all_quota_with_a_short_wait_is_429_with_retry_after() {
        let p = pool(3);
        cool_all(&p, Duration::from_secs(30), false);
        let e = attempts(vec![quota(), quota(), quota()]).final_error(&p);
        assert!(
            matches!(e, GatewayError::QuotaExhausted { retry_after: Some(d), .. } if d == Duration::from_secs(30)),
            "{e:?}"
        );
        assert_eq!(e.status(), StatusCode::TOO_MANY_REQUESTS);
    }

    #[tokio::test(start_paused = true)]
    async fn all_quota_with_a_long_wait_is_503_insufficient_quota() {
        let p = pool(3);
        cool_all(&p, Duration::from_secs(5 * 3600), true);
        p.slots()[0].cool("m", Instant::now() + Duration::from_secs(7 * 3600), true);
        let e = attempts(vec![quota(), quota()]).final_error(&p);
        let GatewayError::InsufficientQuota {
            retry_after,
            retired,
            ref message,
        } = e
        else {
            panic!("long wait expected: {e:?}")
        };
        assert_eq!(
            retry_after,
            Some(Duration::from_secs(5 * 3600)),
            "the earliest"
        );
        assert!(!retired);
        assert!(
            message.contains("about 5 h") && message.contains("today's quota"),
            "{message}"
        );
        assert_eq!(e.status_in(Flavor::OpenAi), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.status_in(Flavor::Gemini), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(e.openai_body()["error"]["type"], "insufficient_quota");
    }

    #[tokio::test(start_paused = true)]
    async fn all_quota_while_a_key_is_free_is_not_a_long_wait() {
        let p = pool(3);
        cool_all(&p, Duration::from_secs(5 * 3600), true);
        p.slots()[2].reset();
        let e = attempts(vec![quota(), quota()]).final_error(&p);
        assert!(
            matches!(
                e,
                GatewayError::QuotaExhausted {
                    retry_after: None,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn all_timeouts_are_504() {
        let e = attempts(vec![Failure::Timeout, Failure::Timeout]).final_error(&pool(3));
        assert_eq!(e.status(), StatusCode::GATEWAY_TIMEOUT);
    }

    #[test]
    fn all_connection_errors_name_the_upstream_host() {
        let e = attempts(vec![Failure::Connection; 3]).final_error(&pool(3));
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        let msg = message(&e);
        assert!(msg.contains("gemini.example:8443"), "{msg}");
        assert!(
            msg.contains("HTTPS_PROXY") && msg.contains("GEMINI_BASE_URL") && msg.contains(" / "),
            "{msg}"
        );
    }

    #[test]
    fn anything_else_is_503_naming_causes_and_counts() {
        let e = attempts(vec![
            Failure::Connection,
            Failure::Timeout,
            Failure::Overloaded,
            Failure::Overloaded,
            Failure::KeyInvalid,
        ])
        .final_error(&pool(3));
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        let msg = message(&e);
        assert!(
            msg.contains("2× 服务过载 overloaded (503)")
                && msg.contains("1× 连接失败 connection error")
                && msg.contains("1× 上游超时 upstream timeout")
                && msg.contains("1× 密钥无效 invalid key"),
            "{msg}"
        );
        assert!(
            !msg.contains("HTTPS_PROXY"),
            "something reached Google: {msg}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn keys_cooling_for_more_than_a_minute_are_a_long_wait() {
        let s = settings();
        let p = pool(2);
        cool_all(&p, Duration::from_secs(45), false);
        let mut a = Attempts::new(&s, Budget::of(&s), "m");
        let e = a.next_key(&p).await.expect_err("every key cooling");
        assert!(
            matches!(e, GatewayError::QuotaExhausted { retry_after: Some(d), .. } if d == Duration::from_secs(45)),
            "{e:?}"
        );
        cool_all(&p, Duration::from_secs(61), false);
        let e = a.next_key(&p).await.expect_err("every key cooling");
        assert!(
            matches!(e, GatewayError::InsufficientQuota { retired: false, .. }),
            "{e:?}"
        );
        assert!(message(&e).contains("cooling down"), "{e}");
    }

    #[tokio::test(start_paused = true)]
    async fn every_key_retired_is_a_long_wait_until_the_next_check() {
        let s = settings();
        let p = pool(2);
        for slot in p.slots().iter() {
            slot.set_state(crate::keys::KeyState::Suspended);
        }
        let mut a = Attempts::new(&s, Budget::of(&s), "m");
        let e = a.next_key(&p).await.expect_err("no usable key");
        assert!(
            matches!(e, GatewayError::InsufficientQuota { retired: true, retry_after: Some(d), .. } if d == s.key_recheck_interval),
            "{e:?}"
        );
        assert_eq!(e.status_in(Flavor::Gemini), StatusCode::SERVICE_UNAVAILABLE);
        let e = Attempts::new(&s, Budget::of(&s), "m")
            .next_key(&pool(0))
            .await
            .expect_err("no key");
        assert!(matches!(e, GatewayError::Unavailable { .. }), "{e:?}");
    }
}
