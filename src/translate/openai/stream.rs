//! Gemini stream events → OpenAI `chat.completion.chunk` SSE frames:
//! role in the first delta of each choice, content/reasoning/tool-call deltas, a separate
//! finish chunk with a lowercase `finish_reason`, a usage chunk with `choices: []` only when
//! the client asked (`stream_options.include_usage`), then `data: [DONE]`. Per-stream state
//! lives in [`ChunkMapper`]; it is pure and writes into a caller-provided buffer.

use bytes::Bytes;
use serde::Serialize;

use crate::translate::openai::answer::{
    annotations, candidate_output, finish_reason, signature_of, tool_call_id, usage,
};
use crate::wire::gemini::{GenerateContentResponse, UsageMetadata};
use crate::wire::openai::{ChatCompletionChunk, ChunkChoice, Delta, FunctionDelta, ToolCallDelta};

#[derive(Default)]
struct ChoiceState {
    role_sent: bool,
    tool_calls: u32,
    finished: bool,
}

pub struct ChunkMapper {
    id: String,
    created: u64,
    model: String,
    include_usage: bool,
    choices: Vec<ChoiceState>,
    usage: Option<UsageMetadata>,
    /// `(tool_call_id, thought_signature)` pairs produced since the last drain.
    signatures: Vec<(String, String)>,
    /// The text sent so far for choice 0 (what a mid-stream rescue continues from).
    text: String,
    /// Usage of streams that broke and were continued, added to the final usage.
    carried: UsageMetadata,
    /// Whether thoughts are sent as `reasoning_content` (off: `include_reasoning: false`).
    reasoning: bool,
}

impl ChunkMapper {
    pub fn new(id: String, created: u64, model: String, include_usage: bool) -> Self {
        Self {
            id,
            created,
            model,
            include_usage,
            choices: Vec::new(),
            usage: None,
            signatures: Vec::new(),
            text: String::new(),
            carried: UsageMetadata::default(),
            reasoning: true,
        }
    }

    /// Whether thoughts reach the client as `reasoning_content` (default on); off, they are
    /// dropped whatever Google sends (`include_reasoning: false`, decisions §5).
    #[must_use]
    pub fn with_reasoning(mut self, reasoning: bool) -> Self {
        self.reasoning = reasoning;
        self
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn created(&self) -> u64 {
        self.created
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    /// A keep-alive chunk: same id, an empty delta, no finish reason (fake streaming).
    pub fn keepalive(&self) -> Bytes {
        self.frame(vec![ChunkChoice {
            index: 0,
            delta: Delta::default(),
            logprobs: None,
            finish_reason: None,
        }])
    }

    /// True once every choice seen so far has finished (and at least one was seen).
    pub fn is_finished(&self) -> bool {
        !self.choices.is_empty() && self.choices.iter().all(|c| c.finished)
    }

    /// Whether anything has been produced for the client yet.
    pub fn has_output(&self) -> bool {
        self.choices.iter().any(|c| c.role_sent)
    }

    pub fn last_usage(&self) -> Option<UsageMetadata> {
        self.usage
    }

    /// The text sent so far, when a broken stream can be continued: one choice, no tool
    /// calls, not finished.
    pub fn rescuable(&self) -> Option<&str> {
        let single = self.choices.len() <= 1;
        let clean = self
            .choices
            .first()
            .is_none_or(|c| c.tool_calls == 0 && !c.finished);
        (single && clean).then_some(self.text.as_str())
    }

    /// Starts a continuation: the broken stream's usage is carried into the final count.
    pub fn begin_rescue(&mut self) {
        if let Some(u) = self.usage.take() {
            self.carried.prompt_token_count += u.prompt_token_count;
            self.carried.candidates_token_count += u.candidates_token_count;
            self.carried.thoughts_token_count += u.thoughts_token_count;
            self.carried.cached_content_token_count += u.cached_content_token_count;
            self.carried.tool_use_prompt_token_count += u.tool_use_prompt_token_count;
        }
    }

    /// Thought signatures of tool calls emitted since the last call, to be remembered.
    pub fn drain_signatures(&mut self) -> Vec<(String, String)> {
        std::mem::take(&mut self.signatures)
    }

    /// Maps one upstream event to zero or more SSE frames appended to `out`.
    pub fn map_event(&mut self, event: &GenerateContentResponse, out: &mut Vec<Bytes>) {
        if let Some(u) = event.usage_metadata {
            self.usage = Some(u);
        }
        let candidates = event.candidates.as_deref().unwrap_or_default();
        if candidates.is_empty()
            && event
                .prompt_feedback
                .as_ref()
                .is_some_and(|f| f.block_reason.is_some())
        {
            // A block after output started: close choice 0 as filtered.
            self.ensure(0);
            if !self.choices[0].finished {
                let role = self.take_role(0);
                self.choices[0].finished = true;
                let delta = Delta {
                    role,
                    ..Delta::default()
                };
                out.push(self.frame(vec![ChunkChoice {
                    index: 0,
                    delta,
                    logprobs: None,
                    finish_reason: Some("content_filter"),
                }]));
            }
            return;
        }
        for (k, c) in candidates.iter().enumerate() {
            let index = c.index.unwrap_or(u32::try_from(k).unwrap_or(0));
            let slot = usize::try_from(index).unwrap_or(0).min(127);
            self.ensure(slot);
            if self.choices[slot].finished {
                continue;
            }
            let parts = candidate_output(c.parts());
            let mut delta = Delta::default();
            if self.reasoning && !parts.reasoning.is_empty() {
                delta.reasoning_content = Some(parts.reasoning);
            }
            if !parts.tool_calls.is_empty() {
                for call in &parts.tool_calls {
                    if let (Some(id), Some(sig)) = (call.id.as_deref(), signature_of(call)) {
                        self.signatures.push((id.to_owned(), sig.to_owned()));
                    }
                }
                let first = self.choices[slot].tool_calls;
                let calls = parts
                    .tool_calls
                    .into_iter()
                    .enumerate()
                    .map(|(n, call)| ToolCallDelta {
                        index: first + u32::try_from(n).unwrap_or(0),
                        id: Some(call.id.unwrap_or_else(tool_call_id)),
                        kind: Some("function"),
                        function: FunctionDelta {
                            name: Some(call.function.name),
                            arguments: call.function.arguments.unwrap_or_default(),
                        },
                        extra_content: call.extra_content,
                    })
                    .collect::<Vec<_>>();
                self.choices[slot].tool_calls += u32::try_from(calls.len()).unwrap_or(0);
                delta.tool_calls = Some(calls);
            }
            let has_text = !parts.text.is_empty();
            if has_text && slot == 0 {
                self.text.push_str(&parts.text);
            }
            // Google's grounding offsets count from the start of the answer, not the event.
            let answer_so_far = if slot == 0 { &self.text } else { &parts.text };
            delta.annotations = annotations(c.grounding_metadata.as_ref(), answer_so_far);
            if has_text {
                delta.content = Some(Some(parts.text));
            }
            let first_delta = !self.choices[slot].role_sent;
            let has_delta = has_text
                || delta.reasoning_content.is_some()
                || delta.tool_calls.is_some()
                || delta.annotations.is_some();
            if first_delta && (has_delta || c.finish_reason.is_some()) {
                delta.role = self.take_role(slot);
                if delta.content.is_none() {
                    // OpenAI's first chunk carries `content: ""`, or `null` with tool calls.
                    delta.content = Some(if delta.tool_calls.is_some() {
                        None
                    } else {
                        Some(String::new())
                    });
                }
            }
            if has_delta || delta.role.is_some() {
                out.push(self.frame(vec![ChunkChoice {
                    index,
                    delta,
                    logprobs: None,
                    finish_reason: None,
                }]));
            }
            if c.finish_reason.is_some() {
                let called = self.choices[slot].tool_calls > 0;
                self.choices[slot].finished = true;
                let reason = finish_reason(c.finish_reason.as_deref(), called);
                out.push(self.frame(vec![ChunkChoice {
                    index,
                    delta: Delta::default(),
                    logprobs: None,
                    finish_reason: reason,
                }]));
            }
        }
    }

    /// The closing frames after a complete upstream stream: the usage chunk if asked, then `[DONE]`.
    pub fn finish(&self, out: &mut Vec<Bytes>) {
        if self.include_usage {
            let chunk = ChatCompletionChunk {
                id: &self.id,
                object: "chat.completion.chunk",
                created: self.created,
                model: &self.model,
                choices: Vec::new(),
                usage: Some(Some(usage(Some(&self.total_usage())))),
            };
            out.push(sse_json(&chunk));
        }
        out.push(Bytes::from_static(b"data: [DONE]\n\n"));
    }

    /// The usage of the whole answer (continued streams included).
    pub fn total_usage(&self) -> UsageMetadata {
        let u = self.usage.unwrap_or_default();
        let c = self.carried;
        UsageMetadata {
            prompt_token_count: u.prompt_token_count + c.prompt_token_count,
            cached_content_token_count: u.cached_content_token_count + c.cached_content_token_count,
            candidates_token_count: u.candidates_token_count + c.candidates_token_count,
            thoughts_token_count: u.thoughts_token_count + c.thoughts_token_count,
            tool_use_prompt_token_count: u.tool_use_prompt_token_count
                + c.tool_use_prompt_token_count,
            total_token_count: u.total_token_count + c.total_token_count,
        }
    }

    fn ensure(&mut self, slot: usize) {
        if self.choices.len() <= slot {
            self.choices.resize_with(slot + 1, ChoiceState::default);
        }
    }

    fn take_role(&mut self, slot: usize) -> Option<&'static str> {
        let state = &mut self.choices[slot];
        if state.role_sent {
            None
        } else {
            state.role_sent = true;
            Some("assistant")
        }
    }

    fn frame(&self, choices: Vec<ChunkChoice>) -> Bytes {
        let chunk = ChatCompletionChunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices,
            usage: self.include_usage.then_some(None),
        };
        sse_json(&chunk)
    }
}

/// One `data: <json>\n\n` frame.
pub fn sse_json<T: Serialize>(value: &T) -> Bytes {
    let mut buf = Vec::with_capacity(256);
    buf.extend_from_slice(b"data: ");
    if serde_json::to_writer(&mut buf, value).is_err() {
        buf.truncate(6);
        buf.extend_from_slice(b"{}");
    }
    buf.extend_from_slice(b"\n\n");
    Bytes::from(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn events_from_jsonl(path: &str) -> Vec<GenerateContentResponse> {
        let text = std::fs::read_to_string(format!(
            "{}/tests/fixtures/{path}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("fixture");
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("event"))
            .collect()
    }

    fn run(events: &[GenerateContentResponse], include_usage: bool) -> (Vec<Value>, bool) {
        let m = ChunkMapper::new("chatcmpl-t".into(), 7, "client-model".into(), include_usage);
        run_with(m, events)
    }

    fn run_with(mut m: ChunkMapper, events: &[GenerateContentResponse]) -> (Vec<Value>, bool) {
        let mut out = Vec::new();
        for e in events {
            m.map_event(e, &mut out);
        }
        let finished = m.is_finished();
        if finished {
            m.finish(&mut out);
        }
        let frames = out
            .iter()
            .map(|b| {
                let s = std::str::from_utf8(b).expect("utf8");
                assert!(s.starts_with("data: ") && s.ends_with("\n\n"), "{s:?}");
                let payload = &s[6..s.len() - 2];
                if payload == "[DONE]" {
                    Value::String("[DONE]".into())
                } else {
                    serde_json::from_str(payload).expect("json")
                }
            })
            .collect();
        (frames, finished)
    }

    #[test]
    fn text_stream_has_role_deltas_finish_and_done() {
        let events: Vec<GenerateContentResponse> = vec![
            serde_json::from_value(json!({"candidates": [{"content": {"parts": [{"text": "The sky"}], "role": "model"}, "index": 0}], "usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": 2, "totalTokenCount": 9}})).expect("e1"),
            serde_json::from_value(json!({"candidates": [{"content": {"parts": [{"text": " is blue."}], "role": "model"}, "finishReason": "STOP", "index": 0}], "usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": 5, "totalTokenCount": 12}})).expect("e2"),
        ];
        let (frames, finished) = run(&events, false);
        assert!(finished);
        assert_eq!(frames.len(), 4);
        assert_eq!(
            frames[0]["choices"][0]["delta"],
            json!({"role": "assistant", "content": "The sky"})
        );
        assert_eq!(frames[0]["model"], "client-model");
        assert_eq!(frames[0]["object"], "chat.completion.chunk");
        assert!(frames[0].get("usage").is_none());
        assert_eq!(
            frames[1]["choices"][0]["delta"],
            json!({"content": " is blue."})
        );
        assert_eq!(frames[2]["choices"][0]["delta"], json!({}));
        assert_eq!(frames[2]["choices"][0]["finish_reason"], "stop");
        assert_eq!(frames[3], "[DONE]");
        assert!(
            frames
                .iter()
                .take(3)
                .all(|f| f["id"] == "chatcmpl-t" && f["created"] == 7)
        );
    }

    /// Grounding arriving with the last event cites spans of the whole answer; an event that
    /// carries only grounding still reaches the client.
    #[test]
    fn streamed_citations_index_the_whole_answer() {
        let grounding = json!({
            "groundingChunks": [{"web": {"uri": "https://example.com/a", "title": "A"}}],
            "groundingSupports": [{"segment": {"startIndex": 13, "endIndex": 23}, "groundingChunkIndices": [0]}]
        });
        let events: Vec<GenerateContentResponse> = vec![
            serde_json::from_value(json!({"candidates": [{"content": {"parts": [{"text": "Hello world. "}], "role": "model"}, "index": 0}]})).expect("e1"),
            serde_json::from_value(json!({"candidates": [{"content": {"parts": [{"text": "More text."}], "role": "model"}, "index": 0}]})).expect("e2"),
            serde_json::from_value(json!({"candidates": [{"content": {"parts": [], "role": "model"}, "groundingMetadata": grounding, "index": 0}]})).expect("e3"),
            serde_json::from_value(json!({"candidates": [{"content": {"parts": [{"text": ""}], "role": "model"}, "finishReason": "STOP", "index": 0}]})).expect("e4"),
        ];
        let (frames, finished) = run(&events, false);
        assert!(finished);
        let cited: Vec<&Value> = frames
            .iter()
            .filter_map(|f| f["choices"][0]["delta"]["annotations"].as_array())
            .flatten()
            .collect();
        assert_eq!(cited.len(), 1, "{frames:?}");
        assert_eq!(
            cited[0]["url_citation"],
            json!({"url": "https://example.com/a", "title": "A", "start_index": 13, "end_index": 23})
        );
    }

    #[test]
    fn include_usage_adds_nulls_and_a_final_usage_chunk() {
        let events = events_from_jsonl(
            "gemini/streamGenerateContent.chunks.gemini3-empty-text-signature.jsonl",
        );
        let (frames, finished) = run(&events, true);
        assert!(finished);
        let n = frames.len();
        assert_eq!(frames[n - 1], "[DONE]");
        let usage_chunk = &frames[n - 2];
        assert_eq!(usage_chunk["choices"], json!([]));
        assert!(
            usage_chunk["usage"]["total_tokens"]
                .as_u64()
                .is_some_and(|t| t > 0)
        );
        for f in &frames[..n - 2] {
            assert!(f["usage"].is_null() && f.get("usage").is_some(), "{f}");
        }
    }

    #[test]
    fn function_call_stream_carries_indexed_tool_calls() {
        let events =
            events_from_jsonl("gemini/streamGenerateContent.chunks.gemini3-function-call.jsonl");
        let (frames, finished) = run(&events, false);
        assert!(finished);
        let first = &frames[0]["choices"][0]["delta"];
        assert_eq!(first["role"], "assistant");
        assert!(first["content"].is_null());
        assert_eq!(first["tool_calls"][0]["index"], 0);
        assert_eq!(first["tool_calls"][0]["type"], "function");
        let finish = frames
            .iter()
            .find(|f| !f["choices"][0]["finish_reason"].is_null())
            .expect("finish");
        assert_eq!(finish["choices"][0]["finish_reason"], "tool_calls");
    }

    #[test]
    fn hidden_reasoning_sends_no_thoughts_and_opens_with_the_first_text() {
        let events: Vec<GenerateContentResponse> = vec![
            serde_json::from_value(json!({"candidates": [{"content": {"parts": [{"text": "Hmm, rain.", "thought": true}], "role": "model"}, "index": 0}]})).expect("e1"),
            serde_json::from_value(json!({"candidates": [{"content": {"parts": [{"text": "Take a coat."}], "role": "model"}, "finishReason": "STOP", "index": 0}]})).expect("e2"),
        ];
        let shown = run(&events, false).0;
        assert_eq!(
            shown[0]["choices"][0]["delta"]["reasoning_content"],
            "Hmm, rain."
        );
        let m = ChunkMapper::new("c".into(), 7, "m".into(), false).with_reasoning(false);
        let (frames, finished) = run_with(m, &events);
        assert!(finished);
        assert_eq!(
            frames[0]["choices"][0]["delta"],
            json!({"role": "assistant", "content": "Take a coat."})
        );
        assert!(
            frames
                .iter()
                .all(|f| f["choices"][0]["delta"].get("reasoning_content").is_none()),
            "{frames:?}"
        );
    }

    #[test]
    fn a_stream_without_finish_reason_is_not_finished() {
        let events: Vec<GenerateContentResponse> = vec![
            serde_json::from_value(
                json!({"candidates": [{"content": {"parts": [{"text": "half"}]}, "index": 0}]}),
            )
            .expect("e"),
        ];
        let (frames, finished) = run(&events, false);
        assert!(!finished);
        assert_eq!(frames.len(), 1);
    }

    #[test]
    fn max_tokens_stream_maps_to_length() {
        let text = std::fs::read_to_string(format!(
            "{}/tests/fixtures/gemini/streamGenerateContent.chunks.text-max-tokens.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("fixture");
        let events: Vec<GenerateContentResponse> = serde_json::from_str(&text).expect("array");
        let (frames, finished) = run(&events, false);
        assert!(finished);
        assert!(
            frames
                .iter()
                .any(|f| f["choices"][0]["finish_reason"] == "length")
        );
    }

    #[test]
    fn two_candidates_stream_as_two_choices() {
        let events: Vec<GenerateContentResponse> = vec![
            serde_json::from_value(json!({"candidates": [
                {"content": {"parts": [{"text": "a"}]}, "index": 0, "finishReason": "STOP"},
                {"content": {"parts": [{"text": "b"}]}, "index": 1, "finishReason": "STOP"}
            ]}))
            .expect("e"),
        ];
        let (frames, finished) = run(&events, false);
        assert!(finished);
        let indexes: Vec<u64> = frames
            .iter()
            .filter_map(|f| f["choices"][0]["index"].as_u64())
            .collect();
        assert_eq!(indexes, vec![0, 0, 1, 1]);
    }
}
