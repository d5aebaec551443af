//! Gemini stream events → Anthropic SSE events: `message_start`, then per block
//! `content_block_start`, deltas (`text_delta`, `thinking_delta`, `signature_delta`,
//! `input_json_delta`) and `content_block_stop`, then `message_delta` (stop reason, usage)
//! and `message_stop`. `ping` is the keep-alive; a failure after the start is an `error`
//! event. Framing: `event: <type>\ndata: <json>\n\n`, no `[DONE]`.

use bytes::Bytes;

use super::answer::{BlockEvent, Blocks, stop_reason, usage};
use crate::error::GatewayError;
use crate::translate::history::IdMint;
use crate::wire::anthropic::{MessageDelta, MessageResponse, StreamEvent};
use crate::wire::gemini::{GenerateContentResponse, UsageMetadata};

/// Per-stream state, driven by the pipeline: [`MessageStream::map_event`] for each upstream
/// event, [`MessageStream::ping`] while waiting, [`MessageStream::finish`] after a complete
/// upstream stream, [`MessageStream::error`] when it fails after the start.
#[derive(Debug)]
pub struct MessageStream {
    id: String,
    model: String,
    blocks: Blocks,
    started: bool,
    finished: bool,
    usage: Option<UsageMetadata>,
    /// Usage of streams that broke and were continued.
    carried: UsageMetadata,
}

impl MessageStream {
    /// `id` is the `msg_…` id, `model` the client's model name, `upstream_model` the model
    /// that answers; `thinking_blocks` from the translated request.
    pub fn new(id: String, model: String, upstream_model: &str, thinking_blocks: bool) -> Self {
        Self {
            id,
            model,
            blocks: Blocks::new(upstream_model, thinking_blocks),
            started: false,
            finished: false,
            usage: None,
            carried: UsageMetadata::default(),
        }
    }

    /// Sequential tool-use ids, for byte-exact tests.
    #[must_use]
    pub fn with_ids(mut self, ids: IdMint) -> Self {
        self.blocks = self.blocks.with_ids(ids);
        self
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    /// The keep-alive event (`event: ping`), valid anywhere in the stream.
    pub fn ping(&self) -> Bytes {
        frame(&StreamEvent::Ping)
    }

    /// Writes `message_start` once (also done by the first [`Self::map_event`]).
    pub fn start(&mut self, out: &mut Vec<Bytes>) {
        if self.started {
            return;
        }
        self.started = true;
        let mut u = usage(self.usage.as_ref());
        u.output_tokens = 0;
        out.push(frame(&StreamEvent::MessageStart {
            message: MessageResponse {
                id: self.id.clone(),
                kind: "message",
                role: "assistant",
                model: self.model.clone(),
                content: Vec::new(),
                stop_reason: None,
                stop_sequence: None,
                usage: u,
            },
        }));
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Whether any content block was sent.
    pub fn has_output(&self) -> bool {
        self.blocks.has_output()
    }

    pub fn last_usage(&self) -> Option<UsageMetadata> {
        self.usage
    }

    /// The text sent so far, when a broken stream can be continued (no tool use, not
    /// finished); the continuation's text goes on in the open text block.
    pub fn rescuable(&self) -> Option<&str> {
        (!self.finished && self.blocks.tool_uses() == 0).then(|| self.blocks.text())
    }

    /// Starts a continuation: the broken stream's usage is carried into the final count.
    pub fn begin_rescue(&mut self) {
        if let Some(u) = self.usage.take() {
            crate::translate::output::add_usage(&mut self.carried, &u);
        }
    }

    /// `(tool_use id, thought signature)` pairs produced since the last call.
    pub fn drain_signatures(&mut self) -> Vec<(String, String)> {
        self.blocks.drain_signatures()
    }

    /// The usage of the whole answer (continued streams included).
    pub fn total_usage(&self) -> UsageMetadata {
        let mut total = self.carried;
        if let Some(u) = &self.usage {
            crate::translate::output::add_usage(&mut total, u);
        }
        total
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
            Some(c) => {
                self.blocks.push_parts(c.parts(), &mut events);
                c.finish_reason.clone()
            }
            // A prompt block after the start: the answer ends as a refusal.
            None if event
                .prompt_feedback
                .as_ref()
                .is_some_and(|f| f.block_reason.is_some()) =>
            {
                Some("SAFETY".to_owned())
            }
            None => None,
        };
        out.extend(events.iter().map(block_frame));
        if let Some(reason) = finish {
            self.end(Some(&reason), out);
        }
    }

    /// After a complete upstream stream: closes the message if no finish reason did.
    pub fn finish(&mut self, out: &mut Vec<Bytes>) {
        self.start(out);
        if !self.finished {
            self.end(None, out);
        }
    }

    fn end(&mut self, reason: Option<&str>, out: &mut Vec<Bytes>) {
        let mut events = Vec::new();
        self.blocks.close(&mut events);
        out.extend(events.iter().map(block_frame));
        self.finished = true;
        let total = self.total_usage();
        out.push(frame(&StreamEvent::MessageDelta {
            delta: MessageDelta {
                stop_reason: Some(stop_reason(reason, self.blocks.tool_uses() > 0)),
                stop_sequence: None,
            },
            usage: usage(Some(&total)),
        }));
        out.push(frame(&StreamEvent::MessageStop));
    }

    /// An in-stream failure: Anthropic's `error` event (the stream then closes).
    pub fn error(&self, err: &GatewayError) -> Bytes {
        let body = err.anthropic_error();
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(b"event: error\ndata: ");
        if serde_json::to_writer(&mut buf, &body).is_err() {
            buf.extend_from_slice(b"{}");
        }
        buf.extend_from_slice(b"\n\n");
        Bytes::from(buf)
    }
}

fn block_frame(event: &BlockEvent) -> Bytes {
    frame(&match event.clone() {
        BlockEvent::Start(index, content_block) => StreamEvent::ContentBlockStart {
            index,
            content_block,
        },
        BlockEvent::Delta(index, delta) => StreamEvent::ContentBlockDelta { index, delta },
        BlockEvent::Stop(index) => StreamEvent::ContentBlockStop { index },
    })
}

/// `event: <type>\ndata: <json>\n\n`.
pub fn frame(event: &StreamEvent) -> Bytes {
    let mut buf = Vec::with_capacity(128);
    buf.extend_from_slice(b"event: ");
    buf.extend_from_slice(event.name().as_bytes());
    buf.extend_from_slice(b"\ndata: ");
    if serde_json::to_writer(&mut buf, event).is_err() {
        buf.extend_from_slice(b"{}");
    }
    buf.extend_from_slice(b"\n\n");
    Bytes::from(buf)
}
