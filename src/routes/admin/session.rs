//! Who may use the dashboard API (CONTRACT §2): `WEB_PASSWORD` as a Bearer token, a browser
//! session (`POST /api/login` sets an HttpOnly SameSite cookie; writes then need the session's
//! `X-CSRF-Token`), or HAJIMI's password in the JSON body of a write. Failed attempts are
//! limited per client address.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::detail;
use crate::app::AppState;
use crate::config::Settings;

/// Failed password attempts per address before the dashboard API refuses it for a while.
const MAX_FAILURES: u32 = 10;
const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
const COOKIE: &str = "hajimi_session";
/// Dashboard request bodies are small.
const BODY_LIMIT: usize = 4 * 1024 * 1024;

/// Browser sessions and failed-attempt counters (bounded caches).
pub struct Sessions {
    sessions: moka::sync::Cache<String, Arc<str>>,
    failures: moka::sync::Cache<std::net::IpAddr, u32>,
}

impl Default for Sessions {
    fn default() -> Self {
        Self {
            sessions: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_idle(SESSION_TTL)
                .build(),
            failures: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(FAILURE_WINDOW)
                .build(),
        }
    }
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: fall back to a hash of time and address (never expected).
        let seed = format!("{:?}{:p}", std::time::SystemTime::now(), &bytes);
        return format!(
            "{:016x}{:016x}",
            xxhash_rust::xxh64::xxh64(seed.as_bytes(), 1),
            xxhash_rust::xxh64::xxh64(seed.as_bytes(), 2)
        );
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// A dashboard request: its parts, its JSON body (writes), and its client address.
pub(super) struct Call {
    pub(super) parts: Parts,
    pub(super) body: Value,
    pub(super) snap: Arc<Settings>,
    pub(super) ip: Option<std::net::IpAddr>,
}

pub(super) async fn read(state: &AppState, request: Request) -> Result<Call, Box<Response>> {
    let snap = state.live.current();
    let (parts, body) = request.into_parts();
    let ip = crate::limits::client_ip(&parts, &snap.trusted_proxies);
    let bytes = crate::pipeline::body::read_limited(body, &parts.headers, BODY_LIMIT)
        .await
        .map_err(|e| Box::new(detail(e.status(), e.to_string())))?;
    let body = if bytes.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).map_err(|_| {
            detail(
                StatusCode::UNPROCESSABLE_ENTITY,
                "请求体格式错误：应为JSON对象 / The body must be a JSON object",
            )
        })?
    };
    Ok(Call {
        parts,
        body,
        snap,
        ip,
    })
}

fn too_many(state: &AppState, ip: Option<std::net::IpAddr>) -> bool {
    ip.and_then(|ip| state.sessions.failures.get(&ip))
        .is_some_and(|n| n >= MAX_FAILURES)
}

fn failed(state: &AppState, ip: Option<std::net::IpAddr>) {
    if let Some(ip) = ip {
        let n = state.sessions.failures.get(&ip).unwrap_or(0);
        state.sessions.failures.insert(ip, n + 1);
    }
    tracing::warn!(client = ?ip, "dashboard authentication failed");
}

fn locked_out() -> Response {
    let mut r = detail(
        StatusCode::TOO_MANY_REQUESTS,
        "登录失败次数过多，请 15 分钟后再试 / Too many failed attempts; try again in 15 minutes",
    );
    r.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(FAILURE_WINDOW.as_secs()),
    );
    r
}

/// Checks the web password (CONTRACT §2). Writes authenticated by the session cookie must
/// carry the session's CSRF token; HAJIMI's body password is accepted on writes.
pub(super) fn authorize(state: &AppState, call: &Call, write: bool) -> Result<(), Box<Response>> {
    if too_many(state, call.ip) {
        return Err(Box::new(locked_out()));
    }
    let web = &call.snap.web_password;
    if let Some(token) = crate::pipeline::auth::bearer_tokens(&call.parts.headers).next() {
        if web.matches(token.as_bytes()) {
            return Ok(());
        }
        failed(state, call.ip);
        return Err(Box::new(detail(
            StatusCode::UNAUTHORIZED,
            "密码错误 / Wrong dashboard password",
        )));
    }
    if let Some(session) = cookie_value(&call.parts.headers, COOKIE)
        && let Some(csrf) = state.sessions.sessions.get(&session)
    {
        if !write {
            return Ok(());
        }
        let presented = call
            .parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let ok: bool = subtle::ConstantTimeEq::ct_eq(presented.as_bytes(), csrf.as_bytes()).into();
        if ok {
            return Ok(());
        }
        return Err(Box::new(detail(
            StatusCode::FORBIDDEN,
            "缺少或错误的 CSRF 令牌 / Missing or wrong X-CSRF-Token",
        )));
    }
    if write {
        // HAJIMI's ladder for the password in the JSON body.
        let Some(obj) = call.body.as_object() else {
            return Err(Box::new(detail(
                StatusCode::UNAUTHORIZED,
                "需要管理密码 / The dashboard password (WEB_PASSWORD) is required",
            )));
        };
        match obj.get("password") {
            None | Some(Value::Null) => {
                return Err(Box::new(detail(
                    StatusCode::BAD_REQUEST,
                    "缺少密码参数 / Missing password",
                )));
            }
            Some(Value::String(p)) if p.is_empty() => {
                return Err(Box::new(detail(
                    StatusCode::BAD_REQUEST,
                    "缺少密码参数 / Missing password",
                )));
            }
            Some(Value::String(p)) => {
                if web.matches(p.as_bytes()) {
                    return Ok(());
                }
                failed(state, call.ip);
                return Err(Box::new(detail(
                    StatusCode::UNAUTHORIZED,
                    "密码错误 / Wrong dashboard password",
                )));
            }
            Some(_) => {
                return Err(Box::new(detail(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "密码参数类型错误：应为字符串 / The password must be a string",
                )));
            }
        }
    }
    Err(Box::new(detail(
        StatusCode::UNAUTHORIZED,
        "需要管理密码 / The dashboard password (WEB_PASSWORD) is required",
    )))
}

// ---------------------------------------------------------------------------------------
// Login

pub async fn login(State(state): State<AppState>, request: Request) -> Response {
    let call = match read(&state, request).await {
        Ok(c) => c,
        Err(r) => return *r,
    };
    if too_many(&state, call.ip) {
        return locked_out();
    }
    let password = call
        .body
        .get("password")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !call.snap.web_password.matches(password.as_bytes()) {
        failed(&state, call.ip);
        return detail(
            StatusCode::UNAUTHORIZED,
            "密码错误 / Wrong dashboard password",
        );
    }
    let session = random_token();
    let csrf: Arc<str> = Arc::from(random_token());
    state
        .sessions
        .sessions
        .insert(session.clone(), Arc::clone(&csrf));
    let secure = call
        .parts
        .headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    let cookie = format!(
        "{COOKIE}={session}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        SESSION_TTL.as_secs(),
        if secure { "; Secure" } else { "" }
    );
    let mut r = axum::Json(json!({"status": "success", "csrf_token": &*csrf})).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

pub async fn logout(State(state): State<AppState>, request: Request) -> Response {
    let call = guarded!(state, request, true);
    if let Some(session) = cookie_value(&call.parts.headers, COOKIE) {
        state.sessions.sessions.invalidate(&session);
    }
    let mut r = axum::Json(json!({"status": "success"})).into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("hajimi_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    r
}

/// Whether the browser's session is valid, and its CSRF token.
pub async fn session(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let csrf = cookie_value(&headers, COOKIE).and_then(|s| state.sessions.sessions.get(&s));
    match csrf {
        Some(token) => {
            axum::Json(json!({"authenticated": true, "csrf_token": &*token})).into_response()
        }
        None => axum::Json(json!({"authenticated": false})).into_response(),
    }
}
