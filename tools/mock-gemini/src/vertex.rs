//! Mock Vertex AI: an OAuth token endpoint for service accounts (`POST /token`, the JWT-bearer
//! grant with the assertion's RS256 signature checked against the public key registered
//! for its `iss`), the access tokens it issued (with a configurable `expires_in`), express
//! keys, and the Vertex paths (`/v1/projects/{p}/locations/{l}/publishers/google/models/…`,
//! `/v1/publishers/google/models/…`, the `v1beta1` publisher-models list) with their
//! authentication. Generation itself is the mock's usual answer, in Vertex's shape
//! (`createTime`, `trafficType`, no `index` on a single candidate).
//!
//! Throwaway RSA keys are generated at run time ([`generate_account`]); none is ever stored
//! on disk.

use crate::wire::ApiError;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// Access tokens remembered (oldest dropped first).
const MAX_TOKENS: usize = 10_000;
/// The scope a Vertex token must be asked for.
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Google's clock-skew allowance for `iat`.
const SKEW: u64 = 300;

/// Models in the publisher-models list (those the mock's model store knows).
pub const VERTEX_MODELS: &[&str] = &[
    "gemini-2.0-flash-001",
    "gemini-2.0-flash-lite-001",
    "gemini-2.5-flash",
    "gemini-2.5-flash-lite",
    "gemini-2.5-pro",
    "gemini-3-flash-preview",
    "gemini-3-pro-preview",
];

/// Vertex details of a recorded request.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct VertexCall {
    /// From the path (`None` on the express and list paths).
    pub project: Option<String>,
    pub location: Option<String>,
    /// The service account's `client_email` (Bearer token) or the express key; `None` when
    /// the request was not authenticated.
    pub credential: Option<String>,
    /// The express path (`/v1/publishers/google/models/…`).
    pub express: bool,
}

/// A generated service account: the key file's JSON (its `token_uri` is the mock's).
#[derive(Clone)]
pub struct GeneratedAccount {
    pub client_email: String,
    pub project_id: String,
    /// The whole service-account key file, as Google's console gives it.
    pub json: String,
    /// The public key (X.509 SubjectPublicKeyInfo DER).
    pub public_key_der: Vec<u8>,
}

impl std::fmt::Debug for GeneratedAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedAccount")
            .field("client_email", &self.client_email)
            .field("project_id", &self.project_id)
            .finish_non_exhaustive()
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A fresh RSA-2048 service account for `email` in `project` whose `token_uri` is `token_uri`.
pub fn generate_account(
    email: &str,
    project: &str,
    token_uri: &str,
) -> std::io::Result<GeneratedAccount> {
    let err = |what: &str| std::io::Error::other(format!("mock-gemini: {what}"));
    let kp = KeyPair::generate(KeySize::Rsa2048).map_err(|_| err("RSA key generation failed"))?;
    let private = kp
        .as_der()
        .map_err(|_| err("RSA key encoding failed"))?
        .as_ref()
        .to_vec();
    let public = kp
        .public_key()
        .as_der()
        .map_err(|_| err("RSA public key encoding failed"))?
        .as_ref()
        .to_vec();
    let key_id = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
    let json = json!({
        "type": "service_account",
        "project_id": project,
        "private_key_id": key_id,
        "private_key": pem("PRIVATE KEY", &private),
        "client_email": email,
        "client_id": fastrand::u64(100_000_000_000..999_999_999_999).to_string(),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "universe_domain": "googleapis.com"
    });
    Ok(GeneratedAccount {
        client_email: email.to_owned(),
        project_id: project.to_owned(),
        json: serde_json::to_string_pretty(&json).unwrap_or_default(),
        public_key_der: public,
    })
}

struct Registered {
    project: String,
    public_key: Vec<u8>,
    /// `Some(description)`: the token endpoint answers `invalid_grant` with it.
    refuse: Option<String>,
}

struct Issued {
    email: String,
    expires: Instant,
}

#[derive(Default)]
struct Inner {
    accounts: HashMap<String, Registered>,
    tokens: HashMap<String, Issued>,
    order: VecDeque<String>,
    express_keys: HashSet<String>,
    token_requests: HashMap<String, u64>,
    token_requests_total: u64,
}

/// The mock's Vertex state.
pub(crate) struct Vertex {
    token_uri: String,
    lifetime: std::sync::atomic::AtomicU64,
    inner: Mutex<Inner>,
}

fn lock(m: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Why a Vertex call is not authenticated.
pub(crate) enum AuthError {
    Missing { api_key: bool },
    BadToken { expired: bool },
    BadKey,
}

impl AuthError {
    pub(crate) fn api_error(&self, method: &str) -> ApiError {
        let info = |reason: &str| {
            json!({"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
                   "domain": "googleapis.com",
                   "metadata": {"service": "aiplatform.googleapis.com",
                                "method": format!("google.cloud.aiplatform.v1.PredictionService.{method}")}})
        };
        match self {
            Self::Missing { api_key: true } => ApiError::with_details(
                401,
                "UNAUTHENTICATED",
                "API keys are not supported by this API. Expected OAuth2 access token or other \
                 authentication credentials that assert a principal. See \
                 https://cloud.google.com/docs/authentication",
                &[info("CREDENTIALS_MISSING")],
            ),
            Self::Missing { api_key: false } => ApiError::with_details(
                401,
                "UNAUTHENTICATED",
                "Request is missing required authentication credential. Expected OAuth 2 access \
                 token, login cookie or other valid authentication credential. See \
                 https://developers.google.com/identity/sign-in/web/devconsole-project.",
                &[info("CREDENTIALS_MISSING")],
            ),
            Self::BadToken { expired } => ApiError::with_details(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, \
                 login cookie or other valid authentication credential. See \
                 https://developers.google.com/identity/sign-in/web/devconsole-project.",
                &[info(if *expired {
                    "ACCESS_TOKEN_EXPIRED"
                } else {
                    "ACCESS_TOKEN_TYPE_UNSUPPORTED"
                })],
            ),
            Self::BadKey => {
                let msg = "API key not valid. Please pass a valid API key.";
                ApiError::with_details(400, "INVALID_ARGUMENT", msg, &[info("API_KEY_INVALID")])
            }
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `(status, body)` of a token endpoint answer.
type TokenAnswer = (u16, Vec<u8>);

fn oauth_error(status: u16, error: &str, description: &str) -> TokenAnswer {
    let body = json!({"error": error, "error_description": description});
    (status, serde_json::to_vec(&body).unwrap_or_default())
}

fn b64_json(part: &str) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

impl Vertex {
    pub(crate) fn new(token_uri: String) -> Vertex {
        Vertex {
            token_uri,
            lifetime: std::sync::atomic::AtomicU64::new(3599),
            inner: Mutex::new(Inner::default()),
        }
    }

    pub(crate) fn token_uri(&self) -> &str {
        &self.token_uri
    }

    pub(crate) fn register(&self, email: &str, project: &str, public_key_der: Vec<u8>) {
        lock(&self.inner).accounts.insert(
            email.to_owned(),
            Registered {
                project: project.to_owned(),
                public_key: public_key_der,
                refuse: None,
            },
        );
    }

    pub(crate) fn refuse(&self, email: &str, description: Option<&str>) {
        if let Some(a) = lock(&self.inner).accounts.get_mut(email) {
            a.refuse = description.map(str::to_owned);
        }
    }

    pub(crate) fn set_lifetime(&self, secs: u64) {
        self.lifetime
            .store(secs, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn expire_tokens(&self) {
        let now = Instant::now();
        for t in lock(&self.inner).tokens.values_mut() {
            t.expires = now;
        }
    }

    pub(crate) fn add_express_key(&self, key: &str) {
        lock(&self.inner).express_keys.insert(key.to_owned());
    }

    pub(crate) fn token_requests(&self, email: Option<&str>) -> u64 {
        let inner = lock(&self.inner);
        match email {
            None => inner.token_requests_total,
            Some(e) => inner.token_requests.get(e).copied().unwrap_or(0),
        }
    }

    pub(crate) fn stats(&self) -> Value {
        let inner = lock(&self.inner);
        json!({"token_requests": inner.token_requests_total, "by_account": inner.token_requests})
    }

    pub(crate) fn reset_counts(&self) {
        let mut inner = lock(&self.inner);
        inner.token_requests.clear();
        inner.token_requests_total = 0;
    }

    /// `POST /token`: the JWT-bearer grant, checked as Google does.
    pub(crate) fn grant(&self, content_type: Option<&str>, body: &[u8]) -> TokenAnswer {
        let form: HashMap<String, String> = String::from_utf8_lossy(body)
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (decode_form(k), decode_form(v)))
            .collect();
        {
            let mut inner = lock(&self.inner);
            inner.token_requests_total += 1;
        }
        if !content_type.is_some_and(|c| c.starts_with("application/x-www-form-urlencoded")) {
            return oauth_error(
                400,
                "invalid_request",
                "Content-Type must be application/x-www-form-urlencoded",
            );
        }
        match form.get("grant_type").map(String::as_str) {
            Some(JWT_BEARER) => {}
            Some(other) => {
                return oauth_error(
                    400,
                    "unsupported_grant_type",
                    &format!("Invalid grant_type: {other}"),
                );
            }
            None => {
                return oauth_error(
                    400,
                    "invalid_request",
                    "Missing required parameter: grant_type",
                );
            }
        }
        let Some(jwt) = form.get("assertion") else {
            return oauth_error(
                400,
                "invalid_request",
                "Missing required parameter: assertion",
            );
        };
        let parts: Vec<&str> = jwt.split('.').collect();
        let [h, c, s] = parts[..] else {
            return oauth_error(
                400,
                "invalid_grant",
                "Invalid JWT: wrong number of segments",
            );
        };
        let (Some(header), Some(claims)) = (b64_json(h), b64_json(c)) else {
            return oauth_error(
                400,
                "invalid_grant",
                "Invalid JWT: unreadable header or claims",
            );
        };
        if header["alg"] != "RS256" {
            return oauth_error(400, "invalid_grant", "Invalid JWT: only RS256 is accepted");
        }
        let email = claims["iss"].as_str().unwrap_or_default().to_owned();
        {
            let mut inner = lock(&self.inner);
            *inner.token_requests.entry(email.clone()).or_default() += 1;
        }
        let (public_key, refuse) = {
            let inner = lock(&self.inner);
            match inner.accounts.get(&email) {
                Some(a) => (a.public_key.clone(), a.refuse.clone()),
                None => {
                    return oauth_error(400, "invalid_grant", "Invalid grant: account not found");
                }
            }
        };
        let signature = URL_SAFE_NO_PAD
            .decode(s.trim_end_matches('='))
            .unwrap_or_default();
        let signed = &jwt[..h.len() + 1 + c.len()];
        if UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &public_key)
            .verify(signed.as_bytes(), &signature)
            .is_err()
        {
            return oauth_error(400, "invalid_grant", "Invalid JWT Signature.");
        }
        if let Some(description) = refuse {
            return oauth_error(400, "invalid_grant", &description);
        }
        if claims["aud"].as_str() != Some(self.token_uri.as_str()) {
            return oauth_error(
                400,
                "invalid_grant",
                &format!(
                    "Invalid JWT: Failed audience check. The expected audience is {}.",
                    self.token_uri
                ),
            );
        }
        let scopes = claims["scope"].as_str().unwrap_or_default();
        if !scopes.split(' ').any(|s| s == SCOPE) {
            return oauth_error(
                400,
                "invalid_scope",
                "Invalid OAuth scope or ID token audience provided.",
            );
        }
        let (iat, exp) = (claims["iat"].as_u64(), claims["exp"].as_u64());
        let now = unix_now();
        let timely = match (iat, exp) {
            (Some(iat), Some(exp)) => {
                exp > iat && exp - iat <= 3600 && iat <= now + SKEW && now < exp + SKEW
            }
            _ => false,
        };
        if !timely {
            return oauth_error(
                400,
                "invalid_grant",
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable \
                 timeframe. Check your iat and exp values in the JWT claim.",
            );
        }
        let lifetime = self.lifetime.load(std::sync::atomic::Ordering::Relaxed);
        let token = format!(
            "ya29.c.mock-{}",
            (0..48)
                .map(|_| fastrand::alphanumeric())
                .collect::<String>()
        );
        {
            let mut inner = lock(&self.inner);
            if inner.order.len() >= MAX_TOKENS
                && let Some(old) = inner.order.pop_front()
            {
                inner.tokens.remove(&old);
            }
            inner.order.push_back(token.clone());
            inner.tokens.insert(
                token.clone(),
                Issued {
                    email,
                    expires: Instant::now() + Duration::from_secs(lifetime),
                },
            );
        }
        let body = json!({"access_token": token, "expires_in": lifetime, "token_type": "Bearer"});
        (200, serde_json::to_vec_pretty(&body).unwrap_or_default())
    }

    /// The account behind a Bearer token.
    pub(crate) fn bearer(&self, token: &str) -> Result<String, AuthError> {
        let inner = lock(&self.inner);
        match inner.tokens.get(token) {
            Some(t) if Instant::now() < t.expires => Ok(t.email.clone()),
            Some(_) => Err(AuthError::BadToken { expired: true }),
            None => Err(AuthError::BadToken { expired: false }),
        }
    }

    pub(crate) fn express(&self, key: &str) -> bool {
        lock(&self.inner).express_keys.contains(key)
    }

    /// The project a registered account belongs to.
    pub(crate) fn project_of(&self, email: &str) -> Option<String> {
        lock(&self.inner)
            .accounts
            .get(email)
            .map(|a| a.project.clone())
    }
}

fn decode_form(s: &str) -> String {
    let s = s.replace('+', " ");
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A Vertex path.
pub(crate) enum VertexRoute {
    /// `…/projects/{p}/locations/{l}/publishers/google/models/{model}:{action}` or the
    /// express form without project and location.
    Action {
        version: String,
        project: Option<String>,
        location: Option<String>,
        model: String,
        action: String,
    },
    /// `GET /v1beta1/publishers/google/models`.
    List,
}

/// Reads a Vertex path (segments percent-decoded), `None` when it is not one.
pub(crate) fn route(
    is_get: bool,
    path: &str,
    decode: &dyn Fn(&str) -> String,
) -> Option<VertexRoute> {
    let segs: Vec<String> = path
        .strip_prefix('/')
        .unwrap_or(path)
        .split('/')
        .map(decode)
        .collect();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let action = |version: &str, project: Option<&str>, location: Option<&str>, last: &str| {
        let (model, action) = last.rsplit_once(':')?;
        (!model.is_empty() && !is_get).then(|| VertexRoute::Action {
            version: version.to_owned(),
            project: project.map(str::to_owned),
            location: location.map(str::to_owned),
            model: model.to_owned(),
            action: action.to_owned(),
        })
    };
    match s[..] {
        [
            v @ ("v1" | "v1beta1"),
            "projects",
            p,
            "locations",
            l,
            "publishers",
            "google",
            "models",
            last,
        ] if !p.is_empty() && !l.is_empty() => action(v, Some(p), Some(l), last),
        [
            v @ ("v1" | "v1beta1"),
            "publishers",
            "google",
            "models",
            last,
        ] => action(v, None, None, last),
        ["v1beta1" | "v1", "publishers", "google", "models"] if is_get => Some(VertexRoute::List),
        _ => None,
    }
}

/// The publisher-models list body for the models the store knows.
pub(crate) fn publisher_models(known: &dyn Fn(&str) -> bool) -> Vec<u8> {
    let models: Vec<Value> = VERTEX_MODELS
        .iter()
        .filter(|m| known(m))
        .map(|m| {
            json!({"name": format!("publishers/google/models/{m}"), "versionId": "default",
                   "openSourceCategory": "PROPRIETARY", "launchStage": "GA",
                   "versionState": "VERSION_STATE_STABLE"})
        })
        .collect();
    serde_json::to_vec_pretty(&json!({"publisherModels": models})).unwrap_or_default()
}

/// Vertex's 404 for a model it does not serve.
pub(crate) fn model_not_found(
    project: Option<&str>,
    location: Option<&str>,
    model: &str,
) -> ApiError {
    let name = match (project, location) {
        (Some(p), Some(l)) => {
            format!("projects/{p}/locations/{l}/publishers/google/models/{model}")
        }
        _ => format!("publishers/google/models/{model}"),
    };
    ApiError::new(
        404,
        "NOT_FOUND",
        &format!(
            "Publisher Model `{name}` was not found or your project does not have access to it. \
             Please ensure you are using a valid model version. For more information, see: \
             https://cloud.google.com/vertex-ai/generative-ai/docs/learn/model-versions"
        ),
    )
}

/// The current time as Vertex writes `createTime` (RFC 3339, microseconds, UTC).
pub(crate) fn create_time() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_micros()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_time_is_rfc3339() {
        let t = create_time();
        assert_eq!(t.len(), "2025-10-24T07:45:16.255887Z".len(), "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z'), "{t}");
    }

    #[test]
    fn vertex_paths() {
        let id = |s: &str| s.to_owned();
        assert!(matches!(
            route(false, "/v1/projects/p/locations/global/publishers/google/models/m:generateContent", &id),
            Some(VertexRoute::Action { project: Some(p), location: Some(l), model, action, .. })
                if p == "p" && l == "global" && model == "m" && action == "generateContent"
        ));
        assert!(matches!(
            route(false, "/v1/publishers/google/models/m:countTokens", &id),
            Some(VertexRoute::Action { project: None, .. })
        ));
        assert!(matches!(
            route(true, "/v1beta1/publishers/google/models", &id),
            Some(VertexRoute::List)
        ));
        assert!(route(false, "/v1beta/models/m:generateContent", &id).is_none());
        assert!(route(true, "/v1/publishers/google/models/m:generateContent", &id).is_none());
    }
}
