//! The dialect boundary. A client protocol (OpenAI chat, native Gemini, and later Anthropic
//! Messages and OpenAI Responses) is a *dialect*: its translation turns the client's request
//! into one [`Prepared`] request in Gemini's terms, and its [`Render`] writes Gemini's
//! answers back in the client's shape — complete answers, stream events, keep-alives,
//! in-band errors — and names the dialect for statistics and metrics. Everything between
//! (the cache, dispatch across credentials, racing, delivery, mid-stream rescue) is shared
//! and knows no dialect.
//!
//! Adding a dialect is one translate module that implements [`Render`] and produces a
//! [`Prepared`], plus one routes file; nothing in the pipeline changes.

use std::sync::Arc;

use axum::http::StatusCode;
use bytes::Bytes;
use serde_json::json;

use crate::error::{Flavor, GatewayError};
use crate::translate::aliases::ModelAliases;
use crate::wire::gemini::{GenerateContentRequest, GenerateContentResponse, UsageMetadata};

/// One upstream answer: Google's bytes (forwarded as they are by the identity dialect) and,
/// for 2xx `generateContent` answers, the parsed form.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub raw: Bytes,
    pub parsed: Option<Arc<GenerateContentResponse>>,
}

/// What the upstream is sent: a typed request (a translating dialect; fix-ups and
/// mid-stream rescue can change it) or the client's own bytes (the identity dialect).
pub enum UpstreamBody {
    Typed(Box<GenerateContentRequest>),
    Raw(Bytes),
}

/// A client request in Gemini's terms, with what delivery needs to answer it.
pub struct Prepared {
    /// The model as the client named it (`models/` removed; `-search` kept): what the
    /// model lists and the request log see.
    pub requested: String,
    /// The upstream model (URL and cooldown scope), `models/` and variant suffixes removed.
    pub model: String,
    pub body: UpstreamBody,
    /// The client asked for a stream.
    pub stream: bool,
    /// Response-cache key of this request (`None`: not cacheable).
    pub cache_key: Option<u64>,
    /// How answers are written for the client.
    pub render: Box<dyn Render>,
}

/// A client request whose input Gemini's `countTokens` counts (Anthropic's
/// `/v1/messages/count_tokens`): translated like a generation, never sent as one.
pub struct Counting {
    /// The dialect's label ([`Render::label`]), for statistics.
    pub dialect: &'static str,
    /// As in [`Prepared::requested`].
    pub requested: String,
    /// As in [`Prepared::model`].
    pub model: String,
    pub request: GenerateContentRequest,
}

impl Counting {
    /// The body of Gemini's `countTokens`: the whole request under `generateContentRequest`,
    /// so the system instruction and tools are counted too. Safety and generation settings
    /// change nothing in the count and are left out.
    pub fn body(&self) -> serde_json::Value {
        let mut inner = serde_json::to_value(&self.request).unwrap_or_else(|_| json!({}));
        if let Some(obj) = inner.as_object_mut() {
            obj.remove("safetySettings");
            obj.remove("generationConfig");
            obj.insert("model".into(), json!(format!("models/{}", self.model)));
        }
        json!({ "generateContentRequest": inner })
    }
}

/// What the server knows that a translation may use, handed to every dialect alike (the
/// settings of this request and lookups into the server's memories). `Default` is a server
/// with every option off and empty memories (what unit tests translate with).
#[derive(Clone, Copy)]
pub struct Context<'a> {
    /// `ENABLE_THINKING`: ask thinking models for their thoughts.
    pub enable_thinking: bool,
    /// The model list's `thinking` flag for a model, when known.
    pub model_thinks: &'a dyn Fn(&str) -> Option<bool>,
    /// `Some(SEARCH_PROMPT)` when search mode is on (`-search` model names).
    pub search_prompt: Option<&'a str>,
    /// A remembered thought signature by (tool-call id, upstream model).
    pub recall_signature: &'a dyn Fn(&str, &str) -> Option<String>,
    /// HAJIMI's `RANDOM_STRING` filler length.
    pub random_string: Option<usize>,
    /// HAJIMI's opt-in in-band errors (`INBAND_ERRORS`).
    pub inband_errors: bool,
    /// Which messages a response-cache key covers; `None`: the cache is not used (a real
    /// stream).
    pub cache: Option<crate::translate::cache_key::KeyRule>,
    /// What a dialect kept after an earlier answer ([`Render::keep`]), by its id: `None`
    /// when unknown or expired.
    pub recall_kept: &'a dyn Fn(&str) -> Option<Bytes>,
    /// `MODEL_ALIASES`: client model names mapped to Gemini models.
    pub aliases: &'a ModelAliases,
}

impl Context<'_> {
    /// The Gemini model a client's model name stands for (`MODEL_ALIASES`; the name itself
    /// when no alias matches). Every dialect translates the resolved name and answers with
    /// the client's.
    pub fn resolve_model<'m>(&'m self, asked: &'m str) -> &'m str {
        self.aliases.resolve(asked)
    }
}

impl Default for Context<'_> {
    fn default() -> Self {
        Self {
            enable_thinking: false,
            model_thinks: &|_| None,
            search_prompt: None,
            recall_signature: &|_, _| None,
            random_string: None,
            inband_errors: false,
            cache: None,
            aliases: ModelAliases::none(),
            recall_kept: &|_| None,
        }
    }
}

/// Something a dialect keeps after an answer for later requests to continue from or read
/// back (OpenAI Responses' stored responses): its id and its serialised form. The server
/// keeps it for a day, bounded in count and bytes, and on disk when storage is on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keep {
    pub id: String,
    pub data: Bytes,
}

/// Writes Gemini answers in a client's protocol. One per request; stateful for streams.
pub trait Render: Send + 'static {
    /// The dialect's name in statistics and metrics (`openai`, `gemini`, …).
    fn label(&self) -> &'static str;

    /// The shape of errors before any byte was sent.
    fn flavor(&self) -> Flavor;

    /// Content type of an answer (`stream`: a stream; else a complete JSON body).
    fn content_type(&self, stream: bool) -> &'static str {
        if stream {
            "text/event-stream; charset=utf-8"
        } else {
            "application/json"
        }
    }

    /// Whether Google's refusals of the request reach the client as Google sent them (the
    /// identity dialect) instead of as errors in the client's protocol.
    fn forwards_request_errors(&self) -> bool {
        false
    }

    /// Refuses an answer that must become an error (a prompt the model would not answer).
    fn check(&self, answer: &Answer) -> Result<(), GatewayError>;

    /// A complete (non-stream) answer: the status and the body.
    fn complete(&mut self, answer: &Answer) -> Result<(StatusCode, Bytes), GatewayError>;

    /// Bytes that open a stream whose headers go out before the answer exists.
    fn open(&mut self, _out: &mut Vec<Bytes>) {}

    /// One upstream event of a stream (`raw`: its `data` as Google sent it; `event`: parsed,
    /// `None` only for a forwarded refusal, which only the identity dialect receives).
    fn event(&mut self, raw: &Bytes, event: Option<&GenerateContentResponse>, out: &mut Vec<Bytes>);

    /// The end of a stream that completed.
    fn finish(&mut self, out: &mut Vec<Bytes>);

    /// An error after headers went out: written in-band (`stream`: the body is a stream).
    fn fail(&mut self, error: &GatewayError, stream: bool, out: &mut Vec<Bytes>);

    /// What keeps a slow answer alive (`stream`: between stream events; else before a JSON
    /// body).
    fn keepalive(&self, stream: bool) -> Bytes;

    /// HAJIMI's opt-in in-band answer for an error (OpenAI's `role: "error"` message), sent
    /// with status 200 instead of the error's status.
    fn inband(&self, _error: &GatewayError, _stream: bool) -> Option<Vec<Bytes>> {
        None
    }

    /// `(tool-call id, thought signature)` pairs produced since the last call, for the
    /// signature memory.
    fn signatures(&mut self) -> Vec<(String, String)> {
        Vec::new()
    }

    /// What to keep once the answer is complete (a complete answer was written, or a stream
    /// finished), asked once per answer.
    fn keep(&mut self) -> Option<Keep> {
        None
    }

    /// True once the stream's answer has finished (a stream that ends before is broken).
    fn is_finished(&self) -> bool;

    /// The text sent so far when a broken stream can be continued on another credential
    /// (`None`: it cannot).
    fn rescuable(&self) -> Option<String> {
        None
    }

    /// A continuation starts: carry what was counted so far.
    fn begin_rescue(&mut self) {}

    /// The usage of the whole stream (continuations included), for statistics.
    fn usage(&self) -> Option<UsageMetadata> {
        None
    }
}
