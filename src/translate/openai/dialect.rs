//! OpenAI Chat Completions as a dialect: a chat request prepared for the pipeline, and
//! [`Chat`], which writes Gemini's answers as `chat.completion` JSON or
//! `chat.completion.chunk` SSE frames (decisions §3-5).

use axum::http::StatusCode;
use bytes::Bytes;
use serde_json::json;

use super::answer::{drop_reasoning, signature_of, to_openai};
use super::stream::{ChunkMapper, sse_json};
use super::{completion_id, inline, to_gemini};
use crate::error::{Flavor, GatewayError};
use crate::translate::assess::{Assessment, assess, prompt_blocked};
use crate::translate::cache_key;
use crate::translate::dialect::{Answer, Context, Prepared, Render, UpstreamBody};
use crate::translate::model_name::upstream_model_name;
use crate::translate::unix_now;
use crate::wire::gemini::{GenerateContentResponse, UsageMetadata};
use crate::wire::openai::ChatRequest;

/// Prepares a chat request: the model alias resolved (answers keep the client's name), the
/// response-cache key over the request as the client sent it, then the translation, which
/// consumes the request (inline payloads move, not copied).
pub fn prepare(mut chat: ChatRequest, ctx: &Context<'_>) -> Result<Prepared, GatewayError> {
    let asked = std::mem::take(&mut chat.model);
    chat.model = ctx.resolve_model(&asked).to_owned();
    let requested = upstream_model_name(&chat.model).to_owned();
    let stream = chat.is_stream();
    let cache_key = ctx
        .cache
        .map(|rule| cache_key::openai_key(&chat, rule.last_n, rule.precise));
    let render = Chat {
        model: asked.clone(),
        reasoning: !chat.excludes_reasoning(),
        inband: ctx.inband_errors,
        mapper: ChunkMapper::new(completion_id(), unix_now(), asked, chat.include_usage())
            .with_reasoning(!chat.excludes_reasoning()),
        signatures: Vec::new(),
    };
    let stash = inline::stash(&mut chat);
    let mut translated = to_gemini(&chat, ctx)?;
    drop(chat);
    inline::restore(&mut translated.request, stash);
    Ok(Prepared {
        requested,
        model: translated.upstream_model,
        body: UpstreamBody::Typed(Box::new(translated.request)),
        stream,
        cache_key,
        render: Box::new(render),
    })
}

/// Writes Gemini answers as OpenAI chat completions.
pub struct Chat {
    /// The model name as the client sent it (on every answer and chunk).
    model: String,
    /// Thoughts reach the client as `reasoning_content` (off: `include_reasoning: false`).
    reasoning: bool,
    /// HAJIMI's `role: "error"` answers for availability errors (`INBAND_ERRORS`).
    inband: bool,
    mapper: ChunkMapper,
    /// Signatures of complete answers' tool calls, until taken.
    signatures: Vec<(String, String)>,
}

fn parsed(answer: &Answer) -> Result<&GenerateContentResponse, GatewayError> {
    answer
        .parsed
        .as_deref()
        .ok_or_else(|| GatewayError::internal(anyhow::anyhow!("unparsed answer")))
}

impl Render for Chat {
    fn label(&self) -> &'static str {
        "openai"
    }

    fn flavor(&self) -> Flavor {
        Flavor::OpenAi
    }

    fn check(&self, answer: &Answer) -> Result<(), GatewayError> {
        if let Assessment::PromptBlocked(reason) = assess(parsed(answer)?) {
            return Err(prompt_blocked(&reason));
        }
        Ok(())
    }

    fn complete(&mut self, answer: &Answer) -> Result<(StatusCode, Bytes), GatewayError> {
        self.check(answer)?;
        let mut completion = to_openai(parsed(answer)?, &self.model, completion_id(), unix_now());
        if !self.reasoning {
            drop_reasoning(&mut completion);
        }
        for call in completion
            .choices
            .iter()
            .flat_map(|c| c.message.tool_calls.iter().flatten())
        {
            if let (Some(id), Some(sig)) = (call.id.as_deref(), signature_of(call)) {
                self.signatures.push((id.to_owned(), sig.to_owned()));
            }
        }
        let body = serde_json::to_vec(&completion).map_err(GatewayError::internal)?;
        Ok((StatusCode::OK, Bytes::from(body)))
    }

    fn event(
        &mut self,
        _raw: &Bytes,
        event: Option<&GenerateContentResponse>,
        out: &mut Vec<Bytes>,
    ) {
        if let Some(event) = event {
            self.mapper.map_event(event, out);
        }
    }

    fn finish(&mut self, out: &mut Vec<Bytes>) {
        self.mapper.finish(out);
    }

    fn fail(&mut self, error: &GatewayError, stream: bool, out: &mut Vec<Bytes>) {
        if stream {
            out.push(sse_json(&error.openai_body()));
        } else {
            out.push(Bytes::from(error.openai_body().to_string()));
        }
    }

    fn keepalive(&self, stream: bool) -> Bytes {
        if stream {
            self.mapper.keepalive()
        } else {
            Bytes::from_static(b"\n")
        }
    }

    fn inband(&self, error: &GatewayError, stream: bool) -> Option<Vec<Bytes>> {
        let availability = matches!(
            error,
            GatewayError::QuotaExhausted { .. }
                | GatewayError::InsufficientQuota { .. }
                | GatewayError::BadGateway { .. }
                | GatewayError::Unavailable { .. }
                | GatewayError::Timeout { .. }
        );
        if !(self.inband && availability) {
            return None;
        }
        let text = error.to_string();
        Some(if stream {
            let m = &self.mapper;
            let chunk = json!({"id": m.id(), "object": "chat.completion.chunk", "created": m.created(), "model": m.model(),
                "choices": [{"index": 0, "delta": {"role": "error", "content": text}, "logprobs": null, "finish_reason": "stop"}]});
            vec![sse_json(&chunk), Bytes::from_static(b"data: [DONE]\n\n")]
        } else {
            let body = json!({"id": completion_id(), "object": "chat.completion", "created": unix_now(), "model": self.model,
                "choices": [{"index": 0, "message": {"role": "error", "content": text}, "logprobs": null, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}});
            vec![Bytes::from(body.to_string())]
        })
    }

    fn signatures(&mut self) -> Vec<(String, String)> {
        let mut out = std::mem::take(&mut self.signatures);
        out.extend(self.mapper.drain_signatures());
        out
    }

    fn is_finished(&self) -> bool {
        self.mapper.is_finished()
    }

    fn rescuable(&self) -> Option<String> {
        self.mapper.rescuable().map(str::to_owned)
    }

    fn begin_rescue(&mut self) {
        self.mapper.begin_rescue();
    }

    fn usage(&self) -> Option<UsageMetadata> {
        Some(self.mapper.total_usage())
    }
}
