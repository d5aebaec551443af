//! What a stored response keeps so `previous_response_id` can continue from it, and what
//! `GET /v1/responses/{id}` returns. Storage itself (24 h, bounded) belongs to the pipeline;
//! this is the serialisable shape and how it is built.

use serde::{Deserialize, Serialize};

use crate::wire::gemini::{Content, Part};
use crate::wire::responses::Response;

/// The most a stored conversation keeps, in bytes of JSON; older turns go first.
pub const MAX_CONVERSATION_BYTES: usize = 4 * 1024 * 1024;

/// A conversation in Gemini's terms, continued by a later request's `previous_response_id`:
/// the previous conversation, the request's input and the answer, without the proxy's
/// filler and without the instructions (OpenAI does not carry instructions over). Function
/// calls and results keep their call ids (so later outputs find their call) and calls keep
/// their thought signatures, bound to `model`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoredConversation {
    /// The upstream model that produced the signatures.
    pub model: String,
    pub contents: Vec<Content>,
}

impl StoredConversation {
    /// The conversation of a request (`Translated::conversation`) followed by its answer
    /// (`Answer::model_turn` or `ResponseStream::model_turn`), bounded by
    /// [`MAX_CONVERSATION_BYTES`]: the oldest turns are dropped, and the kept part starts
    /// with a user turn that is not a tool result.
    pub fn new(model: &str, mut conversation: Vec<Content>, answer: Option<Content>) -> Self {
        if let Some(a) = answer.filter(|a| !a.parts.is_empty()) {
            conversation.push(a);
        }
        let mut sizes: Vec<usize> = conversation.iter().map(content_size).collect();
        let mut total: usize = sizes.iter().sum();
        let mut start = 0;
        while total > MAX_CONVERSATION_BYTES && start + 1 < conversation.len() {
            total -= sizes[start];
            start += 1;
            while start + 1 < conversation.len() && !is_plain_user(&conversation[start]) {
                total -= sizes[start];
                start += 1;
            }
        }
        sizes.clear();
        Self {
            model: model.to_owned(),
            contents: conversation.split_off(start),
        }
    }
}

fn content_size(c: &Content) -> usize {
    serde_json::to_vec(c).map_or(0, |v| v.len())
}

fn is_plain_user(c: &Content) -> bool {
    c.role.as_deref() == Some("user") && !c.parts.iter().any(|p| p.function_response.is_some())
}

/// One stored response: the object `GET /v1/responses/{id}` returns and the conversation a
/// follow-up continues.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoredResponse {
    pub response: Response,
    pub conversation: StoredConversation,
}

/// Appends a model part to an answer turn being collected: consecutive plain text parts are
/// joined (streams deliver text in many small pieces).
pub(crate) fn push_model_part(turn: &mut Vec<Part>, part: Part) {
    if let (Some(last), Some(text)) = (turn.last_mut(), part.text.as_deref())
        && part.function_call.is_none()
        && part.thought_signature.is_none()
        && !part.is_thought()
        && last.function_call.is_none()
        && last.thought_signature.is_none()
        && !last.is_thought()
        && let Some(prev) = last.text.as_mut()
    {
        prev.push_str(text);
        return;
    }
    turn.push(part);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(role: &str, t: &str) -> Content {
        Content {
            role: Some(role.into()),
            parts: vec![Part::text(t)],
        }
    }

    #[test]
    fn the_answer_is_appended_and_old_turns_go_first() {
        let s = StoredConversation::new("m", vec![text("user", "hi")], Some(text("model", "yo")));
        assert_eq!(s.contents.len(), 2);
        let big = "x".repeat(MAX_CONVERSATION_BYTES / 2);
        let conv = vec![
            text("user", &big),
            text("model", &big),
            text("user", "short"),
        ];
        let s = StoredConversation::new("m", conv, Some(text("model", "ok")));
        assert_eq!(
            s.contents.len(),
            2,
            "{:?}",
            s.contents
                .iter()
                .map(|c| c.role.clone())
                .collect::<Vec<_>>()
        );
        assert_eq!(s.contents[0].parts[0].text.as_deref(), Some("short"));
    }

    #[test]
    fn streamed_text_is_joined() {
        let mut turn = Vec::new();
        push_model_part(&mut turn, Part::text("a"));
        push_model_part(&mut turn, Part::text("b"));
        assert_eq!(turn.len(), 1);
        assert_eq!(turn[0].text.as_deref(), Some("ab"));
    }
}
