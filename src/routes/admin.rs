//! The dashboard's JSON API under `/api/` (decisions §2): HAJIMI's endpoints with HAJIMI's
//! field names and messages, plus what the new dashboard needs (keys with states and
//! cooldowns, usage, the request log, key management, browser login). Nothing is readable
//! anonymously; only the key export carries full keys. The work is done by `crate::admin`.

use std::marker::PhantomData;
use std::net::IpAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, header, request::Parts};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::access::session::{COOKIE, Presented, SESSION_TTL};
use crate::admin::{key_test, keys, settings, views};
use crate::config::Settings;
use crate::error::{Flavor, Flavored, GatewayError};
use crate::state::AppState;

/// Dashboard request bodies are small.
const BODY_LIMIT: usize = 4 * 1024 * 1024;

/// A dashboard call that only reads.
pub struct Read;
/// A dashboard call that changes something (a cookie session must carry its CSRF token).
pub struct Write;
/// A call that authenticates itself (the login).
pub struct Open;

/// What access a dashboard call needs.
pub trait Access: Send + Sync + 'static {
    /// `None`: no check (the login checks the password itself).
    const WRITE: Option<bool>;
}

impl Access for Read {
    const WRITE: Option<bool> = Some(false);
}
impl Access for Write {
    const WRITE: Option<bool> = Some(true);
}
impl Access for Open {
    const WRITE: Option<bool> = None;
}

/// An authorised dashboard call: its parts, its JSON body (`Null` when empty), the settings
/// snapshot and the client address.
pub struct AdminCall<A: Access> {
    pub parts: Parts,
    pub body: Value,
    pub snap: Arc<Settings>,
    pub ip: Option<IpAddr>,
    access: PhantomData<A>,
}

fn fail(e: GatewayError) -> Flavored {
    e.flavored(Flavor::Detail)
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl<A: Access> FromRequest<AppState> for AdminCall<A> {
    type Rejection = Flavored;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Flavored> {
        let snap = state.live.current();
        let (parts, body) = request.into_parts();
        let ip = crate::limits::client_ip(&parts, &snap.trusted_proxies);
        let bytes = super::body::read_limited(body, &parts.headers, BODY_LIMIT)
            .await
            .map_err(fail)?;
        let body = if bytes.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|_| {
                fail(GatewayError::Unprocessable {
                    message: "请求体格式错误：应为JSON对象 / The body must be a JSON object"
                        .to_owned(),
                })
            })?
        };
        if let Some(write) = A::WRITE {
            let who = Presented {
                bearer: super::auth::bearer_tokens(&parts.headers).next(),
                session: cookie_value(&parts.headers, COOKIE),
                csrf: parts
                    .headers
                    .get("x-csrf-token")
                    .and_then(|v| v.to_str().ok()),
                body: &body,
                ip,
            };
            state
                .sessions
                .authorize(&snap, &who, write)
                .await
                .map_err(fail)?;
        }
        Ok(Self {
            parts,
            body,
            snap,
            ip,
            access: PhantomData,
        })
    }
}

type Answer = Result<Response, Flavored>;

fn ok(value: Value) -> Answer {
    Ok(Json(value).into_response())
}

pub async fn dashboard_data(State(state): State<AppState>, _: AdminCall<Read>) -> Answer {
    ok(views::dashboard_data(&state))
}

pub async fn keys(State(state): State<AppState>, _: AdminCall<Read>) -> Answer {
    ok(views::keys(&state))
}

pub async fn logs(State(state): State<AppState>, _: AdminCall<Read>) -> Answer {
    ok(views::logs(&state))
}

pub async fn usage(State(state): State<AppState>, _: AdminCall<Read>) -> Answer {
    ok(views::usage(&state))
}

/// Every editable setting with its value (secrets: whether set) and where it came from.
pub async fn config(State(state): State<AppState>, _: AdminCall<Read>) -> Answer {
    ok(settings::listing(&state))
}

/// `POST /api/update-config` (HAJIMI's): one setting, validated, committed, applied at once.
pub async fn update_config(State(state): State<AppState>, call: AdminCall<Write>) -> Answer {
    let key = call
        .body
        .get("key")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if key.is_empty() {
        return Err(fail(GatewayError::bad_request(
            "缺少配置项键名 / Missing `key`",
        )));
    }
    let value = call.body.get("value").cloned().unwrap_or(Value::Null);
    if key == "gemini_api_keys" {
        let text = value
            .as_str()
            .unwrap_or_default()
            .replace(['\n', '\r'], ",");
        return add_keys(&state, &text).await;
    }
    let changed = settings::update(&state, key, &value).await.map_err(fail)?;
    ok(json!({"status": "success", "message": changed.message}))
}

async fn add_keys(state: &AppState, text: &str) -> Answer {
    let added = keys::add(state, text).await.map_err(fail)?;
    ok(json!({"status": "success", "message": "配置项 gemini_api_keys 已更新", "added": added}))
}

/// `POST /api/keys/add` `{"keys": "<any text holding keys>"}` (or a list).
pub async fn keys_add(State(state): State<AppState>, call: AdminCall<Write>) -> Answer {
    let text = match call.body.get("keys") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(","),
        _ => String::new(),
    };
    add_keys(&state, &text).await
}

/// `POST /api/keys/remove` `{"ids": [...]}` (ids required).
pub async fn keys_remove(State(state): State<AppState>, call: AdminCall<Write>) -> Answer {
    if call
        .body
        .get("ids")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        return Err(fail(GatewayError::bad_request(
            "缺少 ids / `ids` is required",
        )));
    }
    let victims = keys::chosen(&state, &call.body);
    let removed = keys::remove(&state, &victims).await.map_err(fail)?;
    ok(json!({"status": "success", "removed": removed}))
}

/// `POST /api/keys/reset` `{"ids": [...]}` (none: every key): back to active, no cooldowns.
pub async fn keys_reset(State(state): State<AppState>, call: AdminCall<Write>) -> Answer {
    let reset = keys::reset(&keys::chosen_with_vertex(&state, &call.body));
    ok(json!({"status": "success", "reset": reset}))
}

pub async fn reset_stats(State(state): State<AppState>, _: AdminCall<Write>) -> Answer {
    keys::reset_stats(&state);
    ok(json!({"status": "success", "message": "API调用统计数据已重置"}))
}

pub async fn test_keys(State(state): State<AppState>, _: AdminCall<Write>) -> Answer {
    key_test::start(&state).map_err(fail)?;
    ok(json!({"status": "success", "message": "API密钥检测已启动，将同时检测有效密钥和无效密钥"}))
}

pub async fn test_keys_progress(State(state): State<AppState>, _: AdminCall<Read>) -> Answer {
    Ok(Json(key_test::progress(&state)).into_response())
}

pub async fn clear_invalid_keys(State(state): State<AppState>, _: AdminCall<Write>) -> Answer {
    let n = keys::clear_invalid(&state).await.map_err(fail)?;
    if n == 0 {
        return ok(json!({"status": "success", "message": "没有失效的API密钥需要清除"}));
    }
    ok(json!({"status": "success", "message": format!("已成功清除 {n} 个失效的API密钥")}))
}

/// The one response that carries full keys (POST, web password, logged).
pub async fn export_valid_keys(State(state): State<AppState>, call: AdminCall<Write>) -> Answer {
    let keys = keys::export_usable(&state);
    tracing::warn!(count = keys.len(), client = ?call.ip, "valid keys exported through the dashboard API");
    let n = keys.len();
    if n == 0 {
        return ok(json!({"status": "success", "message": "当前没有有效的API密钥", "keys": []}));
    }
    ok(
        json!({"status": "success", "message": format!("成功获取 {n} 个有效API密钥"), "keys": keys, "count": n}),
    )
}

/// `POST /api/login` `{"password"}`: a session cookie (HttpOnly, SameSite=Strict; Secure
/// behind HTTPS) and the session's CSRF token.
pub async fn login(State(state): State<AppState>, call: AdminCall<Open>) -> Answer {
    let password = call
        .body
        .get("password")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let login = state
        .sessions
        .login(&call.snap, call.ip, password)
        .await
        .map_err(fail)?;
    let secure = call
        .parts
        .headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    let cookie = format!(
        "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        login.session,
        SESSION_TTL.as_secs(),
        if secure { "; Secure" } else { "" }
    );
    let mut r = Json(json!({"status": "success", "csrf_token": &*login.csrf})).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(r)
}

pub async fn logout(State(state): State<AppState>, call: AdminCall<Write>) -> Answer {
    if let Some(session) = cookie_value(&call.parts.headers, COOKIE) {
        state.sessions.logout(session);
    }
    let mut r = Json(json!({"status": "success"})).into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("hajimi_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    Ok(r)
}

/// Whether the browser's session is valid, and its CSRF token.
pub async fn session(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match cookie_value(&headers, COOKIE).and_then(|s| state.sessions.csrf(s)) {
        Some(token) => Json(json!({"authenticated": true, "csrf_token": &*token})).into_response(),
        None => Json(json!({"authenticated": false})).into_response(),
    }
}
