//! The request pipeline: the steps after a request is authenticated and parsed, in order —
//! `generate` (the flow of a generation request of any dialect), `obtain` (cache, in-flight
//! sharing, HAJIMI's raced attempts) over `dispatch` (attempts across credentials, the final
//! error), then `deliver` (complete answers as JSON or fake streams, keep-alives) or `relay`
//! (real streams, mid-stream rescue), all written through `sse`. `request_body` is the
//! upstream body shared by a request's attempts; `native` passes through what has no dialect;
//! `count` counts a dialect's request with Gemini's `countTokens`; `embeddings` and `models`
//! serve their endpoints.

pub mod attempts;
pub mod count;
pub mod deliver;
pub mod dispatch;
pub mod embeddings;
pub mod generate;
pub mod models;
pub mod native;
pub mod obtain;
pub mod relay;
pub mod request_body;
pub mod sse;
pub mod wait;
