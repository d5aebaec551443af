//! What a Gemini answer amounts to, whatever dialect renders it (decisions §4): a whole
//! answer is an answer, a blocked prompt or empty ([`assess`]); the first event of a stream
//! commits to it, is blocked, ends empty or says nothing yet ([`first_event`]).

use crate::error::GatewayError;
use crate::wire::gemini::{Candidate, GenerateContentResponse};

/// What a 200 answer amounts to (decisions §4).
#[derive(Debug, PartialEq, Eq)]
pub enum Assessment {
    /// Something to give the client.
    Answer,
    /// `promptFeedback.blockReason` with no candidates: a 400 `content_filter`, not retried.
    PromptBlocked(String),
    /// Nothing usable; retried on another key, counted toward `MAX_EMPTY_RESPONSES`.
    Empty(String),
}

const RETRY_AS_EMPTY: [&str; 3] = [
    "MALFORMED_FUNCTION_CALL",
    "UNEXPECTED_TOOL_CALL",
    "TOO_MANY_TOOL_CALLS",
];

pub fn assess(resp: &GenerateContentResponse) -> Assessment {
    let candidates = resp.candidates.as_deref().unwrap_or_default();
    if candidates.is_empty() {
        if let Some(reason) = resp
            .prompt_feedback
            .as_ref()
            .and_then(|f| f.block_reason.clone())
        {
            return Assessment::PromptBlocked(reason);
        }
        return Assessment::Empty("no candidates".to_owned());
    }
    let mut empty_reason = None;
    for c in candidates {
        let reason = c.finish_reason.as_deref().unwrap_or("STOP");
        if RETRY_AS_EMPTY.contains(&reason) {
            empty_reason.get_or_insert_with(|| reason.to_owned());
            continue;
        }
        if is_filter_reason(reason) || reason == "MAX_TOKENS" {
            // Final whatever was produced (decisions §4).
            return Assessment::Answer;
        }
        if has_visible_output(c) {
            return Assessment::Answer;
        }
    }
    Assessment::Empty(empty_reason.unwrap_or_else(|| "empty answer".to_owned()))
}

/// What one stream event means before anything was sent to the client.
#[derive(Debug, PartialEq, Eq)]
pub enum FirstEvent {
    /// Content (text, thoughts, a call) or a final MAX_TOKENS/filter: commit to this stream.
    Commit,
    /// The prompt was blocked (no candidates, `blockReason`).
    Blocked(String),
    /// The stream finished without content: an empty answer, retried.
    EmptyEnd(String),
    /// Nothing yet (usage only): read on.
    Pending,
}

pub fn first_event(event: &GenerateContentResponse) -> FirstEvent {
    let candidates = event.candidates.as_deref().unwrap_or_default();
    if candidates.is_empty()
        && let Some(reason) = event
            .prompt_feedback
            .as_ref()
            .and_then(|f| f.block_reason.clone())
    {
        return FirstEvent::Blocked(reason);
    }
    let commits = candidates.iter().any(|c| {
        has_visible_output(c)
            || c.parts()
                .iter()
                .any(|p| p.is_thought() && p.text.as_deref().is_some_and(|t| !t.is_empty()))
            || c.finish_reason
                .as_deref()
                .is_some_and(|r| r == "MAX_TOKENS" || is_filter_reason(r))
    });
    if commits {
        return FirstEvent::Commit;
    }
    match candidates.iter().find_map(|c| c.finish_reason.clone()) {
        Some(reason) => {
            FirstEvent::EmptyEnd(format!("stream finished with {reason} and no content"))
        }
        None => FirstEvent::Pending,
    }
}

/// Text that is not a thought, or a function call.
pub fn has_visible_output(c: &Candidate) -> bool {
    c.parts().iter().any(|p| {
        p.function_call.is_some()
            || p.executable_code.is_some()
            || p.inline_data.is_some()
            || (!p.is_thought() && p.text.as_deref().is_some_and(|t| !t.is_empty()))
    })
}

pub fn is_filter_reason(reason: &str) -> bool {
    matches!(
        reason,
        "SAFETY"
            | "RECITATION"
            | "BLOCKLIST"
            | "PROHIBITED_CONTENT"
            | "SPII"
            | "IMAGE_SAFETY"
            | "IMAGE_PROHIBITED_CONTENT"
            | "IMAGE_RECITATION"
    )
}

/// A prompt the upstream refused to answer (decisions §4).
pub fn prompt_blocked(reason: &str) -> GatewayError {
    GatewayError::BadRequest {
        message: format!(
            "提示词被上游安全策略拦截（{reason}） / The prompt was blocked by the upstream safety filter ({reason})"
        ),
        param: Some("messages".to_owned()),
        code: Some("content_filter"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::history::testing::fixture_text;
    use serde_json::json;

    fn fixture(path: &str) -> GenerateContentResponse {
        serde_json::from_str(&fixture_text(path)).expect("fixture parses")
    }

    #[test]
    fn prompt_blocks_are_recognised() {
        let resp =
            fixture("gemini/generateContent.response.prompt-blocked-prohibited-content.json");
        assert_eq!(
            assess(&resp),
            Assessment::PromptBlocked("PROHIBITED_CONTENT".into())
        );
        let resp = fixture("gemini/generateContent.response.prompt-blocked-safety.json");
        assert_eq!(assess(&resp), Assessment::PromptBlocked("SAFETY".into()));
        assert_eq!(first_event(&resp), FirstEvent::Blocked("SAFETY".into()));
    }

    #[test]
    fn empty_and_malformed_answers_are_retryable() {
        let empty: GenerateContentResponse = serde_json::from_value(json!({"candidates": [{"content": {"parts": [{"text": ""}], "role": "model"}, "finishReason": "STOP"}]})).expect("json");
        assert!(matches!(assess(&empty), Assessment::Empty(_)));
        let thought_only: GenerateContentResponse = serde_json::from_value(json!({"candidates": [{"content": {"parts": [{"text": "hmm", "thought": true}], "role": "model"}, "finishReason": "STOP"}]})).expect("json");
        assert!(matches!(assess(&thought_only), Assessment::Empty(_)));
        let malformed: GenerateContentResponse = serde_json::from_value(
            json!({"candidates": [{"finishReason": "MALFORMED_FUNCTION_CALL"}]}),
        )
        .expect("json");
        assert_eq!(
            assess(&malformed),
            Assessment::Empty("MALFORMED_FUNCTION_CALL".into())
        );
        let safety: GenerateContentResponse =
            serde_json::from_value(json!({"candidates": [{"finishReason": "SAFETY"}]}))
                .expect("json");
        assert_eq!(assess(&safety), Assessment::Answer);
    }

    #[test]
    fn a_stream_commits_on_content_or_thoughts_and_waits_on_usage_alone() {
        let event = |v: serde_json::Value| -> GenerateContentResponse {
            serde_json::from_value(v).expect("json")
        };
        assert_eq!(
            first_event(&event(
                json!({"candidates": [{"content": {"parts": [{"text": "hi"}]}}]})
            )),
            FirstEvent::Commit
        );
        assert_eq!(
            first_event(&event(
                json!({"candidates": [{"content": {"parts": [{"text": "hmm", "thought": true}]}}]})
            )),
            FirstEvent::Commit,
            "a thought is output for the client"
        );
        assert_eq!(
            first_event(&event(
                json!({"candidates": [{"finishReason": "MAX_TOKENS"}]})
            )),
            FirstEvent::Commit
        );
        assert_eq!(
            first_event(&event(json!({"usageMetadata": {"promptTokenCount": 3}}))),
            FirstEvent::Pending
        );
        assert!(matches!(
            first_event(&event(json!({"candidates": [{"finishReason": "STOP"}]}))),
            FirstEvent::EmptyEnd(_)
        ));
    }
}
