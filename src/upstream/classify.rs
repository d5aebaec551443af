//! Reads Google's answer before blaming a key (decisions §3): an upstream failure is
//! classified by `error.details[].reason` and message before its status, into a
//! [`Failure`] that says what happened to the key and whether another key may help.

use std::time::Duration;

use crate::wire::gemini::ErrorEnvelope;

/// Why one upstream attempt did not produce an answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// `API_KEY_INVALID` / `API_KEY_EXPIRED` (Google sends them as 400): the key is dead.
    KeyInvalid,
    /// The key or its project cannot serve: suspended or leaked key, the API or billing
    /// disabled in the project, an IAM denial of the credential.
    KeySuspended,
    /// FAILED_PRECONDITION "free tier not available / enable billing": this key cannot serve.
    KeyNoAccess,
    /// 429: a quota. `daily` when the quota is per day (exhausted until Google's reset).
    Quota {
        retry_after: Option<Duration>,
        daily: bool,
    },
    /// FAILED_PRECONDITION "User location is not supported".
    Location { message: String },
    /// 400 "Penalty is not enabled for this model".
    PenaltyUnsupported { message: String },
    /// Any other 4xx about the request itself: not replayed on other keys.
    BadRequest { status: u16, message: String },
    /// A 401/403 without a reason that belongs to the key (a file of another project,
    /// credentials the client injected): the request's fault, answered to the client.
    Denied { status: u16, message: String },
    /// 404 NOT_FOUND for the model.
    ModelNotFound { message: String },
    /// 503 overloaded / unavailable.
    Overloaded,
    /// 500 and other 5xx.
    ServerError { status: u16 },
    /// No answer (headers, or bytes of a body) within `UPSTREAM_TIMEOUT`.
    Timeout,
    /// Could not connect or the connection broke.
    Connection,
    /// A 2xx body we could not use.
    Garbage { detail: String },
    /// A 2xx with nothing usable in it (decisions §4).
    Empty { reason: String },
}

/// What an attempt's failure means for the key that made it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeyEffect {
    /// Not the key's fault.
    None,
    /// Out of rotation until an operator or the re-check puts it back.
    Invalid,
    Suspended,
    /// Off this model for a while.
    Cooldown(Option<Duration>),
    /// Off this model until the daily quota reset.
    ExhaustedForToday,
}

impl Failure {
    /// True when the request itself is wrong: answer the client, do not try other keys.
    pub fn is_request_error(&self) -> bool {
        matches!(
            self,
            Self::BadRequest { .. }
                | Self::Denied { .. }
                | Self::ModelNotFound { .. }
                | Self::Location { .. }
        )
    }

    /// True when no other key would do better: a request error, or a refusal of penalties
    /// (answered by a fixed retry, else by the client).
    pub fn ends_request(&self) -> bool {
        self.is_request_error() || matches!(self, Self::PenaltyUnsupported { .. })
    }

    pub fn key_effect(&self) -> KeyEffect {
        match self {
            Self::KeyInvalid => KeyEffect::Invalid,
            Self::KeySuspended => KeyEffect::Suspended,
            Self::KeyNoAccess => KeyEffect::ExhaustedForToday,
            Self::Quota { daily: true, .. } => KeyEffect::ExhaustedForToday,
            Self::Quota { retry_after, .. } => KeyEffect::Cooldown(*retry_after),
            _ => KeyEffect::None,
        }
    }

    /// A short bilingual label for messages and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::KeyInvalid => "密钥无效 invalid key",
            Self::KeySuspended => "密钥被停用 key suspended or denied",
            Self::KeyNoAccess => "密钥无权使用该模型 key has no access to the model",
            Self::Quota { .. } => "配额用尽 quota exhausted (429)",
            Self::Location { .. } => "地区不支持 location not supported",
            Self::PenaltyUnsupported { .. } => "模型不支持惩罚参数 penalties not supported",
            Self::BadRequest { .. } => "请求错误 bad request",
            Self::Denied { .. } => "上游拒绝了该请求 request refused (401/403)",
            Self::ModelNotFound { .. } => "模型不存在 model not found",
            Self::Overloaded => "服务过载 overloaded (503)",
            Self::ServerError { .. } => "上游内部错误 upstream server error (5xx)",
            Self::Timeout => "上游超时 upstream timeout",
            Self::Connection => "连接失败 connection error",
            Self::Garbage { .. } => "上游响应无法解析 unreadable upstream answer",
            Self::Empty { .. } => "空响应 empty answer",
        }
    }

    /// A stable low-cardinality name (logs, metrics).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::KeyInvalid => "key_invalid",
            Self::KeySuspended => "key_suspended",
            Self::KeyNoAccess => "key_no_access",
            Self::Quota { daily: true, .. } => "quota_daily",
            Self::Quota { .. } => "quota",
            Self::Location { .. } => "location",
            Self::PenaltyUnsupported { .. } => "penalty",
            Self::BadRequest { .. } => "bad_request",
            Self::Denied { .. } => "denied",
            Self::ModelNotFound { .. } => "model_not_found",
            Self::Overloaded => "overloaded",
            Self::ServerError { .. } => "server_error",
            Self::Timeout => "timeout",
            Self::Connection => "connection",
            Self::Garbage { .. } => "garbage",
            Self::Empty { .. } => "empty",
        }
    }
}

/// ErrorInfo reasons that belong to the key or its account (decisions §3): with one of them
/// the key leaves rotation and the request is tried on another key.
const INVALID_KEY_REASONS: [&str; 2] = ["API_KEY_INVALID", "API_KEY_EXPIRED"];
const RETIRED_KEY_REASONS: [&str; 4] = [
    "CONSUMER_SUSPENDED",
    "SERVICE_DISABLED",
    "BILLING_DISABLED",
    "IAM_PERMISSION_DENIED",
];

/// Classifies a non-2xx upstream answer.
pub fn classify(status: u16, body: &[u8]) -> Failure {
    let envelope: ErrorEnvelope = parse_envelope(body);
    let err = &envelope.error;
    let message = crate::mask::scrub_keys(err.message.trim());
    let lower = message.to_ascii_lowercase();
    // A reason counts when it is about the Gemini API itself: another Google service that
    // a request makes Google use (a file in Cloud Storage) is the request's business.
    let has_reason = |reasons: &[&str]| {
        err.details.iter().any(|d| {
            d.reason.as_deref().is_some_and(|r| reasons.contains(&r))
                && d.metadata
                    .as_ref()
                    .and_then(|m| m.get("service"))
                    .and_then(serde_json::Value::as_str)
                    .is_none_or(is_gemini_service)
        })
    };
    let grpc = err.status.as_deref().unwrap_or_default();

    if has_reason(&INVALID_KEY_REASONS) || names_an_invalid_key(&lower) {
        return Failure::KeyInvalid;
    }
    if has_reason(&RETIRED_KEY_REASONS) || names_a_retired_key(&lower) {
        return Failure::KeySuspended;
    }
    if grpc == "FAILED_PRECONDITION" || lower.contains("user location is not supported") {
        if lower.contains("location is not supported") {
            return Failure::Location { message };
        }
        if lower.contains("free tier") || lower.contains("billing") {
            return Failure::KeyNoAccess;
        }
    }
    match status {
        // Without a reason that belongs to the key, a refusal is about the request (a file
        // of another project, credentials the client injected): never the key's fault, or
        // one client could retire every key in turn (issue 8).
        401 | 403 => Failure::Denied {
            status,
            message: if message.is_empty() {
                format!("upstream answered {status}")
            } else {
                message
            },
        },
        429 => quota(&envelope),
        404 => Failure::ModelNotFound {
            message: if message.is_empty() {
                "model not found".into()
            } else {
                message
            },
        },
        400..=499 => {
            if lower.contains("penalty is not enabled") {
                Failure::PenaltyUnsupported { message }
            } else {
                Failure::BadRequest {
                    status,
                    message: if message.is_empty() {
                        format!("upstream answered {status}")
                    } else {
                        message
                    },
                }
            }
        }
        503 => Failure::Overloaded,
        _ => Failure::ServerError { status },
    }
}

/// The services a key is used for: the Gemini API (and its staging copies), Vertex AI.
fn is_gemini_service(service: &str) -> bool {
    service.contains("generativelanguage") || service.contains("aiplatform")
}

/// Google's messages about a bad key, which open its message. Matched at the start only:
/// Google quotes parts of the request inside other messages (unknown field names, file
/// names), and a client must not be able to retire keys by writing these words.
fn names_an_invalid_key(lower: &str) -> bool {
    ["api key not valid", "api key not found", "api key expired"]
        .iter()
        .any(|p| lower.starts_with(p))
}

/// Google's messages, without an ErrorInfo reason, about a key or project that cannot be
/// used: reported as leaked, suspended or denied consumer, the API disabled in the project.
fn names_a_retired_key(lower: &str) -> bool {
    if lower.starts_with("your api key was reported as leaked") {
        return true;
    }
    if lower.starts_with("permission denied: consumer ")
        && (lower.ends_with("has been suspended.") || lower.ends_with("has been denied."))
    {
        return true;
    }
    // "Generative Language API has not been used in project 123 before or it is disabled. …"
    // (Vertex AI: "Vertex AI API has not been used …"); other APIs are not ours.
    lower
        .split_once(" api has not been used in project ")
        .is_some_and(|(api, rest)| {
            (api.starts_with("generative language") || api == "vertex ai")
                && api.len() <= 40
                && api
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || " ()-".contains(c))
                && rest.split_once(' ').is_some_and(|(project, after)| {
                    !project.is_empty()
                        && project
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-')
                        && after.starts_with("before or it is disabled")
                })
        })
}

fn parse_envelope(body: &[u8]) -> ErrorEnvelope {
    // The JSON-array stream form wraps errors in an array: `[{"error": {...}}]`.
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return serde_json::from_slice::<Vec<ErrorEnvelope>>(body)
            .ok()
            .and_then(|v| v.into_iter().next())
            .unwrap_or_default();
    }
    serde_json::from_slice::<ErrorEnvelope>(body).unwrap_or_default()
}

fn quota(envelope: &ErrorEnvelope) -> Failure {
    let details = &envelope.error.details;
    let retry_after = details
        .iter()
        .filter_map(|d| d.retry_delay.as_deref())
        .find_map(parse_proto_duration);
    let daily = details.iter().flat_map(|d| d.violations.iter()).any(|v| {
        v.quota_id.as_deref().is_some_and(|q| q.contains("PerDay"))
            || v.quota_metric
                .as_deref()
                .is_some_and(|m| m.contains("per_day"))
    });
    Failure::Quota { retry_after, daily }
}

/// `"34s"`, `"34.4s"`, `"0.5s"` → a duration.
pub fn parse_proto_duration(s: &str) -> Option<Duration> {
    let secs: f64 = s.trim().strip_suffix('s')?.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0 * 2.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/fixtures/gemini/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("fixture")
    }

    const INVALID_KEY: &str = r#"{"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT",
      "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com",
       "metadata": {"service": "generativelanguage.googleapis.com"}}]}}"#;

    #[test]
    fn an_invalid_key_400_is_a_key_failure_not_a_request_error() {
        let f = classify(400, INVALID_KEY.as_bytes());
        assert_eq!(f, Failure::KeyInvalid);
        assert!(!f.is_request_error());
        assert_eq!(f.key_effect(), KeyEffect::Invalid);
    }

    #[test]
    fn quota_with_retry_info_cools_the_key_for_that_long() {
        let f = classify(
            429,
            &fixture("error.429.resource-exhausted-retry-info.json"),
        );
        assert_eq!(
            f,
            Failure::Quota {
                retry_after: Some(Duration::from_millis(34_400)),
                daily: false
            }
        );
        assert_eq!(
            f.key_effect(),
            KeyEffect::Cooldown(Some(Duration::from_millis(34_400)))
        );
    }

    #[test]
    fn daily_quota_exhausts_until_reset() {
        let body = br#"{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]}]}}"#;
        assert_eq!(
            classify(429, body).key_effect(),
            KeyEffect::ExhaustedForToday
        );
    }

    #[test]
    fn a_plain_bad_request_does_not_blame_the_key() {
        let body = br#"{"error":{"code":400,"message":"Invalid JSON payload received. Unknown name \"x\": Cannot find field.","status":"INVALID_ARGUMENT"}}"#;
        let f = classify(400, body);
        assert!(f.is_request_error());
        assert_eq!(f.key_effect(), KeyEffect::None);
        let body = fixture("error.400.any-mode-with-json-mime.json");
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        let inner = v.get("body").cloned().unwrap_or(v);
        let f = classify(400, inner.to_string().as_bytes());
        assert!(f.is_request_error(), "{f:?}");
    }

    #[test]
    fn penalty_and_model_not_found_are_recognised() {
        assert!(matches!(
            classify(400, &fixture("error.400.penalty-not-enabled.json")),
            Failure::PenaltyUnsupported { .. }
        ));
        let f = classify(404, &fixture("error.404.model-not-found-on-stream.json"));
        assert!(
            matches!(f, Failure::ModelNotFound { ref message } if message.contains("custom-gemini-2.0-flash"))
        );
        assert!(f.is_request_error());
    }

    #[test]
    fn overload_and_server_errors_never_penalise_the_key() {
        let f = classify(503, br#"{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}"#);
        assert_eq!(
            (f.clone(), f.key_effect()),
            (Failure::Overloaded, KeyEffect::None)
        );
        assert_eq!(classify(500, b"not json").key_effect(), KeyEffect::None);
    }

    #[test]
    fn suspended_and_leaked_keys_are_suspended() {
        assert_eq!(classify(403, br#"{"error":{"code":403,"message":"Your API key was reported as leaked. Please use another API key.","status":"PERMISSION_DENIED"}}"#), Failure::KeySuspended);
        assert_eq!(classify(403, br#"{"error":{"code":403,"message":"Permission denied: Consumer 'api_key:x' has been suspended.","status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"CONSUMER_SUSPENDED"}]}}"#), Failure::KeySuspended);
    }

    #[test]
    fn location_and_billing_preconditions() {
        let f = classify(400, br#"{"error":{"code":400,"message":"User location is not supported for the API use.","status":"FAILED_PRECONDITION"}}"#);
        assert!(matches!(f, Failure::Location { .. }) && f.is_request_error());
        let f = classify(400, br#"{"error":{"code":400,"message":"Gemini API free tier is not available in your country. Please enable billing on your project in Google AI Studio.","status":"FAILED_PRECONDITION"}}"#);
        assert_eq!(f, Failure::KeyNoAccess);
    }

    #[test]
    fn array_wrapped_errors_are_read() {
        let f = classify(429, br#"[{"error":{"code":429,"message":"q","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"2s"}]}}]"#);
        assert_eq!(
            f,
            Failure::Quota {
                retry_after: Some(Duration::from_secs(2)),
                daily: false
            }
        );
    }

    fn assert_request_error(status: u16, body: &[u8]) -> Failure {
        let f = classify(status, body);
        assert!(f.is_request_error(), "a request error: {f:?}");
        assert!(f.ends_request(), "not tried on other keys: {f:?}");
        assert_eq!(f.key_effect(), KeyEffect::None, "no key changes: {f:?}");
        f
    }

    fn assert_key_failure(status: u16, body: &[u8], effect: KeyEffect) {
        let f = classify(status, body);
        assert!(!f.ends_request(), "another key is tried: {f:?}");
        assert_eq!(f.key_effect(), effect, "{f:?}");
    }

    /// Issue 8 item 2: the client's own `fileData` URI gets a 403 that must never suspend a key.
    #[test]
    fn a_file_permission_403_never_suspends_a_key() {
        assert_request_error(403, &fixture("error.403.file-permission-denied.json"));
    }

    /// Issue 8 item 2: credentials injected by a client get a 401 that must never retire a key.
    #[test]
    fn an_unauthenticated_401_never_invalidates_a_key() {
        assert_request_error(
            401,
            &fixture("error.401.unauthenticated-invalid-credentials.json"),
        );
        assert_request_error(
            401,
            br#"{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}"#,
        );
    }

    /// A 401/403 Google sends without a key reason: the request's fault.
    #[test]
    fn other_permission_denials_are_request_errors() {
        assert_request_error(
            403,
            br#"{"error":{"code":403,"message":"The caller does not have permission","status":"PERMISSION_DENIED"}}"#,
        );
        assert_request_error(403, b"");
        assert_request_error(401, b"not json");
    }

    #[test]
    fn a_disabled_service_retires_the_key() {
        assert_key_failure(
            403,
            &fixture("error.403.service-disabled.json"),
            KeyEffect::Suspended,
        );
        // The same message without its ErrorInfo.
        assert_key_failure(
            403,
            br#"{"error":{"code":403,"message":"Generative Language API has not been used in project 123456789012 before or it is disabled. Enable it by visiting https://console.developers.google.com/apis/api/generativelanguage.googleapis.com/overview?project=123456789012 then retry.","status":"PERMISSION_DENIED"}}"#,
            KeyEffect::Suspended,
        );
    }

    #[test]
    fn a_suspended_consumer_retires_the_key() {
        assert_key_failure(
            403,
            &fixture("error.403.consumer-suspended.json"),
            KeyEffect::Suspended,
        );
    }

    #[test]
    fn a_leaked_key_retires_the_key() {
        assert_key_failure(
            403,
            &fixture("error.403.api-key-leaked.json"),
            KeyEffect::Suspended,
        );
    }

    #[test]
    fn an_expired_key_is_invalid() {
        assert_key_failure(
            400,
            &fixture("error.400.api-key-expired.json"),
            KeyEffect::Invalid,
        );
        // The reason alone is enough.
        assert_key_failure(
            400,
            br#"{"error":{"code":400,"message":"x","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_EXPIRED"}]}}"#,
            KeyEffect::Invalid,
        );
    }

    #[test]
    fn an_invalid_key_fixture_is_invalid() {
        assert_key_failure(
            400,
            &fixture("error.400.api-key-invalid.json"),
            KeyEffect::Invalid,
        );
    }

    #[test]
    fn disabled_billing_retires_the_key() {
        assert_key_failure(
            403,
            &fixture("error.403.billing-disabled.json"),
            KeyEffect::Suspended,
        );
    }

    #[test]
    fn an_iam_denial_retires_the_credential() {
        assert_key_failure(
            403,
            &fixture("error.403.iam-permission-denied.json"),
            KeyEffect::Suspended,
        );
    }

    /// Google quotes parts of the request in its messages (unknown field names, file names):
    /// words that look like a key failure inside them must not retire a key.
    #[test]
    fn key_failure_words_quoted_from_the_request_never_retire_a_key() {
        assert_request_error(
            400,
            br#"{"error":{"code":400,"message":"Invalid JSON payload received. Unknown name \"API key not valid\" at 'contents[0]': Cannot find field.","status":"INVALID_ARGUMENT"}}"#,
        );
        assert_request_error(
            400,
            br#"{"error":{"code":400,"message":"Invalid value at 'contents[0].parts[0]' (has been suspended; reported as leaked; API has not been used in project 1 before or it is disabled)","status":"INVALID_ARGUMENT"}}"#,
        );
        assert_request_error(
            403,
            br#"{"error":{"code":403,"message":"You do not have permission to access the File has-been-suspended or it may not exist.","status":"PERMISSION_DENIED"}}"#,
        );
    }

    /// A disabled API that is not the Gemini API (a client's file in Cloud Storage) is the
    /// request's business, with or without its ErrorInfo.
    #[test]
    fn another_services_refusal_never_retires_a_key() {
        assert_request_error(
            403,
            br#"{"error":{"code":403,"message":"Cloud Storage API has not been used in project 123456789012 before or it is disabled.","status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"SERVICE_DISABLED","domain":"googleapis.com","metadata":{"service":"storage.googleapis.com","consumer":"projects/123456789012"}}]}}"#,
        );
        assert_request_error(
            403,
            br#"{"error":{"code":403,"message":"Cloud Storage API has not been used in project 123456789012 before or it is disabled.","status":"PERMISSION_DENIED"}}"#,
        );
    }

    #[test]
    fn keys_in_messages_are_masked() {
        let f = classify(400, br#"{"error":{"code":400,"message":"bad thing with AIzaSyA0000000000000000000000000000001 inside","status":"INVALID_ARGUMENT"}}"#);
        let Failure::BadRequest { message, .. } = f else {
            panic!("bad request expected")
        };
        assert!(
            !message.contains("AIzaSyA0000000000000000000000000000001"),
            "{message}"
        );
    }
}
