//! Key checks: at start-up every key is checked in the background with bounded concurrency
//! (start-up never waits), and invalid or suspended keys are checked again on a schedule
//! (`KEY_RECHECK_INTERVAL`). Only a refusal that belongs to the key (an invalid or expired key,
//! a suspended or leaked one, the API or billing disabled: see upstream/classify.rs) takes a
//! key out of rotation; an overload, a quota error, another 401/403, a timeout or a network
//! error leaves it active (CONTRACT §3: a check that fails for any other reason changes nothing).

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
    let url = crate::upstream::endpoint::model_list(
        &settings.gemini_base_url,
        crate::upstream::endpoint::Version::V1beta,
        &[("pageSize", "1")],
    )
    .map_err(|_| Failure::Connection)?;
    let idle = settings.upstream_timeout.min(Duration::from_secs(20));
    let response = upstream.get(&url, key.secret(), idle).await?;
    crate::upstream::read_body(response, idle, 1024 * 1024)
        .await
        .map(|_| ())
}

/// What a check result means for the key: retire it, restore it, or leave it be.
pub fn judge(key: &KeySlot, result: &Result<(), Failure>) -> Option<KeyState> {
    match result {
        Ok(()) if key.state() != KeyState::Active => {
            key.reset();
            tracing::info!(key = %key.id, "key passed its check and is back in rotation");
            Some(KeyState::Active)
        }
        Ok(()) => None,
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

/// Checks keys with bounded concurrency; returns how many changed state, by new state.
pub async fn check_all(
    upstream: &Upstream,
    settings: &Settings,
    keys: Vec<Arc<KeySlot>>,
) -> Vec<(Arc<KeySlot>, KeyState)> {
    futures_util::stream::iter(keys)
        .map(|key| async move {
            let result = check(upstream, settings, &key).await;
            judge(&key, &result).map(|state| (key, state))
        })
        .buffer_unordered(CHECK_CONCURRENCY)
        .filter_map(std::future::ready)
        .collect()
        .await
}
