//! Key management for the dashboard: add (from any pasted text), remove (leaving tombstones
//! for keys that came from the environment, decisions §1), reset, clear the retired ones,
//! export the usable ones, and keeping HAJIMI's `INVALID_API_KEYS` record in step with key
//! checks. Every change is durable before it is applied (decisions §7).

use std::sync::Arc;

use serde_json::Value;

use crate::config::table;
use crate::error::GatewayError;
use crate::keys::{KeySlot, KeyState};
use crate::state::AppState;
use crate::store::Op;

fn storage_failed(e: impl std::fmt::Display) -> GatewayError {
    GatewayError::Storage {
        message: format!("更新失败：{e} / Update failed: {e}"),
    }
}

/// Adds every key found in `text` (any separators); returns how many were new.
pub async fn add(state: &AppState, text: &str) -> Result<usize, GatewayError> {
    let keys = crate::config::keys::extract_keys(text);
    if keys.is_empty() {
        return Err(GatewayError::bad_request(
            "未提供有效的API密钥 / No valid API key given",
        ));
    }
    let _serial = state.admin_lock.lock().await;
    if let Some(store) = &state.store {
        let ops = keys
            .iter()
            .map(|k| Op::AddKey { secret: k.clone() })
            .collect();
        store.commit(ops).await.map_err(storage_failed)?;
    }
    let added = state.keys.add(&keys);
    tracing::info!(added, "keys added from the dashboard");
    if added > 0 && !state.live.current().skip_check_api_key {
        // New keys count as usable once they pass a check, as at start-up.
        let fresh: Vec<_> = state
            .keys
            .slots()
            .iter()
            .filter(|s| !s.verified() && keys.iter().any(|k| k == s.secret()))
            .cloned()
            .collect();
        let s = state.clone();
        state.spawn_tracked(async move {
            let snap = s.live.current();
            let report = crate::keys::health::check_all(&s.upstream, &snap, fresh).await;
            record_invalid(&s, &report.changed);
        });
    }
    if state.models.current().is_none_or(|m| m.is_empty()) {
        let s = state.clone();
        state.spawn_tracked(async move {
            let snap = s.live.current();
            let _ = s.models.refresh(&snap, &s.keys, &s.upstream).await;
        });
    }
    Ok(added)
}

/// What a paste held, every key masked: the keys added, those already in the pool (or
/// repeated in the paste), and the entries that look like a broken key.
#[derive(Debug, Default, serde::Serialize)]
pub struct PasteReport {
    pub new: Vec<String>,
    pub duplicate: Vec<String>,
    pub rejected: Vec<String>,
}

/// Adds the keys found in pasted text (any separators) and reports, masked, which were new,
/// duplicates, or not key-shaped.
pub async fn add_pasted(state: &AppState, text: &str) -> Result<PasteReport, GatewayError> {
    let found = crate::config::keys::extract_keys(text);
    let mut report = PasteReport {
        rejected: crate::config::keys::malformed(text)
            .into_iter()
            .map(|(_, token, _)| crate::mask::mask(&token))
            .collect(),
        ..PasteReport::default()
    };
    let slots = state.keys.slots();
    let mut seen = std::collections::HashSet::new();
    for key in &found {
        let known = slots.iter().any(|s| s.secret() == key.as_str());
        if known || !seen.insert(key.as_str()) {
            report.duplicate.push(crate::mask::mask(key));
        } else {
            report.new.push(crate::mask::mask(key));
        }
    }
    if !found.is_empty() {
        add(state, text).await?;
    }
    Ok(report)
}

/// Keys named by id (`"ids": [...]`), or every key when none are named.
pub fn chosen(state: &AppState, body: &Value) -> Vec<Arc<KeySlot>> {
    pick(&state.keys.slots(), body)
}

/// Keys and Vertex credentials named by id, or all of them when none are named (a reset puts
/// a service account back into rotation once its project is fixed).
pub fn chosen_with_vertex(state: &AppState, body: &Value) -> Vec<Arc<KeySlot>> {
    let mut out = chosen(state, body);
    out.extend(pick(&state.vertex.pool.slots(), body));
    out
}

fn pick(slots: &[Arc<KeySlot>], body: &Value) -> Vec<Arc<KeySlot>> {
    let ids: Vec<&str> = body
        .get("ids")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    slots
        .iter()
        .filter(|s| ids.is_empty() || ids.contains(&s.id.to_string().as_str()))
        .cloned()
        .collect()
}

/// Removes keys; a key from the environment leaves a tombstone that yields when the
/// variable holding it changes. Returns how many were removed.
pub async fn remove(state: &AppState, victims: &[Arc<KeySlot>]) -> Result<usize, GatewayError> {
    let _serial = state.admin_lock.lock().await;
    let secrets: Vec<String> = victims.iter().map(|s| s.secret().to_owned()).collect();
    if let Some(store) = &state.store {
        let ops = secrets
            .iter()
            .map(|secret| {
                let var = state
                    .key_vars
                    .iter()
                    .find(|(k, _)| k == secret)
                    .map(|(_, v)| v.clone());
                Op::RemoveKey {
                    secret: secret.clone(),
                    env_fingerprint: var.map(|v| state.env.fingerprint(&v)),
                }
            })
            .collect();
        store.commit(ops).await.map_err(storage_failed)?;
    }
    Ok(state.keys.remove(&secrets))
}

/// Puts keys back into service (active, no cooldowns).
pub fn reset(chosen: &[Arc<KeySlot>]) -> usize {
    for slot in chosen {
        slot.reset();
    }
    tracing::info!(keys = chosen.len(), "keys reset from the dashboard");
    chosen.len()
}

/// Removes every invalid or suspended key and clears HAJIMI's record; returns how many.
pub async fn clear_invalid(state: &AppState) -> Result<usize, GatewayError> {
    let retired: Vec<Arc<KeySlot>> = state
        .keys
        .slots()
        .iter()
        .filter(|s| s.state() != KeyState::Active)
        .cloned()
        .collect();
    let recorded = state.live.current().invalid_api_keys.len();
    if retired.is_empty() && recorded == 0 {
        return Ok(0);
    }
    let removed = remove(state, &retired)
        .await
        .map_err(|e| GatewayError::Storage {
            message: format!("清除失败：{e} / Failed: {e}"),
        })?;
    let next = state.live.update(|s| {
        s.invalid_api_keys.clear();
        Ok::<(), std::convert::Infallible>(())
    });
    if let (Some(store), Ok(next)) = (&state.store, next) {
        let value = table::find("invalid_api_keys")
            .map_or(Value::Null, |e| e.persisted(&next))
            .to_string();
        let _ = store
            .commit(vec![Op::SaveSetting {
                name: "invalid_api_keys".into(),
                value,
                env_value: state.env.get("INVALID_API_KEYS").map(str::to_owned),
            }])
            .await;
    }
    Ok(removed.max(recorded))
}

/// The usable keys, in full: the one answer that carries keys (the caller logs it).
pub fn export_usable(state: &AppState) -> Vec<String> {
    state
        .keys
        .slots()
        .iter()
        .filter(|s| s.state() == KeyState::Active)
        .map(|s| s.secret().to_owned())
        .collect()
}

/// Clears every statistic and today's per-key call counts (HAJIMI's "重置次数").
pub fn reset_stats(state: &AppState) {
    state.stats.reset();
    for slot in state.credentials() {
        slot.set_calls_today(0);
    }
    tracing::info!("statistics reset from the dashboard");
}

/// Keeps HAJIMI's `INVALID_API_KEYS` record in step with key checks.
pub fn record_invalid(state: &AppState, changed: &[(Arc<KeySlot>, KeyState)]) {
    if changed.is_empty() {
        return;
    }
    let _ = state.live.update(|s| {
        for (key, now) in changed {
            let secret = key.secret().to_owned();
            s.invalid_api_keys.retain(|k| *k != secret);
            if *now != KeyState::Active {
                s.invalid_api_keys.push(secret);
            }
        }
        Ok::<(), std::convert::Infallible>(())
    });
}
