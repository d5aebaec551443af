//! Gemini answer → Responses output items. [`Items`] turns Gemini parts into stream events
//! and keeps the finished items; the complete answer ([`to_response`]) and the stream
//! ([`super::ResponseStream`]) are both built from it, so they always agree.

use serde_json::{Value, json};

use super::request::AnswerContext;
use super::store::push_model_part;
use crate::translate::assess::is_filter_reason;
use crate::translate::history::{self, IdMint};
use crate::translate::output::{citations, part_text};
use crate::wire::gemini::{Content, FunctionCall, GenerateContentResponse, Part, UsageMetadata};
use crate::wire::responses::{
    Annotation, CreateResponse, IncompleteDetails, InputTokensDetails, OutputContent, OutputItem,
    OutputTokensDetails, Response, ResponseUsage, StreamEvent, SummaryText,
};

/// The request fields a Response repeats, and its id and creation time.
#[derive(Debug, Clone)]
pub struct ResponseMeta {
    pub id: String,
    pub created_at: u64,
    /// The model name the client asked for.
    pub model: String,
    instructions: Option<String>,
    max_output_tokens: Option<u64>,
    parallel_tool_calls: bool,
    previous_response_id: Option<String>,
    reasoning: Value,
    store: bool,
    temperature: Option<f64>,
    text: Value,
    tool_choice: Value,
    tools: Vec<Value>,
    top_p: Option<f64>,
    metadata: Value,
}

impl ResponseMeta {
    pub fn new(req: &CreateResponse, id: String, created_at: u64) -> Self {
        let reasoning = req.reasoning.as_ref();
        Self {
            id,
            created_at,
            model: req.model.clone(),
            instructions: req.instructions.clone(),
            max_output_tokens: req.max_output_tokens,
            parallel_tool_calls: req.parallel_tool_calls.unwrap_or(true),
            previous_response_id: req.previous_response_id.clone(),
            reasoning: json!({
                "effort": reasoning.and_then(|r| r.effort.clone()),
                "summary": reasoning.and_then(|r| r.summary.clone()),
            }),
            store: req.stores(),
            temperature: req.temperature,
            text: json!({"format": req.text.as_ref().and_then(|t| t.format.clone())
                .unwrap_or_else(|| json!({"type": "text"}))}),
            tool_choice: req.tool_choice.clone().unwrap_or_else(|| json!("auto")),
            tools: req.tools.clone().unwrap_or_default(),
            top_p: req.top_p,
            metadata: req.metadata.clone().unwrap_or_else(|| json!({})),
        }
    }

    /// The Response object with this status, output and usage.
    pub fn response(
        &self,
        status: &str,
        output: Vec<OutputItem>,
        usage: Option<ResponseUsage>,
    ) -> Response {
        Response {
            id: self.id.clone(),
            object: "response".into(),
            created_at: self.created_at,
            status: status.into(),
            background: false,
            error: None,
            incomplete_details: None,
            instructions: self.instructions.clone(),
            max_output_tokens: self.max_output_tokens,
            model: self.model.clone(),
            output,
            parallel_tool_calls: self.parallel_tool_calls,
            previous_response_id: self.previous_response_id.clone(),
            reasoning: self.reasoning.clone(),
            store: self.store,
            temperature: self.temperature,
            text: self.text.clone(),
            tool_choice: self.tool_choice.clone(),
            tools: self.tools.clone(),
            top_p: self.top_p,
            truncation: "disabled".into(),
            usage,
            metadata: self.metadata.clone(),
        }
    }
}

/// A fresh `resp_…` id.
pub fn response_id() -> String {
    crate::translate::random_alnum("resp_", 32)
}

/// `usageMetadata` → Responses usage (thoughts are output and reasoning tokens).
pub fn usage(meta: Option<&UsageMetadata>) -> ResponseUsage {
    let m = meta.copied().unwrap_or_default();
    let input = m.prompt_token_count + m.tool_use_prompt_token_count;
    let output = m.candidates_token_count + m.thoughts_token_count;
    ResponseUsage {
        input_tokens: input,
        input_tokens_details: InputTokensDetails {
            cached_tokens: m.cached_content_token_count,
            cache_write_tokens: 0,
        },
        output_tokens: output,
        output_tokens_details: OutputTokensDetails {
            reasoning_tokens: m.thoughts_token_count,
        },
        total_tokens: input + output,
    }
}

/// The final status for a Gemini finish reason: `completed`, or `incomplete` with its reason.
pub fn status(finish: Option<&str>) -> (&'static str, Option<IncompleteDetails>) {
    let reason = match finish {
        Some("MAX_TOKENS") => "max_output_tokens",
        Some(r) if is_filter_reason(r) => "content_filter",
        _ => return ("completed", None),
    };
    (
        "incomplete",
        Some(IncompleteDetails {
            reason: reason.into(),
        }),
    )
}

#[derive(Debug)]
enum Open {
    Reasoning {
        index: u32,
        id: String,
        summary: String,
    },
    Message {
        index: u32,
        id: String,
        text: String,
    },
}

/// Per-answer item state. Thoughts become a reasoning item (its summary); a Gemini
/// signature rides in a reasoning item's `encrypted_content` right before the function call
/// it belongs to (the open reasoning item, else a new one with an empty summary), so clients
/// that replay output items (Codex, `store: false`) send it back in place; it is also offered
/// to the server-side memory under the call id. Text is a message item with one
/// `output_text` part; grounding becomes `url_citation` annotations.
#[derive(Debug)]
pub struct Items {
    ctx: AnswerContext,
    output: Vec<OutputItem>,
    open: Option<Open>,
    ids: IdMint,
    calls: u32,
    signatures: Vec<(String, String)>,
    /// The answer as Gemini parts with call ids, for the stored conversation.
    model_turn: Vec<Part>,
    annotations: Vec<Annotation>,
    text: String,
}

impl Items {
    pub fn new(ctx: AnswerContext) -> Self {
        Self {
            ctx,
            output: Vec::new(),
            open: None,
            ids: IdMint::Random,
            calls: 0,
            signatures: Vec::new(),
            model_turn: Vec::new(),
            annotations: Vec::new(),
            text: String::new(),
        }
    }

    #[must_use]
    pub fn with_ids(mut self, ids: IdMint) -> Self {
        self.ids = ids;
        self
    }

    pub fn output(&self) -> &[OutputItem] {
        &self.output
    }

    pub fn calls(&self) -> u32 {
        self.calls
    }

    pub fn has_output(&self) -> bool {
        !self.output.is_empty() || self.open.is_some()
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn drain_signatures(&mut self) -> Vec<(String, String)> {
        std::mem::take(&mut self.signatures)
    }

    /// The answer as a Gemini model turn (call ids kept), for storage.
    pub fn model_turn(&self) -> Content {
        Content {
            role: Some("model".into()),
            parts: self.model_turn.clone(),
        }
    }

    fn next_index(&self) -> u32 {
        u32::try_from(self.output.len()).unwrap_or(u32::MAX) + u32::from(self.open.is_some())
    }

    /// Closes the open item with `status` (`completed` or `incomplete`).
    pub fn close(&mut self, status: &str, out: &mut Vec<StreamEvent>) {
        match self.open.take() {
            None => {}
            Some(Open::Reasoning { index, id, summary }) => {
                self.close_reasoning(index, id, summary, None, out);
            }
            Some(Open::Message { index, id, text }) => {
                let annotations = std::mem::take(&mut self.annotations);
                for (k, annotation) in annotations.iter().enumerate() {
                    out.push(StreamEvent::AnnotationAdded {
                        item_id: id.clone(),
                        output_index: index,
                        content_index: 0,
                        annotation_index: u32::try_from(k).unwrap_or(0),
                        annotation: annotation.clone(),
                    });
                }
                out.push(StreamEvent::OutputTextDone {
                    item_id: id.clone(),
                    output_index: index,
                    content_index: 0,
                    text: text.clone(),
                    logprobs: Vec::new(),
                });
                let part = OutputContent::OutputText {
                    text,
                    annotations,
                    logprobs: Vec::new(),
                };
                out.push(StreamEvent::ContentPartDone {
                    item_id: id.clone(),
                    output_index: index,
                    content_index: 0,
                    part: part.clone(),
                });
                self.done(
                    index,
                    OutputItem::Message {
                        id,
                        status: status.into(),
                        role: "assistant".into(),
                        content: vec![part],
                    },
                    out,
                );
            }
        }
    }

    fn close_reasoning(
        &mut self,
        index: u32,
        id: String,
        summary: String,
        signature: Option<String>,
        out: &mut Vec<StreamEvent>,
    ) {
        let mut parts = Vec::new();
        if !summary.is_empty() {
            let part = SummaryText {
                kind: "summary_text".into(),
                text: summary.clone(),
            };
            out.push(StreamEvent::ReasoningSummaryTextDone {
                item_id: id.clone(),
                output_index: index,
                summary_index: 0,
                text: summary,
            });
            out.push(StreamEvent::ReasoningSummaryPartDone {
                item_id: id.clone(),
                output_index: index,
                summary_index: 0,
                part: part.clone(),
            });
            parts.push(part);
        }
        self.done(
            index,
            OutputItem::Reasoning {
                id,
                summary: parts,
                encrypted_content: signature.map(|s| history::carry(&self.ctx.upstream_model, &s)),
                status: "completed".into(),
            },
            out,
        );
    }

    fn done(&mut self, index: u32, item: OutputItem, out: &mut Vec<StreamEvent>) {
        out.push(StreamEvent::OutputItemDone {
            output_index: index,
            item: item.clone(),
        });
        self.output.push(item);
    }

    fn added(&mut self, item: OutputItem, out: &mut Vec<StreamEvent>) -> u32 {
        let index = self.next_index();
        out.push(StreamEvent::OutputItemAdded {
            output_index: index,
            item,
        });
        index
    }

    fn open_reasoning(&mut self, out: &mut Vec<StreamEvent>) {
        if matches!(self.open, Some(Open::Reasoning { .. })) {
            return;
        }
        self.close("completed", out);
        let id = self.ids.next("rs_");
        let index = self.added(
            OutputItem::Reasoning {
                id: id.clone(),
                summary: Vec::new(),
                encrypted_content: None,
                status: "in_progress".into(),
            },
            out,
        );
        self.open = Some(Open::Reasoning {
            index,
            id,
            summary: String::new(),
        });
    }

    /// Ends the open reasoning item (or a new empty one) with a signature.
    fn sign(&mut self, signature: &str, out: &mut Vec<StreamEvent>) {
        self.open_reasoning(out);
        if let Some(Open::Reasoning { index, id, summary }) = self.open.take() {
            self.close_reasoning(index, id, summary, Some(signature.to_owned()), out);
        }
    }

    /// Appends the events for a run of Gemini parts; `grounding` is the candidate's
    /// grounding metadata (offsets over the whole answer).
    pub fn push_parts(
        &mut self,
        parts: &[Part],
        grounding: Option<&Value>,
        out: &mut Vec<StreamEvent>,
    ) {
        for part in parts {
            if let Some(call) = &part.function_call {
                self.call(call, part.thought_signature.as_deref(), out);
            } else if part.is_thought() {
                let text = part.text.as_deref().unwrap_or_default();
                if !text.is_empty() {
                    self.open_reasoning(out);
                    if let Some(Open::Reasoning { index, id, summary }) = self.open.as_mut() {
                        if summary.is_empty() {
                            out.push(StreamEvent::ReasoningSummaryPartAdded {
                                item_id: id.clone(),
                                output_index: *index,
                                summary_index: 0,
                                part: SummaryText {
                                    kind: "summary_text".into(),
                                    text: String::new(),
                                },
                            });
                        }
                        summary.push_str(text);
                        out.push(StreamEvent::ReasoningSummaryTextDelta {
                            item_id: id.clone(),
                            output_index: *index,
                            summary_index: 0,
                            delta: text.to_owned(),
                        });
                    }
                }
                if let Some(sig) = part.thought_signature.as_deref() {
                    self.sign(sig, out);
                }
            } else {
                let text = part_text(part).into_owned();
                if text.is_empty() {
                    continue;
                }
                self.message_text(&text, out);
                push_model_part(&mut self.model_turn, Part::text(text));
            }
        }
        let found = citations(grounding, &self.text);
        if !found.is_empty() {
            self.annotations = found
                .into_iter()
                .map(|c| Annotation::UrlCitation {
                    start_index: c.start_index,
                    end_index: c.end_index,
                    title: c.title.to_owned(),
                    url: c.url.to_owned(),
                })
                .collect();
        }
    }

    fn message_text(&mut self, text: &str, out: &mut Vec<StreamEvent>) {
        if !matches!(self.open, Some(Open::Message { .. })) {
            self.close("completed", out);
            let id = self.ids.next("msg_");
            let index = self.added(
                OutputItem::Message {
                    id: id.clone(),
                    status: "in_progress".into(),
                    role: "assistant".into(),
                    content: Vec::new(),
                },
                out,
            );
            out.push(StreamEvent::ContentPartAdded {
                item_id: id.clone(),
                output_index: index,
                content_index: 0,
                part: OutputContent::OutputText {
                    text: String::new(),
                    annotations: Vec::new(),
                    logprobs: Vec::new(),
                },
            });
            self.open = Some(Open::Message {
                index,
                id,
                text: String::new(),
            });
        }
        if let Some(Open::Message {
            index,
            id,
            text: all,
        }) = self.open.as_mut()
        {
            all.push_str(text);
            out.push(StreamEvent::OutputTextDelta {
                item_id: id.clone(),
                output_index: *index,
                content_index: 0,
                delta: text.to_owned(),
                logprobs: Vec::new(),
            });
        }
        self.text.push_str(text);
    }

    fn call(&mut self, call: &FunctionCall, signature: Option<&str>, out: &mut Vec<StreamEvent>) {
        if self.ctx.single_call && self.calls > 0 {
            return;
        }
        let call_id = self.ids.next("call_");
        if let Some(sig) = signature {
            self.signatures.push((call_id.clone(), sig.to_owned()));
            self.sign(sig, out);
        } else {
            self.close("completed", out);
        }
        self.calls += 1;
        let args = call
            .args
            .clone()
            .filter(|a| !a.is_null())
            .unwrap_or_else(|| json!({}));
        self.model_turn.push(Part {
            function_call: Some(FunctionCall {
                id: Some(call_id.clone()),
                name: call.name.clone(),
                args: Some(args.clone()),
            }),
            thought_signature: signature.map(str::to_owned),
            ..Part::default()
        });
        if self.ctx.custom_tools.contains(&call.name) {
            let input = match args.get("input") {
                Some(Value::String(s)) => s.clone(),
                _ => args.to_string(),
            };
            let id = self.ids.next("ctc_");
            let item = |input: String, status: &str| OutputItem::CustomToolCall {
                id: id.clone(),
                call_id: call_id.clone(),
                name: call.name.clone(),
                input,
                status: status.into(),
            };
            let index = self.added(item(String::new(), "in_progress"), out);
            out.push(StreamEvent::CustomToolCallInputDelta {
                item_id: id.clone(),
                output_index: index,
                delta: input.clone(),
            });
            out.push(StreamEvent::CustomToolCallInputDone {
                item_id: id.clone(),
                output_index: index,
                input: input.clone(),
            });
            self.done(index, item(input, "completed"), out);
        } else {
            let arguments = args.to_string();
            let id = self.ids.next("fc_");
            let item = |arguments: String, status: &str| OutputItem::FunctionCall {
                id: id.clone(),
                call_id: call_id.clone(),
                name: call.name.clone(),
                arguments,
                status: status.into(),
            };
            let index = self.added(item(String::new(), "in_progress"), out);
            out.push(StreamEvent::FunctionCallArgumentsDelta {
                item_id: id.clone(),
                output_index: index,
                delta: arguments.clone(),
            });
            out.push(StreamEvent::FunctionCallArgumentsDone {
                item_id: id.clone(),
                output_index: index,
                arguments: arguments.clone(),
            });
            self.done(index, item(arguments, "completed"), out);
        }
    }
}

/// A complete answer: the Response, the signatures to remember by call id, and the answer
/// as a Gemini turn for the stored conversation.
#[derive(Debug)]
pub struct Answer {
    pub response: Response,
    pub signatures: Vec<(String, String)>,
    pub model_turn: Content,
}

/// A complete Gemini answer (first candidate) as a Response. A prompt block (no candidates)
/// gives an `incomplete` response (`content_filter`); the pipeline normally answers it with
/// an error before getting here (decisions §4).
pub fn to_response(
    resp: &GenerateContentResponse,
    meta: &ResponseMeta,
    ctx: &AnswerContext,
) -> Answer {
    to_response_with(resp, meta, Items::new(ctx.clone()))
}

pub(crate) fn to_response_with(
    resp: &GenerateContentResponse,
    meta: &ResponseMeta,
    mut items: Items,
) -> Answer {
    let candidate = resp.candidates.as_deref().and_then(<[_]>::first);
    let mut events = Vec::new();
    if let Some(c) = candidate {
        items.push_parts(c.parts(), c.grounding_metadata.as_ref(), &mut events);
    }
    let finish = match candidate {
        Some(c) => c.finish_reason.as_deref(),
        None => Some("SAFETY"),
    };
    let (status, incomplete) = status(finish);
    items.close(status, &mut events);
    let mut response = meta.response(
        status,
        items.output().to_vec(),
        Some(usage(resp.usage_metadata.as_ref())),
    );
    response.incomplete_details = incomplete;
    Answer {
        response,
        signatures: items.drain_signatures(),
        model_turn: items.model_turn(),
    }
}
