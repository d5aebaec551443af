//! `POST /v1/chat/completions`: OpenAI chat over Gemini `generateContent` /
//! `streamGenerateContent`, with retries across keys until the first byte reaches the
//! client, and protocol-exact output (CONTRACT §3-5).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::time::timeout_at;

use crate::app::AppState;
use crate::config::Settings;
use crate::error::{Flavor, GatewayError};
use crate::keys::KeySlot;
use crate::pipeline::auth::authenticate;
use crate::pipeline::body::{parse_json, read_limited};
use crate::pipeline::dispatch::{Attempts, prompt_blocked, request_error};
use crate::telemetry::Outcome;
use crate::translate::chat::{
    Assessment, Translated, assess, drop_penalties, has_visible_output, is_filter_reason,
    to_gemini, to_openai,
};
use crate::translate::stream::{ChunkMapper, sse_json};
use crate::translate::{completion_id, unix_now};
use crate::upstream::classify::Failure;
use crate::upstream::{ANSWER_LIMIT, GeminiEvents, Upstream, read_body};
use crate::wire::gemini::{GenerateContentRequest, GenerateContentResponse};
use crate::wire::openai::ChatRequest;

pub async fn chat_completions(State(state): State<AppState>, request: Request) -> Response {
    let snap = state.live.current();
    let mut outcome = Outcome::default();
    let result = run(&state, &snap, request, &mut outcome).await;
    let mut response = match result {
        Ok(r) => r,
        Err(e) => e.render(Flavor::OpenAi),
    };
    response.extensions_mut().insert(outcome);
    response
}

async fn run(
    state: &AppState,
    snap: &Arc<Settings>,
    request: Request,
    outcome: &mut Outcome,
) -> Result<Response, GatewayError> {
    let (parts, body) = request.into_parts();
    authenticate(snap, &parts)?;
    let bytes = read_limited(body, &parts.headers, snap.max_body_size).await?;
    let chat: ChatRequest = parse_json(&bytes)?;
    drop(bytes);
    outcome.model = Some(chat.model.clone());
    outcome.stream = chat.is_stream();
    let translated = to_gemini(&chat)?;
    if chat.is_stream() {
        stream(state, snap, &chat, translated, outcome).await
    } else {
        complete(state, snap, &chat, translated, outcome).await
    }
}

fn serialise(request: &GenerateContentRequest) -> Result<Bytes, GatewayError> {
    serde_json::to_vec(request)
        .map(Bytes::from)
        .map_err(|e| GatewayError::Internal(e.into()))
}

/// Non-stream: one `generateContent` per attempt until an answer.
async fn complete(
    state: &AppState,
    snap: &Settings,
    chat: &ChatRequest,
    mut translated: Translated,
    outcome: &mut Outcome,
) -> Result<Response, GatewayError> {
    let url = Upstream::generate_url(&snap.gemini_base_url, &translated.upstream_model);
    let mut body = serialise(&translated.request)?;
    let mut attempts = Attempts::new(snap, &translated.upstream_model);
    let mut penalties_dropped = false;
    loop {
        if attempts.empty_exhausted() {
            return Err(attempts.final_error(&state.keys));
        }
        let key = timeout_at(attempts.deadline, attempts.next_key(&state.keys))
            .await
            .map_err(|_| attempts.deadline_error())??;
        outcome.key = Some(key.id);
        outcome.attempts = attempts.attempts;
        let result = timeout_at(
            attempts.deadline,
            generate(&state.upstream, &url, &key, body.clone(), snap),
        )
        .await;
        let failure = match result {
            Err(_) => return Err(attempts.deadline_error()),
            Ok(Ok(answer)) => match assess(&answer) {
                Assessment::Answer => {
                    key.record_success();
                    let completion = to_openai(&answer, &chat.model, completion_id(), unix_now());
                    return Ok(axum::Json(completion).into_response());
                }
                Assessment::PromptBlocked(reason) => {
                    key.record_success();
                    return Err(prompt_blocked(&reason));
                }
                Assessment::Empty(reason) => Failure::Empty { reason },
            },
            Ok(Err(f)) => f,
        };
        if let Failure::PenaltyUnsupported { .. } = failure
            && !penalties_dropped
            && drop_penalties(&mut translated.request)
        {
            penalties_dropped = true;
            body = serialise(&translated.request)?;
            continue;
        }
        if failure.is_request_error() || matches!(failure, Failure::PenaltyUnsupported { .. }) {
            return Err(request_error(&failure));
        }
        attempts.fail(&key, failure);
    }
}

async fn generate(
    upstream: &Upstream,
    url: &str,
    key: &KeySlot,
    body: Bytes,
    snap: &Settings,
) -> Result<GenerateContentResponse, Failure> {
    let response = upstream
        .post(url, key.secret(), body, snap.upstream_timeout)
        .await?;
    let bytes = read_body(response, snap.upstream_timeout, ANSWER_LIMIT).await?;
    serde_json::from_slice(&bytes).map_err(|e| Failure::Garbage {
        detail: format!("unreadable answer: {e}"),
    })
}

/// What the first events of a stream amounted to.
enum Opened {
    /// Content arrived: these events are held for the client, the rest follows.
    Commit {
        events: GeminiEvents,
        held: Vec<GenerateContentResponse>,
    },
    Blocked(String),
}

/// Stream: retried across keys until the first event with content; relayed from then on.
async fn stream(
    state: &AppState,
    snap: &Settings,
    chat: &ChatRequest,
    mut translated: Translated,
    outcome: &mut Outcome,
) -> Result<Response, GatewayError> {
    let url = Upstream::stream_url(&snap.gemini_base_url, &translated.upstream_model);
    let mut body = serialise(&translated.request)?;
    let mut attempts = Attempts::new(snap, &translated.upstream_model);
    let mut penalties_dropped = false;
    loop {
        if attempts.empty_exhausted() {
            return Err(attempts.final_error(&state.keys));
        }
        let key = timeout_at(attempts.deadline, attempts.next_key(&state.keys))
            .await
            .map_err(|_| attempts.deadline_error())??;
        outcome.key = Some(key.id);
        outcome.attempts = attempts.attempts;
        let result = timeout_at(
            attempts.deadline,
            open(&state.upstream, &url, &key, body.clone(), snap),
        )
        .await;
        let failure = match result {
            Err(_) => return Err(attempts.deadline_error()),
            Ok(Ok(Opened::Commit { events, held })) => {
                key.record_success();
                let mapper = ChunkMapper::new(
                    completion_id(),
                    unix_now(),
                    chat.model.clone(),
                    chat.include_usage(),
                );
                return Ok(sse_response(Relay::new(events, held, mapper)));
            }
            Ok(Ok(Opened::Blocked(reason))) => {
                key.record_success();
                return Err(prompt_blocked(&reason));
            }
            Ok(Err(f)) => f,
        };
        if let Failure::PenaltyUnsupported { .. } = failure
            && !penalties_dropped
            && drop_penalties(&mut translated.request)
        {
            penalties_dropped = true;
            body = serialise(&translated.request)?;
            continue;
        }
        if failure.is_request_error() || matches!(failure, Failure::PenaltyUnsupported { .. }) {
            return Err(request_error(&failure));
        }
        attempts.fail(&key, failure);
    }
}

/// Opens an upstream stream and reads until content arrives (nothing is sent to the client
/// before that, so every failure until then can still be retried on another key).
async fn open(
    upstream: &Upstream,
    url: &str,
    key: &KeySlot,
    body: Bytes,
    snap: &Settings,
) -> Result<Opened, Failure> {
    let response = upstream
        .post(url, key.secret(), body, snap.upstream_timeout)
        .await?;
    let mut events = GeminiEvents::new(response, snap.upstream_timeout);
    let mut held = Vec::new();
    loop {
        let event = match events.next().await {
            None => {
                return Err(Failure::Empty {
                    reason: "stream ended before any content".to_owned(),
                });
            }
            Some(Err(f)) => return Err(f),
            Some(Ok(e)) => e,
        };
        let candidates = event.candidates.as_deref().unwrap_or_default();
        if candidates.is_empty()
            && let Some(reason) = event
                .prompt_feedback
                .as_ref()
                .and_then(|f| f.block_reason.clone())
        {
            return Ok(Opened::Blocked(reason));
        }
        let commits = candidates.iter().any(|c| {
            has_visible_output(c)
                || c.parts()
                    .iter()
                    .any(|p| p.is_thought() && p.text.as_deref().is_some_and(|t| !t.is_empty()))
                || c.finish_reason
                    .as_deref()
                    .is_some_and(|r| r == "MAX_TOKENS" || is_filter_reason(r))
        });
        let ended_empty = !commits && candidates.iter().any(|c| c.finish_reason.is_some());
        if ended_empty {
            let reason = candidates
                .iter()
                .find_map(|c| c.finish_reason.clone())
                .unwrap_or_default();
            return Err(Failure::Empty {
                reason: format!("stream finished with {reason} and no content"),
            });
        }
        held.push(event);
        if commits {
            return Ok(Opened::Commit { events, held });
        }
    }
}

/// Relays a committed stream: mapped chunks as they arrive; `[DONE]` after a complete
/// stream, an in-band error event (and no `[DONE]`) after a broken one (CONTRACT §3).
struct Relay {
    events: GeminiEvents,
    mapper: ChunkMapper,
    queue: VecDeque<Bytes>,
    finished: bool,
}

impl Relay {
    fn new(
        events: GeminiEvents,
        held: Vec<GenerateContentResponse>,
        mut mapper: ChunkMapper,
    ) -> Self {
        let mut out = Vec::new();
        for e in &held {
            mapper.map_event(e, &mut out);
        }
        Self {
            events,
            mapper,
            queue: out.into(),
            finished: false,
        }
    }

    async fn next_frame(&mut self) -> Option<Bytes> {
        loop {
            if let Some(frame) = self.queue.pop_front() {
                return Some(frame);
            }
            if self.finished {
                return None;
            }
            let mut out = Vec::new();
            match self.events.next().await {
                Some(Ok(event)) => self.mapper.map_event(&event, &mut out),
                Some(Err(f)) => {
                    self.finished = true;
                    tracing::warn!(
                        failure = f.kind(),
                        "upstream stream failed after the first byte"
                    );
                    out.push(inband_error(&GatewayError::BadGateway {
                        message: format!(
                            "上游流中断：{l} / The upstream stream broke: {l}",
                            l = f.label()
                        ),
                    }));
                }
                None => {
                    self.finished = true;
                    if self.mapper.is_finished() {
                        self.mapper.finish(&mut out);
                    } else {
                        tracing::warn!("upstream stream ended without a finish reason");
                        out.push(inband_error(&GatewayError::BadGateway {
                            message: "上游流在完成前意外结束 / The upstream stream ended before the answer was complete (no finish reason)".to_owned(),
                        }));
                    }
                }
            }
            self.queue.extend(out);
        }
    }
}

fn inband_error(error: &GatewayError) -> Bytes {
    sse_json(&error.openai_body())
}

fn sse_response(relay: Relay) -> Response {
    let frames = futures_util::stream::unfold(relay, |mut relay| async move {
        relay.next_frame().await.map(|frame| (frame, relay))
    })
    .map(Ok::<Bytes, Infallible>);
    let mut response = Response::new(Body::from_stream(frames));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}
