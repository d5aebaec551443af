//! Between the store and the running gateway: opening the store where decisions §1 says,
//! importing HAJIMI's `settings.json` once, putting saved settings and keys on top of the
//! environment (a saved value yields when the environment value it overrode changes; a
//! removed key's tombstone yields when the variable holding it changes), restoring key
//! states, and queueing key-state changes as they happen.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use serde_json::Value;
use tokio::time::Instant;

use crate::config::table;
use crate::config::{Config, Source};
use crate::keys::{KeyPool, KeyState};
use crate::store::{Loaded, Op, OpenError, Store};

/// The store (if storage is on and the directory works), what it held, and a reader.
pub type Opened = (Option<Arc<Store>>, Loaded, Option<rusqlite::Connection>);

/// Opens the store per decisions §1: a default directory that cannot be written means memory
/// only (with a warning); an explicit `STORAGE_DIR` that cannot be written is an error.
pub fn open(config: &Config) -> Result<Opened, OpenError> {
    let s = &config.settings;
    if !s.enable_storage {
        tracing::info!("ENABLE_STORAGE=false: settings, keys and statistics live in memory only");
        return Ok((None, Loaded::default(), None));
    }
    match Store::open(&s.storage_dir.path) {
        Ok((store, loaded, reader)) => {
            tracing::info!(path = %store.path().display(), "store opened");
            Ok((Some(Arc::new(store)), loaded, Some(reader)))
        }
        Err(e) if !s.storage_dir.explicit => {
            tracing::warn!("{e}; 数据仅保存在内存中 / running in memory only");
            Ok((None, Loaded::default(), None))
        }
        Err(e) => Err(e),
    }
}

/// Puts saved settings and keys on top of the environment. Returns the writes that clean up
/// saved values and tombstones the environment has since overridden.
pub fn apply_saved(config: &mut Config, loaded: &Loaded) -> Vec<Op> {
    let mut cleanup = Vec::new();
    for (name, value, env_value) in &loaded.settings {
        let Some(entry) = table::find(name) else {
            continue;
        };
        let current = config.env.get(entry.env).map(str::to_owned);
        if current != *env_value {
            tracing::info!(
                setting = name,
                "the environment changed since this setting was saved; the environment wins"
            );
            cleanup.push(Op::DeleteSetting { name: name.clone() });
            continue;
        }
        let parsed: Value = serde_json::from_str(value).unwrap_or(Value::Null);
        match entry.set(&mut config.settings, &parsed) {
            Ok(()) => {
                config
                    .provenance
                    .insert(entry.env.to_owned(), Source::Dashboard);
            }
            Err(e) => {
                tracing::warn!(setting = name, error = %e, "ignoring a saved value that is no longer valid");
            }
        }
    }
    // Keys: the union of the environment's and the ones added through the API…
    for key in &loaded.added_keys {
        if !config.keys.contains(key) {
            config.keys.push(key.clone());
        }
    }
    // …minus the removed ones whose variable has not changed since.
    for (secret, fingerprint) in &loaded.tombstones {
        let var = config
            .key_vars
            .iter()
            .find(|(k, _)| k == secret)
            .map(|(_, v)| v.clone());
        let still = match (&var, fingerprint) {
            (Some(var), Some(fp)) => config.env.fingerprint(var) == *fp,
            _ => false,
        };
        if still {
            config.keys.retain(|k| k != secret);
        } else {
            cleanup.push(Op::DropTombstone {
                secret: secret.clone(),
            });
        }
    }
    cleanup
}

/// Imports HAJIMI's `settings.json` from the storage directory, once (HAJIMI semantics: its
/// saved values override the environment, and here they are saved values like any other).
pub fn import_hajimi(config: &mut Config, dir: &Path, loaded: &Loaded) -> Vec<Op> {
    if loaded
        .meta
        .iter()
        .any(|(n, _)| n == "hajimi_settings_imported")
    {
        return Vec::new();
    }
    let file = dir.join("settings.json");
    let Ok(text) = std::fs::read_to_string(&file) else {
        return Vec::new();
    };
    let Ok(Value::Object(saved)) = serde_json::from_str::<Value>(&text) else {
        tracing::warn!(path = %file.display(), "HAJIMI settings.json is not a JSON object; not imported");
        return Vec::new();
    };
    let mut ops = Vec::new();
    let mut imported = 0;
    let mut values: Vec<(&str, Value)> = Vec::new();
    for entry in table::editable() {
        if let (Some(v), Some(key)) = (saved.get(entry.env), entry.key) {
            values.push((key, v.clone()));
        }
    }
    if let Some(Value::Object(search)) = saved.get("search") {
        for (k, name) in [
            ("search_mode", "search_mode"),
            ("search_prompt", "search_prompt"),
        ] {
            if let Some(v) = search.get(k) {
                values.push((name, v.clone()));
            }
        }
    }
    for (key, value) in values {
        let Some(entry) = table::find(key) else {
            continue;
        };
        // HAJIMI persisted empty credentials as "" or "''": nothing to import then.
        if value
            .as_str()
            .is_some_and(|s| s.trim().is_empty() || s == "''" || s == "\"\"")
            && entry.secret
        {
            continue;
        }
        if entry.set(&mut config.settings, &value).is_ok() {
            imported += 1;
            config
                .provenance
                .insert(entry.env.to_owned(), Source::Dashboard);
            ops.push(Op::SaveSetting {
                name: key.to_owned(),
                value: entry.persisted(&config.settings).to_string(),
                env_value: config.env.get(entry.env).map(str::to_owned),
            });
        }
    }
    if let Some(keys) = saved.get("GEMINI_API_KEYS").and_then(Value::as_str) {
        for key in crate::config::keys::extract_keys(keys) {
            if !config.keys.contains(&key) {
                config.keys.push(key.clone());
            }
            ops.push(Op::AddKey { secret: key });
            imported += 1;
        }
    }
    ops.push(Op::Meta {
        name: "hajimi_settings_imported".into(),
        value: jiff::Timestamp::now().to_string(),
    });
    tracing::info!(path = %file.display(), values = imported, "imported HAJIMI settings.json");
    ops
}

/// The persisted form of a key's state: state name and cooldowns as unix times.
fn key_record(slot: &crate::keys::KeySlot, now: Instant, now_unix: i64) -> (String, String) {
    let cooldowns: Vec<Value> = slot
        .cooldowns(now)
        .into_iter()
        .map(|c| {
            let left = i64::try_from(c.until.saturating_duration_since(now).as_secs()).unwrap_or(0);
            serde_json::json!({"model": c.model, "until": now_unix + left, "daily": c.daily})
        })
        .collect();
    (
        slot.state().as_str().to_owned(),
        Value::Array(cooldowns).to_string(),
    )
}

/// Restores saved key states and cooldowns onto the pool.
pub fn restore_key_states(pool: &KeyPool, loaded: &Loaded) {
    let now = Instant::now();
    let now_unix = jiff::Timestamp::now().as_second();
    for slot in pool.slots().iter() {
        let id = slot.id.to_string();
        let Some((_, state, cooldowns)) = loaded.key_states.iter().find(|(k, _, _)| *k == id)
        else {
            continue;
        };
        match state.as_str() {
            "invalid" => slot.set_state(KeyState::Invalid),
            "suspended" => slot.set_state(KeyState::Suspended),
            _ => {}
        }
        let list: Vec<Value> = serde_json::from_str(cooldowns).unwrap_or_default();
        for c in list {
            let (Some(model), Some(until)) = (c["model"].as_str(), c["until"].as_i64()) else {
                continue;
            };
            let left = until - now_unix;
            if left > 0 {
                slot.cool(
                    model,
                    now + std::time::Duration::from_secs(left.unsigned_abs()),
                    c["daily"].as_bool().unwrap_or(false),
                );
            }
        }
    }
}

/// Queues the state of every key whose state or cooldowns changed since the last call.
pub fn snapshot_key_states(
    pool: &KeyPool,
    store: &Store,
    last: &mut HashMap<String, (String, String)>,
) {
    let now = Instant::now();
    let now_unix = jiff::Timestamp::now().as_second();
    for slot in pool.slots().iter() {
        let id = slot.id.to_string();
        let (state, cooldowns) = key_record(slot, now, now_unix);
        // Cooldown end times recomputed from the monotonic clock may drift by a second.
        let changed = last
            .get(&id)
            .is_none_or(|(s, c)| *s != state || !same_cooldowns(c, &cooldowns));
        if changed {
            store.queue(Op::KeyState {
                key_id: id.clone(),
                state: state.clone(),
                cooldowns: cooldowns.clone(),
            });
            last.insert(id, (state, cooldowns));
        }
    }
}

fn same_cooldowns(a: &str, b: &str) -> bool {
    let parse = |s: &str| -> Vec<(String, i64, bool)> {
        serde_json::from_str::<Vec<Value>>(s)
            .unwrap_or_default()
            .into_iter()
            .map(|c| {
                (
                    c["model"].as_str().unwrap_or_default().to_owned(),
                    c["until"].as_i64().unwrap_or(0),
                    c["daily"].as_bool().unwrap_or(false),
                )
            })
            .collect()
    };
    let (x, y) = (parse(a), parse(b));
    x.len() == y.len()
        && x.iter()
            .zip(&y)
            .all(|(p, q)| p.0 == q.0 && p.2 == q.2 && (p.1 - q.1).abs() <= 2)
}
