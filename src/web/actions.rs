//! The forms (POST): each checked by `Act` (session + CSRF), done by the dashboard's
//! services (`crate::admin`), answered with the page and what the action did (htmx takes
//! the part it swaps). The login and the language switch need no session.

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::auth::{Act, Viewer, form_fields};
use super::i18n::{COOKIE as LANG_COOKIE, Lang};
use super::pages::{KeysQuery, keys_values, models_values, settings_values};
use super::render::{page, page_with_status};
use crate::access::session::{COOKIE, SESSION_TTL};
use crate::admin::{key_test, keys, settings};
use crate::state::AppState;

fn see_other(to: &str, cookie: Option<String>) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    if let Some(v) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

fn secure(viewer: &Viewer) -> &'static str {
    let https = viewer
        .parts
        .headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    if https { "; Secure" } else { "" }
}

/// `POST /login` (form `password`): the session cookie, then the overview; a wrong password
/// shows the form again with the error (after the throttle's delay).
pub async fn login(State(state): State<AppState>, viewer: Viewer, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let fields = form_fields(body, &parts.headers).await.unwrap_or_default();
    let password = fields
        .iter()
        .find(|(k, _)| k == "password")
        .map_or("", |(_, v)| v.as_str());
    match state
        .sessions
        .login(&viewer.snap, viewer.ip, password)
        .await
    {
        Ok(login) => {
            let cookie = format!(
                "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
                login.session,
                SESSION_TTL.as_secs(),
                secure(&viewer)
            );
            see_other("/ui/overview", Some(cookie))
        }
        Err(_) => page_with_status(
            &viewer,
            "login.html",
            json!({"error": true}),
            StatusCode::UNAUTHORIZED,
        ),
    }
}

pub async fn logout(State(state): State<AppState>, act: Act) -> Response {
    if let Some(session) = super::auth::cookie(&act.viewer.parts.headers, COOKIE) {
        state.sessions.logout(session);
    }
    let cookie = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    see_other(&super::render::home(&act.viewer.snap), Some(cookie))
}

#[derive(serde::Deserialize)]
pub struct Next {
    next: Option<String>,
}

/// `GET /lang/{zh|en}?next=/path`: remembers the language in a cookie (a year) and goes back.
pub async fn language(Path(lang): Path<String>, Query(q): Query<Next>) -> Response {
    let lang = Lang::parse(&lang).unwrap_or(Lang::Zh);
    let next = q
        .next
        .filter(|n| {
            // A path of this site only: browsers drop tabs and newlines and read `\` as `/`,
            // so `/\t/evil` would be `//evil`.
            n.starts_with('/')
                && !n.starts_with("//")
                && n.chars().all(|c| c.is_ascii_graphic() && c != '\\')
        })
        .unwrap_or_else(|| "/".to_owned());
    let cookie = format!(
        "{LANG_COOKIE}={}; SameSite=Lax; Path=/; Max-Age=31536000",
        lang.code()
    );
    see_other(&next, Some(cookie))
}

fn keys_page(state: &AppState, act: &Act, report: Value) -> Response {
    page(
        &act.viewer,
        "keys.html",
        keys_values(state, &KeysQuery::default(), report),
    )
}

fn error_text(e: &crate::error::GatewayError) -> String {
    crate::mask::scrub_keys(&e.to_string())
}

pub async fn keys_add(State(state): State<AppState>, act: Act) -> Response {
    let text = act.field("keys").unwrap_or_default().to_owned();
    let before: Vec<_> = state.keys.slots().iter().map(|s| s.id).collect();
    let report = match keys::add_pasted(&state, &text).await {
        Ok(r) => json!({"added": r}),
        Err(e) => json!({"error": error_text(&e)}),
    };
    // The new keys are tested where the page shows it (live progress); a test already
    // running is left alone (the pool's own check still verifies them).
    let fresh: Vec<_> = state
        .keys
        .slots()
        .iter()
        .filter(|s| !before.contains(&s.id))
        .cloned()
        .collect();
    if !fresh.is_empty() {
        let _ = key_test::start_with(&state, fresh);
    }
    keys_page(&state, &act, report)
}

fn selected(state: &AppState, act: &Act) -> Vec<std::sync::Arc<crate::keys::KeySlot>> {
    let ids = act.all("ids");
    state
        .credentials()
        .into_iter()
        .filter(|s| ids.contains(&s.id.to_string().as_str()))
        .collect()
}

/// Tests the selected keys, or every key when the form says `all`.
pub async fn keys_test(State(state): State<AppState>, act: Act) -> Response {
    let slots = if act.field("all").is_some() {
        state.credentials()
    } else {
        selected(&state, &act)
    };
    let report = if slots.is_empty() {
        json!({"error": act.viewer.lang.t("nothing_selected")})
    } else {
        match key_test::start_with(&state, slots) {
            Ok(()) => json!({"started": true}),
            Err(e) => json!({"error": error_text(&e)}),
        }
    };
    keys_page(&state, &act, report)
}

pub async fn keys_reset(State(state): State<AppState>, act: Act) -> Response {
    let n = keys::reset(&selected(&state, &act));
    keys_page(&state, &act, json!({"reset": n}))
}

pub async fn keys_remove(State(state): State<AppState>, act: Act) -> Response {
    // Vertex credentials come from their settings, not from the key list: only keys go.
    let victims: Vec<_> = selected(&state, &act)
        .into_iter()
        .filter(|s| matches!(s.kind(), crate::keys::Kind::ApiKey))
        .collect();
    let report = match keys::remove(&state, &victims).await {
        Ok(n) => json!({"removed": n}),
        Err(e) => json!({"error": error_text(&e)}),
    };
    keys_page(&state, &act, report)
}

pub async fn keys_clear_invalid(State(state): State<AppState>, act: Act) -> Response {
    let report = match keys::clear_invalid(&state).await {
        Ok(n) => json!({"removed": n}),
        Err(e) => json!({"error": error_text(&e)}),
    };
    keys_page(&state, &act, report)
}

/// The one page with full keys: only with the explicit confirmation, never cached, logged.
pub async fn keys_export(State(state): State<AppState>, act: Act) -> Response {
    if act.field("confirm") != Some("yes") {
        return keys_page(
            &state,
            &act,
            json!({"error": act.viewer.lang.t("export_confirm")}),
        );
    }
    let keys = keys::export_usable(&state);
    tracing::warn!(count = keys.len(), client = ?act.viewer.ip, "usable keys exported through the dashboard");
    page(
        &act.viewer,
        "export.html",
        json!({"keys": keys.join("\n"), "count": keys.len()}),
    )
}

/// `POST /ui/stats/reset`: every statistic cleared (the overview's "reset statistics").
pub async fn reset_stats(State(state): State<AppState>, act: Act) -> Response {
    keys::reset_stats(&state);
    let mut values = crate::admin::views::overview(&state);
    values["reset"] = json!(true);
    page(&act.viewer, "overview.html", values)
}

/// `POST /ui/settings` (`key`, `value`): one setting through the settings write path.
pub async fn setting(State(state): State<AppState>, act: Act) -> Response {
    let key = act.field("key").unwrap_or_default().to_owned();
    let raw = act.field("value").unwrap_or_default();
    let value = setting_value(&key, raw);
    let secret = crate::config::table::find(&key).is_some_and(|e| e.secret);
    if secret && raw.trim().is_empty() {
        // An empty secret field keeps the secret (the page never shows it).
        let note = json!({"key": key, "unchanged": true});
        return page(&act.viewer, "settings.html", settings_values(&state, note));
    }
    let note = match settings::update(&state, &key, &value).await {
        Ok(_) => json!({"key": key, "ok": true}),
        Err(e) => json!({"key": key, "error": error_text(&e)}),
    };
    page(&act.viewer, "settings.html", settings_values(&state, note))
}

/// A form's text as the setting's JSON value: lists one per line or comma separated,
/// numbers and booleans as such (the settings table validates and bounds them).
fn setting_value(key: &str, raw: &str) -> Value {
    let kind = crate::config::table::find(key).map_or("text", |e| e.kind_name());
    let raw = raw.trim();
    match kind {
        "list" => Value::Array(
            raw.split(['\n', ','])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_owned()))
                .collect(),
        ),
        "bool" => match raw {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            other => Value::String(other.to_owned()),
        },
        "int" | "seconds" | "bytes" => serde_json::from_str::<serde_json::Number>(raw)
            .map_or_else(|_| Value::String(raw.to_owned()), Value::Number),
        _ => Value::String(raw.to_owned()),
    }
}

/// `POST /ui/models`: the whitelist, blacklist and extra models (one setting at a time, in
/// that order; the first error stops).
pub async fn models(State(state): State<AppState>, act: Act) -> Response {
    let mut note = json!({"ok": true});
    for key in ["whitelist_models", "blocked_models", "extra_models"] {
        let Some(raw) = act.field(key) else { continue };
        if let Err(e) = settings::update(&state, key, &setting_value(key, raw)).await {
            note = json!({"error": error_text(&e)});
            break;
        }
    }
    page(&act.viewer, "models.html", models_values(&state, note))
}

#[cfg(test)]
mod tests {
    use super::setting_value;
    use serde_json::json;

    #[test]
    fn form_text_becomes_the_settings_json_value() {
        assert_eq!(
            setting_value("blocked_models", " a\nb, c ,,\n"),
            json!(["a", "b", "c"]),
            "lists: one per line or comma separated"
        );
        assert_eq!(setting_value("blocked_models", ""), json!([]));
        assert_eq!(setting_value("fake_streaming", "true"), json!(true));
        assert_eq!(setting_value("max_retry_num", " 7 "), json!(7));
        assert_eq!(setting_value("fake_streaming_interval", "0.5"), json!(0.5));
        assert_eq!(
            setting_value("max_retry_num", "seven"),
            json!("seven"),
            "left for the settings table to refuse"
        );
        assert_eq!(setting_value("search_prompt", " hi "), json!("hi"));
    }
}
