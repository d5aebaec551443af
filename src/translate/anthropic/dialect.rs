//! Anthropic Messages as a dialect: a Messages request prepared for the pipeline, and
//! [`Messages`], which writes Gemini's answers as a `message` or as Anthropic's named SSE
//! events (`ping` keep-alives, an `error` event for a failure after the start).

use axum::http::StatusCode;
use bytes::Bytes;

use super::answer::{AnswerOptions, to_message};
use super::{MessageStream, message_id, to_gemini};
use crate::error::{Flavor, GatewayError};
use crate::translate::assess::{Assessment, assess, prompt_blocked};
use crate::translate::dialect::{Answer, Context, Counting, Prepared, Render, UpstreamBody};
use crate::translate::inline::{Stash, data_url_prefix, restore};
use crate::translate::model_name::upstream_model_name;
use crate::translate::{cache_key, history};
use crate::wire::anthropic::{
    ContentBlock, MessageContent, MessagesRequest, Source, ToolResultContent,
};
use crate::wire::gemini::{GenerateContentResponse, UsageMetadata};

/// The dialect's name in statistics and metrics.
const LABEL: &str = "anthropic";

/// Prepares a Messages request: the model alias resolved (answers keep the client's name),
/// inline payloads moved out of the request and back into the translation, the
/// response-cache key over the translated request before the proxy's filler is added.
pub fn prepare(mut req: MessagesRequest, ctx: &Context<'_>) -> Result<Prepared, GatewayError> {
    let asked = std::mem::take(&mut req.model);
    req.model = ctx.resolve_model(&asked).to_owned();
    let requested = upstream_model_name(&req.model).to_owned();
    let stream = req.is_stream();
    let stash = stash(&mut req);
    let without_filler = Context {
        random_string: None,
        ..*ctx
    };
    let mut translated = to_gemini(&req, &without_filler)?;
    drop(req);
    restore(&mut translated.request, stash);
    let cache_key = ctx
        .cache
        .map(|rule| cache_key::translated_key(&requested, &translated.request, rule));
    if let Some(len) = ctx.random_string {
        history::insert_random_strings(&mut translated.request.contents, len);
    }
    let render = Messages::new(
        asked,
        &translated.upstream_model,
        translated.thinking_blocks,
    );
    Ok(Prepared {
        requested,
        model: translated.upstream_model,
        body: UpstreamBody::Typed(Box::new(translated.request)),
        stream,
        cache_key,
        render: Box::new(render),
    })
}

/// Prepares a `count_tokens` request: translated as [`prepare`] translates, for Gemini's
/// `countTokens`.
pub fn prepare_count(
    mut req: MessagesRequest,
    ctx: &Context<'_>,
) -> Result<Counting, GatewayError> {
    let asked = std::mem::take(&mut req.model);
    req.model = ctx.resolve_model(&asked).to_owned();
    let without_filler = Context {
        random_string: None,
        ..*ctx
    };
    let stash = stash(&mut req);
    let mut translated = to_gemini(&req, &without_filler)?;
    restore(&mut translated.request, stash);
    Ok(Counting {
        dialect: LABEL,
        requested: upstream_model_name(&req.model).to_owned(),
        model: translated.upstream_model,
        request: translated.request,
    })
}

/// Replaces every large base64 payload of the request (images and documents, in turns and
/// in tool results; `data:` URL sources too) by a placeholder.
pub(super) fn stash(req: &mut MessagesRequest) -> Stash {
    fn blocks(list: &mut [ContentBlock], stash: &mut Stash) {
        for block in list {
            match block {
                ContentBlock::Image { source } | ContentBlock::Document { source, .. } => {
                    match source {
                        Source::Base64 { data, .. } => stash.swap(data, 0),
                        Source::Url { url } => {
                            if let Some(prefix) = data_url_prefix(url) {
                                stash.swap(url, prefix);
                            }
                        }
                        _ => {}
                    }
                }
                ContentBlock::ToolResult {
                    content: Some(ToolResultContent::Blocks(inner)),
                    ..
                } => blocks(inner, stash),
                _ => {}
            }
        }
    }
    let mut stash = Stash::default();
    for msg in &mut req.messages {
        if let MessageContent::Blocks(b) = &mut msg.content {
            blocks(b, &mut stash);
        }
    }
    stash
}

/// Writes Gemini answers as Anthropic messages.
pub struct Messages {
    /// The model name as the client sent it (on every answer).
    model: String,
    /// The model that answers (carried signatures name it).
    upstream_model: String,
    /// The client asked for thinking: thinking blocks are written (never otherwise).
    thinking_blocks: bool,
    stream: MessageStream,
    /// Signatures of complete answers' tool uses, until taken.
    signatures: Vec<(String, String)>,
}

impl Messages {
    pub fn new(model: String, upstream_model: &str, thinking_blocks: bool) -> Self {
        Self {
            stream: MessageStream::new(
                message_id(),
                model.clone(),
                upstream_model,
                thinking_blocks,
            ),
            model,
            upstream_model: upstream_model.to_owned(),
            thinking_blocks,
            signatures: Vec::new(),
        }
    }
}

fn parsed(answer: &Answer) -> Result<&GenerateContentResponse, GatewayError> {
    answer
        .parsed
        .as_deref()
        .ok_or_else(|| GatewayError::internal(anyhow::anyhow!("unparsed answer")))
}

impl Render for Messages {
    fn label(&self) -> &'static str {
        LABEL
    }

    fn flavor(&self) -> Flavor {
        Flavor::Anthropic
    }

    fn check(&self, answer: &Answer) -> Result<(), GatewayError> {
        if let Assessment::PromptBlocked(reason) = assess(parsed(answer)?) {
            return Err(prompt_blocked(&reason));
        }
        Ok(())
    }

    fn complete(&mut self, answer: &Answer) -> Result<(StatusCode, Bytes), GatewayError> {
        self.check(answer)?;
        let options = AnswerOptions {
            id: message_id(),
            model: self.model.clone(),
            upstream_model: self.upstream_model.clone(),
            thinking_blocks: self.thinking_blocks,
        };
        let done = to_message(parsed(answer)?, &options);
        self.signatures.extend(done.signatures);
        let body = serde_json::to_vec(&done.message).map_err(GatewayError::internal)?;
        Ok((StatusCode::OK, Bytes::from(body)))
    }

    fn open(&mut self, out: &mut Vec<Bytes>) {
        self.stream.start(out);
    }

    fn event(
        &mut self,
        _raw: &Bytes,
        event: Option<&GenerateContentResponse>,
        out: &mut Vec<Bytes>,
    ) {
        if let Some(event) = event {
            self.stream.map_event(event, out);
        }
    }

    fn finish(&mut self, out: &mut Vec<Bytes>) {
        self.stream.finish(out);
    }

    fn fail(&mut self, error: &GatewayError, stream: bool, out: &mut Vec<Bytes>) {
        if stream {
            out.push(self.stream.error(error));
        } else {
            out.push(Bytes::from(error.anthropic_body().to_string()));
        }
    }

    fn keepalive(&self, stream: bool) -> Bytes {
        if stream {
            self.stream.ping()
        } else {
            Bytes::from_static(b"\n")
        }
    }

    fn signatures(&mut self) -> Vec<(String, String)> {
        let mut out = std::mem::take(&mut self.signatures);
        out.extend(self.stream.drain_signatures());
        out
    }

    fn is_finished(&self) -> bool {
        self.stream.is_finished()
    }

    fn rescuable(&self) -> Option<String> {
        self.stream.rescuable().map(str::to_owned)
    }

    fn begin_rescue(&mut self) {
        self.stream.begin_rescue();
    }

    fn usage(&self) -> Option<UsageMetadata> {
        Some(self.stream.total_usage())
    }
}
