//! Service-account access tokens: the OAuth 2.0 JWT-bearer grant (RFC 7523) and a cache per
//! account.
//!
//! - [`assertion`] signs the RS256 JWT Google's token endpoint expects (`iss`/`sub` = the
//!   account's email, `aud` = its `token_uri`, `scope` = cloud-platform, one hour of life).
//! - [`TokenSource`] owns one account's token: a cached token is handed out until
//!   `min(5 min, expires_in / 2)` before it expires; then one caller refreshes it while the
//!   others wait for that refresh (single-flight; they share its token or its error).
//!   [`TokenSource::invalidate`] drops a token Vertex answered 401 to.
//! - [`TokenCache`] holds the sources of the configured accounts, by [`KeyId`].
//! - [`TokenError`] classifies a failed refresh: a refusal of the account (`invalid_grant`,
//!   `invalid_client`, `unauthorized_client`, any other 4xx) is a credential failure; 5xx,
//!   429, timeouts and connection errors are transient. [`TokenError::failure`] maps it onto
//!   the pool's [`Failure`].
//!
//! How the pipeline drives it, per attempt with a service account: `cache.source(&account)`,
//! `source.token(&client, idle)`; on `Err(e)` record `e.failure()` against the account and
//! fail over; on `Ok(t)` send `Authorization: Bearer` ([`AccessToken::header_value`]). When
//! Vertex answers 401, call `source.invalidate(&t)`, get a fresh token and send once more;
//! a second 401 is a credential failure of the account (a suspended key).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, Header};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::config::credentials::Account;
use crate::mask::{KeyId, Secret};
use crate::upstream::classify::Failure;

/// The scope of every Vertex AI call.
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// RFC 7523's grant type.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Lifetime of an assertion (Google's maximum).
pub const ASSERTION_LIFETIME: Duration = Duration::from_secs(3600);
/// A token is refreshed this long before it expires at the latest (half its life when that
/// is shorter).
pub const REFRESH_MARGIN: Duration = Duration::from_secs(300);
/// When the token endpoint omits `expires_in` (Google always sends it: 3599).
pub const DEFAULT_EXPIRES_IN: Duration = Duration::from_secs(3600);
/// Upper bound of a token endpoint answer read.
const TOKEN_BODY_LIMIT: usize = 64 * 1024;

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    scope: &'a str,
    iat: u64,
    exp: u64,
}

/// The signed JWT for the account's token endpoint, issued at `now` (Unix seconds).
pub fn assertion(account: &Account, now: u64) -> Result<String, TokenError> {
    let mut header = Header::new(Algorithm::RS256);
    header.typ = Some("JWT".to_owned());
    header.kid = account.private_key_id().map(str::to_owned);
    let claims = Claims {
        iss: account.client_email(),
        sub: account.client_email(),
        aud: account.token_uri().as_str(),
        scope: SCOPE,
        iat: now,
        exp: now + ASSERTION_LIFETIME.as_secs(),
    };
    jsonwebtoken::encode(&header, &claims, account.encoding_key()).map_err(|_| TokenError::Signing)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// An access token for Vertex. `Debug` shows a mask; the value leaves only through
/// [`AccessToken::header_value`] / [`AccessToken::expose`].
#[derive(Clone)]
pub struct AccessToken {
    bearer: Secret,
    obtained: Instant,
    expires_in: Duration,
    /// Which refresh produced it (so an invalidation never drops a newer token).
    serial: u64,
}

impl AccessToken {
    /// `Bearer <token>`, marked sensitive (hyper and reqwest keep it out of their logs).
    pub fn header_value(&self) -> Option<reqwest::header::HeaderValue> {
        let mut v =
            reqwest::header::HeaderValue::from_str(&format!("Bearer {}", self.bearer.expose()))
                .ok()?;
        v.set_sensitive(true);
        Some(v)
    }

    pub fn expose(&self) -> &str {
        self.bearer.expose()
    }

    /// When Google stops accepting it.
    pub fn expires_at(&self) -> Instant {
        self.obtained + self.expires_in
    }

    /// When the cache stops handing it out.
    pub fn refresh_at(&self) -> Instant {
        let margin = REFRESH_MARGIN.min(self.expires_in / 2);
        self.obtained + (self.expires_in - margin)
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("bearer", &self.bearer)
            .field("expires_in", &self.expires_in)
            .field("serial", &self.serial)
            .finish()
    }
}

/// Why no token could be had.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum TokenError {
    /// The token endpoint refused the account (`invalid_grant`: key deleted or wrong,
    /// account disabled or deleted; `invalid_client`, `unauthorized_client`; or another 4xx,
    /// e.g. a `token_uri` that is not a token endpoint). A credential failure.
    #[error(
        "令牌端点拒绝了该服务账号（{status} {error}）/ the token endpoint refused the account ({status} {error}: {description})"
    )]
    Refused {
        status: u16,
        /// OAuth `error` (empty when the body was not OAuth's).
        error: String,
        /// OAuth `error_description`, bounded.
        description: String,
    },
    /// The key could not sign (it parsed at start-up, so practically never). A credential
    /// failure.
    #[error("无法用服务账号私钥签名 / the account's private key cannot sign")]
    Signing,
    /// 5xx, 429 or 408 from the token endpoint. Transient.
    #[error("令牌端点暂时不可用（{status}）/ the token endpoint is unavailable ({status})")]
    Unavailable { status: u16 },
    /// No answer within the idle timeout. Transient.
    #[error("令牌端点超时 / the token endpoint timed out")]
    Timeout,
    /// Could not connect, or the connection broke. Transient.
    #[error("无法连接令牌端点 / cannot connect to the token endpoint")]
    Connection,
    /// A 2xx without an access token, a redirect, an unreadable body. Transient.
    #[error("令牌端点的响应无法使用 / unusable answer from the token endpoint: {detail}")]
    Garbage { detail: String },
}

impl TokenError {
    /// True when the account itself cannot get tokens: take it out of rotation.
    pub fn is_credential_failure(&self) -> bool {
        matches!(self, Self::Refused { .. } | Self::Signing)
    }

    /// The attempt failure the pool records against the account:
    /// a refusal that says the account is disabled or suspended → [`Failure::KeySuspended`];
    /// any other refusal and [`TokenError::Signing`] → [`Failure::KeyInvalid`];
    /// 503 → [`Failure::Overloaded`]; other statuses → [`Failure::ServerError`];
    /// timeouts, connection errors and garbage → the same-named failures (no key effect:
    /// another credential is tried).
    pub fn failure(&self) -> Failure {
        match self {
            Self::Refused { description, .. } => {
                let d = description.to_ascii_lowercase();
                if d.contains("disabled") || d.contains("suspended") {
                    Failure::KeySuspended
                } else {
                    Failure::KeyInvalid
                }
            }
            Self::Signing => Failure::KeyInvalid,
            Self::Unavailable { status: 503 } => Failure::Overloaded,
            Self::Unavailable { status } => Failure::ServerError { status: *status },
            Self::Timeout => Failure::Timeout,
            Self::Connection => Failure::Connection,
            Self::Garbage { detail } => Failure::Garbage {
                detail: format!("token endpoint: {detail}"),
            },
        }
    }
}

/// What a successful grant returned.
struct Granted {
    bearer: Secret,
    expires_in: Duration,
}

#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
struct OAuthError {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

/// Printable, bounded text from the token endpoint (it never holds our secrets, but it is
/// shown on the dashboard).
fn bounded(s: &str, max: usize) -> String {
    crate::mask::scrub_keys(
        &s.chars()
            .filter(|c| !c.is_control())
            .take(max)
            .collect::<String>(),
    )
}

fn from_failure(f: Failure) -> TokenError {
    match f {
        Failure::Timeout => TokenError::Timeout,
        Failure::Connection => TokenError::Connection,
        other => TokenError::Garbage {
            detail: other.kind().to_owned(),
        },
    }
}

/// One JWT-bearer grant: POSTs the signed assertion form-encoded to the account's
/// `token_uri` with the caller's client, `idle` bounding the wait for headers and for each
/// body chunk.
async fn fetch(
    client: &reqwest::Client,
    account: &Account,
    idle: Duration,
) -> Result<Granted, TokenError> {
    let jwt = assertion(account, unix_now())?;
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", GRANT_TYPE)
        .append_pair("assertion", &jwt)
        .finish();
    let request = client
        .post(account.token_uri().clone())
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(reqwest::header::ACCEPT, "application/json")
        .body(form);
    let response = match tokio::time::timeout(idle, request.send()).await {
        Err(_) => return Err(TokenError::Timeout),
        Ok(Err(e)) => return Err(from_failure(crate::upstream::transport_failure(&e))),
        Ok(Ok(r)) => r,
    };
    let status = response.status().as_u16();
    let body = crate::upstream::read_body(response, idle, TOKEN_BODY_LIMIT)
        .await
        .map_err(from_failure)?;
    interpret(status, &body)
}

/// Reads a token endpoint answer.
fn interpret(status: u16, body: &[u8]) -> Result<Granted, TokenError> {
    match status {
        200..=299 => {
            let answer: TokenAnswer =
                serde_json::from_slice(body).map_err(|_| TokenError::Garbage {
                    detail: "not JSON".to_owned(),
                })?;
            let token = answer
                .access_token
                .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()))
                .ok_or_else(|| TokenError::Garbage {
                    detail: "no access_token".to_owned(),
                })?;
            // Google sends a number; some emulators send a string.
            let expires_in = match answer.expires_in {
                Some(serde_json::Value::Number(n)) => n.as_u64(),
                Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
                _ => None,
            }
            .map_or(DEFAULT_EXPIRES_IN, Duration::from_secs);
            Ok(Granted {
                bearer: Secret::new(token),
                expires_in,
            })
        }
        300..=399 => Err(TokenError::Garbage {
            detail: format!("redirect {status} not followed"),
        }),
        408 | 429 | 500..=599 => Err(TokenError::Unavailable { status }),
        _ => {
            let e: OAuthError = serde_json::from_slice(body).unwrap_or_default();
            Err(TokenError::Refused {
                status,
                error: bounded(e.error.as_deref().unwrap_or_default(), 64),
                description: bounded(e.error_description.as_deref().unwrap_or_default(), 300),
            })
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Default)]
struct State {
    cached: Option<AccessToken>,
    /// Refreshes finished (successfully or not).
    finished: u64,
    /// The error of the last refresh, for the callers that waited on it.
    last_error: Option<TokenError>,
    /// Token requests sent.
    requests: u64,
}

impl State {
    fn fresh(&self, now: Instant) -> Option<AccessToken> {
        self.cached.clone().filter(|t| now < t.refresh_at())
    }
}

/// One account's access token: cached, refreshed single-flight, invalidated on a 401.
pub struct TokenSource {
    account: Arc<Account>,
    state: Mutex<State>,
    /// Held by the one caller refreshing; the others queue on it. It guards no data (the
    /// state is behind the std mutex, never held across an await): waiting on it *is* the
    /// single-flight, so holding it across the token request is its purpose.
    refresh: tokio::sync::Mutex<()>,
}

impl TokenSource {
    pub fn new(account: Arc<Account>) -> Self {
        Self {
            account,
            state: Mutex::new(State::default()),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    pub fn account(&self) -> &Arc<Account> {
        &self.account
    }

    /// A token valid for a while yet: the cached one, else a fresh one from the token
    /// endpoint (one request however many callers ask at once; callers that waited for a
    /// refresh that failed get its error rather than sending another request).
    pub async fn token(
        &self,
        client: &reqwest::Client,
        idle: Duration,
    ) -> Result<AccessToken, TokenError> {
        self.token_with(async |account| fetch(client, &account, idle).await)
            .await
    }

    async fn token_with<F>(&self, fetch: F) -> Result<AccessToken, TokenError>
    where
        F: AsyncFnOnce(Arc<Account>) -> Result<Granted, TokenError>,
    {
        let seen = {
            let state = lock(&self.state);
            if let Some(token) = state.fresh(Instant::now()) {
                return Ok(token);
            }
            state.finished
        };
        let _refreshing = self.refresh.lock().await;
        {
            let mut state = lock(&self.state);
            if let Some(token) = state.fresh(Instant::now()) {
                return Ok(token);
            }
            if state.finished != seen
                && let Some(e) = &state.last_error
            {
                return Err(e.clone());
            }
            state.requests += 1;
        }
        let started = Instant::now();
        let result = fetch(self.account.clone()).await;
        let mut state = lock(&self.state);
        state.finished += 1;
        match result {
            Ok(granted) => {
                let token = AccessToken {
                    bearer: granted.bearer,
                    obtained: started,
                    expires_in: granted.expires_in,
                    serial: state.finished,
                };
                state.cached = Some(token.clone());
                state.last_error = None;
                Ok(token)
            }
            Err(e) => {
                state.last_error = Some(e.clone());
                Err(e)
            }
        }
    }

    /// The cached token when it is still handed out, without any I/O.
    pub fn cached(&self) -> Option<AccessToken> {
        lock(&self.state).fresh(Instant::now())
    }

    /// Vertex answered 401 to `token`: drop it (unless a newer token already replaced it),
    /// so the next [`TokenSource::token`] asks for a fresh one.
    pub fn invalidate(&self, token: &AccessToken) {
        let mut state = lock(&self.state);
        if state
            .cached
            .as_ref()
            .is_some_and(|t| t.serial == token.serial)
        {
            state.cached = None;
        }
    }

    /// How many token requests this source has sent (statistics, tests).
    pub fn requests(&self) -> u64 {
        lock(&self.state).requests
    }
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSource")
            .field("account", &self.account.id())
            .field("requests", &self.requests())
            .finish_non_exhaustive()
    }
}

/// The token sources of the configured accounts, by account id. Bounded by the accounts:
/// call [`TokenCache::retain`] when the configured set changes.
#[derive(Default)]
pub struct TokenCache {
    sources: Mutex<HashMap<KeyId, Arc<TokenSource>>>,
}

impl TokenCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// The account's source, created on first use; a source made for another key of the
    /// same email (a rotated key) is replaced, dropping its token.
    pub fn source(&self, account: &Arc<Account>) -> Arc<TokenSource> {
        let mut sources = lock(&self.sources);
        if let Some(s) = sources.get(&account.id())
            && s.account.same_credentials(account)
        {
            return s.clone();
        }
        let source = Arc::new(TokenSource::new(account.clone()));
        sources.insert(account.id(), source.clone());
        source
    }

    /// Keeps the sources of these accounts only (after a configuration change).
    pub fn retain(&self, accounts: &[Arc<Account>]) {
        lock(&self.sources).retain(|id, s| {
            accounts
                .iter()
                .any(|a| a.id() == *id && a.same_credentials(&s.account))
        });
    }

    pub fn len(&self) -> usize {
        lock(&self.sources).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::credentials::parse_credentials_json;
    use crate::vertex::testkey;
    use serde_json::json;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn account(email: &str, key: usize, token_uri: &str) -> Arc<Account> {
        let text = json!({
            "type": "service_account",
            "project_id": "proj",
            "private_key_id": "kid-1",
            "private_key": testkey::pem(key),
            "client_email": email,
            "token_uri": token_uri,
        })
        .to_string();
        let mut loaded = parse_credentials_json(&text);
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        Arc::new(loaded.accounts.remove(0))
    }

    fn sa() -> Arc<Account> {
        account(
            "sa@proj.iam.gserviceaccount.com",
            0,
            "https://oauth2.googleapis.com/token",
        )
    }

    #[test]
    fn the_assertion_is_googles_jwt_bearer_shape() {
        let a = sa();
        let jwt = assertion(&a, 1_750_000_000).unwrap_or_default();
        let header = jsonwebtoken::decode_header(&jwt);
        let header = header.as_ref();
        assert_eq!(header.map(|h| h.alg).ok(), Some(Algorithm::RS256));
        assert_eq!(header.ok().and_then(|h| h.kid.as_deref()), Some("kid-1"));
        assert_eq!(header.ok().and_then(|h| h.typ.as_deref()), Some("JWT"));
        // The signature verifies with the account's public key.
        let key = jsonwebtoken::DecodingKey::from_rsa_der(&testkey::public_der(0));
        let mut v = jsonwebtoken::Validation::new(Algorithm::RS256);
        v.validate_exp = false;
        v.set_audience(&["https://oauth2.googleapis.com/token"]);
        let claims = jsonwebtoken::decode::<serde_json::Value>(&jwt, &key, &v).map(|d| d.claims);
        assert_eq!(
            claims.ok(),
            Some(json!({
                "iss": "sa@proj.iam.gserviceaccount.com",
                "sub": "sa@proj.iam.gserviceaccount.com",
                "aud": "https://oauth2.googleapis.com/token",
                "scope": "https://www.googleapis.com/auth/cloud-platform",
                "iat": 1_750_000_000,
                "exp": 1_750_003_600,
            }))
        );
        // Not with another key.
        let other = jsonwebtoken::DecodingKey::from_rsa_der(&testkey::public_der(1));
        assert!(jsonwebtoken::decode::<serde_json::Value>(&jwt, &other, &v).is_err());
    }

    #[test]
    fn token_endpoint_answers_are_classified() {
        let ok = interpret(
            200,
            br#"{"access_token":"ya29.c.abc","expires_in":3599,"token_type":"Bearer"}"#,
        );
        let ok = ok.as_ref();
        assert_eq!(ok.map(|g| g.bearer.expose()).ok(), Some("ya29.c.abc"));
        assert_eq!(
            ok.map(|g| g.expires_in).ok(),
            Some(Duration::from_secs(3599))
        );
        let s = interpret(200, br#"{"access_token":"t","expires_in":"60"}"#);
        assert_eq!(s.map(|g| g.expires_in).ok(), Some(Duration::from_secs(60)));
        let d = interpret(200, br#"{"access_token":"t"}"#);
        assert_eq!(d.map(|g| g.expires_in).ok(), Some(DEFAULT_EXPIRES_IN));

        let refused = |status, body: &str| interpret(status, body.as_bytes()).err();
        let grant = refused(
            400,
            r#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#,
        );
        assert_eq!(
            grant,
            Some(TokenError::Refused {
                status: 400,
                error: "invalid_grant".into(),
                description: "Invalid JWT Signature.".into()
            })
        );
        for (status, body, credential, failure) in [
            (
                400,
                r#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#,
                true,
                Failure::KeyInvalid,
            ),
            (
                400,
                r#"{"error":"invalid_grant","error_description":"Invalid grant: account not found"}"#,
                true,
                Failure::KeyInvalid,
            ),
            (
                400,
                r#"{"error":"invalid_grant","error_description":"Service account has been disabled."}"#,
                true,
                Failure::KeySuspended,
            ),
            (
                401,
                r#"{"error":"invalid_client","error_description":"The OAuth client was not found."}"#,
                true,
                Failure::KeyInvalid,
            ),
            (
                401,
                r#"{"error":"unauthorized_client"}"#,
                true,
                Failure::KeyInvalid,
            ),
            (404, "<html>not here</html>", true, Failure::KeyInvalid),
            (500, "", false, Failure::ServerError { status: 500 }),
            (503, "", false, Failure::Overloaded),
            (429, "{}", false, Failure::ServerError { status: 429 }),
            (
                302,
                "",
                false,
                Failure::Garbage {
                    detail: "token endpoint: redirect 302 not followed".into(),
                },
            ),
            (
                200,
                "{}",
                false,
                Failure::Garbage {
                    detail: "token endpoint: no access_token".into(),
                },
            ),
            (
                200,
                "nope",
                false,
                Failure::Garbage {
                    detail: "token endpoint: not JSON".into(),
                },
            ),
        ] {
            let Err(e) = interpret(status, body.as_bytes()) else {
                panic!("{status} {body} accepted")
            };
            assert_eq!(e.is_credential_failure(), credential, "{status} {body}");
            assert_eq!(e.failure(), failure, "{status} {body}");
            let shown = e.to_string();
            assert!(shown.contains("/ "), "bilingual: {shown}");
        }
        assert!(TokenError::Signing.is_credential_failure());
        assert_eq!(TokenError::Timeout.failure(), Failure::Timeout);
        assert_eq!(TokenError::Connection.failure(), Failure::Connection);
        // A hostile description is bounded and printable.
        let long = format!(
            r#"{{"error":"invalid_grant","error_description":"{}\u0007"}}"#,
            "x".repeat(10_000)
        );
        let Some(TokenError::Refused { description, .. }) = refused(400, &long) else {
            panic!("not refused")
        };
        assert_eq!(description.len(), 300);
    }

    /// A fake token endpoint: counts grants, takes `delay`, answers `expires_in`.
    struct Fake {
        calls: AtomicU64,
        delay: Duration,
        expires_in: Duration,
        refuse: bool,
    }

    impl Fake {
        fn new(expires_in: u64) -> Self {
            Self {
                calls: AtomicU64::new(0),
                delay: Duration::from_millis(100),
                expires_in: Duration::from_secs(expires_in),
                refuse: false,
            }
        }

        async fn grant(&self, _: &Account) -> Result<Granted, TokenError> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(self.delay).await;
            if self.refuse {
                return Err(TokenError::Refused {
                    status: 400,
                    error: "invalid_grant".into(),
                    description: String::new(),
                });
            }
            Ok(Granted {
                bearer: Secret::new(format!("token-{n}")),
                expires_in: self.expires_in,
            })
        }

        fn calls(&self) -> u64 {
            self.calls.load(Ordering::SeqCst)
        }
    }

    async fn get(source: &TokenSource, fake: &Fake) -> Result<String, TokenError> {
        source
            .token_with(async |a| fake.grant(&a).await)
            .await
            .map(|t| t.expose().to_owned())
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_are_cached_until_five_minutes_before_expiry() {
        let source = TokenSource::new(sa());
        let fake = Fake::new(3599);
        for _ in 0..5 {
            assert_eq!(get(&source, &fake).await.ok().as_deref(), Some("token-1"));
        }
        assert_eq!(fake.calls(), 1);
        assert_eq!(source.requests(), 1);
        // 3599 s of life, refreshed 300 s before the end (the grant took 0.1 s).
        tokio::time::advance(Duration::from_secs(3599 - 300 - 1)).await;
        assert_eq!(get(&source, &fake).await.ok().as_deref(), Some("token-1"));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(source.cached().is_none());
        assert_eq!(get(&source, &fake).await.ok().as_deref(), Some("token-2"));
        assert_eq!(fake.calls(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn short_lived_tokens_are_refreshed_at_half_life() {
        let source = TokenSource::new(sa());
        let fake = Fake::new(60);
        assert_eq!(get(&source, &fake).await.ok().as_deref(), Some("token-1"));
        tokio::time::advance(Duration::from_secs(29)).await;
        assert_eq!(get(&source, &fake).await.ok().as_deref(), Some("token-1"));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(get(&source, &fake).await.ok().as_deref(), Some("token-2"));
        // A token with no life left is never cached.
        let zero = Fake::new(0);
        let source = TokenSource::new(sa());
        assert_eq!(get(&source, &zero).await.ok().as_deref(), Some("token-1"));
        assert_eq!(get(&source, &zero).await.ok().as_deref(), Some("token-2"));
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_refresh() {
        let source = TokenSource::new(sa());
        let fake = Fake::new(3599);
        let results = futures_util::future::join_all((0..50).map(|_| get(&source, &fake))).await;
        assert!(results.iter().all(|r| r.as_deref() == Ok("token-1")));
        assert_eq!(fake.calls(), 1);
        // After expiry, again one refresh for all.
        tokio::time::advance(Duration::from_secs(3600)).await;
        let results = futures_util::future::join_all((0..50).map(|_| get(&source, &fake))).await;
        assert!(results.iter().all(|r| r.as_deref() == Ok("token-2")));
        assert_eq!(fake.calls(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn callers_waiting_on_a_failed_refresh_share_its_error() {
        let source = TokenSource::new(sa());
        let mut fake = Fake::new(3599);
        fake.refuse = true;
        let results = futures_util::future::join_all((0..20).map(|_| get(&source, &fake))).await;
        assert!(
            results
                .iter()
                .all(|r| r.as_ref().is_err_and(TokenError::is_credential_failure))
        );
        assert_eq!(fake.calls(), 1);
        // A later caller tries again.
        assert!(get(&source, &fake).await.is_err());
        assert_eq!(fake.calls(), 2);
        fake.refuse = false;
        assert_eq!(get(&source, &fake).await.ok().as_deref(), Some("token-3"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_refresh_lets_the_next_caller_refresh() {
        let source = TokenSource::new(sa());
        let fake = Fake::new(3599);
        let first = tokio::time::timeout(Duration::from_millis(10), get(&source, &fake)).await;
        assert!(first.is_err(), "cut short");
        assert_eq!(get(&source, &fake).await.ok().as_deref(), Some("token-2"));
    }

    #[tokio::test(start_paused = true)]
    async fn invalidate_drops_only_the_token_that_failed() {
        let source = TokenSource::new(sa());
        let fake = Fake::new(3599);
        let t1 = source.token_with(async |a| fake.grant(&a).await).await;
        let Ok(t1) = t1 else { panic!("no token") };
        source.invalidate(&t1);
        assert!(source.cached().is_none());
        let t2 = source.token_with(async |a| fake.grant(&a).await).await;
        let Ok(t2) = t2 else { panic!("no token") };
        assert_eq!(t2.expose(), "token-2");
        // A late 401 for the old token does not drop the new one.
        source.invalidate(&t1);
        assert_eq!(
            source.cached().map(|t| t.expose().to_owned()).as_deref(),
            Some("token-2")
        );
        assert!(!format!("{t2:?}").contains("token-2"));
        let header = t2.header_value();
        assert!(header.as_ref().is_some_and(|h| h.is_sensitive()));
        assert_eq!(
            header.as_ref().and_then(|h| h.to_str().ok()),
            Some("Bearer token-2")
        );
    }

    #[test]
    fn the_cache_keeps_one_source_per_account_and_replaces_rotated_keys() {
        let cache = TokenCache::new();
        let a = sa();
        let b = account(
            "b@proj.iam.gserviceaccount.com",
            0,
            "https://oauth2.googleapis.com/token",
        );
        let s1 = cache.source(&a);
        assert!(Arc::ptr_eq(&s1, &cache.source(&a)));
        assert!(!Arc::ptr_eq(&s1, &cache.source(&b)));
        assert_eq!(cache.len(), 2);
        // Same email, another key: a new source.
        let rotated = account(
            "sa@proj.iam.gserviceaccount.com",
            1,
            "https://oauth2.googleapis.com/token",
        );
        assert!(!Arc::ptr_eq(&s1, &cache.source(&rotated)));
        assert_eq!(cache.len(), 2);
        cache.retain(std::slice::from_ref(&rotated));
        assert_eq!(cache.len(), 1);
        cache.retain(&[]);
        assert!(cache.is_empty());
    }
}
