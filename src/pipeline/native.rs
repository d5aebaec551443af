//! Native Gemini API (`/gemini/{ver}/…`, `/v1beta/…`, `/v1alpha/…`, `POST /v1/models/{m}:{a}`):
//! Google's own SDKs work by changing only the base URL. Bodies are forwarded unchanged
//! (except for `-search` models, which get the search tool), answers come back as Google sent
//! them, streams event by event. The key pool, retries and limits apply; Google's errors
//! about the request pass through with Google's status and body (keys masked); failures of
//! our keys or availability become 503 `UNAVAILABLE` (429 if all quota) in Google's shape.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::config::Settings;
use crate::error::{Flavor, GatewayError};
use crate::keys::Lease;
use crate::pipeline::complete::{Delivery, Plan, RequestBody, deliver, obtain};
use crate::pipeline::dispatch;
use crate::state::AppState;
use crate::telemetry::OutcomeHandle;
use crate::translate::assess::{FirstEvent, first_event};
use crate::upstream::UpstreamUrl;
use crate::upstream::classify::Failure;
use crate::upstream::endpoint::{self, Action, Version};
use crate::upstream::{ANSWER_LIMIT, GeminiEvents, classify_response, read_body};
use crate::wire::gemini::GenerateContentResponse;

/// What one attempt produced for the client.
enum Answer {
    /// A complete body, with its status (Google's request errors are forwarded too).
    Body { status: u16, bytes: Bytes },
    /// An SSE stream whose first events are held.
    Sse {
        events: GeminiEvents,
        held: Vec<Bytes>,
    },
    /// A JSON-array stream, forwarded byte for byte.
    Array(reqwest::Response),
}

/// A model listing or a single model, through the key pool.
pub async fn model_get(
    state: &AppState,
    snap: &Arc<Settings>,
    url: UpstreamUrl,
    outcome: &OutcomeHandle,
) -> Result<Response, GatewayError> {
    let (answer, _) = dispatch::run(
        &state.keys,
        &state.stats,
        snap,
        dispatch::Budget::of(snap),
        "models.list",
        outcome,
        |key| {
            let url = &url;
            let upstream = &state.upstream;
            async move {
                let response = upstream
                    .send_any(
                        reqwest::Method::GET,
                        url,
                        key.secret(),
                        None,
                        snap.upstream_timeout,
                    )
                    .await?;
                complete_body(response, snap).await
            }
        },
        |_| false,
    )
    .await?;
    Ok(body_response(answer))
}

/// What a native POST asks for: checked by the route (version, action, model id).
pub struct NativeCall {
    pub version: Version,
    pub model: String,
    pub action: Action,
    /// The client asked for server-sent events (`alt=sse`).
    pub sse: bool,
}

/// A native POST (generate, stream, count tokens, embed), its body already bounded.
pub async fn action(
    state: &AppState,
    snap: &Arc<Settings>,
    call: NativeCall,
    mut bytes: Bytes,
    outcome: &OutcomeHandle,
) -> Result<Response, GatewayError> {
    let NativeCall {
        version,
        model,
        action,
        sse,
    } = call;
    // Search mode: a `-search` model gets the Google Search tool.
    let mut upstream_model = model.clone();
    if snap.search_mode
        && let Some(base) = model.strip_suffix("-search")
    {
        upstream_model = base.to_owned();
        bytes = add_search_tool(&bytes)?;
    }

    let stream = action == Action::StreamGenerateContent;
    outcome.update(|o| o.stream = stream);
    let query: &[(&str, &str)] = if stream && sse {
        &[("alt", "sse")]
    } else {
        &[]
    };
    let url = endpoint::model_action(
        &snap.gemini_base_url,
        version,
        &upstream_model,
        action,
        query,
    )?;
    let generate = action == Action::GenerateContent;

    // Complete answers (and faked streams) go through the cache, in-flight sharing and
    // HAJIMI's racing, like OpenAI requests (decisions §6).
    if generate || (stream && snap.fake_streaming) {
        let url = endpoint::model_action(
            &snap.gemini_base_url,
            version,
            &upstream_model,
            Action::GenerateContent,
            &[],
        )?;
        let cache_key = crate::cache::native_key(
            &upstream_model,
            &bytes,
            snap.calculate_cache_entries,
            snap.precise_cache,
        );
        let plan = Plan {
            model: upstream_model,
            url,
            body: Arc::new(RequestBody::raw(bytes)),
            cache_key,
            native: true,
        };
        let work = Box::pin(obtain(
            state.clone(),
            Arc::clone(snap),
            plan,
            outcome.clone(),
        ));
        let (delivery, keepalive) = match (stream, sse) {
            (false, _) => (
                Delivery::GeminiJson,
                snap.nonstream_keepalive_enabled
                    .then_some(snap.nonstream_keepalive_interval),
            ),
            (true, true) => (Delivery::GeminiSse, Some(snap.fake_streaming_interval)),
            (true, false) => (Delivery::GeminiArray, Some(snap.fake_streaming_interval)),
        };
        return Ok(deliver(work, delivery, keepalive).await);
    }

    let (answer, lease) = dispatch::run(
        &state.keys,
        &state.stats,
        snap,
        dispatch::Budget::of(snap),
        &upstream_model,
        outcome,
        |key| {
            let url = &url;
            let body = bytes.clone();
            let snap = &snap;
            let upstream = &state.upstream;
            async move {
                let response = upstream
                    .send_any(
                        reqwest::Method::POST,
                        url,
                        key.secret(),
                        Some(body),
                        snap.upstream_timeout,
                    )
                    .await?;
                if !response.status().is_success() {
                    return complete_body(response, snap).await;
                }
                if stream && sse {
                    open_sse(response, snap).await
                } else if stream {
                    Ok(Answer::Array(response))
                } else {
                    complete_body(response, snap).await
                }
            }
        },
        |_| false,
    )
    .await?;

    Ok(match answer {
        Answer::Body { .. } => body_response(answer),
        Answer::Sse { events, held } => sse_response(events, held, lease),
        Answer::Array(response) => array_response(response, lease),
    })
}

/// Reads a whole answer. A 2xx `generateContent` answer with nothing in it is an empty
/// answer (retried); Google's errors about the request are forwarded as they are.
async fn complete_body(response: reqwest::Response, snap: &Settings) -> Result<Answer, Failure> {
    let status = response.status().as_u16();
    if !(200..300).contains(&status) {
        let (status, body, failure) = classify_response(response, snap.upstream_timeout).await;
        if failure.ends_request() {
            let text = crate::mask::scrub_keys(&String::from_utf8_lossy(&body));
            return Ok(Answer::Body {
                status,
                bytes: Bytes::from(text),
            });
        }
        return Err(failure);
    }
    let bytes = read_body(response, snap.upstream_timeout, ANSWER_LIMIT).await?;
    Ok(Answer::Body { status, bytes })
}

/// Reads SSE events until one carries content; they are held for the client.
async fn open_sse(response: reqwest::Response, snap: &Settings) -> Result<Answer, Failure> {
    let mut events = GeminiEvents::new(response, snap.upstream_timeout);
    let mut held = Vec::new();
    loop {
        let Some(next) = events.next_raw().await else {
            return Err(Failure::Empty {
                reason: "stream ended before any content".to_owned(),
            });
        };
        let (raw, event) = next?;
        held.push(raw);
        match first_event(&event) {
            FirstEvent::Commit | FirstEvent::Blocked(_) => return Ok(Answer::Sse { events, held }),
            FirstEvent::EmptyEnd(reason) => return Err(Failure::Empty { reason }),
            FirstEvent::Pending => {}
        }
    }
}

/// Adds the Google Search tool to a body, parsing only its `tools` (the rest, contents
/// included, is copied as written).
fn add_search_tool(bytes: &[u8]) -> Result<Bytes, GatewayError> {
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

fn body_response(answer: Answer) -> Response {
    let Answer::Body { status, bytes } = answer else {
        return GatewayError::internal(anyhow::anyhow!("unexpected answer kind"))
            .render(Flavor::Gemini);
    };
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    response
}

fn sse_headers(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
}

/// Forwards SSE events as they arrive, each `data` payload exactly as Google sent it. A
/// stream that breaks ends with an error event in Google's shape (decisions §3).
/// The key's lease is held until the stream ends (`KEY_MAX_CONCURRENCY` counts streams).
fn sse_response(events: GeminiEvents, held: Vec<Bytes>, lease: Lease) -> Response {
    struct Relay {
        events: GeminiEvents,
        _lease: Lease,
        queue: VecDeque<Bytes>,
        finished: bool,
        finish_seen: bool,
    }
    fn frame(data: &[u8]) -> Bytes {
        let mut out = Vec::with_capacity(data.len() + 10);
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n\r\n");
        Bytes::from(out)
    }
    let finish_in = |data: &[u8]| -> bool {
        serde_json::from_slice::<GenerateContentResponse>(data).is_ok_and(|e| {
            e.candidates
                .as_deref()
                .unwrap_or_default()
                .iter()
                .any(|c| c.finish_reason.is_some())
                || e.prompt_feedback
                    .as_ref()
                    .is_some_and(|f| f.block_reason.is_some())
        })
    };
    let finish_seen = held.iter().any(|d| finish_in(d));
    let relay = Relay {
        events,
        _lease: lease,
        queue: held.iter().map(|d| frame(d)).collect(),
        finished: false,
        finish_seen,
    };
    let frames = futures_util::stream::unfold(relay, |mut r| async move {
        loop {
            if let Some(f) = r.queue.pop_front() {
                return Some((f, r));
            }
            if r.finished {
                return None;
            }
            match r.events.next_raw().await {
                Some(Ok((raw, event))) => {
                    r.finish_seen |= event.candidates.as_deref().unwrap_or_default().iter().any(|c| c.finish_reason.is_some());
                    r.queue.push_back(frame(&raw));
                }
                Some(Err(f)) => {
                    r.finished = true;
                    let err = GatewayError::BadGateway {
                        message: format!("上游流中断：{l} / The upstream stream broke: {l}", l = f.label()),
                    };
                    r.queue.push_back(frame(err.gemini_body().to_string().as_bytes()));
                }
                None => {
                    r.finished = true;
                    if !r.finish_seen {
                        let err = GatewayError::BadGateway {
                            message: "上游流在完成前意外结束 / The upstream stream ended before the answer was complete".to_owned(),
                        };
                        r.queue.push_back(frame(err.gemini_body().to_string().as_bytes()));
                    }
                }
            }
        }
    })
    .map(Ok::<Bytes, Infallible>);
    let mut response = Response::new(Body::from_stream(frames));
    sse_headers(&mut response);
    response
}

/// A JSON-array stream (`streamGenerateContent` without `alt=sse`), byte for byte.
fn array_response(response: reqwest::Response, lease: Lease) -> Response {
    let bytes: std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>> =
        Box::pin(response.bytes_stream().map(move |r| {
            let _held_until_the_stream_ends = &lease;
            r.map_err(std::io::Error::other)
        }));
    let mut out = Response::new(Body::from_stream(bytes));
    out.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
