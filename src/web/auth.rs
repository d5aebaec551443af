//! Who is looking at a page: the session cookie checked by `access::Sessions` (the same
//! sessions as the JSON API's `/api/login`). `Viewer`: anyone (the status card). `Page`: a
//! logged-in session, else 303 to `/login` (an htmx request: 401 with `HX-Redirect`).
//! `Act`: a form POST of a logged-in session carrying the session's CSRF token (form field
//! `csrf` or header `X-CSRF-Token`), its urlencoded fields read within a bound.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::i18n::Lang;
use crate::access::session::{COOKIE, Presented};
use crate::config::Settings;
use crate::error::GatewayError;
use crate::state::AppState;

/// Form bodies: a paste of many keys fits.
const FORM_LIMIT: usize = 2 * 1024 * 1024;

/// A cookie's value.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Anyone: the language, the settings snapshot, and the session's CSRF token when logged in.
pub struct Viewer {
    pub lang: Lang,
    pub snap: Arc<Settings>,
    pub csrf: Option<Arc<str>>,
    pub parts: Parts,
    pub ip: Option<IpAddr>,
}

impl Viewer {
    fn of(parts: &Parts, state: &AppState) -> Self {
        let snap = state.live.current();
        let csrf = cookie(&parts.headers, COOKIE).and_then(|s| state.sessions.csrf(s));
        Self {
            lang: Lang::of(&parts.headers),
            ip: crate::limits::client_ip(parts, &snap.trusted_proxies),
            snap,
            csrf,
            parts: parts.clone(),
        }
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self::of(parts, state))
    }
}

/// Where a logged-out visitor is sent.
pub fn to_login(headers: &HeaderMap) -> Response {
    if headers.contains_key("hx-request") {
        let mut r = StatusCode::UNAUTHORIZED.into_response();
        r.headers_mut()
            .insert("hx-redirect", HeaderValue::from_static("/login"));
        return r;
    }
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, HeaderValue::from_static("/login"))],
    )
        .into_response()
}

/// A logged-in viewer.
pub struct Page(pub Viewer);

impl FromRequestParts<AppState> for Page {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let viewer = Viewer::of(parts, state);
        if viewer.csrf.is_none() {
            return Err(to_login(&parts.headers));
        }
        Ok(Self(viewer))
    }
}

/// A form POST of a logged-in session with its CSRF token; `fields` in order.
pub struct Act {
    pub viewer: Viewer,
    pub fields: Vec<(String, String)>,
}

impl Act {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Reads an urlencoded form body within the bound.
pub async fn form_fields(
    body: axum::body::Body,
    headers: &HeaderMap,
) -> Result<Vec<(String, String)>, GatewayError> {
    let bytes = crate::routes::body::read_limited(body, headers, FORM_LIMIT).await?;
    Ok(url::form_urlencoded::parse(&bytes).into_owned().collect())
}

impl FromRequest<AppState> for Act {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (parts, body) = request.into_parts();
        let viewer = Viewer::of(&parts, state);
        if viewer.csrf.is_none() {
            return Err(to_login(&parts.headers));
        }
        let fields = form_fields(body, &parts.headers)
            .await
            .map_err(|e| e.render(crate::error::Flavor::Detail))?;
        let presented = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .or_else(|| {
                fields
                    .iter()
                    .find(|(k, _)| k == "csrf")
                    .map(|(_, v)| v.as_str())
            });
        let who = Presented {
            bearer: None,
            session: cookie(&parts.headers, COOKIE),
            csrf: presented,
            body: &Value::Null,
            ip: viewer.ip,
        };
        if state
            .sessions
            .authorize(&viewer.snap, &who, true)
            .await
            .is_err()
        {
            let text = format!("403 {}\n", viewer.lang.t("forbidden"));
            return Err((StatusCode::FORBIDDEN, text).into_response());
        }
        Ok(Self { viewer, fields })
    }
}
