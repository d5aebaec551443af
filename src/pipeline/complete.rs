//! Complete (non-stream) answers, for OpenAI and native requests alike, whether the client
//! asked for JSON or for a (fake) stream: the response cache, in-flight sharing of identical
//! requests, HAJIMI's raced attempts, and delivery that keeps slow answers alive — headers
//! go out only when the first keep-alive is due, so fast failures keep their real status,
//! and a failure after that is delivered in-band (decisions §3, §6).

use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use serde_json::json;
use tokio::time::Instant;

use crate::cache::{Answer, Join, follow};
use crate::config::Settings;
use crate::error::{Flavor, GatewayError};
use crate::keys::KeySlot;
use crate::pipeline::dispatch::{self, Leftovers, prompt_blocked};
use crate::signatures::Signatures;
use crate::state::AppState;
use crate::telemetry::OutcomeHandle;
use crate::translate::assess::{Assessment, assess};
use crate::translate::fixups::{drop_penalties, refuses_json_schema, use_schema_subset};
use crate::translate::openai::answer::{drop_reasoning, signature_of, to_openai};
use crate::translate::openai::completion_id;
use crate::translate::openai::stream::{ChunkMapper, sse_json};
use crate::translate::unix_now;
use crate::upstream::classify::Failure;
use crate::upstream::{ANSWER_LIMIT, classify_response, read_body};
use crate::wire::gemini::{GenerateContentRequest, GenerateContentResponse};

/// One-time corrections of a request that Google refused for a known, fixable reason:
/// penalties a model does not support (decisions §4), and JSON Schema fields a model does not
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

/// The upstream body of one client request, shared by its attempts: the serialised bytes
/// only, plus (OpenAI path) the request's other fields without its `contents`, which is all
/// a fix-up changes. A fix-up re-serialises those fields behind the unchanged contents; a
/// mid-stream rescue splices its two turns into the contents. Native bodies are raw bytes.
pub struct RequestBody {
    inner: Mutex<Inner>,
}

struct Inner {
    bytes: Bytes,
    head: Option<Head>,
    fixups: Fixups,
}

/// Everything but the contents, and where the contents end in the bytes.
struct Head {
    rest: GenerateContentRequest,
    contents_end: usize,
}

/// How a serialised request starts; `contents` is its first field.
const CONTENTS_OPEN: &[u8] = b"{\"contents\":[";

impl RequestBody {
    /// Serialises a translated request, consuming it: each part is written and dropped in
    /// turn, so the typed contents and their JSON never both exist in full.
    pub fn typed(mut request: GenerateContentRequest) -> Result<Self, GatewayError> {
        let contents = std::mem::take(&mut request.contents);
        let rest = rest_fields(&request)?;
        // Sized up front: growing a buffer of many megabytes would copy it (two copies at once).
        let estimate = CONTENTS_OPEN.len()
            + contents.iter().map(estimated_len).sum::<usize>()
            + 1
            + rest.len();
        let mut out = Vec::with_capacity(estimate);
        out.extend_from_slice(CONTENTS_OPEN);
        for (i, content) in contents.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_content(&mut out, content)?;
        }
        out.push(b']');
        let contents_end = out.len();
        out.extend_from_slice(&rest);
        Ok(Self {
            inner: Mutex::new(Inner {
                bytes: Bytes::from(out),
                head: Some(Head {
                    rest: request,
                    contents_end,
                }),
                fixups: Fixups::default(),
            }),
        })
    }

    pub fn raw(bytes: Bytes) -> Self {
        Self {
            inner: Mutex::new(Inner {
                bytes,
                head: None,
                fixups: Fixups::default(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn bytes(&self) -> Bytes {
        self.lock().bytes.clone()
    }

    /// The request to continue a reply that broke after `partial` was sent: the partial
    /// reply as the model's turn, then a user turn asking it to go on (mid-stream rescue).
    pub fn continuation(&self, partial: &str) -> Option<Bytes> {
        use crate::wire::gemini::{Content, Part};
        let guard = self.lock();
        let end = guard.head.as_ref()?.contents_end;
        let bytes = &guard.bytes;
        if partial.is_empty() {
            return Some(bytes.clone());
        }
        let turns = [
            Content {
                role: Some("model".into()),
                parts: vec![Part::text(partial)],
            },
            Content {
                role: Some("user".into()),
                parts: vec![Part::text(CONTINUE_PROMPT)],
            },
        ];
        let mut out = Vec::with_capacity(bytes.len() + partial.len() + 512);
        out.extend_from_slice(bytes.get(..end.checked_sub(1)?)?);
        for turn in &turns {
            if out.len() > CONTENTS_OPEN.len() {
                out.push(b',');
            }
            serde_json::to_writer(&mut out, turn).ok()?;
        }
        out.extend_from_slice(bytes.get(end - 1..)?);
        Some(Bytes::from(out))
    }

    /// Applies a one-time fix-up for this failure; true when the request changed.
    pub fn fix(&self, failure: &Failure) -> bool {
        let mut guard = self.lock();
        let Inner {
            bytes,
            head,
            fixups,
        } = &mut *guard;
        let Some(head) = head.as_mut() else {
            return false;
        };
        if !fixups.retry_with_fix(failure, &mut head.rest) {
            return false;
        }
        let (Ok(rest), Some(contents)) = (rest_fields(&head.rest), bytes.get(..head.contents_end))
        else {
            return false;
        };
        let mut out = Vec::with_capacity(contents.len() + rest.len());
        out.extend_from_slice(contents);
        out.extend_from_slice(&rest);
        *bytes = Bytes::from(out);
        true
    }
}

/// Writes one content as serde would, its parts one by one, each dropped once written.
fn write_content(
    out: &mut Vec<u8>,
    mut content: crate::wire::gemini::Content,
) -> Result<(), GatewayError> {
    let parts = std::mem::take(&mut content.parts);
    let shell = serde_json::to_vec(&content).map_err(GatewayError::internal)?;
    // `parts` is the last field: `{"role":"user","parts":[]}`.
    let Some(open) = shell.strip_suffix(b"]}".as_slice()) else {
        content.parts = parts;
        return serde_json::to_writer(out, &content).map_err(GatewayError::internal);
    };
    out.extend_from_slice(open);
    for (i, part) in parts.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, &part).map_err(GatewayError::internal)?;
    }
    out.extend_from_slice(b"]}");
    Ok(())
}

/// The fields after `contents` as they follow it in the body: `,"systemInstruction":…}`, or
/// `}` when there are none. `request.contents` is empty here.
fn rest_fields(request: &GenerateContentRequest) -> Result<Vec<u8>, GatewayError> {
    let json = serde_json::to_vec(request).map_err(GatewayError::internal)?;
    json.strip_prefix(b"{\"contents\":[]".as_slice())
        .map(<[u8]>::to_vec)
        .ok_or_else(|| GatewayError::internal(anyhow::anyhow!("contents is not the first field")))
}

/// About how long a content's JSON is (exact for inline data, which dominates large bodies).
fn estimated_len(content: &crate::wire::gemini::Content) -> usize {
    content
        .parts
        .iter()
        .map(|p| {
            let text = p.text.as_ref().map_or(0, |t| t.len() + t.len() / 16);
            let data = p.inline_data.as_ref().map_or(0, |b| b.data.len());
            64 + text + data
        })
        .sum::<usize>()
        + 32
}

/// What a mid-stream rescue asks the model.
pub const CONTINUE_PROMPT: &str = "Your previous reply was cut off. Continue exactly where it stopped: do not repeat anything already written and do not add any preamble.";

/// What to ask Google for.
pub struct Plan {
    /// The upstream model (URL and key cooldown scope).
    pub model: String,
    /// The full `:generateContent` URL.
    pub url: crate::upstream::UpstreamUrl,
    pub body: Arc<RequestBody>,
    /// Response-cache key, when this request may use the cache.
    pub cache_key: Option<u64>,
    /// Native requests get Google's request errors back as answers (forwarded as they are).
    pub native: bool,
}

/// Gets an answer: from the cache, from an identical request in flight, or from raced
/// attempts whose surplus answers go to the cache.
pub async fn obtain(
    state: AppState,
    snap: Arc<Settings>,
    plan: Plan,
    outcome: OutcomeHandle,
) -> Result<Answer, GatewayError> {
    let budget = dispatch::Budget::of(&snap);
    let deadline = budget.deadline;
    if let Some(key) = plan.cache_key
        && let Some(answer) = cached(&state, &snap, key, deadline).await
    {
        outcome.update(|o| o.cache_hit = true);
        return Ok(answer);
    }
    let leader = match plan.cache_key.filter(|_| !snap.public_mode) {
        Some(key) => match state.inflight.join(key) {
            Join::Follower(rx) => {
                if let Some(shared) = follow(rx, deadline).await {
                    outcome.update(|o| o.cache_hit = true);
                    return shared;
                }
                None
            }
            Join::Leader(guard) => Some(guard),
            Join::Untracked => None,
        },
        None => None,
    };
    let result = race(&state, &snap, budget, &plan, &outcome).await;
    if let Ok(answer) = &result {
        record_tokens(
            &state.stats,
            outcome.get().key,
            &plan.model,
            answer
                .parsed
                .as_ref()
                .and_then(|p| p.usage_metadata.as_ref()),
        );
    }
    if let Some(guard) = &leader {
        guard.publish(&result);
    }
    result
}

/// A cached answer for `key` (when the cache is on), waiting until `until` for surplus
/// answers known to be on their way.
pub async fn cached(state: &AppState, snap: &Settings, key: u64, until: Instant) -> Option<Answer> {
    let caching = snap.max_cache_entries > 0 && !snap.cache_expiry_time.is_zero();
    if !caching {
        return None;
    }
    state.cache.take(key, until).await
}

async fn race(
    state: &AppState,
    snap: &Arc<Settings>,
    budget: dispatch::Budget,
    plan: &Plan,
    outcome: &OutcomeHandle,
) -> Result<Answer, GatewayError> {
    let upstream = state.upstream.clone();
    let url = Arc::new(plan.url.clone());
    let body = Arc::clone(&plan.body);
    let idle = snap.upstream_timeout;
    let native = plan.native;
    let attempt = move |key: Arc<KeySlot>| -> BoxFuture<'static, Result<Answer, Failure>> {
        let upstream = upstream.clone();
        let url = Arc::clone(&url);
        let bytes = body.bytes();
        Box::pin(async move { generate(&upstream, &url, &key, bytes, idle, native).await })
    };
    let tasks = state.tasks.clone();
    let spawn = move |fut: BoxFuture<'static, ()>| tasks.spawn(fut).abort_handle();
    let (answer, leftovers) = dispatch::race(
        &state.keys,
        &state.stats,
        snap,
        budget,
        &plan.model,
        outcome,
        &spawn,
        &attempt,
        |f| plan.body.fix(f),
    )
    .await?;
    if let (Some(left), Some(key)) = (leftovers, plan.cache_key) {
        keep_surplus(state, snap, key, left);
    }
    Ok(answer)
}

/// Counts an answer's tokens in the statistics and metrics.
pub fn record_tokens(
    stats: &crate::stats::Stats,
    key: Option<crate::mask::KeyId>,
    model: &str,
    usage: Option<&crate::wire::gemini::UsageMetadata>,
) {
    let Some(u) = usage else { return };
    let c = crate::store::Counters {
        prompt_tokens: u.prompt_token_count + u.tool_use_prompt_token_count,
        completion_tokens: u.candidates_token_count + u.thoughts_token_count,
        thought_tokens: u.thoughts_token_count,
        cached_tokens: u.cached_content_token_count,
        ..crate::store::Counters::default()
    };
    stats.record(key, model, &c);
    crate::metrics::tokens(
        model,
        c.prompt_tokens,
        c.completion_tokens,
        c.thought_tokens,
        c.cached_tokens,
    );
}

/// Collects a won race's other answers into the cache (HAJIMI's free "regenerate").
fn keep_surplus(state: &AppState, snap: &Settings, key: u64, left: Leftovers<Answer>) {
    let caching = snap.max_cache_entries > 0 && !snap.cache_expiry_time.is_zero();
    if !caching {
        return;
    }
    state.cache.expect(key, left.remaining);
    let owner = state.clone();
    let (ttl, max) = (snap.cache_expiry_time, snap.max_cache_entries);
    state.spawn_tracked(async move { collect_surplus(&owner.cache, key, left, ttl, max).await });
}

/// Puts each leftover answer in the cache as it comes, and settles every expected one, even
/// those that never come (their attempts were cancelled), so no request waits for them.
async fn collect_surplus(
    cache: &crate::cache::ResponseCache,
    key: u64,
    mut left: Leftovers<Answer>,
    ttl: Duration,
    max: usize,
) {
    let mut outstanding = left.remaining;
    while outstanding > 0 {
        match left.rx.recv().await {
            Some((_, Ok(answer))) => {
                if answer.status == 200 {
                    cache.put(key, answer, ttl, max);
                }
            }
            Some((_, Err(_))) => {}
            // The senders are gone: none of the rest will come.
            None => break,
        }
        cache.settled(key);
        outstanding -= 1;
    }
    for _ in 0..outstanding {
        cache.settled(key);
    }
}

/// One `generateContent` attempt. A 2xx answer with nothing usable is an empty answer
/// (retried); native requests get Google's request errors back as answers.
async fn generate(
    upstream: &crate::upstream::Upstream,
    url: &crate::upstream::UpstreamUrl,
    key: &KeySlot,
    body: Bytes,
    idle: Duration,
    native: bool,
) -> Result<Answer, Failure> {
    let response = upstream
        .send_any(reqwest::Method::POST, url, key.secret(), Some(body), idle)
        .await?;
    if !response.status().is_success() {
        let (status, raw, failure) = classify_response(response, idle).await;
        if native && failure.ends_request() {
            let text = crate::mask::scrub_keys(&String::from_utf8_lossy(&raw));
            return Ok(Answer {
                status,
                raw: Bytes::from(text),
                parsed: None,
            });
        }
        return Err(failure);
    }
    let raw = read_body(response, idle, ANSWER_LIMIT).await?;
    let parsed: GenerateContentResponse =
        serde_json::from_slice(&raw).map_err(|e| Failure::Garbage {
            detail: format!("unreadable answer: {e}"),
        })?;
    if let Assessment::Empty(reason) = assess(&parsed) {
        return Err(Failure::Empty { reason });
    }
    Ok(Answer {
        status: 200,
        raw,
        parsed: Some(Arc::new(parsed)),
    })
}

// ---------------------------------------------------------------------------------------
// Delivery

/// Where a stream's thought signatures are remembered (tool-call ids are minted here).
#[derive(Clone)]
pub struct SignatureMemo {
    pub store: Signatures,
    pub model: String,
}

/// How an answer is written for the client.
pub enum Delivery {
    /// OpenAI `chat.completion` JSON (keep-alive: whitespace).
    OpenAiJson {
        model: String,
        memo: SignatureMemo,
        inband: bool,
        /// Whether thoughts are returned as `reasoning_content` (`include_reasoning`).
        reasoning: bool,
    },
    /// OpenAI chunks for a `stream: true` request served by one complete answer (fake streaming).
    OpenAiStream {
        mapper: Box<ChunkMapper>,
        memo: SignatureMemo,
        inband: bool,
    },
    /// Google's JSON as Google sent it (keep-alive: whitespace).
    GeminiJson,
    /// A faked `alt=sse` stream: keep-alives are valid GenerateContentResponse events.
    GeminiSse,
    /// A faked JSON-array stream: `[`, whitespace while waiting, the answer, `]`.
    GeminiArray,
}

const GEMINI_KEEPALIVE: &[u8] = b"data: {\"candidates\": [{\"content\": {\"parts\": [],\"role\": \"model\"},\"index\": 0}]}\r\n\r\n";

impl Delivery {
    fn content_type(&self) -> &'static str {
        match self {
            Self::OpenAiJson { .. } => "application/json",
            Self::OpenAiStream { .. } => "text/event-stream; charset=utf-8",
            Self::GeminiJson | Self::GeminiArray => "application/json; charset=UTF-8",
            Self::GeminiSse => "text/event-stream",
        }
    }

    fn flavor(&self) -> Flavor {
        match self {
            Self::OpenAiJson { .. } | Self::OpenAiStream { .. } => Flavor::OpenAi,
            _ => Flavor::Gemini,
        }
    }

    /// What opens the body once headers go out (before the first keep-alive).
    fn opening(&self) -> Option<Bytes> {
        matches!(self, Self::GeminiArray).then(|| Bytes::from_static(b"["))
    }

    fn keepalive(&self) -> Bytes {
        match self {
            Self::OpenAiStream { mapper, .. } => mapper.keepalive(),
            Self::GeminiSse => Bytes::from_static(GEMINI_KEEPALIVE),
            Self::OpenAiJson { .. } | Self::GeminiJson | Self::GeminiArray => {
                Bytes::from_static(b"\n")
            }
        }
    }

    /// Whether an error is one HAJIMI reported in-band (`INBAND_ERRORS`).
    fn inband(&self, e: &GatewayError) -> bool {
        let on = match self {
            Self::OpenAiJson { inband, .. } | Self::OpenAiStream { inband, .. } => *inband,
            _ => false,
        };
        on && matches!(
            e,
            GatewayError::QuotaExhausted { .. }
                | GatewayError::InsufficientQuota { .. }
                | GatewayError::BadGateway { .. }
                | GatewayError::Unavailable { .. }
                | GatewayError::Timeout { .. }
        )
    }

    /// The body parts of a result; `Err` when nothing was sent yet and the error should keep
    /// its status.
    fn body(
        self,
        result: Result<Answer, GatewayError>,
        headers_out: bool,
    ) -> Result<(StatusCode, Vec<Bytes>), GatewayError> {
        let result = match result {
            Err(e) if self.inband(&e) => return Ok((StatusCode::OK, self.inband_body(&e))),
            Err(e) if !headers_out => return Err(e),
            r => r,
        };
        match self {
            Self::OpenAiJson {
                model,
                memo,
                reasoning,
                ..
            } => {
                let completion =
                    result.and_then(|a| openai_completion(&a, &model, &memo, reasoning));
                match completion {
                    Ok(json) => Ok((StatusCode::OK, vec![json])),
                    Err(e) if !headers_out => Err(e),
                    Err(e) => Ok((
                        StatusCode::OK,
                        vec![Bytes::from(e.openai_body().to_string())],
                    )),
                }
            }
            Self::OpenAiStream {
                mut mapper, memo, ..
            } => {
                let parsed = result.and_then(|a| {
                    let parsed = a.parsed.ok_or_else(|| {
                        GatewayError::internal(anyhow::anyhow!("unparsed answer"))
                    })?;
                    if let Assessment::PromptBlocked(reason) = assess(&parsed) {
                        return Err(prompt_blocked(&reason));
                    }
                    Ok(parsed)
                });
                match parsed {
                    Ok(parsed) => {
                        let mut out = Vec::new();
                        mapper.map_event(&parsed, &mut out);
                        for (id, sig) in mapper.drain_signatures() {
                            memo.store.remember(&id, &memo.model, &sig);
                        }
                        mapper.finish(&mut out);
                        Ok((StatusCode::OK, out))
                    }
                    Err(e) if !headers_out => Err(e),
                    Err(e) => Ok((StatusCode::OK, vec![sse_json(&e.openai_body())])),
                }
            }
            Self::GeminiJson => match result {
                Ok(a) => Ok((
                    StatusCode::from_u16(a.status).unwrap_or(StatusCode::OK),
                    vec![a.raw],
                )),
                Err(e) => Ok((
                    StatusCode::OK,
                    vec![Bytes::from(e.gemini_body().to_string())],
                )),
            },
            Self::GeminiSse => match result {
                Ok(a) if a.status == 200 || headers_out => {
                    Ok((StatusCode::OK, vec![sse_frame(&a.raw)]))
                }
                Ok(a) => Ok((
                    StatusCode::from_u16(a.status).unwrap_or(StatusCode::BAD_REQUEST),
                    vec![a.raw],
                )),
                Err(e) => Ok((
                    StatusCode::OK,
                    vec![sse_frame(e.gemini_body().to_string().as_bytes())],
                )),
            },
            Self::GeminiArray => match result {
                Ok(a) if a.status == 200 || headers_out => {
                    let mut parts = Vec::new();
                    if !headers_out {
                        parts.push(Bytes::from_static(b"["));
                    }
                    parts.push(a.raw);
                    parts.push(Bytes::from_static(b"]"));
                    Ok((StatusCode::OK, parts))
                }
                Ok(a) => Ok((
                    StatusCode::from_u16(a.status).unwrap_or(StatusCode::BAD_REQUEST),
                    vec![a.raw],
                )),
                Err(e) => Ok((
                    StatusCode::OK,
                    vec![
                        Bytes::from(e.gemini_body().to_string()),
                        Bytes::from_static(b"]"),
                    ],
                )),
            },
        }
    }

    /// HAJIMI's `role: "error"` completion (opt-in, for SillyTavern).
    fn inband_body(&self, e: &GatewayError) -> Vec<Bytes> {
        let text = e.to_string();
        match self {
            Self::OpenAiStream { mapper, .. } => {
                let chunk = json!({"id": mapper.id(), "object": "chat.completion.chunk", "created": mapper.created(), "model": mapper.model(),
                    "choices": [{"index": 0, "delta": {"role": "error", "content": text}, "logprobs": null, "finish_reason": "stop"}]});
                vec![sse_json(&chunk), Bytes::from_static(b"data: [DONE]\n\n")]
            }
            Self::OpenAiJson { model, .. } => {
                let body = json!({"id": completion_id(), "object": "chat.completion", "created": unix_now(), "model": model,
                    "choices": [{"index": 0, "message": {"role": "error", "content": text}, "logprobs": null, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}});
                vec![Bytes::from(body.to_string())]
            }
            _ => vec![Bytes::from(e.gemini_body().to_string())],
        }
    }
}

fn sse_frame(json: &[u8]) -> Bytes {
    let compact = compact_json(json);
    let mut out = Vec::with_capacity(compact.len() + 10);
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(&compact);
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

fn openai_completion(
    answer: &Answer,
    model: &str,
    memo: &SignatureMemo,
    reasoning: bool,
) -> Result<Bytes, GatewayError> {
    let parsed = answer
        .parsed
        .as_ref()
        .ok_or_else(|| GatewayError::internal(anyhow::anyhow!("unparsed answer")))?;
    if let Assessment::PromptBlocked(reason) = assess(parsed) {
        return Err(prompt_blocked(&reason));
    }
    let mut completion = to_openai(parsed, model, completion_id(), unix_now());
    if !reasoning {
        drop_reasoning(&mut completion);
    }
    for call in completion
        .choices
        .iter()
        .flat_map(|c| c.message.tool_calls.iter().flatten())
    {
        if let (Some(id), Some(sig)) = (call.id.as_deref(), signature_of(call)) {
            memo.store.remember(id, &memo.model, sig);
        }
    }
    serde_json::to_vec(&completion)
        .map(Bytes::from)
        .map_err(GatewayError::internal)
}

fn with_type(status: StatusCode, content_type: &'static str, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if content_type.starts_with("text/event-stream") {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    }
    response
}

/// Writes the answer of `work`. With a keep-alive interval, headers go out only when the
/// first keep-alive is due; until then a failure keeps its real status. After that, a
/// keep-alive every interval until the answer (or an in-band error) ends the body.
pub async fn deliver(
    work: BoxFuture<'static, Result<Answer, GatewayError>>,
    delivery: Delivery,
    keepalive: Option<Duration>,
) -> Response {
    let content_type = delivery.content_type();
    let flavor = delivery.flavor();
    let mut work = work;
    if let Some(every) = keepalive {
        tokio::select! {
            result = &mut work => return early(delivery, result, content_type, flavor),
            () = tokio::time::sleep(every) => {}
        }
        return late(work, delivery, every, content_type);
    }
    let result = work.await;
    early(delivery, result, content_type, flavor)
}

fn early(
    delivery: Delivery,
    result: Result<Answer, GatewayError>,
    content_type: &'static str,
    flavor: Flavor,
) -> Response {
    match delivery.body(result, false) {
        Ok((status, parts)) => {
            let body = if parts.len() == 1 {
                Body::from(parts.into_iter().next().unwrap_or_default())
            } else {
                Body::from_stream(futures_util::stream::iter(
                    parts.into_iter().map(Ok::<Bytes, Infallible>),
                ))
            };
            // An error answered before any byte went out (Google's 400 forwarded on a native
            // stream) is a JSON document, not an event stream.
            let content_type = if status.is_success() {
                content_type
            } else {
                "application/json; charset=UTF-8"
            };
            with_type(status, content_type, body)
        }
        Err(e) => e.render(flavor).into_response(),
    }
}

fn late(
    work: BoxFuture<'static, Result<Answer, GatewayError>>,
    delivery: Delivery,
    every: Duration,
    content_type: &'static str,
) -> Response {
    struct State {
        work: Option<BoxFuture<'static, Result<Answer, GatewayError>>>,
        delivery: Option<Delivery>,
        queue: std::collections::VecDeque<Bytes>,
        ticker: tokio::time::Interval,
    }
    let mut queue = std::collections::VecDeque::new();
    if let Some(open) = delivery.opening() {
        queue.push_back(open);
    }
    queue.push_back(delivery.keepalive());
    let mut ticker = tokio::time::interval_at(Instant::now() + every, every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let state = State {
        work: Some(work),
        delivery: Some(delivery),
        queue,
        ticker,
    };
    let frames = futures_util::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(frame) = s.queue.pop_front() {
                return Some((frame, s));
            }
            let work = s.work.as_mut()?;
            tokio::select! {
                result = work => {
                    s.work = None;
                    if let Some(d) = s.delivery.take()
                        && let Ok((_, parts)) = d.body(result, true)
                    {
                        s.queue.extend(parts);
                    }
                }
                _ = s.ticker.tick() => {
                    if let Some(d) = &s.delivery {
                        s.queue.push_back(d.keepalive());
                    }
                }
            }
        }
    })
    .map(Ok::<Bytes, Infallible>);
    with_type(StatusCode::OK, content_type, Body::from_stream(frames))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three leftovers expected, their attempts gone without a word: a later identical
    /// request must not wait for them.
    #[tokio::test]
    async fn surplus_that_never_comes_is_settled() {
        let cache = crate::cache::ResponseCache::default();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        drop(tx);
        cache.expect(7, 3);
        collect_surplus(
            &cache,
            7,
            Leftovers { rx, remaining: 3 },
            Duration::from_secs(60),
            10,
        )
        .await;
        let waited = tokio::time::timeout(
            Duration::from_secs(5),
            cache.take(7, Instant::now() + Duration::from_secs(3600)),
        )
        .await;
        assert!(matches!(waited, Ok(None)), "nothing to wait for");
    }

    fn sample_request() -> GenerateContentRequest {
        use crate::wire::gemini::{Blob, Content, GenerationConfig, Part};
        GenerateContentRequest {
            contents: vec![
                Content {
                    role: Some("user".into()),
                    parts: vec![
                        Part::text("say \"hi\"\n"),
                        Part {
                            inline_data: Some(Blob {
                                mime_type: "image/png".into(),
                                data: "iVBORw0KGgo=".into(),
                            }),
                            ..Part::default()
                        },
                    ],
                },
                Content {
                    role: Some("model".into()),
                    parts: vec![Part::text("hi")],
                },
            ],
            system_instruction: Some(Content {
                role: None,
                parts: vec![Part::text("be brief")],
            }),
            generation_config: Some(GenerationConfig {
                temperature: Some(0.5),
                presence_penalty: Some(0.2),
                ..GenerationConfig::default()
            }),
            ..GenerateContentRequest::default()
        }
    }

    fn json_of(bytes: &[u8]) -> serde_json::Value {
        serde_json::from_slice(bytes).expect("valid JSON")
    }

    #[test]
    fn the_body_is_what_serde_writes_for_the_whole_request() {
        let request = sample_request();
        let whole = serde_json::to_vec(&request).expect("serialises");
        let body = RequestBody::typed(request).expect("serialises");
        assert_eq!(body.bytes(), Bytes::from(whole));
        let empty = RequestBody::typed(GenerateContentRequest::default()).expect("serialises");
        assert_eq!(json_of(&empty.bytes())["contents"], json!([]));
    }

    #[test]
    fn the_body_buffer_is_sized_once() {
        let mut request = sample_request();
        request.contents[0].parts[1] = crate::wire::gemini::Part {
            inline_data: Some(crate::wire::gemini::Blob {
                mime_type: "image/png".into(),
                data: "A".repeat(1 << 20),
            }),
            ..crate::wire::gemini::Part::default()
        };
        request.safety_settings = Some(crate::translate::safety::safety_settings("gemini-2.5-pro"));
        let rest = rest_fields(&GenerateContentRequest {
            contents: Vec::new(),
            ..request.clone()
        })
        .expect("serialises");
        let estimate = CONTENTS_OPEN.len()
            + request.contents.iter().map(estimated_len).sum::<usize>()
            + 1
            + rest.len();
        let body = RequestBody::typed(request).expect("serialises");
        assert!(
            body.bytes().len() <= estimate,
            "no reallocation while writing"
        );
    }

    #[test]
    fn a_fix_up_rewrites_the_fields_after_the_contents() {
        let body = RequestBody::typed(sample_request()).expect("serialises");
        let before = json_of(&body.bytes());
        let penalty = Failure::PenaltyUnsupported {
            message: "Penalty is not enabled".into(),
        };
        assert!(body.fix(&penalty));
        let after = json_of(&body.bytes());
        assert_eq!(after["contents"], before["contents"]);
        assert_eq!(after["systemInstruction"], before["systemInstruction"]);
        assert_eq!(after["generationConfig"], json!({"temperature": 0.5}));
        assert!(!body.fix(&penalty), "once only");
    }

    #[test]
    fn a_continuation_appends_the_partial_reply_and_a_request_to_go_on() {
        let body = RequestBody::typed(sample_request()).expect("serialises");
        let original = json_of(&body.bytes());
        let next = json_of(&body.continuation("Once upon").expect("a continuation"));
        let contents = next["contents"].as_array().expect("contents");
        assert_eq!(contents.len(), 4);
        assert_eq!(
            contents[..2],
            original["contents"].as_array().expect("contents")[..]
        );
        assert_eq!(
            contents[2],
            json!({"role": "model", "parts": [{"text": "Once upon"}]})
        );
        assert_eq!(contents[3]["parts"][0]["text"], CONTINUE_PROMPT);
        assert_eq!(next["generationConfig"], original["generationConfig"]);
        assert_eq!(body.continuation(""), Some(body.bytes()));
        assert_eq!(
            RequestBody::raw(Bytes::from_static(b"{}")).continuation("x"),
            None
        );
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
    fn the_gemini_keepalive_is_a_valid_response_with_a_candidates_array() {
        let text = std::str::from_utf8(GEMINI_KEEPALIVE).unwrap_or_default();
        let data = text
            .strip_prefix("data: ")
            .and_then(|t| t.strip_suffix("\r\n\r\n"))
            .unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(data).unwrap_or_default();
        assert!(v["candidates"].is_array());
        let parsed: Result<GenerateContentResponse, _> = serde_json::from_str(data);
        assert!(parsed.is_ok());
    }
}
