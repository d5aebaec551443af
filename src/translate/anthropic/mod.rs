//! The Anthropic Messages dialect (`POST /v1/messages`), pure: request → Gemini
//! ([`request::to_gemini`]), complete answer → message ([`answer::to_message`]), stream
//! ([`MessageStream`]), token counting ([`dialect::prepare_count`], [`count_tokens_answer`]);
//! [`dialect`] joins them for the pipeline.
//! Errors render through `GatewayError::anthropic_body` (`Flavor::Anthropic`).
//!
//! How the pipeline drives it (through [`dialect::prepare`] and [`dialect::Messages`]):
//! 1. `MessagesRequest` parsed; the model alias resolved; `to_gemini` with the signature
//!    memory as `recall_signature`; remote media fetched by the pipeline.
//! 2. complete answers: `crate::translate::assess::assess` as for chat (a prompt block is a
//!    400), then `to_message`; `Answer::signatures` remembered under the upstream model.
//! 3. streams: `MessageStream::new`, `map_event` per upstream event (committing on the same
//!    first-event rule as chat), `ping` for keep-alives, `finish` at the end, `error` for an
//!    in-stream failure; `drain_signatures` after each event.
//!
//! Thought signatures round-trip two ways: inside thinking blocks (when the client asked for
//! thinking; see `answer::Blocks` and `translate::history`) and in the server-side memory
//! keyed by tool_use id (always).

pub mod answer;
pub mod dialect;
pub mod request;
pub mod stream;

#[cfg(test)]
mod tests;

pub use answer::{Answer, AnswerOptions, to_message};
pub use request::{Translated, to_gemini};
pub use stream::MessageStream;

use serde_json::Value;

use crate::wire::anthropic::TokenCount;

/// A fresh `msg_…` id.
pub fn message_id() -> String {
    crate::translate::random_alnum("msg_", 24)
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
