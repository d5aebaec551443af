//! Native Gemini, the identity dialect: the client's body goes upstream as it is (only a
//! `-search` model gets the Google Search tool), and Google's answers come back as Google
//! sent them — JSON with Google's status (its refusals of the request included), an `alt=sse`
//! stream event by event, or a JSON array. Keep-alives for slow answers are valid
//! `GenerateContentResponse` events (decisions §6).

use std::collections::BTreeMap;

use axum::http::StatusCode;
use bytes::Bytes;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::error::{Flavor, GatewayError};
use crate::translate::cache_key::{self, KeyRule};
use crate::translate::dialect::{Answer, Prepared, Render, UpstreamBody};
use crate::translate::model_name::search_base;
use crate::wire::gemini::GenerateContentResponse;

/// An `alt=sse` keep-alive: a valid answer event with one empty candidate.
pub const SSE_KEEPALIVE: &[u8] =
    b"data: {\"candidates\": [{\"content\": {\"parts\": [],\"role\": \"model\"},\"index\": 0}]}\r\n\r\n";

/// How the client wants the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `generateContent`: one JSON document.
    Json,
    /// `streamGenerateContent?alt=sse`.
    Sse,
    /// `streamGenerateContent` without `alt=sse`: a JSON array of answers.
    Array,
}

/// A native generate or stream request: `model` as checked by the route (`models/`
/// removed), its `-search` variant served with the Google Search tool when search mode is on.
pub fn prepare(
    model: &str,
    body: Bytes,
    shape: Shape,
    search: bool,
    cache: Option<KeyRule>,
) -> Result<Prepared, GatewayError> {
    let (upstream_model, body) = match search_base(model).filter(|_| search) {
        Some(base) => (base.to_owned(), add_search_tool(&body)?),
        None => (model.to_owned(), body),
    };
    let cache_key = cache
        .and_then(|rule| cache_key::native_key(&upstream_model, &body, rule.last_n, rule.precise));
    Ok(Prepared {
        requested: model.to_owned(),
        model: upstream_model,
        body: UpstreamBody::Raw(body),
        stream: shape != Shape::Json,
        cache_key,
        render: Box::new(Native::new(shape)),
    })
}

/// Adds `{"googleSearch": {}}` to the body's tools (once), touching nothing else of it.
pub fn add_search_tool(bytes: &[u8]) -> Result<Bytes, GatewayError> {
    let mut body: BTreeMap<String, &RawValue> = serde_json::from_slice(bytes).map_err(|e| {
        GatewayError::bad_request(format!(
            "请求体必须是 JSON 对象：{e} / The body must be a JSON object: {e}"
        ))
    })?;
    let tools: Option<Vec<Value>> = match body.get("tools") {
        None => Some(Vec::new()),
        Some(raw) => serde_json::from_str(raw.get()).ok(),
    };
    let Some(mut tools) = tools else {
        return Ok(Bytes::copy_from_slice(bytes)); // not a list: left to Google to refuse
    };
    let has = tools
        .iter()
        .any(|t| t.get("googleSearch").is_some() || t.get("google_search").is_some());
    if !has {
        tools.push(json!({"googleSearch": {}}));
    }
    let tools = serde_json::value::to_raw_value(&tools).map_err(GatewayError::internal)?;
    body.insert("tools".to_owned(), &tools);
    serde_json::to_vec(&body)
        .map(Bytes::from)
        .map_err(GatewayError::internal)
}

/// One SSE frame in Google's framing (`data: …\r\n\r\n`), the JSON on one line.
pub fn sse_frame(json: &[u8]) -> Bytes {
    let compact;
    let json = if json.contains(&b'\n') {
        compact = compact_json(json);
        &compact[..]
    } else {
        json
    };
    let mut out = Vec::with_capacity(json.len() + 10);
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(json);
    out.extend_from_slice(b"\r\n\r\n");
    Bytes::from(out)
}

/// Removes whitespace outside strings, keeping key order and escapes (an SSE `data` line
/// cannot hold Google's pretty-printed newlines).
pub fn compact_json(json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for &b in json {
        if in_string {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
            out.push(b);
        } else if !b.is_ascii_whitespace() {
            out.push(b);
        }
    }
    out
}

/// Writes Google's answers as Google sent them.
pub struct Native {
    shape: Shape,
    /// Array streams: whether an element was written (the next needs a comma).
    written: bool,
    /// A finish reason (or a block) was seen: the stream is complete.
    finished: bool,
}

impl Native {
    pub fn new(shape: Shape) -> Self {
        Self {
            shape,
            written: false,
            finished: false,
        }
    }
}

fn ends_answer(event: &GenerateContentResponse) -> bool {
    event
        .candidates
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|c| c.finish_reason.is_some())
        || event
            .prompt_feedback
            .as_ref()
            .is_some_and(|f| f.block_reason.is_some())
}

impl Render for Native {
    fn label(&self) -> &'static str {
        "gemini"
    }

    fn flavor(&self) -> Flavor {
        Flavor::Gemini
    }

    fn content_type(&self, stream: bool) -> &'static str {
        match (stream, self.shape) {
            (true, Shape::Sse) => "text/event-stream",
            _ => "application/json; charset=UTF-8",
        }
    }

    fn forwards_request_errors(&self) -> bool {
        true
    }

    fn check(&self, _: &Answer) -> Result<(), GatewayError> {
        Ok(())
    }

    fn complete(&mut self, answer: &Answer) -> Result<(StatusCode, Bytes), GatewayError> {
        let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
        Ok((status, answer.raw.clone()))
    }

    fn open(&mut self, out: &mut Vec<Bytes>) {
        if self.shape == Shape::Array {
            out.push(Bytes::from_static(b"["));
        }
    }

    fn event(
        &mut self,
        raw: &Bytes,
        event: Option<&GenerateContentResponse>,
        out: &mut Vec<Bytes>,
    ) {
        self.finished |= event.is_none_or(ends_answer);
        match self.shape {
            Shape::Sse => out.push(sse_frame(raw)),
            Shape::Array | Shape::Json => {
                if self.written {
                    out.push(Bytes::from_static(b","));
                }
                out.push(raw.clone());
            }
        }
        self.written = true;
    }

    fn finish(&mut self, out: &mut Vec<Bytes>) {
        if self.shape == Shape::Array {
            out.push(Bytes::from_static(b"]"));
        }
    }

    fn fail(&mut self, error: &GatewayError, stream: bool, out: &mut Vec<Bytes>) {
        let body = error.gemini_body().to_string();
        match (stream, self.shape) {
            (true, Shape::Sse) => out.push(sse_frame(body.as_bytes())),
            (true, Shape::Array) => {
                if self.written {
                    out.push(Bytes::from_static(b","));
                }
                out.push(Bytes::from(body));
                out.push(Bytes::from_static(b"]"));
            }
            _ => out.push(Bytes::from(body)),
        }
    }

    fn keepalive(&self, stream: bool) -> Bytes {
        if stream && self.shape == Shape::Sse {
            Bytes::from_static(SSE_KEEPALIVE)
        } else {
            Bytes::from_static(b"\n")
        }
    }

    fn is_finished(&self) -> bool {
        self.finished
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::history::testing::fixture_text;

    /// What Gemini CLI 0.61.0 sent (recorded by tests/e2e/test_agent_gemini_cli.py): forwarded
    /// as sent, cached by its last contents, and in search mode changed in its tools only.
    #[test]
    fn a_gemini_cli_request_is_forwarded_as_sent() {
        let text = fixture_text("gemini/streamGenerateContent.request.gemini-cli-0.61.0.json");
        let rule = KeyRule {
            last_n: 6,
            precise: false,
        };
        let p = prepare(
            FLASH,
            Bytes::from(text.clone()),
            Shape::Sse,
            false,
            Some(rule),
        )
        .expect("prepared");
        assert!(p.stream && p.cache_key.is_some());
        assert_eq!(p.render.label(), "gemini");
        let UpstreamBody::Raw(sent) = &p.body else {
            panic!("the identity dialect forwards bytes");
        };
        assert_eq!(sent.as_ref(), text.as_bytes());
        let original: Value = serde_json::from_str(&text).expect("json");
        assert!(original["systemInstruction"].is_object() && original["tools"].is_array());

        let search = format!("{FLASH}-search");
        let p = prepare(
            &search,
            Bytes::from(text.clone()),
            Shape::Sse,
            true,
            Some(rule),
        )
        .expect("prepared");
        assert_eq!(p.model, FLASH);
        let UpstreamBody::Raw(sent) = &p.body else {
            panic!("raw");
        };
        let mut sent: Value = serde_json::from_slice(sent).expect("json");
        let mut original = original;
        let tools = sent["tools"].as_array().cloned().unwrap_or_default();
        assert_eq!(tools.last(), Some(&json!({"googleSearch": {}})));
        assert_eq!(
            tools[..tools.len() - 1],
            original["tools"].as_array().cloned().unwrap_or_default()[..]
        );
        sent.as_object_mut().map(|o| o.remove("tools"));
        original.as_object_mut().map(|o| o.remove("tools"));
        assert_eq!(sent, original, "nothing else changes");
    }

    const FLASH: &str = "gemini-2.5-flash";

    #[test]
    fn search_tool_is_added_once() {
        let out =
            add_search_tool(br#"{"contents":[],"tools":[{"google_search":{}}]}"#).expect("ok");
        let v: Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(v["tools"].as_array().map(Vec::len), Some(1));
        let out = add_search_tool(br#"{"contents":[]}"#).expect("ok");
        let v: Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(v["tools"], json!([{"googleSearch": {}}]));
    }

    #[test]
    fn compacting_keeps_strings_and_order() {
        let pretty = b"{\n  \"b\": \"a \\\" b\",\n  \"a\": [1, 2]\n}";
        assert_eq!(
            compact_json(pretty),
            b"{\"b\":\"a \\\" b\",\"a\":[1,2]}".to_vec()
        );
    }

    #[test]
    fn the_sse_keepalive_is_a_valid_response_with_a_candidates_array() {
        let text = std::str::from_utf8(SSE_KEEPALIVE).unwrap_or_default();
        let data = text
            .strip_prefix("data: ")
            .and_then(|t| t.strip_suffix("\r\n\r\n"))
            .unwrap_or_default();
        let v: Value = serde_json::from_str(data).unwrap_or_default();
        assert!(v["candidates"].is_array());
        let parsed: Result<GenerateContentResponse, _> = serde_json::from_str(data);
        assert!(parsed.is_ok());
    }

    #[test]
    fn an_array_stream_is_opened_separated_and_closed() {
        let mut r = Native::new(Shape::Array);
        let mut out = Vec::new();
        r.open(&mut out);
        let event = GenerateContentResponse::default();
        r.event(&Bytes::from_static(b"{\"a\":1}"), Some(&event), &mut out);
        r.event(&Bytes::from_static(b"{\"b\":2}"), Some(&event), &mut out);
        r.finish(&mut out);
        assert_eq!(out.concat(), b"[{\"a\":1},{\"b\":2}]".to_vec());
    }
}
