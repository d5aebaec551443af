//! Serde types of the wire formats we speak, named as their owners name them. No I/O and
//! no policy here: translation lives in `translate/`.

pub mod anthropic;
pub mod gemini;
pub mod openai;
pub mod responses;
