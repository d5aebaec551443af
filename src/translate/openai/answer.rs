//! Gemini response → OpenAI chat completion (decisions §4): finish reasons, usage, tool
//! calls with their signatures, grounding citations. What a 200 answer amounts to is
//! `translate::assess`. The streaming mapper (`translate::openai::stream`) uses the same pieces per
//! event.

use serde_json::{Value, json};

use crate::translate::assess::is_filter_reason;
use crate::translate::output::{citations, part_text};
use crate::wire::gemini::{self, GenerateContentResponse, Part, UsageMetadata};
use crate::wire::openai::{
    ChatCompletion, Choice, CompletionTokensDetails, PromptTokensDetails, ResponseMessage,
    ToolCall, Usage,
};

/// Gemini `finishReason` → OpenAI `finish_reason`.
pub fn finish_reason(reason: Option<&str>, called_tools: bool) -> Option<&'static str> {
    let reason = reason?;
    Some(match reason {
        "MAX_TOKENS" => "length",
        r if is_filter_reason(r) => "content_filter",
        _ if called_tools => "tool_calls",
        _ => "stop",
    })
}

/// `usageMetadata` → OpenAI `usage` (thoughts inside completion tokens, decisions §5).
pub fn usage(meta: Option<&UsageMetadata>) -> Usage {
    let m = meta.copied().unwrap_or_default();
    let prompt = m.prompt_token_count + m.tool_use_prompt_token_count;
    let completion = m.candidates_token_count + m.thoughts_token_count;
    Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt + completion,
        prompt_tokens_details: PromptTokensDetails {
            cached_tokens: m.cached_content_token_count,
        },
        completion_tokens_details: CompletionTokensDetails {
            reasoning_tokens: m.thoughts_token_count,
        },
    }
}

/// The visible text, thoughts and tool calls of one candidate.
#[derive(Debug, Default)]
pub struct CandidateOutput {
    pub text: String,
    pub reasoning: String,
    pub tool_calls: Vec<ToolCall>,
}

pub fn candidate_output(parts: &[Part]) -> CandidateOutput {
    let mut out = CandidateOutput::default();
    for p in parts {
        if let Some(call) = &p.function_call {
            out.tool_calls
                .push(tool_call(call, p.thought_signature.as_deref()));
        } else if let Some(text) = p.text.as_deref().filter(|_| p.is_thought()) {
            out.reasoning.push_str(text);
        } else {
            out.text.push_str(&part_text(p));
        }
    }
    out
}

fn tool_call(call: &gemini::FunctionCall, signature: Option<&str>) -> ToolCall {
    let arguments = call
        .args
        .as_ref()
        .map_or_else(|| "{}".to_owned(), Value::to_string);
    ToolCall {
        id: Some(tool_call_id()),
        kind: Some("function".to_owned()),
        function: crate::wire::openai::FunctionCall {
            name: call.name.clone(),
            arguments: Some(arguments),
        },
        // Google's own OpenAI layer carries the signature here; clients that keep it send it back.
        extra_content: signature.map(|sig| json!({"google": {"thought_signature": sig}})),
    }
}

/// The thought signature a tool call carries in `extra_content`, if any.
pub fn signature_of(call: &ToolCall) -> Option<&str> {
    let google = call.extra_content.as_ref()?.get("google")?;
    google
        .get("thought_signature")
        .or_else(|| google.get("thoughtSignature"))?
        .as_str()
}

/// Google Search grounding → OpenAI `url_citation` annotations (character offsets).
pub fn annotations(grounding: Option<&Value>, text: &str) -> Option<Vec<Value>> {
    let out: Vec<Value> = citations(grounding, text)
        .into_iter()
        .map(|c| json!({"type": "url_citation", "url_citation": {"url": c.url, "title": c.title, "start_index": c.start_index, "end_index": c.end_index}}))
        .collect();
    (!out.is_empty()).then_some(out)
}

/// Removes the thoughts of every choice: the client excluded reasoning from the answer
/// (`include_reasoning: false`, decisions §5), whatever Google sent. Usage still counts them.
pub fn drop_reasoning(completion: &mut ChatCompletion) {
    for choice in &mut completion.choices {
        choice.message.reasoning_content = None;
    }
}

/// A fresh tool-call id (`call_` + 24 random alphanumerics).
pub fn tool_call_id() -> String {
    crate::translate::random_alnum("call_", 24)
}

/// A whole Gemini answer as an OpenAI completion, under the client's model name.
pub fn to_openai(
    resp: &GenerateContentResponse,
    model: &str,
    id: String,
    created: u64,
) -> ChatCompletion {
    let candidates = resp.candidates.as_deref().unwrap_or_default();
    let mut choices = Vec::with_capacity(candidates.len().max(1));
    for (k, c) in candidates.iter().enumerate() {
        let out = candidate_output(c.parts());
        let called = !out.tool_calls.is_empty();
        let annotations = annotations(c.grounding_metadata.as_ref(), &out.text);
        let content = if out.text.is_empty() && called {
            None
        } else {
            Some(out.text)
        };
        choices.push(Choice {
            index: c.index.unwrap_or(u32::try_from(k).unwrap_or(0)),
            message: ResponseMessage {
                role: "assistant",
                annotations,
                reasoning_content: (!out.reasoning.is_empty()).then_some(out.reasoning),
                tool_calls: called.then_some(out.tool_calls),
                content,
            },
            logprobs: None,
            finish_reason: finish_reason(
                Some(c.finish_reason.as_deref().unwrap_or("STOP")),
                called,
            ),
        });
    }
    if choices.is_empty() {
        choices.push(Choice {
            index: 0,
            message: ResponseMessage {
                role: "assistant",
                content: None,
                ..ResponseMessage::default()
            },
            logprobs: None,
            finish_reason: Some("content_filter"),
        });
    }
    choices.sort_by_key(|c| c.index);
    ChatCompletion {
        id,
        object: "chat.completion",
        created,
        model: model.to_owned(),
        choices,
        usage: usage(resp.usage_metadata.as_ref()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::assess::{Assessment, assess};
    use serde_json::json;

    fn fixture(path: &str) -> GenerateContentResponse {
        let text = std::fs::read_to_string(format!(
            "{}/tests/fixtures/{path}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("fixture");
        serde_json::from_str(&text).expect("fixture parses")
    }

    #[test]
    fn text_answer_maps_to_a_completion() {
        let resp = fixture("gemini/generateContent.response.max-tokens-text.json");
        let c = to_openai(&resp, "my-model", "chatcmpl-x".into(), 1);
        let v = serde_json::to_value(&c).expect("json");
        assert_eq!(v["model"], "my-model");
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["choices"][0]["finish_reason"], "length");
        assert!(
            v["choices"][0]["message"]["content"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
        );
        assert_eq!(assess(&resp), Assessment::Answer);
    }

    #[test]
    fn thoughts_go_to_reasoning_content_and_count_as_completion_tokens() {
        let resp = fixture("gemini/generateContent.response.thought-part-include-thoughts.json");
        let c = to_openai(&resp, "m", "id".into(), 1);
        let msg = &c.choices[0].message;
        assert!(
            msg.reasoning_content
                .as_deref()
                .is_some_and(|r| !r.is_empty())
        );
        assert_eq!(
            msg.content.as_deref(),
            Some(""),
            "the fixture holds only a thought"
        );
        let meta = resp.usage_metadata.expect("usage");
        assert_eq!(
            c.usage.completion_tokens,
            meta.candidates_token_count + meta.thoughts_token_count
        );
        assert_eq!(
            c.usage.completion_tokens_details.reasoning_tokens,
            meta.thoughts_token_count
        );
        assert_eq!(
            c.usage.total_tokens,
            c.usage.prompt_tokens + c.usage.completion_tokens
        );
    }

    #[test]
    fn dropped_reasoning_leaves_the_answer_and_its_usage() {
        let resp = fixture("gemini/generateContent.response.thought-part-include-thoughts.json");
        let mut c = to_openai(&resp, "m", "id".into(), 1);
        let usage_before = c.usage.clone();
        drop_reasoning(&mut c);
        let v = serde_json::to_value(&c).expect("json");
        assert!(
            v["choices"][0]["message"]
                .get("reasoning_content")
                .is_none()
        );
        assert_eq!(v["choices"][0]["message"]["content"], "");
        assert_eq!(c.usage, usage_before, "the thinking is still counted");
    }

    #[test]
    fn usage_adds_tool_prompt_and_thoughts() {
        let text = std::fs::read_to_string(format!(
            "{}/tests/fixtures/gemini/usageMetadata.tool-use-and-thoughts.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("fixture");
        let v: Value = serde_json::from_str(&text).expect("json");
        let meta: UsageMetadata =
            serde_json::from_value(v.get("usageMetadata").cloned().unwrap_or(v)).expect("usage");
        let u = usage(Some(&meta));
        assert_eq!(u.total_tokens, meta.total_token_count);
    }

    #[test]
    fn max_tokens_without_parts_is_an_empty_length_answer() {
        let resp = fixture("gemini/generateContent.response.max-tokens-no-parts.json");
        assert_eq!(assess(&resp), Assessment::Answer);
        let c = to_openai(&resp, "m", "id".into(), 1);
        assert_eq!(c.choices[0].finish_reason, Some("length"));
        assert_eq!(c.choices[0].message.content.as_deref(), Some(""));
    }

    #[test]
    fn a_safety_finish_is_a_content_filter_choice() {
        let safety: GenerateContentResponse =
            serde_json::from_value(json!({"candidates": [{"finishReason": "SAFETY"}]}))
                .expect("json");
        assert_eq!(
            to_openai(&safety, "m", "i".into(), 0).choices[0].finish_reason,
            Some("content_filter")
        );
    }

    #[test]
    fn finish_reasons_are_lowercase_openai_values() {
        assert_eq!(finish_reason(Some("STOP"), false), Some("stop"));
        assert_eq!(finish_reason(Some("STOP"), true), Some("tool_calls"));
        assert_eq!(finish_reason(Some("MAX_TOKENS"), false), Some("length"));
        for r in [
            "SAFETY",
            "RECITATION",
            "BLOCKLIST",
            "PROHIBITED_CONTENT",
            "SPII",
            "IMAGE_SAFETY",
        ] {
            assert_eq!(finish_reason(Some(r), false), Some("content_filter"), "{r}");
        }
        for r in ["OTHER", "LANGUAGE", "FINISH_REASON_UNSPECIFIED"] {
            assert_eq!(finish_reason(Some(r), false), Some("stop"), "{r}");
        }
        assert_eq!(finish_reason(None, false), None);
    }

    #[test]
    fn several_candidates_become_several_choices() {
        let resp: GenerateContentResponse = serde_json::from_value(json!({"candidates": [
            {"content": {"parts": [{"text": "one"}]}, "finishReason": "STOP", "index": 0},
            {"content": {"parts": [{"text": "two"}]}, "finishReason": "MAX_TOKENS", "index": 1}
        ]}))
        .expect("json");
        let c = to_openai(&resp, "m", "i".into(), 0);
        assert_eq!(c.choices.len(), 2);
        assert_eq!(c.choices[1].message.content.as_deref(), Some("two"));
        assert_eq!(c.choices[1].finish_reason, Some("length"));
    }

    #[test]
    fn function_calls_become_tool_calls() {
        let resp = fixture("gemini/generateContent.response.function-call-thought-signature.json");
        let c = to_openai(&resp, "m", "i".into(), 0);
        let calls = c.choices[0]
            .message
            .tool_calls
            .as_ref()
            .expect("tool calls");
        assert!(!calls.is_empty());
        assert!(
            calls[0]
                .id
                .as_deref()
                .is_some_and(|id| id.starts_with("call_"))
        );
        assert_eq!(c.choices[0].finish_reason, Some("tool_calls"));
        assert!(
            serde_json::from_str::<Value>(calls[0].function.arguments.as_deref().unwrap_or(""))
                .is_ok()
        );
    }

    #[test]
    fn grounding_becomes_url_citations() {
        let resp = fixture("gemini/generateContent.response.google-search-grounding.json");
        let c = to_openai(&resp, "m", "i".into(), 0);
        let ann = c.choices[0]
            .message
            .annotations
            .as_ref()
            .expect("annotations");
        assert_eq!(ann[0]["type"], "url_citation");
        assert!(
            ann[0]["url_citation"]["url"]
                .as_str()
                .is_some_and(|u| u.starts_with("https://"))
        );
        let end = ann[0]["url_citation"]["end_index"].as_u64().unwrap_or(0);
        assert!(
            end as usize
                <= c.choices[0]
                    .message
                    .content
                    .as_deref()
                    .unwrap_or_default()
                    .chars()
                    .count()
        );
    }

    #[test]
    fn function_call_signatures_are_exposed_for_storage() {
        let resp = fixture("gemini/generateContent.response.function-call-thought-signature.json");
        let c = to_openai(&resp, "m", "i".into(), 0);
        let call = &c.choices[0].message.tool_calls.as_ref().expect("calls")[0];
        assert!(signature_of(call).is_some_and(|s| !s.is_empty()));
    }
}
