//! The Anthropic Messages dialect (`POST /v1/messages`), pure: request → Gemini
//! ([`request::to_gemini`]), complete answer → message ([`answer::to_message`]), stream
//! ([`MessageStream`]), token counting ([`count_tokens_request`], [`count_tokens_answer`]).
//! Errors render through `GatewayError::anthropic_body` (`Flavor::Anthropic`).
//!
//! How the pipeline drives it:
//! 1. parse `MessagesRequest`; resolve model aliases; `to_gemini` with the signature memory
//!    as `recall_signature`; fetch remote media (`fetch::inline_remote_file_data`, outside
//!    `translate`).
//! 2. complete answers: `crate::translate::assess::assess` as for chat (a prompt block is a
//!    400), then `to_message`; remember `Answer::signatures` under the upstream model.
//! 3. streams: `MessageStream::new`, `map_event` per upstream event (committing on the same
//!    first-event rule as chat), `ping` for keep-alives, `finish` at the end, `error` for an
//!    in-stream failure; `drain_signatures` after each event.
//!
//! Thought signatures round-trip two ways: inside thinking blocks (when the client asked for
//! thinking; see `answer::Blocks` and `translate::history`) and in the server-side memory
//! keyed by tool_use id (always).

pub mod answer;
pub mod request;
pub mod stream;

#[cfg(test)]
mod tests;

pub use answer::{Answer, AnswerOptions, to_message};
pub use request::{Options, Translated, to_gemini};
pub use stream::MessageStream;

use serde_json::{Value, json};

use crate::wire::anthropic::TokenCount;
use crate::wire::gemini::GenerateContentRequest;

/// A fresh `msg_…` id.
pub fn message_id() -> String {
    crate::translate::random_alnum("msg_", 24)
}

/// The body of Gemini's `countTokens` for a translated request: the whole request under
/// `generateContentRequest`, so the system instruction and tools are counted too.
pub fn count_tokens_request(upstream_model: &str, request: &GenerateContentRequest) -> Value {
    let mut inner = serde_json::to_value(request).unwrap_or_else(|_| json!({}));
    if let Some(obj) = inner.as_object_mut() {
        // Only what counts as input is kept: safety and generation settings change nothing
        // in the count.
        obj.remove("safetySettings");
        obj.remove("generationConfig");
        obj.insert("model".into(), json!(format!("models/{upstream_model}")));
    }
    json!({ "generateContentRequest": inner })
}

/// Gemini's `countTokens` answer (`{"totalTokens": n}`) → `{"input_tokens": n}`.
pub fn count_tokens_answer(gemini: &Value) -> TokenCount {
    TokenCount {
        input_tokens: gemini
            .get("totalTokens")
            .and_then(Value::as_u64)
            .unwrap_or(0),
    }
}
