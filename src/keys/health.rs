//! Key checks: at start-up every key is checked in the background with bounded concurrency
//! (start-up never waits), and invalid or suspended keys are checked again on a schedule
//! (`KEY_RECHECK_INTERVAL`). Only a refusal that belongs to the key (an invalid or expired key,
//! a suspended or leaked one, the API or billing disabled: see upstream/classify.rs) takes a
//! key out of rotation; an overload, a quota error, another 401/403, a timeout or a network
//! error leaves it active (decisions §3: a check that fails for any other reason changes nothing).
//! A key that passes is marked verified (HAJIMI's "usable key"); one whose check got no
//! verdict stays as it is but is not counted as usable, and when no check reached Google at
//! all the caller says so, naming the upstream host ([`unreachable_hint`]).

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;

use crate::config::Settings;
use crate::keys::{KeySlot, KeyState};
use crate::upstream::Upstream;
use crate::upstream::classify::Failure;

/// Keys checked at once.
pub const CHECK_CONCURRENCY: usize = 8;

/// One check: the cheapest authenticated call, listing a single model.
pub async fn check(upstream: &Upstream, settings: &Settings, key: &KeySlot) -> Result<(), Failure> {
    let target = crate::upstream::Target::ai_studio(settings);
    let url = target
        .model_list(
            crate::upstream::endpoint::Version::V1beta,
            &[("pageSize", "1")],
        )
        .map_err(|_| Failure::Connection)?;
    let idle = settings.upstream_timeout.min(Duration::from_secs(20));
    let auth = target.authorize(key.secret()).await?;
    let response = upstream.get(&url, &auth, idle).await?;
    crate::upstream::read_body(response, idle, 1024 * 1024)
        .await
        .map(|_| ())
}

/// What a check result means for the key: retire it, restore it, or leave it be.
pub fn judge(key: &KeySlot, result: &Result<(), Failure>) -> Option<KeyState> {
    if let Err(failure) = result {
        key.note_failure(failure);
    }
    match result {
        Ok(()) if key.state() != KeyState::Active => {
            key.mark_verified();
            key.reset();
            tracing::info!(key = %key.id, "key passed its check and is back in rotation");
            Some(KeyState::Active)
        }
        Ok(()) => {
            key.mark_verified();
            None
        }
        Err(Failure::KeyInvalid) => {
            key.set_state(KeyState::Invalid);
            tracing::warn!(key = %key.id, "key check: invalid (API_KEY_INVALID)");
            Some(KeyState::Invalid)
        }
        Err(Failure::KeySuspended) => {
            key.set_state(KeyState::Suspended);
            tracing::warn!(key = %key.id, "key check: suspended or denied (403)");
            Some(KeyState::Suspended)
        }
        Err(other) => {
            tracing::debug!(key = %key.id, failure = other.kind(), "key check inconclusive; key left as it is");
            None
        }
    }
}

/// What one check says about the key, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Google accepted the key.
    Passed,
    /// Invalid or suspended: out of rotation.
    Refused,
    /// Google knows the key but it cannot serve now (quota exhausted, no access).
    Limited,
    /// Google answered without a verdict on the key (overload, 5xx, an odd answer).
    Inconclusive,
    /// No answer from the upstream at all (connection error, timeout).
    Unreachable,
}

impl Verdict {
    pub fn of(result: &Result<(), Failure>) -> Self {
        match result {
            Ok(()) => Self::Passed,
            Err(Failure::KeyInvalid | Failure::KeySuspended) => Self::Refused,
            Err(Failure::Quota { .. } | Failure::KeyNoAccess) => Self::Limited,
            Err(Failure::Connection | Failure::Timeout) => Self::Unreachable,
            Err(_) => Self::Inconclusive,
        }
    }
}

/// The outcome of checking a set of keys.
#[derive(Debug, Default)]
pub struct Report {
    /// Keys whose state changed, with the new state.
    pub changed: Vec<(Arc<KeySlot>, KeyState)>,
    pub passed: usize,
    pub refused: usize,
    pub limited: usize,
    pub inconclusive: usize,
    pub unreachable: usize,
}

impl Report {
    /// Keys whose check gave no verdict: left as they were, not counted as usable.
    pub fn unchecked(&self) -> usize {
        self.inconclusive + self.unreachable
    }

    /// Keys were checked and not one check reached the upstream.
    pub fn nothing_reached_upstream(&self) -> bool {
        self.unreachable > 0 && self.passed + self.refused + self.limited + self.inconclusive == 0
    }
}

/// Checks AI Studio keys with bounded concurrency.
pub async fn check_all(
    upstream: &Upstream,
    settings: &Settings,
    keys: Vec<Arc<KeySlot>>,
) -> Report {
    check_all_with(
        keys,
        |key| async move { check(upstream, settings, &key).await },
    )
    .await
}

/// Checks credentials of any kind with `check`, bounded concurrency, judged alike.
pub async fn check_all_with<F, Fut>(keys: Vec<Arc<KeySlot>>, check: F) -> Report
where
    F: Fn(Arc<KeySlot>) -> Fut,
    Fut: std::future::Future<Output = Result<(), Failure>>,
{
    let check = &check;
    let mut results = futures_util::stream::iter(keys)
        .map(|key| async move {
            let result = check(Arc::clone(&key)).await;
            let change = judge(&key, &result);
            (key, Verdict::of(&result), change)
        })
        .buffer_unordered(CHECK_CONCURRENCY);
    let mut report = Report::default();
    while let Some((key, verdict, change)) = results.next().await {
        match verdict {
            Verdict::Passed => report.passed += 1,
            Verdict::Refused => report.refused += 1,
            Verdict::Limited => report.limited += 1,
            Verdict::Inconclusive => report.inconclusive += 1,
            Verdict::Unreachable => report.unreachable += 1,
        }
        if let Some(state) = change {
            report.changed.push((key, state));
        }
    }
    report
}

/// The bilingual sentence for "no call reached the upstream": names the host and the two
/// settings that fix it (a proxy, or a relay).
pub fn unreachable_hint(settings: &Settings) -> String {
    let (zh, en) = unreachable_parts(settings);
    format!("{zh} / {en}")
}

/// [`unreachable_hint`]'s Chinese and English halves, for longer messages.
pub fn unreachable_parts(settings: &Settings) -> (String, String) {
    let host = crate::config::base_url_host(&settings.gemini_base_url);
    (
        format!(
            "无法连接上游 {host}（连接失败或超时），请检查网络，或设置 HTTPS_PROXY 使用代理，或设置 GEMINI_BASE_URL 使用中转地址"
        ),
        format!(
            "cannot reach the upstream {host} (connection failed or timed out): check the network, or set HTTPS_PROXY to use a proxy, or GEMINI_BASE_URL to use a relay"
        ),
    )
}

/// Progress of the key test, HAJIMI's field names.
#[derive(Default, Clone, serde::Serialize)]
pub struct KeyTest {
    pub is_running: bool,
    pub completed: usize,
    pub total: usize,
    pub valid: usize,
    pub invalid: usize,
    pub is_completed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_answers_about_the_key_are_verdicts() {
        assert_eq!(Verdict::of(&Ok(())), Verdict::Passed);
        assert_eq!(Verdict::of(&Err(Failure::KeyInvalid)), Verdict::Refused);
        assert_eq!(
            Verdict::of(&Err(Failure::Quota {
                retry_after: None,
                daily: true
            })),
            Verdict::Limited
        );
        assert_eq!(
            Verdict::of(&Err(Failure::Overloaded)),
            Verdict::Inconclusive
        );
        assert_eq!(Verdict::of(&Err(Failure::Connection)), Verdict::Unreachable);
        assert_eq!(Verdict::of(&Err(Failure::Timeout)), Verdict::Unreachable);
    }

    #[test]
    fn nothing_reached_the_upstream_only_when_every_check_was_unreachable() {
        let all_down = Report {
            unreachable: 3,
            ..Report::default()
        };
        assert!(all_down.nothing_reached_upstream());
        assert_eq!(all_down.unchecked(), 3);
        let one_answered = Report {
            unreachable: 2,
            inconclusive: 1,
            ..Report::default()
        };
        assert!(!one_answered.nothing_reached_upstream());
        assert!(
            !Report::default().nothing_reached_upstream(),
            "no key checked"
        );
    }
}
