//! The OpenAI Responses dialect (`POST /v1/responses`), pure: request → Gemini
//! ([`request::to_gemini`]), complete answer → Response ([`answer::to_response`]), stream
//! ([`ResponseStream`]), and the stored shape behind `previous_response_id`
//! ([`store::StoredResponse`]). Errors use OpenAI's envelope (`Flavor::OpenAi`).
//!
//! [`dialect`] is the dialect the pipeline drives: `prepare` loads the stored conversation
//! of `previous_response_id` through `Context::recall_kept` (unknown or expired → 400),
//! translates with the shared `Context` (signature memory, thinking, search) and takes the
//! cache key before the proxy's filler; its `Render` writes complete answers with
//! [`to_response`] and streams with [`ResponseStream`] (keep-alives are SSE comments), offers
//! the calls' signatures to the memory, and hands back the [`StoredResponse`] to keep 24 h
//! (`Render::keep`) when the request stores (the default).

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
