//! Attempts across keys for one request (CONTRACT §3): each usable key at most once before
//! any key is tried again, keys retired during the request never again, at most
//! `MAX_RETRY_NUM` attempts and `MAX_EMPTY_RESPONSES` empty answers, all before
//! `REQUEST_DEADLINE`; short cooldowns are waited out. When every attempt failed, the
//! client's status is chosen from the failures, first match wins.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::Settings;
use crate::error::GatewayError;
use crate::keys::{KeyPool, KeySlot, Pick};
use crate::mask::KeyId;
use crate::upstream::classify::Failure;

/// The longest cooldown a request waits out instead of answering 429 (CONTRACT §3).
pub const MAX_COOLDOWN_WAIT: Duration = Duration::from_secs(10);

pub struct Attempts {
    model: String,
    pub deadline: Instant,
    max_attempts: u32,
    max_empty: u32,
    tried: HashSet<KeyId>,
    failures: Vec<Failure>,
    pub attempts: u32,
    pub empty: u32,
    pub last_key: Option<KeyId>,
}

impl Attempts {
    pub fn new(settings: &Settings, model: &str) -> Self {
        Self {
            model: model.to_owned(),
            deadline: Instant::now() + settings.request_deadline,
            max_attempts: settings.max_retry_num.max(1),
            max_empty: settings.max_empty_responses.max(1),
            tried: HashSet::new(),
            failures: Vec::new(),
            attempts: 0,
            empty: 0,
            last_key: None,
        }
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    /// The key for the next attempt, or the error that ends the request.
    pub async fn next_key(&mut self, pool: &KeyPool) -> Result<Arc<KeySlot>, GatewayError> {
        if self.attempts >= self.max_attempts {
            return Err(self.final_error(pool));
        }
        loop {
            let now = Instant::now();
            match pool.pick(&self.model, &self.tried, now) {
                Pick::Key(key) => {
                    self.tried.insert(key.id);
                    self.attempts += 1;
                    self.last_key = Some(key.id);
                    return Ok(key);
                }
                // Every usable key had its turn: a new round may reuse them.
                Pick::AllTried => self.tried.clear(),
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

    /// Records a failed attempt and settles the key.
    pub fn fail(&mut self, key: &KeySlot, failure: Failure) {
        key.settle(&failure, &self.model, Instant::now());
        if matches!(failure, Failure::Empty { .. }) {
            self.empty += 1;
        }
        tracing::debug!(key = %key.id, failure = failure.kind(), attempt = self.attempts, "upstream attempt failed");
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
                    "模型连续 {n} 次返回空响应，请修改输入提示词 / The model returned empty answers {n} times in a row ({r}); try changing the prompt",
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

/// Runs attempts across keys until one succeeds (CONTRACT §3). `attempt` makes one upstream
/// attempt with a key; `fix` may correct the request after a known, fixable refusal and asks
/// for an immediate retry by returning true. Request errors end the loop at once; other
/// failures settle the key and move on. The key that succeeded is returned with the value.
pub async fn run<T, Fut>(
    pool: &KeyPool,
    settings: &Settings,
    model: &str,
    outcome: &mut crate::telemetry::Outcome,
    mut attempt: impl FnMut(Arc<KeySlot>) -> Fut,
    mut fix: impl FnMut(&Failure) -> bool,
) -> Result<(T, Arc<KeySlot>), GatewayError>
where
    Fut: Future<Output = Result<T, Failure>>,
{
    let mut attempts = Attempts::new(settings, model);
    loop {
        if attempts.empty_exhausted() {
            return Err(attempts.final_error(pool));
        }
        let key = tokio::time::timeout_at(attempts.deadline, attempts.next_key(pool))
            .await
            .map_err(|_| attempts.deadline_error())??;
        outcome.key = Some(key.id);
        outcome.attempts = attempts.attempts;
        match tokio::time::timeout_at(attempts.deadline, attempt(Arc::clone(&key))).await {
            Err(_) => return Err(attempts.deadline_error()),
            Ok(Ok(value)) => {
                key.record_success();
                return Ok((value, key));
            }
            Ok(Err(failure)) => {
                if fix(&failure) {
                    continue;
                }
                if failure.is_request_error()
                    || matches!(failure, Failure::PenaltyUnsupported { .. })
                {
                    return Err(request_error(&failure));
                }
                attempts.fail(&key, failure);
            }
        }
    }
}
