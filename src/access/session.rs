//! Who may use the dashboard (decisions §2): `WEB_PASSWORD` as a Bearer token, a browser
//! session (a login sets an HttpOnly SameSite cookie; writes then need the session's
//! `X-CSRF-Token`), or HAJIMI's password in the JSON body of a write. Failed attempts slow
//! the client down ([`super::throttle`]); they never lock anyone out.
//!
//! This is the service; extracting the credentials from a request is the dashboard routes'
//! extractor (`routes::admin`), which hands them over as a [`Presented`].

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::throttle::LoginThrottle;
use crate::config::Settings;
use crate::error::GatewayError;

/// How long a browser session lives without use.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// The session cookie's name.
pub const COOKIE: &str = "hajimi_session";

/// Browser sessions (a bounded cache: session id → CSRF token) and the failed-login throttle.
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

/// What a dashboard request presents to prove who it is.
pub struct Presented<'a> {
    /// The first `Authorization: Bearer` token.
    pub bearer: Option<&'a str>,
    /// The session cookie's value.
    pub session: Option<&'a str>,
    /// The `X-CSRF-Token` header.
    pub csrf: Option<&'a str>,
    /// The JSON body (HAJIMI's writes carry `"password"` in it).
    pub body: &'a Value,
    /// The client address (for the throttle).
    pub ip: Option<IpAddr>,
}

/// A new browser session.
pub struct Login {
    pub session: String,
    pub csrf: Arc<str>,
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

fn wrong_password() -> GatewayError {
    GatewayError::WebUnauthorized
}

fn password_required() -> GatewayError {
    GatewayError::WebUnauthorized
}

impl Sessions {
    /// Checks a presented password after the client's throttle delay, and counts the outcome.
    pub async fn check_password(
        &self,
        snap: &Settings,
        ip: Option<IpAddr>,
        password: &[u8],
    ) -> bool {
        self.throttle.wait(ip).await;
        let ok = snap.web_password.matches(password);
        if let Some(ip) = ip {
            if ok {
                self.throttle.succeeded(ip);
            } else {
                self.throttle.failed(ip, tokio::time::Instant::now());
            }
        }
        if !ok {
            tracing::warn!(client = ?ip, "dashboard authentication failed");
        }
        ok
    }

    /// Checks the web password (decisions §2). Writes authenticated by the session cookie
    /// must carry the session's CSRF token; HAJIMI's body password is accepted on writes. A
    /// presented password is checked after the client's throttle delay.
    pub async fn authorize(
        &self,
        snap: &Settings,
        who: &Presented<'_>,
        write: bool,
    ) -> Result<(), GatewayError> {
        if let Some(token) = who.bearer {
            if self.check_password(snap, who.ip, token.as_bytes()).await {
                return Ok(());
            }
            return Err(wrong_password());
        }
        if let Some(csrf) = who.session.and_then(|s| self.sessions.get(s)) {
            if !write {
                return Ok(());
            }
            let presented = who.csrf.unwrap_or_default();
            let ok: bool =
                subtle::ConstantTimeEq::ct_eq(presented.as_bytes(), csrf.as_bytes()).into();
            if ok {
                return Ok(());
            }
            return Err(GatewayError::Forbidden {
                message: "缺少或错误的 CSRF 令牌 / Missing or wrong X-CSRF-Token".to_owned(),
                code: "csrf",
            });
        }
        if !write {
            return Err(password_required());
        }
        // HAJIMI's ladder for the password in the JSON body.
        let Some(obj) = who.body.as_object() else {
            return Err(password_required());
        };
        match obj.get("password") {
            None | Some(Value::Null) => {
                Err(GatewayError::bad_request("缺少密码参数 / Missing password"))
            }
            Some(Value::String(p)) if p.is_empty() => {
                Err(GatewayError::bad_request("缺少密码参数 / Missing password"))
            }
            Some(Value::String(p)) => {
                if self.check_password(snap, who.ip, p.as_bytes()).await {
                    Ok(())
                } else {
                    Err(wrong_password())
                }
            }
            Some(_) => Err(GatewayError::Unprocessable {
                message: "密码参数类型错误：应为字符串 / The password must be a string".to_owned(),
            }),
        }
    }

    /// Logs a browser in with `password`: a new session and its CSRF token.
    pub async fn login(
        &self,
        snap: &Settings,
        ip: Option<IpAddr>,
        password: &str,
    ) -> Result<Login, GatewayError> {
        if !self.check_password(snap, ip, password.as_bytes()).await {
            return Err(wrong_password());
        }
        let session = random_token();
        let csrf: Arc<str> = Arc::from(random_token());
        self.sessions.insert(session.clone(), Arc::clone(&csrf));
        Ok(Login { session, csrf })
    }

    pub fn logout(&self, session: &str) {
        self.sessions.invalidate(session);
    }

    /// The CSRF token of a live session.
    pub fn csrf(&self, session: &str) -> Option<Arc<str>> {
        self.sessions.get(session)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tokio::time::Instant;

    use super::*;
    use crate::access::throttle::{FIRST_DELAY, MAX_DELAY};

    fn settings() -> Settings {
        let env = vec![("WEB_PASSWORD".to_owned(), "right".to_owned())];
        crate::config::Config::from_sources(
            Vec::new(),
            env,
            &crate::config::CliOverrides::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"))
        .settings
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap_or_else(|e| panic!("{e}")))
    }

    /// Logs in from `from` and returns whether it worked and how long the answer took
    /// (paused clock: the time is the throttle's delay, exactly).
    async fn timed_login(s: &Sessions, snap: &Settings, from: &str, pw: &str) -> (bool, Duration) {
        let started = Instant::now();
        let ok = s.login(snap, ip(from), pw).await.is_ok();
        (ok, started.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn ten_bad_logins_never_lock_out_the_right_password() {
        let (s, snap) = (Sessions::default(), settings());
        for _ in 0..10 {
            let r = timed_login(&s, &snap, "198.51.100.7", "guess").await;
            assert_eq!(r, (false, Duration::ZERO));
        }
        let (ok, took) = timed_login(&s, &snap, "198.51.100.7", "right").await;
        assert!(ok, "the right password still logs in");
        assert_eq!(took, FIRST_DELAY, "after the delay");
        let r = timed_login(&s, &snap, "198.51.100.7", "right").await;
        assert_eq!(r, (true, Duration::ZERO), "and is free again");
    }

    #[tokio::test(start_paused = true)]
    async fn guessing_waits_longer_and_longer_up_to_ten_seconds() {
        let (s, snap) = (Sessions::default(), settings());
        for _ in 0..10 {
            timed_login(&s, &snap, "2001:db8:7:7::1", "guess").await;
        }
        let mut waits = Vec::new();
        for i in 0..6 {
            // Any address of the same /64 is the same client.
            let (ok, took) = timed_login(&s, &snap, &format!("2001:db8:7:7::{i:x}"), "guess").await;
            assert!(!ok);
            waits.push(took.as_secs());
        }
        assert_eq!(waits, [1, 2, 4, 8, 10, 10]);
        let r = timed_login(&s, &snap, "2001:db8:7:8::1", "right").await;
        assert_eq!(r, (true, Duration::ZERO), "another /64");
        let r = timed_login(&s, &snap, "2001:db8:7:7::abc", "right").await;
        assert_eq!(r, (true, MAX_DELAY));
    }

    /// A Bearer password on the API is a login attempt too: delayed, never refused.
    #[tokio::test(start_paused = true)]
    async fn bearer_guesses_are_slowed_and_the_right_bearer_still_works() {
        let (s, snap) = (Sessions::default(), settings());
        let body = json!(null);
        let who = |token| Presented {
            bearer: Some(token),
            session: None,
            csrf: None,
            body: &body,
            ip: ip("203.0.113.5"),
        };
        for _ in 0..11 {
            assert!(s.authorize(&snap, &who("guess"), false).await.is_err());
        }
        let started = Instant::now();
        assert!(s.authorize(&snap, &who("right"), false).await.is_ok());
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test]
    async fn cookie_writes_need_the_sessions_csrf_token() {
        let (s, snap) = (Sessions::default(), settings());
        let login = s
            .login(&snap, None, "right")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let body = json!({});
        let who = |csrf| Presented {
            bearer: None,
            session: Some(&login.session),
            csrf,
            body: &body,
            ip: None,
        };
        assert!(
            s.authorize(&snap, &who(None), false).await.is_ok(),
            "reads need no token"
        );
        assert!(s.authorize(&snap, &who(None), true).await.is_err());
        assert!(
            s.authorize(&snap, &who(Some("forged")), true)
                .await
                .is_err()
        );
        assert!(
            s.authorize(&snap, &who(Some(&login.csrf)), true)
                .await
                .is_ok()
        );
        s.logout(&login.session);
        assert!(
            s.authorize(&snap, &who(Some(&login.csrf)), true)
                .await
                .is_err()
        );
    }
}
