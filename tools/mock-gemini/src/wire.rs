//! Wire encoding: Google's two JSON styles (pretty 2-space for unary bodies, the compact
//! "space after colon, `\u003c`-escaped" style for SSE events), the typed
//! GenerateContentResponse shapes (field order as Google sends it), the `google.rpc.Status`
//! error envelope and the named error presets.

use serde::Serialize;
use serde_json::ser::{Formatter, Serializer};
use serde_json::{Value, json};
use std::io;

pub(crate) const JSON_CT: &str = "application/json; charset=UTF-8";
pub(crate) const SSE_CT: &str = "text/event-stream";

/// Google's compact streaming style: `{"a": 1,"b": [1,2]}` with `<`/`>` escaped as `\u003c`/`\u003e`.
struct GoogleCompact;

impl Formatter for GoogleCompact {
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        s: &str,
    ) -> io::Result<()> {
        let bytes = s.as_bytes();
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let esc: &[u8] = match b {
                b'<' => b"\\u003c",
                b'>' => b"\\u003e",
                _ => continue,
            };
            w.write_all(&bytes[start..i])?;
            w.write_all(esc)?;
            start = i + 1;
        }
        w.write_all(&bytes[start..])
    }
}

/// Pretty JSON (2-space indent), as Google sends unary bodies.
pub(crate) fn pretty<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
    serde_json::to_vec_pretty(v).unwrap_or_default()
}

/// One SSE event: `data: <compact json>\r\n\r\n`.
pub(crate) fn sse_event<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(b"data: ");
    let mut ser = Serializer::with_formatter(&mut out, GoogleCompact);
    if v.serialize(&mut ser).is_err() {
        out.truncate(6);
        out.extend_from_slice(b"{}");
    }
    out.extend_from_slice(b"\r\n\r\n");
    out
}

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GenResponse<'a> {
    pub candidates: Vec<Candidate<'a>>,
    /// Vertex only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create_time: Option<&'a str>,
    pub usage_metadata: Usage,
    pub model_version: &'a str,
    pub response_id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Candidate<'a> {
    pub content: Content<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grounding_metadata: Option<&'a Grounding>,
    /// Vertex omits it for a single candidate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finish_message: Option<&'a str>,
}

#[derive(Serialize)]
pub(crate) struct Content<'a> {
    pub parts: Vec<Part<'a>>,
    pub role: &'static str,
}

/// A response part: text (optionally a thought) or a function call, with an optional
/// `thoughtSignature` sibling.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Part<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<&'a str>,
    #[serde(skip_serializing_if = "is_false")]
    pub thought: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function_call: Option<FunctionCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thought_signature: Option<&'a str>,
}

impl<'a> Part<'a> {
    pub(crate) fn text(text: &'a str) -> Part<'a> {
        Part {
            text: Some(text),
            thought: false,
            function_call: None,
            thought_signature: None,
        }
    }
    pub(crate) fn thought(text: &'a str) -> Part<'a> {
        Part {
            thought: true,
            ..Part::text(text)
        }
    }
}

#[derive(Serialize)]
pub(crate) struct FunctionCall<'a> {
    pub name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<&'a Value>,
}

/// `groundingMetadata` of a Google Search grounded answer (field order as recorded).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Grounding {
    pub search_entry_point: SearchEntryPoint,
    pub grounding_chunks: Vec<GroundingChunk>,
    pub grounding_supports: Vec<GroundingSupport>,
    pub retrieval_metadata: serde_json::Map<String, Value>,
    pub web_search_queries: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SearchEntryPoint {
    pub rendered_content: String,
}

#[derive(Serialize)]
pub(crate) struct GroundingChunk {
    pub web: WebChunk,
}

#[derive(Serialize)]
pub(crate) struct WebChunk {
    pub uri: String,
    pub title: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GroundingSupport {
    pub segment: Segment,
    pub grounding_chunk_indices: Vec<u32>,
    pub confidence_scores: Vec<f64>,
}

/// Byte offsets into the UTF-8 text; a zero `startIndex` is omitted like proto3 JSON does.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Segment {
    #[serde(skip_serializing_if = "is_zero")]
    pub start_index: u64,
    pub end_index: u64,
    pub text: String,
}

#[derive(Serialize, Clone, Copy)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Usage {
    pub prompt_token_count: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub candidates_token_count: u64,
    pub total_token_count: u64,
    pub prompt_tokens_details: [TokenDetail; 1],
    #[serde(skip_serializing_if = "is_zero")]
    pub thoughts_token_count: u64,
    /// Vertex only (`ON_DEMAND`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic_type: Option<&'static str>,
}

#[derive(Serialize, Clone, Copy)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TokenDetail {
    pub modality: &'static str,
    pub token_count: u64,
}

impl Usage {
    pub(crate) fn new(prompt: u64, candidates: u64, thoughts: u64) -> Usage {
        Usage {
            prompt_token_count: prompt,
            candidates_token_count: candidates,
            total_token_count: prompt + candidates + thoughts,
            prompt_tokens_details: [TokenDetail {
                modality: "TEXT",
                token_count: prompt,
            }],
            thoughts_token_count: thoughts,
            traffic_type: None,
        }
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Status<'a>,
}

#[derive(Serialize)]
struct Status<'a> {
    code: u16,
    message: &'a str,
    status: &'a str,
    #[serde(skip_serializing_if = "<[Value]>::is_empty")]
    details: &'a [Value],
}

/// An error ready for the wire: HTTP status and pretty JSON body.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: u16,
    pub body: Vec<u8>,
}

impl ApiError {
    pub(crate) fn new(code: u16, status: &str, message: &str) -> ApiError {
        ApiError::with_details(code, status, message, &[])
    }

    pub(crate) fn with_details(
        code: u16,
        status: &str,
        message: &str,
        details: &[Value],
    ) -> ApiError {
        let env = Envelope {
            error: Status {
                code,
                message,
                status,
                details,
            },
        };
        ApiError {
            status: code,
            body: pretty(&env),
        }
    }

    pub(crate) fn invalid(message: &str) -> ApiError {
        ApiError::new(400, "INVALID_ARGUMENT", message)
    }

    /// Invalid-JSON errors carry a `BadRequest` detail with one violation per line.
    pub(crate) fn bad_request(lines: &[(String, String)]) -> ApiError {
        let message = lines
            .iter()
            .map(|(_, m)| m.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        let violations: Vec<Value> = lines
            .iter()
            .map(|(field, d)| match field.is_empty() {
                true => json!({ "description": d }),
                false => json!({ "field": field, "description": d }),
            })
            .collect();
        let details = [json!({
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": violations,
        })];
        ApiError::with_details(400, "INVALID_ARGUMENT", &message, &details)
    }

    pub(crate) fn model_not_found(model: &str, version: &str, action: &str) -> ApiError {
        let method = if action == "streamGenerateContent" {
            "generateContent"
        } else {
            action
        };
        let msg = format!(
            "models/{model} is not found for API version {version}, or is not supported for {method}. \
             Call ListModels to see the list of available models and their supported methods."
        );
        let detail = format!(
            "[ORIGINAL ERROR] generic::not_found: {msg} [google.rpc.error_details_ext] {{ message: {} }}",
            serde_json::to_string(&msg).unwrap_or_default()
        );
        let details =
            [json!({ "@type": "type.googleapis.com/google.rpc.DebugInfo", "detail": detail })];
        ApiError::with_details(404, "NOT_FOUND", &msg, &details)
    }

    /// The recorded 400 for `functionCallingConfig.mode: ANY` with `responseMimeType: application/json`.
    pub(crate) fn any_mode_with_json() -> ApiError {
        ApiError {
            status: 400,
            body: include_bytes!(
                "../../../tests/fixtures/gemini/error.400.any-mode-with-json-mime.json"
            )
            .to_vec(),
        }
    }

    pub(crate) fn penalty(model: &str) -> ApiError {
        let fixture =
            include_str!("../../../tests/fixtures/gemini/error.400.penalty-not-enabled.json");
        let body = fixture.replace("models/gemini-2.5-flash", &format!("models/{model}"));
        ApiError {
            status: 400,
            body: body.into_bytes(),
        }
    }
}

pub(crate) const QUOTA_MSG: &str = "You exceeded your current quota, please check your plan and billing details. \
For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.";

pub const PRESETS: &[&str] = &[
    "api_key_invalid",
    "quota_429",
    "quota_429_daily",
    "overloaded_503",
    "internal_500",
    "penalty_400",
    "model_not_found_404",
    "permission_denied_403",
    "suspended_403",
    "location_400",
    "billing_400",
    "vertex_permission_denied_403",
    "vertex_quota_429",
];

/// A named realistic error. `model`/`key`/`version`/`action` fill in the request-specific parts.
pub(crate) fn preset(
    name: &str,
    model: &str,
    key: &str,
    version: &str,
    action: &str,
) -> Option<ApiError> {
    let e = match name {
        "api_key_invalid" => {
            let msg = "API key not valid. Please pass a valid API key.";
            let details = [
                json!({"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                       "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}}),
                json!({"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US", "message": msg}),
            ];
            ApiError::with_details(400, "INVALID_ARGUMENT", msg, &details)
        }
        "quota_429" => ApiError {
            status: 429,
            body: include_bytes!(
                "../../../tests/fixtures/gemini/error.429.resource-exhausted-retry-info.json"
            )
            .to_vec(),
        },
        "quota_429_daily" => {
            let details = [
                json!({"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
                    "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                    "quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
                    "quotaDimensions": {"location": "global", "model": model},
                    "quotaValue": "250"}]}),
                json!({"@type": "type.googleapis.com/google.rpc.Help", "links": [{
                    "description": "Learn more about Gemini API quotas",
                    "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]}),
            ];
            ApiError::with_details(429, "RESOURCE_EXHAUSTED", QUOTA_MSG, &details)
        }
        "overloaded_503" => ApiError::new(
            503,
            "UNAVAILABLE",
            "The model is overloaded. Please try again later.",
        ),
        "internal_500" => ApiError::new(
            500,
            "INTERNAL",
            "An internal error has occurred. Please retry or report in \
             https://developers.generativeai.google/guide/troubleshooting",
        ),
        "penalty_400" => ApiError::penalty(model),
        "model_not_found_404" => ApiError::model_not_found(model, version, action),
        "permission_denied_403" => ApiError::new(
            403,
            "PERMISSION_DENIED",
            "Your API key was reported as leaked. Please use another API key.",
        ),
        "suspended_403" => {
            let details = [
                json!({"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "CONSUMER_SUSPENDED",
                "domain": "googleapis.com",
                "metadata": {"consumer": "projects/000000000000", "service": "generativelanguage.googleapis.com"}}),
            ];
            let msg = format!("Permission denied: Consumer 'api_key:{key}' has been suspended.");
            ApiError::with_details(403, "PERMISSION_DENIED", &msg, &details)
        }
        "location_400" => ApiError::new(
            400,
            "FAILED_PRECONDITION",
            "User location is not supported for the API use.",
        ),
        "billing_400" => ApiError::new(
            400,
            "FAILED_PRECONDITION",
            "Gemini API free tier is not available in your country. Please enable billing on your project in Google AI Studio.",
        ),
        // Vertex: an IAM denial of the service account (the recorded body, model filled in).
        "vertex_permission_denied_403" => ApiError {
            status: 403,
            body: include_str!(
                "../../../tests/fixtures/gemini/error.403.iam-permission-denied.json"
            )
            .replace("models/gemini-2.5-flash", &format!("models/{model}"))
            .into_bytes(),
        },
        // Vertex's 429 has no details.
        "vertex_quota_429" => ApiError::new(
            429,
            "RESOURCE_EXHAUSTED",
            "Resource exhausted. Please try again later. Please refer to \
             https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details.",
        ),
        _ => return None,
    };
    Some(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_style_matches_google() {
        let v = json!({"a": "x<y>z", "b": [1, 2], "c": {"d": "ü"}});
        let ev = sse_event(&v);
        assert_eq!(
            String::from_utf8_lossy(&ev),
            "data: {\"a\": \"x\\u003cy\\u003ez\",\"b\": [1,2],\"c\": {\"d\": \"ü\"}}\r\n\r\n"
        );
    }

    #[test]
    fn every_preset_exists() {
        for name in PRESETS {
            assert!(
                preset(name, "m", "k", "v1beta", "generateContent").is_some(),
                "{name}"
            );
        }
    }
}
