//! `POST /v1/chat/completions`: OpenAI chat over Gemini `generateContent` /
//! `streamGenerateContent`, with retries across keys until the first byte reaches the
//! client, and protocol-exact output (decisions §3-5).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::time::Instant;

use crate::config::Settings;
use crate::error::GatewayError;
use crate::keys::{KeySlot, Lease};
use crate::pipeline::complete::{
    Delivery, Plan, RequestBody, SignatureMemo, cached, deliver, obtain,
};
use crate::pipeline::dispatch::{self, prompt_blocked};
use crate::state::AppState;
use crate::telemetry::OutcomeHandle;
use crate::translate::assess::{FirstEvent, first_event};
use crate::translate::openai::completion_id;
use crate::translate::openai::stream::{ChunkMapper, sse_json};
use crate::translate::openai::{Options, Translated, to_gemini};
use crate::translate::unix_now;
use crate::upstream::classify::Failure;
use crate::upstream::{GeminiEvents, Upstream};
use crate::wire::gemini::GenerateContentResponse;
use crate::wire::openai::ChatRequest;

/// Serves one OpenAI chat request.
pub async fn complete(
    state: &AppState,
    snap: &Arc<Settings>,
    chat: ChatRequest,
    outcome: &OutcomeHandle,
) -> Result<Response, GatewayError> {
    // A client's model name never carries `/`, `?`, `#` or `%` into an upstream URL.
    crate::upstream::endpoint::require_model_id(
        crate::translate::model_name::upstream_model_name(&chat.model),
    )?;
    let mut chat = chat;
    let stream = chat.is_stream();
    outcome.update(|o| {
        o.model = Some(chat.model.clone());
        o.stream = stream;
    });
    require_allowed_model(snap, &chat.model)?;
    let real_stream = stream && !snap.fake_streaming;
    let cache_key = (!real_stream)
        .then(|| crate::cache::openai_key(&chat, snap.calculate_cache_entries, snap.precise_cache));
    // What delivery needs of the request; the request itself goes into the translation.
    let client_model = chat.model.clone();
    let include_usage = chat.include_usage();
    let reasoning = !chat.excludes_reasoning();
    let keepalive = if stream {
        Some(snap.fake_streaming_interval)
    } else {
        snap.nonstream_keepalive_enabled
            .then_some(snap.nonstream_keepalive_interval)
    };
    // A cached answer needs no image: look before fetching any.
    if let Some(key) = cache_key
        && crate::fetch::has_remote_images(&chat)
    {
        let until = Instant::now() + keepalive.unwrap_or(snap.request_deadline);
        if let Some(answer) = cached(state, snap, key, until).await {
            outcome.update(|o| o.cache_hit = true);
            let delivery = delivery(
                state,
                snap,
                &client_model,
                include_usage,
                reasoning,
                stream,
                answer_model(&chat, snap),
            );
            return Ok(deliver(
                Box::pin(std::future::ready(Ok(answer))),
                delivery,
                keepalive,
            )
            .await);
        }
    }
    crate::fetch::inline_remote_images(&mut chat, &state.fetcher, snap.max_fetched_bytes).await?;
    let translated = translate(state, snap, chat)?;
    if real_stream {
        return self::stream(
            state,
            snap,
            client_model,
            include_usage,
            reasoning,
            translated,
            outcome,
        )
        .await;
    }
    let delivery = delivery(
        state,
        snap,
        &client_model,
        include_usage,
        reasoning,
        stream,
        translated.upstream_model.clone(),
    );
    let plan = Plan {
        url: crate::upstream::endpoint::generate(
            &snap.gemini_base_url,
            &translated.upstream_model,
        )?,
        model: translated.upstream_model,
        body: Arc::new(RequestBody::typed(translated.request)?),
        cache_key,
        native: false,
    };
    let work = Box::pin(obtain(
        state.clone(),
        Arc::clone(snap),
        plan,
        outcome.clone(),
    ));
    Ok(deliver(work, delivery, keepalive).await)
}

/// The upstream model a request goes to (where signatures of its answer are remembered),
/// without translating it.
fn answer_model(chat: &ChatRequest, snap: &Settings) -> String {
    let model = crate::translate::model_name::upstream_model_name(&chat.model);
    let model = if snap.search_mode {
        model.strip_suffix("-search").unwrap_or(model)
    } else {
        model
    };
    model.to_owned()
}

/// How a complete answer is written: OpenAI JSON, or OpenAI chunks for a faked stream.
fn delivery(
    state: &AppState,
    snap: &Settings,
    client_model: &str,
    include_usage: bool,
    reasoning: bool,
    stream: bool,
    upstream_model: String,
) -> Delivery {
    let memo = SignatureMemo {
        store: state.signatures.clone(),
        model: upstream_model,
    };
    if stream {
        let mapper = ChunkMapper::new(
            completion_id(),
            unix_now(),
            client_model.to_owned(),
            include_usage,
        )
        .with_reasoning(reasoning);
        Delivery::OpenAiStream {
            mapper: Box::new(mapper),
            memo,
            inband: snap.inband_errors,
        }
    } else {
        Delivery::OpenAiJson {
            model: client_model.to_owned(),
            memo,
            inband: snap.inband_errors,
            reasoning,
        }
    }
}

/// `BLOCKED_MODELS` and `WHITELIST_MODELS` are enforced on use, not only hidden from lists.
pub fn require_allowed_model(snap: &Settings, model: &str) -> Result<(), GatewayError> {
    let id = crate::translate::model_name::upstream_model_name(model);
    let base = id.strip_suffix("-search").unwrap_or(id);
    if crate::models::model_allowed(snap, id) && crate::models::model_allowed(snap, base) {
        return Ok(());
    }
    Err(GatewayError::NotFound {
        message: format!(
            "模型 {id} 在此代理上不可用 / The model `{id}` is not available on this proxy"
        ),
        code: "model_not_found",
    })
}

/// The request in Gemini's terms, with the settings and remembered signatures it needs.
/// Consumes the request: its inline payloads move into the translation (not copied), and the
/// rest of it is dropped as soon as the translation exists.
fn translate(
    state: &AppState,
    snap: &Settings,
    mut chat: ChatRequest,
) -> Result<Translated, GatewayError> {
    let stash = crate::translate::openai::inline::stash(&mut chat);
    let model = crate::translate::model_name::upstream_model_name(&chat.model);
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
        random_string: snap.random_string.then_some(snap.random_string_length),
    };
    let mut translated = to_gemini(&chat, &options)?;
    drop(chat);
    crate::translate::openai::inline::restore(&mut translated.request, stash);
    Ok(translated)
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
    snap: &Arc<Settings>,
    client_model: String,
    include_usage: bool,
    reasoning: bool,
    translated: Translated,
    outcome: &OutcomeHandle,
) -> Result<Response, GatewayError> {
    let url =
        crate::upstream::endpoint::stream_sse(&snap.gemini_base_url, &translated.upstream_model)?;
    let model = translated.upstream_model.clone();
    let body = Arc::new(RequestBody::typed(translated.request)?);
    let (opened, lease) = dispatch::run(
        &state.keys,
        &state.stats,
        snap,
        dispatch::Budget::of(snap),
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
            let mapper = ChunkMapper::new(completion_id(), unix_now(), client_model, include_usage)
                .with_reasoning(reasoning);
            let memo = SignatureMemo {
                store: state.signatures.clone(),
                model: model.clone(),
            };
            let rescue = Rescue {
                state: state.clone(),
                snap: Arc::clone(snap),
                url,
                model,
                body,
                outcome: outcome.clone(),
                trim_next: None,
            };
            Ok(sse_response(Relay::new(
                events, held, mapper, memo, rescue, lease,
            )))
        }
    }
}

/// Opens an upstream stream and reads until content arrives (nothing is sent to the client
/// before that, so every failure until then can still be retried on another key).
async fn open(
    upstream: &Upstream,
    url: &crate::upstream::UpstreamUrl,
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
/// stream, an in-band error event (and no `[DONE]`) after a broken one (decisions §3).
struct Relay {
    events: GeminiEvents,
    /// The key serving the stream: held until the stream ends, so `KEY_MAX_CONCURRENCY`
    /// counts streams for as long as they run.
    lease: Lease,
    mapper: ChunkMapper,
    memo: SignatureMemo,
    rescue: Rescue,
    queue: VecDeque<Bytes>,
    finished: bool,
}

/// What a mid-stream rescue needs: the request, and the means to send its continuation.
struct Rescue {
    state: AppState,
    snap: Arc<Settings>,
    url: crate::upstream::UpstreamUrl,
    model: String,
    body: Arc<RequestBody>,
    outcome: OutcomeHandle,
    /// Text already sent, to trim from the start of the continuation if the model repeats it.
    trim_next: Option<String>,
}

impl Rescue {
    /// Opens a continuation of a broken stream on another key, within what is left of the
    /// request's retry budget. `None` when no rescue is possible.
    async fn attempt(
        &mut self,
        partial: &str,
    ) -> Option<(GeminiEvents, Vec<GenerateContentResponse>, Lease)> {
        let used = self.outcome.get().attempts;
        let remaining = self.snap.max_retry_num.saturating_sub(used);
        if remaining == 0 {
            return None;
        }
        let bytes = self.body.continuation(partial)?;
        // What is left of the request's attempts, with a fresh deadline for the rest.
        let budget = dispatch::Budget {
            max_attempts: remaining,
            ..dispatch::Budget::of(&self.snap)
        };
        let snap = &*self.snap;
        let upstream = self.state.upstream.clone();
        let probe = OutcomeHandle::default();
        let result = dispatch::run(
            &self.state.keys,
            &self.state.stats,
            snap,
            budget,
            &self.model,
            &probe,
            |key| {
                let bytes = bytes.clone();
                let url = &self.url;
                let upstream = &upstream;
                async move { open(upstream, url, &key, bytes, snap).await }
            },
            |_| false,
        )
        .await;
        let spent = probe.get();
        self.outcome.update(|o| {
            o.attempts += spent.attempts;
            o.key = spent.key.or(o.key);
        });
        match result {
            Ok((Opened::Commit { events, held }, lease)) => {
                tracing::info!(
                    sent_chars = partial.chars().count(),
                    "stream rescued on another key"
                );
                self.trim_next = Some(partial.to_owned());
                Some((events, held, lease))
            }
            Ok((Opened::Blocked(_), _)) | Err(_) => None,
        }
    }

    /// Drops text the continuation repeats from what was already sent (its first text only).
    fn trim(&mut self, event: &mut GenerateContentResponse) {
        let Some(sent) = &self.trim_next else { return };
        let Some(part) = event
            .candidates
            .as_mut()
            .and_then(|c| c.first_mut())
            .and_then(|c| c.content.as_mut())
            .and_then(|c| {
                c.parts
                    .iter_mut()
                    .find(|p| !p.is_thought() && p.text.as_deref().is_some_and(|t| !t.is_empty()))
            })
        else {
            return;
        };
        if let Some(text) = part.text.as_mut() {
            let skip = overlap(sent, text);
            text.drain(..skip);
        }
        self.trim_next = None;
    }
}

/// Bytes at the start of `next` that repeat the end of `sent` (up to 400 bytes).
fn overlap(sent: &str, next: &str) -> usize {
    let max = next.len().min(sent.len()).min(400);
    (1..=max)
        .rev()
        .filter(|k| next.is_char_boundary(*k))
        .find(|k| sent.ends_with(&next[..*k]))
        .unwrap_or(0)
}

fn keep_signatures(memo: &SignatureMemo, mapper: &mut ChunkMapper) {
    for (id, sig) in mapper.drain_signatures() {
        memo.store.remember(&id, &memo.model, &sig);
    }
}

impl Relay {
    fn new(
        events: GeminiEvents,
        held: Vec<GenerateContentResponse>,
        mut mapper: ChunkMapper,
        memo: SignatureMemo,
        rescue: Rescue,
        lease: Lease,
    ) -> Self {
        let mut out = Vec::new();
        for e in &held {
            mapper.map_event(e, &mut out);
        }
        keep_signatures(&memo, &mut mapper);
        Self {
            events,
            lease,
            mapper,
            memo,
            rescue,
            queue: out.into(),
            finished: false,
        }
    }

    fn map(&mut self, mut event: GenerateContentResponse, out: &mut Vec<Bytes>) {
        self.rescue.trim(&mut event);
        self.mapper.map_event(&event, out);
        keep_signatures(&self.memo, &mut self.mapper);
    }

    /// Continues a broken stream on another key (mid-stream rescue). True when it did.
    async fn try_rescue(&mut self, out: &mut Vec<Bytes>) -> bool {
        let Some(partial) = self.mapper.rescuable().map(str::to_owned) else {
            return false;
        };
        let Some((events, held, lease)) = self.rescue.attempt(&partial).await else {
            return false;
        };
        self.mapper.begin_rescue();
        self.events = events;
        self.lease = lease;
        for event in held {
            self.map(event, out);
        }
        true
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
                Some(Ok(event)) => self.map(event, &mut out),
                Some(Err(f)) => {
                    tracing::warn!(
                        failure = f.kind(),
                        "upstream stream failed after the first byte"
                    );
                    if !self.try_rescue(&mut out).await {
                        self.finished = true;
                        out.push(inband_error(&GatewayError::BadGateway {
                            message: format!(
                                "上游流中断：{l} / The upstream stream broke: {l}",
                                l = f.label()
                            ),
                        }));
                    }
                }
                None if self.mapper.is_finished() => {
                    self.finished = true;
                    self.mapper.finish(&mut out);
                    let usage = self.mapper.total_usage();
                    crate::pipeline::complete::record_tokens(
                        &self.rescue.state.stats,
                        self.rescue.outcome.get().key,
                        &self.rescue.model,
                        Some(&usage),
                    );
                }
                None => {
                    tracing::warn!("upstream stream ended without a finish reason");
                    if !self.try_rescue(&mut out).await {
                        self.finished = true;
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

#[cfg(test)]
mod tests {
    use super::overlap;

    #[test]
    fn a_continuation_that_repeats_the_end_is_trimmed() {
        assert_eq!(overlap("one two three ", "three four"), "three ".len());
        assert_eq!(overlap("one two", "three"), 0);
        assert_eq!(
            overlap("你好世界", "世界和平"),
            "世界".len(),
            "char boundaries hold"
        );
        assert_eq!(overlap("", "x"), 0);
    }
}
