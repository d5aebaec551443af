//! The OpenAI Responses dialect (`POST /v1/responses`), pure: request → Gemini
//! ([`request::to_gemini`]), complete answer → Response ([`answer::to_response`]), stream
//! ([`ResponseStream`]), and the stored shape behind `previous_response_id`
//! ([`store::StoredResponse`]). Errors use OpenAI's envelope (`Flavor::OpenAi`).
//!
//! How the pipeline drives it:
//! 1. parse `CreateResponse`; resolve model aliases; load the stored conversation of
//!    `previous_response_id` (unknown or expired → 400); `to_gemini` with the signature
//!    memory as `recall_signature`; fetch remote media
//!    (`fetch::inline_remote_file_data`, outside `translate`).
//! 2. make a `ResponseMeta` (`answer::response_id()`, now).
//! 3. complete answers: `crate::translate::assess::assess` as for chat (a prompt block is a
//!    400), then `to_response`; remember `Answer::signatures`; when the request `stores()`,
//!    keep `StoredResponse { response, conversation: StoredConversation::new(model,
//!    translated.conversation, Some(answer.model_turn)) }` for 24 h.
//! 4. streams: `ResponseStream::new(meta, translated.answer)`, `map_event` per upstream
//!    event, `keepalive` while waiting, `finish` at the end, `fail` for an in-stream
//!    failure; `drain_signatures` after each event; store `final_response()` and
//!    `model_turn()` as above.

pub mod answer;
pub mod dialect;
pub mod request;
pub mod store;
pub mod stream;

#[cfg(test)]
mod tests;

pub use answer::{Answer, ResponseMeta, response_id, to_response};
pub use request::{AnswerContext, Translated, to_gemini};
pub use store::{StoredConversation, StoredResponse};
pub use stream::ResponseStream;
