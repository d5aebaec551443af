//! The one error type of the gateway. Every failure a client can see is a [`GatewayError`];
//! it knows its HTTP status and renders itself in the shape of the route family that
//! failed (OpenAI, Google, or HAJIMI's dashboard `{"detail"}`), with the bilingual
//! messages of decisions §3. Nothing here logs, except `Internal`, our own fault.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Which wire shape an error is rendered in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Flavor {
    #[default]
    OpenAi,
    Gemini,
    /// HAJIMI's dashboard API: `{"detail": "..."}`.
    Detail,
    /// Anthropic Messages routes: `{"type": "error", "error": {"type", "message"}}` with
    /// Anthropic's statuses (529 overloaded, 402 billing for long waits).
    Anthropic,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum GatewayError {
    /// The request is malformed or asks for something impossible (400).
    #[error("{message}")]
    BadRequest {
        message: String,
        param: Option<String>,
        code: Option<&'static str>,
    },
    /// Missing or wrong client password (401).
    #[error("密码错误或缺失 / Incorrect or missing API key (the proxy's PASSWORD)")]
    Unauthorized,
    /// Wrong dashboard password (401).
    #[error("密码错误 / Incorrect or missing dashboard password (WEB_PASSWORD)")]
    WebUnauthorized,
    /// Not allowed by the User-Agent whitelist (403).
    #[error("不允许的客户端 / This client is not allowed (WHITELIST_USER_AGENT)")]
    ForbiddenClient,
    /// Google refused the request itself with a 401/403 that is not about our keys (a file
    /// of another project, credentials the client injected): 403 `permission_error`, never
    /// 401, which clients read as a wrong proxy password.
    #[error("{message}")]
    Forbidden { message: String, code: &'static str },
    #[error("{message}")]
    NotFound { message: String, code: &'static str },
    #[error("不支持的请求方法 / Method not allowed")]
    MethodNotAllowed,
    #[error(
        "请求体超过 {limit} 字节上限 / Request body exceeds the limit of {limit} bytes (MAX_BODY_SIZE)"
    )]
    PayloadTooLarge { limit: usize },
    /// Our own rate limits (429).
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after: Duration,
    },
    /// Every attempt hit an upstream quota (429).
    #[error("{message}")]
    QuotaExhausted {
        message: String,
        retry_after: Option<Duration>,
    },
    /// No key can serve for a long while (more than a minute: out of quota for the day,
    /// cooling for long, or every key retired). OpenAI routes: 503 `insufficient_quota`,
    /// because clients retry a 429 (SillyTavern five times over 155 s) where nothing can
    /// change soon; native Gemini routes keep Google's 429 `RESOURCE_EXHAUSTED` (503
    /// `UNAVAILABLE` when every key is retired) (decisions §3).
    #[error("{message}")]
    InsufficientQuota {
        message: String,
        retry_after: Option<Duration>,
        /// Every key is invalid or suspended (not a quota that resets).
        retired: bool,
    },
    /// An upstream answer we could not use (502).
    #[error("{message}")]
    BadGateway { message: String },
    /// No usable key, or every attempt failed for key/availability reasons (503).
    #[error("{message}")]
    Unavailable { message: String },
    /// The deadline passed before an answer started (504).
    #[error("{message}")]
    Timeout { message: String },
    #[error("{0}")]
    NotImplemented(String),
    /// A well-formed request with a value that cannot be used (422; the dashboard API's
    /// validation errors, as HAJIMI answers them).
    #[error("{message}")]
    Unprocessable { message: String },
    /// The request conflicts with work in progress (409: a key test already running).
    #[error("{message}")]
    Conflict { message: String },
    /// A change could not be made durable (500; the dashboard says what failed).
    #[error("{message}")]
    Storage { message: String },
    /// A failure inside the gateway; details go to the log, never to the client.
    #[error("内部错误 / Internal error")]
    Internal(std::sync::Arc<anyhow::Error>),
}

impl From<anyhow::Error> for GatewayError {
    fn from(e: anyhow::Error) -> Self {
        Self::Internal(std::sync::Arc::new(e))
    }
}

impl GatewayError {
    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        Self::Internal(std::sync::Arc::new(e.into()))
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest {
            message: message.into(),
            param: None,
            code: None,
        }
    }

    pub fn bad_param(message: impl Into<String>, param: &str) -> Self {
        Self::BadRequest {
            message: message.into(),
            param: Some(param.to_owned()),
            code: None,
        }
    }

    /// The status on OpenAI routes and the dashboard API (see [`GatewayError::status_in`]).
    pub fn status(&self) -> StatusCode {
        self.status_in(Flavor::OpenAi)
    }

    /// The status in a route family's shape: long quota waits are a 503 for OpenAI
    /// clients but stay Google's 429 on native routes.
    pub fn status_in(&self, flavor: Flavor) -> StatusCode {
        if flavor == Flavor::Anthropic
            && let Some(status) = self.anthropic_status()
        {
            return status;
        }
        match self {
            Self::InsufficientQuota { retired, .. } => {
                if flavor == Flavor::Gemini && !retired {
                    StatusCode::TOO_MANY_REQUESTS
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                }
            }
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized | Self::WebUnauthorized => StatusCode::UNAUTHORIZED,
            Self::ForbiddenClient | Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RateLimited { .. } | Self::QuotaExhausted { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::BadGateway { .. } => StatusCode::BAD_GATEWAY,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Self::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            Self::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::Internal(_) | Self::Storage { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => Some(*retry_after),
            Self::QuotaExhausted { retry_after, .. }
            | Self::InsufficientQuota { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// OpenAI's `type` field.
    fn openai_type(&self) -> &'static str {
        match self {
            Self::BadRequest { .. }
            | Self::Unauthorized
            | Self::WebUnauthorized
            | Self::NotFound { .. }
            | Self::MethodNotAllowed
            | Self::PayloadTooLarge { .. }
            | Self::Unprocessable { .. }
            | Self::Conflict { .. } => "invalid_request_error",
            Self::ForbiddenClient | Self::Forbidden { .. } => "permission_error",
            Self::RateLimited { .. } | Self::QuotaExhausted { .. } => "rate_limit_error",
            Self::InsufficientQuota { .. } => "insufficient_quota",
            Self::BadGateway { .. }
            | Self::Unavailable { .. }
            | Self::Timeout { .. }
            | Self::Storage { .. }
            | Self::Internal(_) => "server_error",
            Self::NotImplemented(_) => "not_implemented",
        }
    }

    /// OpenAI's `code` field (a string or null).
    fn openai_code(&self) -> Option<&'static str> {
        match self {
            Self::BadRequest { code, .. } => *code,
            Self::Unauthorized | Self::WebUnauthorized => Some("invalid_api_key"),
            Self::ForbiddenClient => Some("client_not_allowed"),
            Self::Forbidden { code, .. } => Some(code),
            Self::NotFound { code, .. } => Some(code),
            Self::MethodNotAllowed => Some("method_not_allowed"),
            Self::PayloadTooLarge { .. } => Some("request_too_large"),
            Self::RateLimited { .. } => Some("rate_limit_exceeded"),
            Self::QuotaExhausted { .. } => Some("upstream_quota_exhausted"),
            Self::InsufficientQuota { .. } => Some("insufficient_quota"),
            Self::BadGateway { .. } => Some("bad_upstream_response"),
            Self::Unavailable { .. } => Some("upstream_unavailable"),
            Self::Timeout { .. } => Some("timeout"),
            Self::NotImplemented(_) => Some("not_implemented"),
            Self::Unprocessable { .. } => Some("invalid_value"),
            Self::Conflict { .. } => Some("conflict"),
            Self::Storage { .. } => Some("storage_failed"),
            Self::Internal(_) => None,
        }
    }

    /// Where Anthropic's statuses differ from OpenAI's (decisions §3): no usable credential
    /// for a short while is 529 `overloaded_error` (agents retry it), a long wait or every
    /// key retired is 402 `billing_error` (nothing changes soon, so agents should not retry).
    fn anthropic_status(&self) -> Option<StatusCode> {
        match self {
            Self::Unavailable { .. } => StatusCode::from_u16(529).ok(),
            Self::InsufficientQuota { .. } => Some(StatusCode::PAYMENT_REQUIRED),
            _ => None,
        }
    }

    /// Anthropic's error type for this error.
    pub fn anthropic_type(&self) -> &'static str {
        match self {
            Self::BadRequest { .. }
            | Self::MethodNotAllowed
            | Self::Unprocessable { .. }
            | Self::Conflict { .. } => "invalid_request_error",
            Self::Unauthorized | Self::WebUnauthorized => "authentication_error",
            Self::ForbiddenClient | Self::Forbidden { .. } => "permission_error",
            Self::NotFound { .. } => "not_found_error",
            Self::PayloadTooLarge { .. } => "request_too_large",
            Self::RateLimited { .. } | Self::QuotaExhausted { .. } => "rate_limit_error",
            Self::InsufficientQuota { .. } => "billing_error",
            Self::Unavailable { .. } => "overloaded_error",
            Self::Timeout { .. } => "timeout_error",
            Self::BadGateway { .. }
            | Self::NotImplemented(_)
            | Self::Storage { .. }
            | Self::Internal(_) => "api_error",
        }
    }

    /// Anthropic's error object (`{"type": "error", "error": {"type", "message"}}`), also
    /// the payload of an in-stream `error` event.
    pub fn anthropic_body(&self) -> serde_json::Value {
        serde_json::to_value(self.anthropic_error()).unwrap_or_else(|_| json!({"type": "error"}))
    }

    /// [`GatewayError::anthropic_body`] as the typed envelope (serialised with `type` first).
    pub fn anthropic_error(&self) -> crate::wire::anthropic::ErrorResponse {
        crate::wire::anthropic::ErrorResponse::new(
            self.status_in(Flavor::Anthropic).as_u16(),
            self.to_string(),
            Some(self.anthropic_type()),
        )
    }

    /// The OpenAI error object (`{"error": {...}}`), also used in-band in streams.
    pub fn openai_body(&self) -> serde_json::Value {
        let param = match self {
            Self::BadRequest { param, .. } => param.clone(),
            _ => None,
        };
        json!({ "error": {
            "message": self.to_string(),
            "type": self.openai_type(),
            "param": param,
            "code": self.openai_code(),
        }})
    }

    /// Google's error object (`{"error": {"code", "message", "status"}}`).
    pub fn gemini_body(&self) -> serde_json::Value {
        let status = self.status_in(Flavor::Gemini);
        json!({ "error": {
            "code": status.as_u16(),
            "message": self.to_string(),
            "status": google_status_name(status),
        }})
    }

    pub fn render(&self, flavor: Flavor) -> Response {
        if let Self::Internal(e) = self {
            tracing::error!(error = %crate::mask::scrub_keys(&format!("{e:#}")), "request failed inside the gateway");
        }
        let body = match flavor {
            Flavor::OpenAi => self.openai_body(),
            Flavor::Gemini => self.gemini_body(),
            Flavor::Detail => json!({ "detail": self.to_string() }),
            Flavor::Anthropic => self.anthropic_body(),
        };
        let mut response = (self.status_in(flavor), axum::Json(body)).into_response();
        if let Some(after) = self.retry_after() {
            let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        response
            .extensions_mut()
            .insert(ErrorSeen(self.openai_code().unwrap_or("internal")));
        response
    }
}

/// Put on error responses so the request log can name what went wrong.
#[derive(Clone, Copy, Debug)]
pub struct ErrorSeen(pub &'static str);

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        self.render(Flavor::OpenAi)
    }
}

/// An error with the shape of the route family it is answered in (what extractors reject
/// with and handlers return).
#[derive(Debug)]
pub struct Flavored(pub GatewayError, pub Flavor);

impl IntoResponse for Flavored {
    fn into_response(self) -> Response {
        self.0.render(self.1)
    }
}

impl GatewayError {
    pub fn flavored(self, flavor: Flavor) -> Flavored {
        Flavored(self, flavor)
    }
}

/// The canonical gRPC status name Google puts next to an HTTP status.
pub fn google_status_name(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 413 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        405 | 501 => "UNIMPLEMENTED",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        503 | 502 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_shape_has_all_four_fields() {
        let body = GatewayError::Unauthorized.openai_body();
        let e = &body["error"];
        assert_eq!(e["type"], "invalid_request_error");
        assert_eq!(e["code"], "invalid_api_key");
        assert!(e["param"].is_null());
        assert!(e["message"].as_str().unwrap_or_default().contains(" / "));
    }

    #[test]
    fn google_shape_uses_canonical_status() {
        let err = GatewayError::Unavailable {
            message: "x".into(),
        };
        assert_eq!(err.gemini_body()["error"]["status"], "UNAVAILABLE");
        assert_eq!(err.gemini_body()["error"]["code"], 503);
    }

    #[test]
    fn rate_limits_carry_retry_after_rounded_up() {
        let err = GatewayError::QuotaExhausted {
            message: "q".into(),
            retry_after: Some(Duration::from_millis(34_400)),
        };
        let response = err.render(Flavor::OpenAi);
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()),
            Some("35")
        );
    }

    /// A long quota wait: 503 `insufficient_quota` for OpenAI clients (which retry 429s),
    /// Google's 429 on native routes, `Retry-After` on both.
    #[test]
    fn long_quota_waits_render_per_route_family() {
        let err = GatewayError::InsufficientQuota {
            message: "m".into(),
            retry_after: Some(Duration::from_secs(31_279)),
            retired: false,
        };
        let openai = err.render(Flavor::OpenAi);
        assert_eq!(openai.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            openai
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()),
            Some("31279")
        );
        assert_eq!(err.openai_body()["error"]["type"], "insufficient_quota");
        assert_eq!(err.openai_body()["error"]["code"], "insufficient_quota");
        let gemini = err.render(Flavor::Gemini);
        assert_eq!(gemini.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(gemini.headers().contains_key(header::RETRY_AFTER));
        assert_eq!(err.gemini_body()["error"]["status"], "RESOURCE_EXHAUSTED");
        let retired = GatewayError::InsufficientQuota {
            message: "m".into(),
            retry_after: None,
            retired: true,
        };
        assert_eq!(retired.gemini_body()["error"]["status"], "UNAVAILABLE");
    }

    #[test]
    fn an_upstream_refusal_is_a_403_permission_error() {
        let err = GatewayError::Forbidden {
            message: "no".into(),
            code: "upstream_permission_denied",
        };
        assert_eq!(err.render(Flavor::OpenAi).status(), StatusCode::FORBIDDEN);
        assert_eq!(err.openai_body()["error"]["type"], "permission_error");
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let err = GatewayError::internal(anyhow::anyhow!(
            "secret detail AIzaSyA0000000000000000000000000000001"
        ));
        let body = err.openai_body();
        assert!(!body.to_string().contains("secret detail"));
    }
}
