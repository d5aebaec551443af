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

use crate::app::AppState;
use crate::config::Settings;
use crate::error::{Flavor, GatewayError};
use crate::keys::KeySlot;
use crate::pipeline::auth::authenticate;
use crate::pipeline::body::{parse_json, read_limited};
use crate::pipeline::dispatch::{self, prompt_blocked};
use crate::telemetry::Outcome;
use crate::translate::chat::{
    Assessment, FirstEvent, Options, Translated, assess, drop_penalties, first_event,
    refuses_json_schema, signature_of, to_gemini, to_openai, use_schema_subset,
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
    let mut chat: ChatRequest = parse_json(&bytes)?;
    drop(bytes);
    outcome.model = Some(chat.model.clone());
    outcome.stream = chat.is_stream();
    crate::fetch::inline_remote_images(&mut chat, &state.fetcher).await?;
    let translated = translate(state, snap, &chat)?;
    if chat.is_stream() {
        stream(state, snap, &chat, translated, outcome).await
    } else {
        complete(state, snap, &chat, translated, outcome).await
    }
}

/// The request in Gemini's terms, with the settings and remembered signatures it needs.
fn translate(
    state: &AppState,
    snap: &Settings,
    chat: &ChatRequest,
) -> Result<Translated, GatewayError> {
    let model = crate::translate::chat::upstream_model_name(&chat.model);
    let base_model = model
        .strip_suffix("-search")
        .filter(|_| snap.search_mode)
        .unwrap_or(model);
    let recall = |id: &str| state.signatures.recall(id, base_model);
    let options = Options {
        enable_thinking: snap.enable_thinking,
        model_thinks: state.models.thinks(base_model),
        search_prompt: snap.search_mode.then_some(snap.search_prompt.as_str()),
        recall_signature: &recall,
    };
    to_gemini(chat, &options)
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
    translated: Translated,
    outcome: &mut Outcome,
) -> Result<Response, GatewayError> {
    let url = Upstream::generate_url(&snap.gemini_base_url, &translated.upstream_model);
    let model = translated.upstream_model.clone();
    let body = RequestBody::new(translated.request)?;
    let (answer, _key) = dispatch::run(
        &state.keys,
        snap,
        &model,
        outcome,
        |key| {
            let bytes = body.bytes();
            let url = &url;
            async move {
                let answer = generate(&state.upstream, url, &key, bytes, snap).await?;
                match assess(&answer) {
                    Assessment::Answer => Ok(Ok(answer)),
                    Assessment::PromptBlocked(reason) => Ok(Err(reason)),
                    Assessment::Empty(reason) => Err(Failure::Empty { reason }),
                }
            }
        },
        |failure| body.fix(failure),
    )
    .await?;
    let answer = answer.map_err(|reason| prompt_blocked(&reason))?;
    let completion = to_openai(&answer, &chat.model, completion_id(), unix_now());
    for call in completion
        .choices
        .iter()
        .flat_map(|c| c.message.tool_calls.iter().flatten())
    {
        if let (Some(id), Some(sig)) = (call.id.as_deref(), signature_of(call)) {
            state.signatures.remember(id, &model, sig);
        }
    }
    Ok(axum::Json(completion).into_response())
}

/// The upstream request body of one client request, re-serialised when a fix-up changes it.
struct RequestBody {
    request: std::sync::Mutex<(GenerateContentRequest, Bytes, Fixups)>,
}

impl RequestBody {
    fn new(request: GenerateContentRequest) -> Result<Self, GatewayError> {
        let bytes = serialise(&request)?;
        Ok(Self {
            request: std::sync::Mutex::new((request, bytes, Fixups::default())),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (GenerateContentRequest, Bytes, Fixups)> {
        self.request
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn bytes(&self) -> Bytes {
        self.lock().1.clone()
    }

    /// Applies a one-time fix-up for this failure; true when the request changed.
    fn fix(&self, failure: &Failure) -> bool {
        let mut guard = self.lock();
        let (request, bytes, fixups) = &mut *guard;
        if !fixups.retry_with_fix(failure, request) {
            return false;
        }
        match serialise(request) {
            Ok(b) => {
                *bytes = b;
                true
            }
            Err(_) => false,
        }
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
    translated: Translated,
    outcome: &mut Outcome,
) -> Result<Response, GatewayError> {
    let url = Upstream::stream_url(&snap.gemini_base_url, &translated.upstream_model);
    let model = translated.upstream_model.clone();
    let body = RequestBody::new(translated.request)?;
    let (opened, _key) = dispatch::run(
        &state.keys,
        snap,
        &model,
        outcome,
        |key| {
            let bytes = body.bytes();
            let url = &url;
            async move { open(&state.upstream, url, &key, bytes, snap).await }
        },
        |failure| body.fix(failure),
    )
    .await?;
    match opened {
        Opened::Blocked(reason) => Err(prompt_blocked(&reason)),
        Opened::Commit { events, held } => {
            let mapper = ChunkMapper::new(
                completion_id(),
                unix_now(),
                chat.model.clone(),
                chat.include_usage(),
            );
            let memo = SignatureMemo {
                store: state.signatures.clone(),
                model,
            };
            Ok(sse_response(Relay::new(events, held, mapper, memo)))
        }
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
        let verdict = first_event(&event);
        held.push(event);
        match verdict {
            FirstEvent::Commit => return Ok(Opened::Commit { events, held }),
            FirstEvent::Blocked(reason) => return Ok(Opened::Blocked(reason)),
            FirstEvent::EmptyEnd(reason) => return Err(Failure::Empty { reason }),
            FirstEvent::Pending => {}
        }
    }
}

/// Relays a committed stream: mapped chunks as they arrive; `[DONE]` after a complete
/// stream, an in-band error event (and no `[DONE]`) after a broken one (CONTRACT §3).
struct Relay {
    events: GeminiEvents,
    mapper: ChunkMapper,
    memo: SignatureMemo,
    queue: VecDeque<Bytes>,
    finished: bool,
}

/// Where a stream's thought signatures are remembered.
struct SignatureMemo {
    store: crate::signatures::Signatures,
    model: String,
}

impl SignatureMemo {
    fn keep(&self, mapper: &mut ChunkMapper) {
        for (id, sig) in mapper.drain_signatures() {
            self.store.remember(&id, &self.model, &sig);
        }
    }
}

impl Relay {
    fn new(
        events: GeminiEvents,
        held: Vec<GenerateContentResponse>,
        mut mapper: ChunkMapper,
        memo: SignatureMemo,
    ) -> Self {
        let mut out = Vec::new();
        for e in &held {
            mapper.map_event(e, &mut out);
        }
        memo.keep(&mut mapper);
        Self {
            events,
            mapper,
            memo,
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
                Some(Ok(event)) => {
                    self.mapper.map_event(&event, &mut out);
                    self.memo.keep(&mut self.mapper);
                }
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

/// One-time corrections of a request that Google refused for a known, fixable reason:
/// penalties a model does not support (CONTRACT §4), and JSON Schema fields a model does not
/// accept (then the schemas are converted to Google's subset).
#[derive(Default)]
struct Fixups {
    penalties_dropped: bool,
    schema_subset: bool,
}

impl Fixups {
    fn retry_with_fix(&mut self, failure: &Failure, request: &mut GenerateContentRequest) -> bool {
        match failure {
            Failure::PenaltyUnsupported { .. } if !self.penalties_dropped => {
                self.penalties_dropped = true;
                drop_penalties(request)
            }
            Failure::BadRequest { message, .. }
                if !self.schema_subset && refuses_json_schema(message) =>
            {
                self.schema_subset = true;
                use_schema_subset(request)
            }
            _ => false,
        }
    }
}
