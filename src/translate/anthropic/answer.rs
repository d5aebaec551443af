//! Gemini answer → Anthropic content blocks, stop reason and usage. [`Blocks`] turns Gemini
//! parts into block events (start, delta, stop); the complete answer ([`to_message`]) and
//! the stream ([`super::MessageStream`]) are both built from those events, so they always
//! agree.

use serde_json::{Value, json};

use crate::translate::assess::is_filter_reason;
use crate::translate::history::{self, IdMint};
use crate::translate::output::part_text;
use crate::wire::anthropic::{BlockDelta, MessageResponse, ResponseBlock, Usage};
use crate::wire::gemini::{GenerateContentResponse, Part, UsageMetadata};

/// One step of building the answer's content blocks.
#[derive(Debug, Clone, PartialEq)]
pub enum BlockEvent {
    Start(u32, ResponseBlock),
    Delta(u32, BlockDelta),
    Stop(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    /// A thinking block without a signature yet (a signed one is closed at once).
    Thinking,
}

/// Per-answer block state: which block is open, how many there were, tool uses and the
/// signatures to remember.
///
/// Signatures: a Gemini `thoughtSignature` on a thought part is that thinking block's
/// signature; on a function call it is sent in a thinking block right before the tool_use
/// block (the open thinking block when it has none yet, else a new empty one), so the client
/// returns it in front of the call it belongs to. Signatures on text parts are not
/// forwarded (Google does not check them). Every function-call signature is also offered to
/// the server-side memory under the tool_use id ([`Blocks::drain_signatures`]), for clients
/// that drop thinking blocks. Without `thinking_blocks`, no thinking block is emitted at all.
#[derive(Debug)]
pub struct Blocks {
    /// The upstream model: carried signatures name it.
    model: String,
    thinking_blocks: bool,
    next: u32,
    open: Option<(u32, Open)>,
    tool_uses: u32,
    signatures: Vec<(String, String)>,
    text: String,
    ids: IdMint,
}

impl Blocks {
    pub fn new(upstream_model: &str, thinking_blocks: bool) -> Self {
        Self {
            model: upstream_model.to_owned(),
            thinking_blocks,
            next: 0,
            open: None,
            tool_uses: 0,
            signatures: Vec::new(),
            text: String::new(),
            ids: IdMint::Random,
        }
    }

    /// Sequential ids (`toolu_000…1`), for byte-exact tests.
    #[must_use]
    pub fn with_ids(mut self, ids: IdMint) -> Self {
        self.ids = ids;
        self
    }

    pub fn tool_uses(&self) -> u32 {
        self.tool_uses
    }

    pub fn has_output(&self) -> bool {
        self.next > 0
    }

    /// The visible text so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn drain_signatures(&mut self) -> Vec<(String, String)> {
        std::mem::take(&mut self.signatures)
    }

    fn start(
        &mut self,
        block: ResponseBlock,
        open: Option<Open>,
        out: &mut Vec<BlockEvent>,
    ) -> u32 {
        self.close(out);
        let index = self.next;
        self.next += 1;
        out.push(BlockEvent::Start(index, block));
        self.open = open.map(|o| (index, o));
        index
    }

    /// Closes the open block, if any.
    pub fn close(&mut self, out: &mut Vec<BlockEvent>) {
        if let Some((index, _)) = self.open.take() {
            out.push(BlockEvent::Stop(index));
        }
    }

    fn thinking_index(&mut self, out: &mut Vec<BlockEvent>) -> u32 {
        match self.open {
            Some((index, Open::Thinking)) => index,
            _ => self.start(
                ResponseBlock::Thinking {
                    thinking: String::new(),
                    signature: String::new(),
                },
                Some(Open::Thinking),
                out,
            ),
        }
    }

    fn sign(&mut self, signature: &str, out: &mut Vec<BlockEvent>) {
        let index = self.thinking_index(out);
        out.push(BlockEvent::Delta(
            index,
            BlockDelta::SignatureDelta {
                signature: history::carry(&self.model, signature),
            },
        ));
        self.close(out);
    }

    /// Appends the events for a run of Gemini parts.
    pub fn push_parts(&mut self, parts: &[Part], out: &mut Vec<BlockEvent>) {
        for part in parts {
            if let Some(call) = &part.function_call {
                let id = self.ids.next("toolu_");
                if let Some(sig) = part.thought_signature.as_deref() {
                    self.signatures.push((id.clone(), sig.to_owned()));
                    if self.thinking_blocks {
                        self.sign(sig, out);
                    }
                }
                let input = call
                    .args
                    .clone()
                    .filter(|a| !a.is_null())
                    .unwrap_or_else(|| json!({}));
                let partial_json = if input.as_object().is_some_and(serde_json::Map::is_empty) {
                    String::new()
                } else {
                    input.to_string()
                };
                let index = self.start(
                    ResponseBlock::ToolUse {
                        id,
                        name: call.name.clone(),
                        input: json!({}),
                    },
                    None,
                    out,
                );
                out.push(BlockEvent::Delta(
                    index,
                    BlockDelta::InputJsonDelta { partial_json },
                ));
                out.push(BlockEvent::Stop(index));
                self.tool_uses += 1;
            } else if part.is_thought() {
                if !self.thinking_blocks {
                    continue;
                }
                let text = part.text.as_deref().unwrap_or_default();
                if !text.is_empty() {
                    let index = self.thinking_index(out);
                    out.push(BlockEvent::Delta(
                        index,
                        BlockDelta::ThinkingDelta {
                            thinking: text.to_owned(),
                        },
                    ));
                }
                if let Some(sig) = part.thought_signature.as_deref() {
                    self.sign(sig, out);
                }
            } else {
                let text = part_text(part).into_owned();
                if text.is_empty() {
                    continue;
                }
                let index = match self.open {
                    Some((index, Open::Text)) => index,
                    _ => self.start(
                        ResponseBlock::Text {
                            text: String::new(),
                        },
                        Some(Open::Text),
                        out,
                    ),
                };
                self.text.push_str(&text);
                out.push(BlockEvent::Delta(index, BlockDelta::TextDelta { text }));
            }
        }
    }
}

/// Gemini `finishReason` → Anthropic `stop_reason`. Gemini does not say which stop sequence
/// ended an answer, so `stop_sequence` is never reported (`end_turn` instead).
pub fn stop_reason(finish: Option<&str>, called_tools: bool) -> &'static str {
    match finish {
        Some("MAX_TOKENS") => "max_tokens",
        Some(r) if is_filter_reason(r) => "refusal",
        _ if called_tools => "tool_use",
        _ => "end_turn",
    }
}

/// `usageMetadata` → Anthropic usage: cached prompt tokens are `cache_read_input_tokens`
/// and not part of `input_tokens`; thoughts count as output.
pub fn usage(meta: Option<&UsageMetadata>) -> Usage {
    let m = meta.copied().unwrap_or_default();
    let prompt = m.prompt_token_count + m.tool_use_prompt_token_count;
    Usage {
        input_tokens: prompt.saturating_sub(m.cached_content_token_count),
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: m.cached_content_token_count,
        output_tokens: m.candidates_token_count + m.thoughts_token_count,
    }
}

/// Applies block events to a list of blocks (the complete answer).
pub fn accumulate(events: &[BlockEvent], blocks: &mut Vec<ResponseBlock>) {
    let mut json_buf = String::new();
    for event in events {
        match event {
            BlockEvent::Start(_, block) => {
                blocks.push(block.clone());
                json_buf.clear();
            }
            BlockEvent::Delta(_, delta) => match (blocks.last_mut(), delta) {
                (Some(ResponseBlock::Text { text }), BlockDelta::TextDelta { text: t }) => {
                    text.push_str(t);
                }
                (
                    Some(ResponseBlock::Thinking { thinking, .. }),
                    BlockDelta::ThinkingDelta { thinking: t },
                ) => thinking.push_str(t),
                (
                    Some(ResponseBlock::Thinking { signature, .. }),
                    BlockDelta::SignatureDelta { signature: s },
                ) => signature.push_str(s),
                (
                    Some(ResponseBlock::ToolUse { .. }),
                    BlockDelta::InputJsonDelta { partial_json },
                ) => json_buf.push_str(partial_json),
                _ => {}
            },
            BlockEvent::Stop(_) => {
                if let Some(ResponseBlock::ToolUse { input, .. }) = blocks.last_mut()
                    && !json_buf.is_empty()
                {
                    *input = serde_json::from_str::<Value>(&json_buf).unwrap_or_else(|_| json!({}));
                }
                json_buf.clear();
            }
        }
    }
}

/// Everything a complete answer needs besides the Gemini response.
#[derive(Debug, Clone)]
pub struct AnswerOptions {
    /// `msg_…`.
    pub id: String,
    /// The model name the client asked for.
    pub model: String,
    /// The model that answered (carried signatures name it).
    pub upstream_model: String,
    pub thinking_blocks: bool,
}

/// A complete answer and the `(tool_use id, signature)` pairs to remember.
#[derive(Debug)]
pub struct Answer {
    pub message: MessageResponse,
    pub signatures: Vec<(String, String)>,
}

/// A complete Gemini answer (first candidate) as an Anthropic message. A prompt block (no
/// candidates) gives an empty `refusal`; the pipeline normally answers it with an error
/// before getting here (decisions §4).
pub fn to_message(resp: &GenerateContentResponse, opts: &AnswerOptions) -> Answer {
    to_message_with(
        resp,
        opts,
        Blocks::new(&opts.upstream_model, opts.thinking_blocks),
    )
}

pub(crate) fn to_message_with(
    resp: &GenerateContentResponse,
    opts: &AnswerOptions,
    mut blocks: Blocks,
) -> Answer {
    let candidate = resp.candidates.as_deref().and_then(<[_]>::first);
    let mut events = Vec::new();
    if let Some(c) = candidate {
        blocks.push_parts(c.parts(), &mut events);
    }
    blocks.close(&mut events);
    let mut content = Vec::new();
    accumulate(&events, &mut content);
    let finish = match candidate {
        Some(c) => c.finish_reason.as_deref().or(Some("STOP")),
        None => Some("SAFETY"),
    };
    Answer {
        message: MessageResponse {
            id: opts.id.clone(),
            kind: "message",
            role: "assistant",
            model: opts.model.clone(),
            content,
            stop_reason: Some(stop_reason(finish, blocks.tool_uses() > 0)),
            stop_sequence: None,
            usage: usage(resp.usage_metadata.as_ref()),
        },
        signatures: blocks.drain_signatures(),
    }
}
