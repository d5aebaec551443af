//! Gemini stream events → Responses SSE events, numbered from 0 (`sequence_number`):
//! `response.created`, `response.in_progress`, then per output item `…output_item.added`,
//! its content events (`…content_part.added`, `…output_text.delta`/`.done`,
//! `…content_part.done`; `…function_call_arguments.delta`/`.done`;
//! `…custom_tool_call_input.delta`/`.done`; `…reasoning_summary_*` for thoughts) and
//! `…output_item.done`, and finally `response.completed` (or `response.incomplete` for
//! max tokens and filtered answers). A failure after the start is an `error` event followed
//! by `response.failed`. Keep-alives are SSE comments (`: keep-alive`), which the SSE
//! parsers of the OpenAI SDKs and Codex skip. Framing: `event: <type>\ndata: <json>\n\n`,
//! no `[DONE]`.

use bytes::Bytes;
use serde_json::json;

use super::answer::{Items, ResponseMeta, status, usage};
use super::request::AnswerContext;
use crate::error::GatewayError;
use crate::translate::history::IdMint;
use crate::wire::gemini::{Content, GenerateContentResponse, UsageMetadata};
use crate::wire::responses::{Response, ResponseError, Sequenced, StreamEvent};

/// The keep-alive frame: an SSE comment.
pub const KEEPALIVE: &[u8] = b": keep-alive\n\n";

/// Per-stream state, driven like the chat dialect's `ChunkMapper`.
#[derive(Debug)]
pub struct ResponseStream {
    meta: ResponseMeta,
    items: Items,
    sequence: u64,
    started: bool,
    finished: bool,
    usage: Option<UsageMetadata>,
    carried: UsageMetadata,
    final_response: Option<Response>,
    /// A continuation of a broken stream is being relayed: its thoughts are not shown (the
    /// answer's message goes on in the same item).
    continuing: bool,
}

impl ResponseStream {
    pub fn new(meta: ResponseMeta, ctx: AnswerContext) -> Self {
        Self {
            meta,
            items: Items::new(ctx),
            sequence: 0,
            started: false,
            finished: false,
            usage: None,
            carried: UsageMetadata::default(),
            final_response: None,
            continuing: false,
        }
    }

    /// Sequential item and call ids, for byte-exact tests.
    #[must_use]
    pub fn with_ids(mut self, ids: IdMint) -> Self {
        self.items = self.items.with_ids(ids);
        self
    }

    pub fn id(&self) -> &str {
        &self.meta.id
    }

    /// The keep-alive frame (an SSE comment), valid anywhere.
    pub fn keepalive(&self) -> Bytes {
        Bytes::from_static(KEEPALIVE)
    }

    fn push(&mut self, event: &StreamEvent, out: &mut Vec<Bytes>) {
        out.push(frame(event, self.sequence));
        self.sequence += 1;
    }

    fn push_all(&mut self, events: Vec<StreamEvent>, out: &mut Vec<Bytes>) {
        for e in &events {
            self.push(e, out);
        }
    }

    /// Writes `response.created` and `response.in_progress` once (also done by the first
    /// [`Self::map_event`]).
    pub fn start(&mut self, out: &mut Vec<Bytes>) {
        if self.started {
            return;
        }
        self.started = true;
        let response = Box::new(self.meta.response("in_progress", Vec::new(), None));
        self.push(
            &StreamEvent::Created {
                response: response.clone(),
            },
            out,
        );
        self.push(&StreamEvent::InProgress { response }, out);
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    pub fn has_output(&self) -> bool {
        self.items.has_output()
    }

    pub fn last_usage(&self) -> Option<UsageMetadata> {
        self.usage
    }

    /// The text sent so far, when a broken stream can be continued (no call, not finished).
    pub fn rescuable(&self) -> Option<&str> {
        (!self.finished && self.items.calls() == 0).then(|| self.items.text())
    }

    /// Starts a continuation: the broken stream's usage is carried into the final count, and
    /// the continuation's thoughts are left out so that its text goes on in the open message.
    pub fn begin_rescue(&mut self) {
        self.continuing = true;
        if let Some(u) = self.usage.take() {
            crate::translate::output::add_usage(&mut self.carried, &u);
        }
    }

    /// `(call_id, thought signature)` pairs produced since the last call.
    pub fn drain_signatures(&mut self) -> Vec<(String, String)> {
        self.items.drain_signatures()
    }

    /// The usage of the whole answer (continued streams included).
    pub fn total_usage(&self) -> UsageMetadata {
        let mut total = self.carried;
        if let Some(u) = &self.usage {
            crate::translate::output::add_usage(&mut total, u);
        }
        total
    }

    /// The final Response (for storage) once the stream has finished or failed.
    pub fn final_response(&self) -> Option<&Response> {
        self.final_response.as_ref()
    }

    /// The answer as a Gemini turn, for the stored conversation.
    pub fn model_turn(&self) -> Content {
        self.items.model_turn()
    }

    /// Maps one upstream event (first candidate only) to SSE frames appended to `out`.
    pub fn map_event(&mut self, event: &GenerateContentResponse, out: &mut Vec<Bytes>) {
        if let Some(u) = event.usage_metadata {
            self.usage = Some(u);
        }
        self.start(out);
        if self.finished {
            return;
        }
        let candidate = event.candidates.as_deref().and_then(<[_]>::first);
        let mut events = Vec::new();
        let finish = match candidate {
            Some(c) if self.continuing => {
                let parts: Vec<_> = c
                    .parts()
                    .iter()
                    .filter(|p| !p.is_thought() || p.function_call.is_some())
                    .cloned()
                    .collect();
                self.items
                    .push_parts(&parts, c.grounding_metadata.as_ref(), &mut events);
                c.finish_reason.clone()
            }
            Some(c) => {
                self.items
                    .push_parts(c.parts(), c.grounding_metadata.as_ref(), &mut events);
                c.finish_reason.clone()
            }
            None if event
                .prompt_feedback
                .as_ref()
                .is_some_and(|f| f.block_reason.is_some()) =>
            {
                Some("SAFETY".to_owned())
            }
            None => None,
        };
        self.push_all(events, out);
        if let Some(reason) = finish {
            self.end(Some(&reason), out);
        }
    }

    /// After a complete upstream stream: completes the response if no finish reason did.
    pub fn finish(&mut self, out: &mut Vec<Bytes>) {
        self.start(out);
        if !self.finished {
            self.end(None, out);
        }
    }

    fn end(&mut self, finish: Option<&str>, out: &mut Vec<Bytes>) {
        let (status, incomplete) = status(finish);
        let mut events = Vec::new();
        self.items.close(status, &mut events);
        self.push_all(events, out);
        self.finished = true;
        let mut response = self.meta.response(
            status,
            self.items.output().to_vec(),
            Some(usage(Some(&self.total_usage()))),
        );
        response.incomplete_details = incomplete;
        let boxed = Box::new(response.clone());
        let event = if status == "completed" {
            StreamEvent::Completed { response: boxed }
        } else {
            StreamEvent::Incomplete { response: boxed }
        };
        self.push(&event, out);
        self.final_response = Some(response);
    }

    /// An in-stream failure: an `error` event in OpenAI's envelope, then `response.failed`
    /// whose `error.code` Codex reads (`rate_limit_exceeded` is retried after the wait the
    /// message names, `insufficient_quota` is not retried).
    pub fn fail(&mut self, err: &GatewayError, out: &mut Vec<Bytes>) {
        self.start(out);
        let body = err.openai_body();
        let inner = body.get("error").cloned().unwrap_or_else(|| json!({}));
        let openai_code = inner
            .get("code")
            .and_then(|c| c.as_str())
            .map(str::to_owned);
        let message = err.to_string();
        self.push(
            &StreamEvent::Error {
                code: openai_code,
                message: message.clone(),
                param: None,
                error: inner,
            },
            out,
        );
        let code = match err {
            GatewayError::RateLimited { .. } | GatewayError::QuotaExhausted { .. } => {
                "rate_limit_exceeded"
            }
            GatewayError::InsufficientQuota { .. } => "insufficient_quota",
            _ => "server_error",
        };
        self.finished = true;
        let mut response = self.meta.response(
            "failed",
            self.items.output().to_vec(),
            Some(usage(Some(&self.total_usage()))),
        );
        response.error = Some(ResponseError {
            code: code.into(),
            message,
        });
        self.push(
            &StreamEvent::Failed {
                response: Box::new(response.clone()),
            },
            out,
        );
        self.final_response = Some(response);
    }
}

/// `event: <type>\ndata: <json with sequence_number>\n\n`.
pub fn frame(event: &StreamEvent, sequence_number: u64) -> Bytes {
    let mut buf = Vec::with_capacity(256);
    buf.extend_from_slice(b"event: ");
    buf.extend_from_slice(event.name().as_bytes());
    buf.extend_from_slice(b"\ndata: ");
    if serde_json::to_writer(
        &mut buf,
        &Sequenced {
            event,
            sequence_number,
        },
    )
    .is_err()
    {
        buf.extend_from_slice(b"{}");
    }
    buf.extend_from_slice(b"\n\n");
    Bytes::from(buf)
}
