//! The dashboard's settings write path: validate on a copy, commit to the store (durable
//! before the answer, decisions §7), then publish to new requests. Also the listing of the
//! editable settings with where each value came from.

use std::sync::PoisonError;

use serde_json::{Value, json};

use crate::config::Source;
use crate::config::table;
use crate::error::GatewayError;
use crate::state::AppState;
use crate::store::Op;

/// What a settings change did, in HAJIMI's words.
pub struct Changed {
    pub message: String,
}

/// Applies one dashboard change (`/api/update-config`): validated, committed, published.
pub async fn update(state: &AppState, key: &str, value: &Value) -> Result<Changed, GatewayError> {
    let Some(entry) = table::find(key) else {
        return Err(GatewayError::bad_request(format!(
            "不支持的配置项：{key} / Unsupported setting: {key}"
        )));
    };
    if entry.secret
        && value
            .as_str()
            .is_some_and(|s| s.is_empty() || s.eq_ignore_ascii_case("true"))
    {
        return Ok(Changed {
            message: format!("配置项 {key} 未更新，值为空或为'true'"),
        });
    }
    let invalid = |e: String| GatewayError::Unprocessable {
        message: format!("参数类型错误：{e} / Invalid value: {e}"),
    };
    let _serial = state.admin_lock.lock().await;
    // Validate on a copy; the change is applied to the then-current settings below, so a
    // concurrent change (a key check recording an invalid key) is not overwritten.
    let mut next = (*state.live.current()).clone();
    entry.set(&mut next, value).map_err(invalid)?;
    if let Some(store) = &state.store {
        let persisted = entry.persisted(&next).to_string();
        let op = Op::SaveSetting {
            name: key.to_owned(),
            value: persisted,
            env_value: state.env.get(entry.env).map(str::to_owned),
        };
        store
            .commit(vec![op])
            .await
            .map_err(|e| GatewayError::Storage {
                message: format!("更新失败：{e} / Update failed: {e}"),
            })?;
    }
    state
        .live
        .update(|s| entry.set(s, value))
        .map_err(invalid)?;
    state
        .provenance
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(entry.env.to_owned(), Source::Dashboard);
    if matches!(
        entry.env,
        "GOOGLE_CREDENTIALS_JSON" | "VERTEX_EXPRESS_API_KEY"
    ) {
        for p in state.vertex.sync(&state.live.current()) {
            tracing::warn!("{}", p.message());
        }
    }
    tracing::info!(setting = key, "setting changed from the dashboard");
    Ok(Changed {
        message: format!("配置项 {key} 已更新"),
    })
}

/// Every editable setting with its value (secrets: whether set) and where it came from.
pub fn listing(state: &AppState) -> Value {
    let snap = state.live.current();
    let provenance = state
        .provenance
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let list: Vec<Value> = table::editable()
        .map(|e| {
            let source = provenance.get(e.env).copied().unwrap_or(Source::Default);
            e.listing(&snap, source)
        })
        .collect();
    json!({ "settings": list })
}

/// The settings the dashboard cannot change (set in the environment, read at start-up), each
/// with its value as `hajimi config` shows it — secrets, passwords and keys only as set or
/// unset — where it came from, its group and help.
pub fn fixed_listing(state: &AppState) -> Value {
    let snap = state.live.current();
    let provenance = state
        .provenance
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let list: Vec<Value> = table::TABLE
        .iter()
        .filter(|e| e.key.is_none())
        .map(|e| {
            let source = provenance.get(e.env).copied().unwrap_or(Source::Default);
            let hidden = e.secret
                || matches!(
                    e.mask,
                    table::Mask::Password | table::Mask::Whole | table::Mask::Keys
                );
            let shown = if hidden {
                if source == Source::Default {
                    "(unset)"
                } else {
                    "(set)"
                }
                .to_owned()
            } else {
                e.shown(&snap)
            };
            json!({
                "env": e.env, "shown": shown, "source": source, "group": e.group,
                "help": {"en": e.help_en, "zh": e.help_zh}, "restart": e.restart,
            })
        })
        .collect();
    json!({ "settings": list })
}
