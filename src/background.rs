//! Background jobs, each a loop that ends with the shutdown token: the start-up key check
//! and the periodic re-check of retired keys, the model list refresh, the response-cache
//! sweep, and handing statistics and key states to the store every half second.

use crate::keys;
use crate::metrics;
use crate::models;
use crate::persist;
use crate::state::AppState;

/// Background work: the start-up key check, the re-check of retired keys, the model list
/// (fetched at start-up, refreshed periodically) and the cache sweep.
pub fn spawn(state: &AppState) {
    let s = state.clone();
    state.spawn_tracked(async move {
        let snap = s.live.current();
        if !snap.skip_check_api_key && !s.keys.is_empty() {
            let report = keys::health::check_all(&s.upstream, &snap, s.keys.slots().to_vec()).await;
            crate::admin::keys::record_invalid(&s, &report.changed);
            // Only keys Google accepted count as usable; a key whose check got no verdict
            // stays in rotation but is reported as unchecked, not as active.
            tracing::info!(
                keys = s.keys.len(),
                passed = report.passed,
                refused = report.refused,
                limited = report.limited,
                unchecked = report.unchecked(),
                "start-up key check done"
            );
            if report.nothing_reached_upstream() {
                tracing::warn!("{}", keys::health::unreachable_hint(&snap));
            }
        }
        loop {
            let every = s.live.current().key_recheck_interval;
            tokio::select! {
                () = s.shutdown.cancelled() => break,
                () = tokio::time::sleep(every) => {}
            }
            let snap = s.live.current();
            // Retired keys, and (when keys are checked) keys not yet accepted by Google.
            let retired: Vec<_> = s
                .keys
                .slots()
                .iter()
                .filter(|k| {
                    k.state() != keys::KeyState::Active
                        || (!snap.skip_check_api_key && !k.verified())
                })
                .cloned()
                .collect();
            if !retired.is_empty() {
                let report = keys::health::check_all(&s.upstream, &snap, retired).await;
                crate::admin::keys::record_invalid(&s, &report.changed);
            }
            // Vertex credentials out of rotation come back once Google accepts them again.
            let retired: Vec<_> = s
                .vertex
                .pool
                .slots()
                .iter()
                .filter(|k| k.state() != keys::KeyState::Active)
                .cloned()
                .collect();
            if !retired.is_empty() {
                let caller = s.caller();
                keys::health::check_all_with(retired, |slot| {
                    let (caller, snap) = (&caller, &snap);
                    async move { crate::vertex::send::check(caller, snap, &slot).await }
                })
                .await;
            }
        }
    });
    let s = state.clone();
    state.spawn_tracked(async move {
        loop {
            tokio::select! {
                () = s.shutdown.cancelled() => break,
                () = tokio::time::sleep(std::time::Duration::from_secs(60)) => s.cache.sweep(),
            }
        }
    });
    let s = state.clone();
    state.spawn_tracked(async move {
        loop {
            tokio::select! {
                () = s.shutdown.cancelled() => break,
                () = tokio::time::sleep(std::time::Duration::from_millis(500)) => persist_now(&s),
            }
        }
    });
    let s = state.clone();
    state.spawn_tracked(async move {
        loop {
            let snap = s.live.current();
            if !s.keys.is_empty()
                && let Err(f) = s.models.refresh(&snap, &s.keys, &s.upstream).await
            {
                tracing::warn!(error = f.label(), "model list refresh failed");
            }
            tokio::select! {
                () = s.shutdown.cancelled() => break,
                () = tokio::time::sleep(models::REFRESH_EVERY) => {}
            }
        }
    });
}

/// Hands statistics and key states to the store (every half second, and at shutdown).
pub fn persist_now(state: &AppState) {
    state.stats.flush();
    update_key_gauges(state);
    if let Some(store) = &state.store {
        let mut last = state
            .persisted_keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        persist::snapshot_key_states(&state.keys, store, &mut last);
        persist::snapshot_key_states(&state.vertex.pool, store, &mut last);
    }
}

/// The `hajimi_keys{state}` gauges (one pass: each key's state is read once).
pub fn update_key_gauges(state: &AppState) {
    let now = tokio::time::Instant::now();
    let (mut active, mut cooling, mut invalid, mut suspended) = (0, 0, 0, 0);
    for slot in state.keys.slots().iter() {
        match slot.state() {
            keys::KeyState::Active if slot.cooldowns(now).is_empty() => active += 1,
            keys::KeyState::Active => cooling += 1,
            keys::KeyState::Invalid => invalid += 1,
            keys::KeyState::Suspended => suspended += 1,
        }
    }
    metrics::key_states(active, cooling, invalid, suspended);
}
