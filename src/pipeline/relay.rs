//! Real streams: opened across credentials until the first event with content (nothing is
//! sent to the client before that, so every failure until then is retried invisibly), then
//! relayed event by event in the client's dialect. A stream that breaks after its first byte
//! is continued on another credential and stitched into the same client stream (mid-stream
//! rescue) when the dialect can continue it; otherwise it ends with an in-band error
//! (decisions §3, §4).

use std::collections::VecDeque;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;

use crate::cache::Answer;
use crate::config::Settings;
use crate::error::GatewayError;
use crate::keys::{KeySlot, Lease};
use crate::pipeline::deliver::Memo;
use crate::pipeline::dispatch;
use crate::pipeline::obtain::{Posted, post, record_tokens};
use crate::pipeline::request_body::RequestBody;
use crate::pipeline::sse;
use crate::state::AppState;
use crate::telemetry::OutcomeHandle;
use crate::translate::assess::{FirstEvent, first_event};
use crate::translate::dialect::Render;
use crate::upstream::classify::Failure;
use crate::upstream::{GeminiEvents, Target, UpstreamUrl};
use crate::vertex::send::Caller;
use crate::wire::gemini::GenerateContentResponse;

/// An upstream event, as Google sent it and parsed.
type Held = Vec<(Bytes, GenerateContentResponse)>;

/// What the first events of a stream amounted to.
enum Opened {
    /// Content arrived: these events are held for the client, the rest follows.
    Commit { events: GeminiEvents, held: Held },
    /// The prompt was blocked (the dialect decides whether that is an error).
    Blocked { events: GeminiEvents, held: Held },
    /// Google refused the request, forwarded as it is (the identity dialect).
    Refused(Answer),
}

/// A stream to open: where, what, and how to answer.
pub struct Stream {
    pub target: Target,
    pub url: UpstreamUrl,
    /// The upstream model (cooldown scope, signatures, statistics).
    pub model: String,
    pub body: Arc<RequestBody>,
    pub render: Box<dyn Render>,
    pub memo: Memo,
}

/// The means to open one stream attempt.
struct Opener<'a> {
    upstream: &'a Caller,
    target: &'a Target,
    url: &'a UpstreamUrl,
    idle: std::time::Duration,
    forward: bool,
}

impl Opener<'_> {
    /// Opens an upstream stream and reads until content arrives.
    /// `blocked_moves_on`: a blocked prompt is an empty answer, so the next body is tried
    /// (Vertex `-auto`).
    async fn open(
        &self,
        key: &KeySlot,
        body: Bytes,
        blocked_moves_on: bool,
    ) -> Result<Opened, Failure> {
        let posted = post(
            self.upstream,
            self.target,
            self.url,
            key,
            body,
            self.idle,
            self.forward,
        );
        let response = match posted.await? {
            Posted::Ok(response) => response,
            Posted::Refused(answer) => return Ok(Opened::Refused(answer)),
        };
        let mut events = GeminiEvents::new(response, self.idle);
        let mut held = Vec::new();
        loop {
            let Some(next) = events.next_raw().await else {
                return Err(Failure::Empty {
                    reason: "stream ended before any content".to_owned(),
                });
            };
            let (raw, event) = next?;
            let verdict = first_event(&event);
            held.push((raw, event));
            match verdict {
                FirstEvent::Commit => return Ok(Opened::Commit { events, held }),
                FirstEvent::Blocked(reason) if blocked_moves_on => {
                    return Err(Failure::Empty {
                        reason: format!("prompt blocked ({reason}); the next variant is tried"),
                    });
                }
                FirstEvent::Blocked(_) => return Ok(Opened::Blocked { events, held }),
                FirstEvent::EmptyEnd(reason) => return Err(Failure::Empty { reason }),
                FirstEvent::Pending => {}
            }
        }
    }
}

/// Opens the stream across credentials and relays it.
pub async fn stream(
    state: &AppState,
    snap: &Arc<Settings>,
    s: Stream,
    outcome: &OutcomeHandle,
) -> Result<Response, GatewayError> {
    let opener = Opener {
        upstream: &state.caller(),
        target: &s.target,
        url: &s.url,
        idle: snap.upstream_timeout,
        forward: s.render.forwards_request_errors(),
    };
    let (opened, lease) = dispatch::run(
        &dispatch::Dispatch::to(state, &s.target, snap, &s.model, outcome),
        dispatch::Budget::of(snap),
        |key| {
            let bytes = s.body.bytes();
            let moves_on = s.body.has_fallbacks();
            let opener = &opener;
            async move { opener.open(&key, bytes, moves_on).await }
        },
        |failure| s.body.fix(failure),
    )
    .await?;
    let mut render = s.render;
    let (events, held) = match opened {
        Opened::Refused(answer) => {
            let (status, body) = render.complete(&answer)?;
            return Ok(sse::respond(status, render.content_type(false), vec![body]));
        }
        Opened::Blocked { events, held } => {
            if let Some((raw, event)) = held.last() {
                render.check(&Answer {
                    status: 200,
                    raw: raw.clone(),
                    parsed: Some(Arc::new(event.clone())),
                })?;
            }
            (events, held)
        }
        Opened::Commit { events, held } => (events, held),
    };
    let content_type = render.content_type(true);
    let ping = render.keepalive(true);
    let rescue = Rescue {
        state: state.clone(),
        snap: Arc::clone(snap),
        target: s.target,
        url: s.url,
        model: s.model,
        body: s.body,
        outcome: outcome.clone(),
        trim_next: None,
    };
    let relay = Relay::new(events, held, render, s.memo, rescue, lease);
    let frames = futures_util::stream::unfold(relay, |mut relay| async move {
        relay.next_frame().await.map(|frame| (frame, relay))
    });
    let frames = sse::kept_alive(frames, snap.fake_streaming_interval, ping);
    Ok(sse::stream(StatusCode::OK, content_type, frames))
}

/// Relays a committed stream: the dialect's frames as events arrive; its ending after a
/// complete stream, an in-band error after a broken one (decisions §3).
struct Relay {
    events: GeminiEvents,
    /// The credential serving the stream: held until the stream ends, so
    /// `KEY_MAX_CONCURRENCY` counts streams for as long as they run.
    lease: Lease,
    render: Box<dyn Render>,
    memo: Memo,
    rescue: Rescue,
    queue: VecDeque<Bytes>,
    finished: bool,
}

/// What a mid-stream rescue needs: the request, and the means to send its continuation.
struct Rescue {
    state: AppState,
    snap: Arc<Settings>,
    target: Target,
    url: UpstreamUrl,
    model: String,
    body: Arc<RequestBody>,
    outcome: OutcomeHandle,
    /// Text already sent, to trim from the start of the continuation if the model repeats it.
    trim_next: Option<String>,
}

impl Rescue {
    /// Opens a continuation of a broken stream on another credential, within what is left of
    /// the request's retry budget. `None` when no rescue is possible.
    async fn attempt(&mut self, partial: &str) -> Option<(GeminiEvents, Held, Lease)> {
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
        let opener = Opener {
            upstream: &self.state.caller(),
            target: &self.target,
            url: &self.url,
            idle: self.snap.upstream_timeout,
            forward: false,
        };
        let probe = OutcomeHandle::default();
        let result = dispatch::run(
            &dispatch::Dispatch::to(&self.state, &self.target, &self.snap, &self.model, &probe),
            budget,
            |key| {
                let bytes = bytes.clone();
                let opener = &opener;
                async move { opener.open(&key, bytes, false).await }
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
            Ok(_) | Err(_) => None,
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

impl Relay {
    fn new(
        events: GeminiEvents,
        held: Held,
        render: Box<dyn Render>,
        memo: Memo,
        rescue: Rescue,
        lease: Lease,
    ) -> Self {
        let mut relay = Self {
            events,
            lease,
            render,
            memo,
            rescue,
            queue: VecDeque::new(),
            finished: false,
        };
        let mut out = Vec::new();
        for (raw, event) in held {
            relay.map(&raw, event, &mut out);
        }
        relay.queue = out.into();
        relay
    }

    fn map(&mut self, raw: &Bytes, mut event: GenerateContentResponse, out: &mut Vec<Bytes>) {
        self.rescue.trim(&mut event);
        self.render.event(raw, Some(&event), out);
        self.memo.keep(self.render.signatures());
    }

    /// Continues a broken stream on another credential (mid-stream rescue). True when it did.
    async fn try_rescue(&mut self, out: &mut Vec<Bytes>) -> bool {
        let Some(partial) = self.render.rescuable() else {
            return false;
        };
        let Some((events, held, lease)) = self.rescue.attempt(&partial).await else {
            return false;
        };
        self.render.begin_rescue();
        self.events = events;
        self.lease = lease;
        for (raw, event) in held {
            self.map(&raw, event, out);
        }
        true
    }

    /// Ends a broken stream with an in-band error.
    fn broke(&mut self, message: String, out: &mut Vec<Bytes>) {
        self.finished = true;
        self.render
            .fail(&GatewayError::BadGateway { message }, true, out);
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
            match self.events.next_raw().await {
                Some(Ok((raw, event))) => self.map(&raw, event, &mut out),
                Some(Err(f)) => {
                    tracing::warn!(
                        failure = f.kind(),
                        key = ?self.lease.id,
                        "upstream stream failed after the first byte"
                    );
                    if !self.try_rescue(&mut out).await {
                        let l = f.label();
                        self.broke(
                            format!("上游流中断：{l} / The upstream stream broke: {l}"),
                            &mut out,
                        );
                    }
                }
                None if self.render.is_finished() => {
                    self.finished = true;
                    self.render.finish(&mut out);
                    self.memo.keep(self.render.signatures());
                    self.memo.keep_answer(self.render.as_mut());
                    let usage = self.render.usage();
                    record_tokens(
                        &self.rescue.state.stats,
                        &self.rescue.outcome,
                        &self.rescue.model,
                        usage.as_ref(),
                    );
                }
                None => {
                    tracing::warn!("upstream stream ended without a finish reason");
                    if !self.try_rescue(&mut out).await {
                        self.broke(
                            "上游流在完成前意外结束 / The upstream stream ended before the answer was complete (no finish reason)".to_owned(),
                            &mut out,
                        );
                    }
                }
            }
            self.queue.extend(out);
        }
    }
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
