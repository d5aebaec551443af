//! Who may use the dashboard API (decisions §2): `WEB_PASSWORD` as a Bearer token, a browser
//! session (`POST /api/login` sets an HttpOnly SameSite cookie; writes then need the session's
//! `X-CSRF-Token`), or HAJIMI's password in the JSON body of a write. Failed attempts slow
//! the client down (`throttle`), they never lock anyone out.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::detail;
use super::throttle::LoginThrottle;
use crate::app::AppState;
use crate::config::Settings;

const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
const COOKIE: &str = "hajimi_session";
/// Dashboard request bodies are small.
const BODY_LIMIT: usize = 4 * 1024 * 1024;

/// Browser sessions (a bounded cache) and the failed-login throttle.
pub struct Sessions {
    sessions: moka::sync::Cache<String, Arc<str>>,
    throttle: LoginThrottle,
}

impl Default for Sessions {
    fn default() -> Self {
        Self {
            sessions: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_idle(SESSION_TTL)
                .build(),
            throttle: LoginThrottle::default(),
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

/// Checks a presented password after the client's throttle delay, and counts the outcome.
async fn check_password(state: &AppState, call: &Call, password: &[u8]) -> bool {
    let throttle = &state.sessions.throttle;
    throttle.wait(call.ip).await;
    let ok = call.snap.web_password.matches(password);
    if let Some(ip) = call.ip {
        if ok {
            throttle.succeeded(ip);
        } else {
            throttle.failed(ip, tokio::time::Instant::now());
        }
    }
    if !ok {
        tracing::warn!(client = ?call.ip, "dashboard authentication failed");
    }
    ok
}

/// Checks the web password (decisions §2). Writes authenticated by the session cookie must
/// carry the session's CSRF token; HAJIMI's body password is accepted on writes. A presented
/// password is checked after the client's throttle delay.
pub(super) async fn authorize(
    state: &AppState,
    call: &Call,
    write: bool,
) -> Result<(), Box<Response>> {
    if let Some(token) = crate::pipeline::auth::bearer_tokens(&call.parts.headers).next() {
        if check_password(state, call, token.as_bytes()).await {
            return Ok(());
        }
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
                if check_password(state, call, p.as_bytes()).await {
                    return Ok(());
                }
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
    let password = call
        .body
        .get("password")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !check_password(&state, &call, password.as_bytes()).await {
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

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use tokio::time::Instant;

    use super::*;
    use crate::routes::admin::throttle::{FIRST_DELAY, MAX_DELAY};

    fn state() -> AppState {
        let env = vec![("WEB_PASSWORD".to_owned(), "right".to_owned())];
        let config = crate::config::Config::from_sources(
            Vec::new(),
            env,
            &crate::config::CliOverrides::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        AppState::new(config, tokio_util::sync::CancellationToken::new(), None)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn attempt(from: &str, password: &str) -> Request {
        let peer: std::net::IpAddr = from.parse().unwrap_or_else(|e| panic!("{e}"));
        let mut r = Request::new(Body::from(json!({"password": password}).to_string()));
        r.extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(peer, 40_000)));
        r
    }

    /// Logs in from `from` and returns the status and how long the answer took (paused clock:
    /// the time is the throttle's delay, exactly).
    async fn timed_login(state: &AppState, from: &str, password: &str) -> (StatusCode, Duration) {
        let started = Instant::now();
        let status = login(State(state.clone()), attempt(from, password))
            .await
            .status();
        (status, started.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn ten_bad_logins_never_lock_out_the_right_password() {
        let state = state();
        for _ in 0..10 {
            let (status, took) = timed_login(&state, "198.51.100.7", "guess").await;
            assert_eq!((status, took), (StatusCode::UNAUTHORIZED, Duration::ZERO));
        }
        let (status, took) = timed_login(&state, "198.51.100.7", "right").await;
        assert_eq!(status, StatusCode::OK, "the right password still logs in");
        assert_eq!(took, FIRST_DELAY, "after the delay");
        let (status, took) = timed_login(&state, "198.51.100.7", "right").await;
        assert_eq!(
            (status, took),
            (StatusCode::OK, Duration::ZERO),
            "and is free again"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn guessing_waits_longer_and_longer_up_to_ten_seconds() {
        let state = state();
        for _ in 0..10 {
            timed_login(&state, "2001:db8:7:7::1", "guess").await;
        }
        let mut waits = Vec::new();
        for i in 0..6 {
            // Any address of the same /64 is the same client.
            let (status, took) =
                timed_login(&state, &format!("2001:db8:7:7::{i:x}"), "guess").await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            waits.push(took.as_secs());
        }
        assert_eq!(waits, [1, 2, 4, 8, 10, 10]);
        let (status, took) = timed_login(&state, "2001:db8:7:8::1", "right").await;
        assert_eq!(
            (status, took),
            (StatusCode::OK, Duration::ZERO),
            "another /64"
        );
        let (status, took) = timed_login(&state, "2001:db8:7:7::abc", "right").await;
        assert_eq!((status, took), (StatusCode::OK, MAX_DELAY));
    }

    /// A Bearer password on the API is a login attempt too: delayed, never refused.
    #[tokio::test(start_paused = true)]
    async fn bearer_guesses_are_slowed_and_the_right_bearer_still_works() {
        let state = state();
        let call = |token: &str| {
            let mut r = attempt("203.0.113.5", "");
            if let Ok(v) = HeaderValue::from_str(&format!("Bearer {token}")) {
                r.headers_mut().insert(header::AUTHORIZATION, v);
            }
            r
        };
        for _ in 0..11 {
            let c = read(&state, call("guess"))
                .await
                .unwrap_or_else(|_| panic!("read"));
            assert!(authorize(&state, &c, false).await.is_err());
        }
        let c = read(&state, call("right"))
            .await
            .unwrap_or_else(|_| panic!("read"));
        let started = Instant::now();
        assert!(authorize(&state, &c, false).await.is_ok());
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }
}
