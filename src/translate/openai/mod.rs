//! The OpenAI Chat Completions dialect. Request → Gemini `GenerateContentRequest`
//! ([`to_gemini`], decisions §5): only what the client sent is sent; the proxy adds what
//! decisions §5 says it adds (safety settings, search mode's tool and prompt, `RANDOM_STRING`
//! filler). The way back is [`answer`] (a whole answer) and [`stream`] (chunk by chunk);
//! [`inline`] keeps large inline payloads out of the copy the translation makes.
//!
//! - [`messages`] — turns, system placement, speaker names, user and assistant parts, tool results
//! - [`tools`] — function declarations and `tool_choice`
//! - [`generation`] — `generationConfig` (sampling, `response_format`, thinking), cached content

pub mod answer;
pub mod dialect;
pub mod generation;
pub mod inline;
pub mod messages;
pub mod stream;
pub mod tools;

#[cfg(test)]
mod tests;

use crate::error::GatewayError;
use crate::translate::dialect::Context;
use crate::translate::history;
use crate::translate::model_name::{is_gemini3, search_base, upstream_model_name};
use crate::translate::safety::safety_settings;
use crate::wire::gemini::GenerateContentRequest;
use crate::wire::openai::ChatRequest;

/// What the caller needs besides the request body.
#[derive(Debug)]
pub struct Translated {
    /// The model name to put in the upstream URL (no `models/` prefix).
    pub upstream_model: String,
    pub request: GenerateContentRequest,
}

/// A fresh OpenAI-style completion id (`chatcmpl-` + 24 random alphanumerics).
pub fn completion_id() -> String {
    crate::translate::random_alnum("chatcmpl-", 24)
}

/// Translates a chat request with what the server knows (`ctx`: thinking defaults, the
/// model list's flags, search mode, remembered signatures, `RANDOM_STRING`). The model is
/// taken as it is: aliases were resolved by [`dialect::prepare`].
pub fn to_gemini(req: &ChatRequest, opts: &Context<'_>) -> Result<Translated, GatewayError> {
    let mut upstream_model = upstream_model_name(&req.model).to_owned();
    if upstream_model.is_empty() {
        return Err(GatewayError::bad_param(
            "缺少模型名 / `model` must not be empty",
            "model",
        ));
    }
    if req.messages.is_empty() {
        return Err(GatewayError::bad_param(
            "messages 不能为空 / `messages` must not be empty",
            "messages",
        ));
    }
    let search = match (opts.search_prompt, search_base(&upstream_model)) {
        (Some(prompt), Some(base)) => {
            upstream_model = base.to_owned();
            Some(prompt.to_owned())
        }
        _ => None,
    };
    let gemini3 = is_gemini3(&upstream_model);
    let recall = |id: &str| (opts.recall_signature)(id, &upstream_model);

    let messages::Conversation {
        mut contents,
        system_instruction,
    } = messages::conversation(&req.messages, gemini3, &recall)?;

    let mut tools = tools::function_tools(req)?;
    let tool_config = tools::tool_config(req, &tools)?;
    if let Some(prompt) = search {
        history::add_search(&mut tools, &mut contents, prompt);
    }
    if let Some(len) = opts.random_string {
        history::insert_random_strings(&mut contents, len);
    }

    let generation_config = generation::generation_config(
        req,
        &upstream_model,
        (opts.model_thinks)(&upstream_model),
        opts.enable_thinking,
    )?;
    let request = GenerateContentRequest {
        contents,
        system_instruction,
        tools: (!tools.is_empty()).then_some(tools),
        tool_config,
        safety_settings: Some(safety_settings(&upstream_model)),
        generation_config: (!generation_config.is_empty()).then_some(generation_config),
        cached_content: generation::cached_content(req),
    };
    Ok(Translated {
        upstream_model,
        request,
    })
}
