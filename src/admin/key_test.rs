//! The dashboard's key test (`/api/test-api-keys`): every credential (AI Studio keys, then
//! Vertex service accounts and express keys) checked in the background with bounded
//! concurrency, its progress readable at any time in HAJIMI's shape.

use std::sync::{Arc, PoisonError};

use futures_util::StreamExt;

use crate::error::GatewayError;
pub use crate::keys::health::KeyTest;
use crate::keys::{KeySlot, KeyState, Kind};
use crate::state::AppState;

/// Starts a test of every credential; refused while one is running.
pub fn start(state: &AppState) -> Result<(), GatewayError> {
    start_with(state, state.credentials())
}

/// Starts a test of the given keys; refused while a test is running.
pub fn start_with(state: &AppState, slots: Vec<Arc<KeySlot>>) -> Result<(), GatewayError> {
    {
        let mut progress = state
            .key_test
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if progress.is_running {
            return Err(GatewayError::Conflict {
                message: "已有API密钥检测正在进行中 / A key test is already running".to_owned(),
            });
        }
        *progress = KeyTest {
            is_running: true,
            total: slots.len(),
            ..KeyTest::default()
        };
    }
    let s = state.clone();
    state.spawn_tracked(async move {
        let snap = s.live.current();
        let stream = futures_util::stream::iter(slots).map(|slot| {
            let s = s.clone();
            let snap = Arc::clone(&snap);
            async move {
                let result = match slot.kind() {
                    Kind::ApiKey => crate::keys::health::check(&s.upstream, &snap, &slot).await,
                    _ => crate::vertex::send::check(&s.caller(), &snap, &slot).await,
                };
                let change = crate::keys::health::judge(&slot, &result);
                (slot, change)
            }
        });
        let mut stream = stream.buffer_unordered(crate::keys::health::CHECK_CONCURRENCY);
        let mut changed = Vec::new();
        while let Some((slot, change)) = stream.next().await {
            let mut p = s.key_test.lock().unwrap_or_else(PoisonError::into_inner);
            p.completed += 1;
            if slot.state() == KeyState::Active {
                p.valid += 1;
            } else {
                p.invalid += 1;
            }
            // HAJIMI's invalid-key record holds AI Studio keys only.
            if let Some(state) = change
                && matches!(slot.kind(), Kind::ApiKey)
            {
                changed.push((slot, state));
            }
        }
        super::keys::record_invalid(&s, &changed);
        let mut p = s.key_test.lock().unwrap_or_else(PoisonError::into_inner);
        p.is_running = false;
        p.is_completed = true;
    });
    Ok(())
}

pub fn progress(state: &AppState) -> KeyTest {
    state
        .key_test
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}
