//! OpenAI Responses as a dialect: a `POST /v1/responses` request prepared for the pipeline
//! (the conversation of `previous_response_id` loaded from what the server kept), and
//! [`Responses`], which writes Gemini's answers as a Response object or its typed stream
//! events and, when the request stores (the default), hands back the stored response
//! ([`Render::keep`]) that a later `previous_response_id` or `GET /v1/responses/{id}` reads.

use axum::http::StatusCode;
use bytes::Bytes;

use super::answer::{ResponseMeta, response_id, to_response};
use super::request::{AnswerContext, to_gemini};
use super::store::{StoredConversation, StoredResponse};
use super::stream::{KEEPALIVE, ResponseStream};
use crate::error::{Flavor, GatewayError};
use crate::translate::assess::{Assessment, assess};
use crate::translate::dialect::{Answer, Context, Keep, Prepared, Render, UpstreamBody};
use crate::translate::model_name::upstream_model_name;
use crate::translate::{cache_key, history, unix_now};
use crate::wire::gemini::{Content, GenerateContentResponse, UsageMetadata};
use crate::wire::responses::{CreateResponse, Response};

/// The 400 for a `previous_response_id` the server does not hold (never stored, expired
/// after 24 h, or dropped beyond the bounds).
fn previous_not_found(id: &str) -> GatewayError {
    GatewayError::BadRequest {
        message: format!(
            "找不到 previous_response_id 指向的响应 {id:?}（未保存、已超过 24 小时或已被清理），请发送完整对话或去掉 previous_response_id / Previous response with id {id:?} not found (never stored, older than 24 hours, or dropped): send the whole conversation, or no previous_response_id"
        ),
        param: Some("previous_response_id".to_owned()),
        code: Some("previous_response_not_found"),
    }
}

/// A stored response as kept, read back (`GET /v1/responses/{id}`, `previous_response_id`).
pub fn stored(data: &[u8]) -> Option<StoredResponse> {
    serde_json::from_slice(data).ok()
}

/// Prepares a Responses request: the stored conversation it continues, the translation, the
/// response-cache key over the Gemini request (before the proxy's filler), and the renderer.
pub fn prepare(mut req: CreateResponse, ctx: &Context<'_>) -> Result<Prepared, GatewayError> {
    // The answer names the model as the client did; the translation uses the Gemini model
    // an alias stands for (`MODEL_ALIASES`).
    let meta = ResponseMeta::new(&req, response_id(), unix_now());
    let asked = std::mem::take(&mut req.model);
    req.model = ctx.resolve_model(&asked).to_owned();
    let requested = upstream_model_name(&req.model).to_owned();
    let stream = req.is_stream();
    let previous = match req.previous_response_id.as_deref() {
        None => None,
        Some(id) => {
            let kept = (ctx.recall_kept)(id).and_then(|data| stored(&data));
            Some(kept.ok_or_else(|| previous_not_found(id))?.conversation)
        }
    };
    let mut translated = to_gemini(&req, ctx, previous.as_ref())?;
    let cache_key = ctx.cache.and_then(|rule| {
        let body = serde_json::to_vec(&translated.request).ok()?;
        cache_key::native_key(&translated.upstream_model, &body, rule.last_n, rule.precise)
    });
    // The filler changes every request: inserted after the cache key is taken.
    if let Some(len) = ctx.random_string {
        history::insert_random_strings(&mut translated.request.contents, len);
    }
    let keeps = req.stores();
    let render = Responses {
        stream: ResponseStream::new(meta.clone(), translated.answer.clone()),
        meta,
        answer: translated.answer,
        conversation: keeps.then_some(translated.conversation),
        upstream_model: translated.upstream_model.clone(),
        complete: None,
        signatures: Vec::new(),
    };
    Ok(Prepared {
        requested,
        model: translated.upstream_model,
        body: UpstreamBody::Typed(Box::new(translated.request)),
        stream,
        cache_key,
        render: Box::new(render),
    })
}

/// Writes Gemini answers as OpenAI Responses.
pub struct Responses {
    meta: ResponseMeta,
    answer: AnswerContext,
    stream: ResponseStream,
    /// The conversation so far, when the response is stored (`store` is not false).
    conversation: Option<Vec<Content>>,
    upstream_model: String,
    /// A complete answer's Response and model turn, until kept.
    complete: Option<(Response, Content)>,
    /// Signatures of a complete answer's calls, until taken.
    signatures: Vec<(String, String)>,
}

fn parsed(answer: &Answer) -> Result<&GenerateContentResponse, GatewayError> {
    answer
        .parsed
        .as_deref()
        .ok_or_else(|| GatewayError::internal(anyhow::anyhow!("unparsed answer")))
}

impl Render for Responses {
    fn label(&self) -> &'static str {
        "responses"
    }

    fn flavor(&self) -> Flavor {
        Flavor::OpenAi
    }

    fn check(&self, answer: &Answer) -> Result<(), GatewayError> {
        if let Assessment::PromptBlocked(reason) = assess(parsed(answer)?) {
            return Err(GatewayError::BadRequest {
                message: format!(
                    "提示词被上游安全策略拦截（{reason}） / The prompt was blocked by the upstream safety filter ({reason})"
                ),
                param: Some("input".to_owned()),
                code: Some("content_filter"),
            });
        }
        Ok(())
    }

    fn complete(&mut self, answer: &Answer) -> Result<(StatusCode, Bytes), GatewayError> {
        self.check(answer)?;
        let done = to_response(parsed(answer)?, &self.meta, &self.answer);
        self.signatures.extend(done.signatures);
        let body = serde_json::to_vec(&done.response).map_err(GatewayError::internal)?;
        self.complete = Some((done.response, done.model_turn));
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
            self.stream.fail(error, out);
        } else {
            out.push(Bytes::from(error.openai_body().to_string()));
        }
    }

    fn keepalive(&self, stream: bool) -> Bytes {
        if stream {
            Bytes::from_static(KEEPALIVE)
        } else {
            Bytes::from_static(b"\n")
        }
    }

    fn signatures(&mut self) -> Vec<(String, String)> {
        let mut out = std::mem::take(&mut self.signatures);
        out.extend(self.stream.drain_signatures());
        out
    }

    fn keep(&mut self) -> Option<Keep> {
        let conversation = self.conversation.take()?;
        let (response, turn) = match self.complete.take() {
            Some(done) => done,
            None => (
                self.stream.final_response()?.clone(),
                self.stream.model_turn(),
            ),
        };
        if response.status == "failed" {
            return None;
        }
        let kept = StoredResponse {
            conversation: StoredConversation::new(&self.upstream_model, conversation, Some(turn)),
            response,
        };
        let data = serde_json::to_vec(&kept).ok()?;
        Some(Keep {
            id: self.meta.id.clone(),
            data: Bytes::from(data),
        })
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
