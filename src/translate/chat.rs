//! OpenAI chat request → Gemini `GenerateContentRequest`, and Gemini response → OpenAI
//! completion (`reference/wire-formats.md` §4, CONTRACT §4-5). Only what the client sent is
//! sent; the proxy adds what CONTRACT §5 says it adds (safety settings).

use serde_json::Value;

use crate::error::GatewayError;
use crate::wire::gemini::{
    self, Blob, Candidate, Content, GenerateContentRequest, GenerateContentResponse,
    GenerationConfig, Part, SafetySetting, UsageMetadata,
};
use crate::wire::openai::{
    ChatCompletion, ChatMessage, ChatRequest, Choice, CompletionTokensDetails, ContentPart,
    MessageContent, PromptTokensDetails, ResponseMessage, Stop, ToolCall, Usage,
};

/// What the caller needs besides the request body.
#[derive(Debug)]
pub struct Translated {
    /// The model name to put in the upstream URL (no `models/` prefix).
    pub upstream_model: String,
    pub request: GenerateContentRequest,
}

/// Upstream model name for a client model name: strips `models/` and `google/` prefixes.
pub fn upstream_model_name(model: &str) -> &str {
    let m = model.trim();
    let m = m.strip_prefix("models/").unwrap_or(m);
    m.strip_prefix("google/").unwrap_or(m)
}

pub fn to_gemini(req: &ChatRequest) -> Result<Translated, GatewayError> {
    let upstream_model = upstream_model_name(&req.model).to_owned();
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

    let mut system: Vec<Part> = Vec::new();
    let mut contents: Vec<Content> = Vec::new();
    for (i, msg) in req.messages.iter().enumerate() {
        match msg.role.as_str() {
            "system" | "developer" => system.extend(text_parts(msg, i)?),
            "user" => {
                let parts = user_parts(msg, i)?;
                push_merged(&mut contents, "user", parts);
            }
            "assistant" => {
                let parts = assistant_parts(msg, i)?;
                push_merged(&mut contents, "model", parts);
            }
            "tool" | "function" => {
                return Err(GatewayError::bad_param(
                    format!(
                        "messages[{i}]：暂不支持工具消息 / messages[{i}]: tool messages are not supported yet"
                    ),
                    "messages",
                ));
            }
            other => {
                return Err(GatewayError::bad_param(
                    format!(
                        "messages[{i}]：不支持的角色 {other:?} / messages[{i}]: unsupported role {other:?}"
                    ),
                    "messages",
                ));
            }
        }
    }

    // Gemini rejects a request without contents: a system-only conversation is sent as the
    // user's message.
    let system_instruction = if contents.is_empty() {
        if system.is_empty() {
            return Err(GatewayError::bad_param(
                "messages 中没有任何内容 / `messages` contain no text",
                "messages",
            ));
        }
        contents.push(Content {
            role: Some("user".into()),
            parts: std::mem::take(&mut system),
        });
        None
    } else if system.is_empty() {
        None
    } else {
        Some(Content {
            role: None,
            parts: system,
        })
    };

    let generation_config = generation_config(req);
    let request = GenerateContentRequest {
        contents,
        system_instruction,
        tools: None,
        tool_config: None,
        safety_settings: Some(safety_settings(&upstream_model)),
        generation_config: (!generation_config.is_empty()).then_some(generation_config),
        cached_content: None,
    };
    Ok(Translated {
        upstream_model,
        request,
    })
}

fn generation_config(req: &ChatRequest) -> GenerationConfig {
    let stop_sequences = match &req.stop {
        Some(Stop::One(s)) if !s.is_empty() => Some(vec![s.clone()]),
        Some(Stop::Many(v)) => {
            let v: Vec<String> = v
                .iter()
                .filter(|s| !s.is_empty())
                .take(5)
                .cloned()
                .collect();
            (!v.is_empty()).then_some(v)
        }
        _ => None,
    };
    GenerationConfig {
        temperature: req.temperature,
        top_p: req.top_p,
        top_k: req.top_k.map(|k| k.round() as i64),
        candidate_count: req.n,
        max_output_tokens: req.max_completion_tokens.or(req.max_tokens),
        stop_sequences,
        seed: req
            .seed
            .map(|s| s.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32),
        presence_penalty: req.presence_penalty.filter(|p| *p != 0.0),
        frequency_penalty: req.frequency_penalty.filter(|p| *p != 0.0),
        ..GenerationConfig::default()
    }
}

/// Removes the penalties (the retry of CONTRACT §4 for "Penalty is not enabled").
pub fn drop_penalties(request: &mut GenerateContentRequest) -> bool {
    let Some(cfg) = request.generation_config.as_mut() else {
        return false;
    };
    let had = cfg.presence_penalty.is_some() || cfg.frequency_penalty.is_some();
    cfg.presence_penalty = None;
    cfg.frequency_penalty = None;
    had
}

const SAFETY_CATEGORIES: [&str; 5] = [
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
    "HARM_CATEGORY_CIVIC_INTEGRITY",
];

/// HAJIMI's safety settings: every category `OFF` for Gemini 2.5 and later, `BLOCK_NONE`
/// for older models.
pub fn safety_settings(model: &str) -> Vec<SafetySetting> {
    let threshold = if gemini_version(model).is_some_and(|v| v >= (2, 5)) {
        "OFF"
    } else {
        "BLOCK_NONE"
    };
    SAFETY_CATEGORIES
        .iter()
        .map(|category| SafetySetting {
            category,
            threshold,
        })
        .collect()
}

/// `(major, minor)` of a `gemini-X.Y…` model name.
pub fn gemini_version(model: &str) -> Option<(u32, u32)> {
    let rest = upstream_model_name(model).strip_prefix("gemini-")?;
    let version: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut it = version.split('.');
    let major = it.next()?.parse().ok()?;
    let minor = it.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    Some((major, minor))
}

fn push_merged(contents: &mut Vec<Content>, role: &str, parts: Vec<Part>) {
    if parts.is_empty() {
        return;
    }
    if let Some(last) = contents.last_mut()
        && last.role.as_deref() == Some(role)
    {
        last.parts.extend(parts);
        return;
    }
    contents.push(Content {
        role: Some(role.to_owned()),
        parts,
    });
}

/// Text of a system/developer message as parts (non-text parts are refused).
fn text_parts(msg: &ChatMessage, i: usize) -> Result<Vec<Part>, GatewayError> {
    match &msg.content {
        None => Ok(Vec::new()),
        Some(MessageContent::Text(t)) => Ok(non_empty_text(t)),
        Some(MessageContent::Parts(parts)) => {
            let mut out = Vec::new();
            for (j, p) in parts.iter().enumerate() {
                match p.kind.as_str() {
                    "text" => out.extend(non_empty_text(p.text.as_deref().unwrap_or_default())),
                    other => {
                        return Err(GatewayError::bad_param(
                            format!(
                                "messages[{i}].content[{j}]：{role} 消息只能包含文本 / messages[{i}].content[{j}]: {role} messages may only contain text, not {other:?}",
                                role = msg.role
                            ),
                            "messages",
                        ));
                    }
                }
            }
            Ok(out)
        }
    }
}

fn non_empty_text(t: &str) -> Vec<Part> {
    if t.is_empty() {
        Vec::new()
    } else {
        vec![Part::text(t)]
    }
}

fn user_parts(msg: &ChatMessage, i: usize) -> Result<Vec<Part>, GatewayError> {
    match &msg.content {
        None => Ok(Vec::new()),
        Some(MessageContent::Text(t)) => Ok(non_empty_text(t)),
        Some(MessageContent::Parts(parts)) => {
            let mut out = Vec::with_capacity(parts.len());
            for (j, p) in parts.iter().enumerate() {
                if let Some(part) = user_part(p, i, j)? {
                    out.push(part);
                }
            }
            Ok(out)
        }
    }
}

fn user_part(p: &ContentPart, i: usize, j: usize) -> Result<Option<Part>, GatewayError> {
    let at = format!("messages[{i}].content[{j}]");
    match p.kind.as_str() {
        "text" | "input_text" => Ok(non_empty_text(p.text.as_deref().unwrap_or_default()).pop()),
        "image_url" | "input_image" => {
            let url = p.image_url.as_ref().map(|u| u.url()).unwrap_or_default();
            if let Some(blob) = parse_data_url(url) {
                Ok(Some(Part {
                    inline_data: Some(blob),
                    ..Part::default()
                }))
            } else {
                Err(GatewayError::bad_param(
                    format!(
                        "{at}：图片地址必须是 data: URL / {at}: image_url must be a data: URL (remote URLs are not supported yet)"
                    ),
                    "messages",
                ))
            }
        }
        "input_audio" => {
            let Some(audio) = &p.input_audio else {
                return Err(GatewayError::bad_param(
                    format!("{at}：缺少 input_audio / {at}: missing input_audio"),
                    "messages",
                ));
            };
            let format = audio.format.as_deref().unwrap_or("wav");
            let mime = match format {
                "mp3" | "mpeg" => "audio/mp3".to_owned(),
                other => format!("audio/{other}"),
            };
            Ok(Some(Part {
                inline_data: Some(Blob {
                    mime_type: mime,
                    data: audio.data.clone(),
                }),
                ..Part::default()
            }))
        }
        "file" => {
            let blob = p
                .file
                .as_ref()
                .and_then(|f| f.file_data.as_deref())
                .and_then(parse_data_url);
            match blob {
                Some(blob) => Ok(Some(Part {
                    inline_data: Some(blob),
                    ..Part::default()
                })),
                None => Err(GatewayError::bad_param(
                    format!(
                        "{at}：文件必须以 file_data（data: URL）提供 / {at}: files must be given as file_data (a data: URL); file_id is not supported"
                    ),
                    "messages",
                )),
            }
        }
        other => Err(GatewayError::bad_param(
            format!(
                "{at}：不支持的内容类型 {other:?} / {at}: unsupported content part type {other:?}"
            ),
            "messages",
        )),
    }
}

/// `data:<mime>;base64,<data>` → inline data.
pub fn parse_data_url(url: &str) -> Option<Blob> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let mime = meta.strip_suffix(";base64")?;
    let mime = if mime.is_empty() {
        "application/octet-stream"
    } else {
        mime
    };
    Some(Blob {
        mime_type: mime.to_owned(),
        data: data.to_owned(),
    })
}

fn assistant_parts(msg: &ChatMessage, i: usize) -> Result<Vec<Part>, GatewayError> {
    let mut parts = match &msg.content {
        None => Vec::new(),
        Some(MessageContent::Text(t)) => non_empty_text(t),
        Some(MessageContent::Parts(items)) => {
            let mut out = Vec::new();
            for (j, p) in items.iter().enumerate() {
                match p.kind.as_str() {
                    "text" | "output_text" => {
                        out.extend(non_empty_text(p.text.as_deref().unwrap_or_default()));
                    }
                    "refusal" => {
                        out.extend(non_empty_text(p.refusal.as_deref().unwrap_or_default()));
                    }
                    other => {
                        return Err(GatewayError::bad_param(
                            format!(
                                "messages[{i}].content[{j}]：助手消息不支持 {other:?} / messages[{i}].content[{j}]: unsupported assistant content type {other:?}"
                            ),
                            "messages",
                        ));
                    }
                }
            }
            out
        }
    };
    if msg.tool_calls.as_ref().is_some_and(|c| !c.is_empty()) {
        return Err(GatewayError::bad_param(
            format!(
                "messages[{i}]：暂不支持工具调用历史 / messages[{i}]: assistant tool_calls are not supported yet"
            ),
            "messages",
        ));
    }
    parts.shrink_to_fit();
    Ok(parts)
}

// ---------------------------------------------------------------------------------------
// Responses

/// What a 200 answer amounts to (CONTRACT §4).
#[derive(Debug, PartialEq, Eq)]
pub enum Assessment {
    /// Something to give the client.
    Answer,
    /// `promptFeedback.blockReason` with no candidates: a 400 `content_filter`, not retried.
    PromptBlocked(String),
    /// Nothing usable; retried on another key, counted toward `MAX_EMPTY_RESPONSES`.
    Empty(String),
}

const RETRY_AS_EMPTY: [&str; 3] = [
    "MALFORMED_FUNCTION_CALL",
    "UNEXPECTED_TOOL_CALL",
    "TOO_MANY_TOOL_CALLS",
];

pub fn assess(resp: &GenerateContentResponse) -> Assessment {
    let candidates = resp.candidates.as_deref().unwrap_or_default();
    if candidates.is_empty() {
        if let Some(reason) = resp
            .prompt_feedback
            .as_ref()
            .and_then(|f| f.block_reason.clone())
        {
            return Assessment::PromptBlocked(reason);
        }
        return Assessment::Empty("no candidates".to_owned());
    }
    let mut empty_reason = None;
    for c in candidates {
        let reason = c.finish_reason.as_deref().unwrap_or("STOP");
        if RETRY_AS_EMPTY.contains(&reason) {
            empty_reason.get_or_insert_with(|| reason.to_owned());
            continue;
        }
        if is_filter_reason(reason) || reason == "MAX_TOKENS" {
            // Final whatever was produced (CONTRACT §4).
            return Assessment::Answer;
        }
        if has_visible_output(c) {
            return Assessment::Answer;
        }
    }
    Assessment::Empty(empty_reason.unwrap_or_else(|| "empty answer".to_owned()))
}

/// Text that is not a thought, or a function call.
pub fn has_visible_output(c: &Candidate) -> bool {
    c.parts().iter().any(|p| {
        p.function_call.is_some()
            || p.executable_code.is_some()
            || p.inline_data.is_some()
            || (!p.is_thought() && p.text.as_deref().is_some_and(|t| !t.is_empty()))
    })
}

pub fn is_filter_reason(reason: &str) -> bool {
    matches!(
        reason,
        "SAFETY"
            | "RECITATION"
            | "BLOCKLIST"
            | "PROHIBITED_CONTENT"
            | "SPII"
            | "IMAGE_SAFETY"
            | "IMAGE_PROHIBITED_CONTENT"
            | "IMAGE_RECITATION"
    )
}

/// Gemini `finishReason` → OpenAI `finish_reason`.
pub fn finish_reason(reason: Option<&str>, called_tools: bool) -> Option<&'static str> {
    let reason = reason?;
    Some(match reason {
        "MAX_TOKENS" => "length",
        r if is_filter_reason(r) => "content_filter",
        _ if called_tools => "tool_calls",
        _ => "stop",
    })
}

/// `usageMetadata` → OpenAI `usage` (thoughts inside completion tokens, CONTRACT/wire §4.7).
pub fn usage(meta: Option<&UsageMetadata>) -> Usage {
    let m = meta.copied().unwrap_or_default();
    let prompt = m.prompt_token_count + m.tool_use_prompt_token_count;
    let completion = m.candidates_token_count + m.thoughts_token_count;
    Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt + completion,
        prompt_tokens_details: PromptTokensDetails {
            cached_tokens: m.cached_content_token_count,
        },
        completion_tokens_details: CompletionTokensDetails {
            reasoning_tokens: m.thoughts_token_count,
        },
    }
}

/// The visible text, thoughts and tool calls of one candidate.
#[derive(Debug, Default)]
pub struct CandidateOutput {
    pub text: String,
    pub reasoning: String,
    pub tool_calls: Vec<ToolCall>,
}

pub fn candidate_output(parts: &[Part]) -> CandidateOutput {
    let mut out = CandidateOutput::default();
    for p in parts {
        if let Some(call) = &p.function_call {
            out.tool_calls.push(tool_call(call));
        } else if let Some(text) = &p.text {
            if p.is_thought() {
                out.reasoning.push_str(text);
            } else {
                out.text.push_str(text);
            }
        } else if let Some(code) = &p.executable_code {
            let lang = code
                .get("language")
                .and_then(Value::as_str)
                .unwrap_or("python")
                .to_ascii_lowercase();
            let src = code.get("code").and_then(Value::as_str).unwrap_or_default();
            out.text.push_str(&format!("\n```{lang}\n{src}\n```\n"));
        } else if let Some(result) = &p.code_execution_result {
            let output = result
                .get("output")
                .and_then(Value::as_str)
                .unwrap_or_default();
            out.text.push_str(&format!("\n```\n{output}\n```\n"));
        }
    }
    out
}

fn tool_call(call: &gemini::FunctionCall) -> ToolCall {
    let arguments = call
        .args
        .as_ref()
        .map_or_else(|| "{}".to_owned(), Value::to_string);
    ToolCall {
        id: Some(tool_call_id()),
        kind: Some("function".to_owned()),
        function: crate::wire::openai::FunctionCall {
            name: call.name.clone(),
            arguments: Some(arguments),
        },
        extra_content: None,
    }
}

/// A fresh tool-call id (`call_` + 24 random alphanumerics).
pub fn tool_call_id() -> String {
    let mut id = String::with_capacity(29);
    id.push_str("call_");
    for _ in 0..24 {
        id.push(fastrand::alphanumeric());
    }
    id
}

/// A whole Gemini answer as an OpenAI completion, under the client's model name.
pub fn to_openai(
    resp: &GenerateContentResponse,
    model: &str,
    id: String,
    created: u64,
) -> ChatCompletion {
    let candidates = resp.candidates.as_deref().unwrap_or_default();
    let mut choices = Vec::with_capacity(candidates.len().max(1));
    for (k, c) in candidates.iter().enumerate() {
        let out = candidate_output(c.parts());
        let called = !out.tool_calls.is_empty();
        let content = if out.text.is_empty() && called {
            None
        } else {
            Some(out.text)
        };
        choices.push(Choice {
            index: c.index.unwrap_or(u32::try_from(k).unwrap_or(0)),
            message: ResponseMessage {
                role: "assistant",
                content,
                reasoning_content: (!out.reasoning.is_empty()).then_some(out.reasoning),
                tool_calls: called.then_some(out.tool_calls),
                annotations: None,
            },
            logprobs: None,
            finish_reason: finish_reason(
                Some(c.finish_reason.as_deref().unwrap_or("STOP")),
                called,
            ),
        });
    }
    if choices.is_empty() {
        choices.push(Choice {
            index: 0,
            message: ResponseMessage {
                role: "assistant",
                content: None,
                ..ResponseMessage::default()
            },
            logprobs: None,
            finish_reason: Some("content_filter"),
        });
    }
    choices.sort_by_key(|c| c.index);
    ChatCompletion {
        id,
        object: "chat.completion",
        created,
        model: model.to_owned(),
        choices,
        usage: usage(resp.usage_metadata.as_ref()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(body: Value) -> ChatRequest {
        serde_json::from_value(body).expect("valid chat request")
    }

    fn translate(body: Value) -> Value {
        let t = to_gemini(&request(body)).expect("translates");
        serde_json::to_value(&t.request).expect("serialises")
    }

    fn fixture(path: &str) -> GenerateContentResponse {
        let text = std::fs::read_to_string(format!(
            "{}/tests/fixtures/{path}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("fixture");
        serde_json::from_str(&text).expect("fixture parses")
    }

    #[test]
    fn system_and_developer_messages_become_the_system_instruction() {
        let g = translate(json!({"model": "gemini-2.5-flash", "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Hi"},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            {"role": "assistant", "content": "Salut"},
            {"role": "user", "content": "Again"}
        ]}));
        assert_eq!(
            g["systemInstruction"],
            json!({"parts": [{"text": "You are terse."}, {"text": "Answer in French."}]})
        );
        assert_eq!(
            g["contents"],
            json!([
                {"role": "user", "parts": [{"text": "Hi"}]},
                {"role": "model", "parts": [{"text": "Salut"}]},
                {"role": "user", "parts": [{"text": "Again"}]}
            ])
        );
    }

    #[test]
    fn consecutive_same_role_turns_are_merged() {
        let g = translate(json!({"model": "m", "messages": [
            {"role": "user", "content": "a"},
            {"role": "user", "content": [{"type": "text", "text": "b"}, {"type": "text", "text": "c"}]},
            {"role": "assistant", "content": "d"},
            {"role": "assistant", "content": "e"}
        ]}));
        assert_eq!(
            g["contents"],
            json!([
                {"role": "user", "parts": [{"text": "a"}, {"text": "b"}, {"text": "c"}]},
                {"role": "model", "parts": [{"text": "d"}, {"text": "e"}]}
            ])
        );
    }

    #[test]
    fn only_parameters_the_client_sent_are_sent() {
        let g = translate(
            json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "x"}]}),
        );
        assert!(g.get("generationConfig").is_none(), "{g}");

        let g = translate(
            json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "x"}],
                "temperature": 0.3, "top_p": 0.9, "top_k": 40, "max_tokens": 100, "max_completion_tokens": 200,
                "stop": "END", "n": 2, "seed": 9_999_999_999_i64, "presence_penalty": 0.5, "frequency_penalty": 0
            }),
        );
        assert_eq!(
            g["generationConfig"],
            json!({
                "temperature": 0.3, "topP": 0.9, "topK": 40, "candidateCount": 2, "maxOutputTokens": 200,
                "stopSequences": ["END"], "seed": 2_147_483_647, "presencePenalty": 0.5
            })
        );
    }

    #[test]
    fn stop_lists_are_kept_and_max_tokens_is_the_fallback() {
        let g = translate(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "stop": ["a", "b"], "max_tokens": 7}),
        );
        assert_eq!(
            g["generationConfig"],
            json!({"maxOutputTokens": 7, "stopSequences": ["a", "b"]})
        );
    }

    #[test]
    fn safety_is_off_for_new_models_and_block_none_for_old() {
        let g = translate(
            json!({"model": "gemini-2.5-pro", "messages": [{"role": "user", "content": "x"}]}),
        );
        assert_eq!(g["safetySettings"].as_array().map(Vec::len), Some(5));
        assert_eq!(g["safetySettings"][0]["threshold"], "OFF");
        let g = translate(
            json!({"model": "gemini-3-pro-preview", "messages": [{"role": "user", "content": "x"}]}),
        );
        assert_eq!(g["safetySettings"][4]["threshold"], "OFF");
        let g = translate(
            json!({"model": "gemini-2.0-flash", "messages": [{"role": "user", "content": "x"}]}),
        );
        assert_eq!(g["safetySettings"][0]["threshold"], "BLOCK_NONE");
    }

    #[test]
    fn system_only_conversations_are_sent_as_user_text() {
        let g =
            translate(json!({"model": "m", "messages": [{"role": "system", "content": "Say hi"}]}));
        assert_eq!(
            g["contents"],
            json!([{"role": "user", "parts": [{"text": "Say hi"}]}])
        );
        assert!(g.get("systemInstruction").is_none());
    }

    #[test]
    fn data_urls_become_inline_data() {
        let g = translate(
            json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "text", "text": "what is this"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
            ]}]}),
        );
        assert_eq!(
            g["contents"][0]["parts"][1],
            json!({"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}})
        );
    }

    #[test]
    fn bad_input_is_a_400_naming_the_message() {
        for body in [
            json!({"model": "m", "messages": []}),
            json!({"model": "m", "messages": [{"role": "wizard", "content": "x"}]}),
            json!({"model": "", "messages": [{"role": "user", "content": "x"}]}),
            json!({"model": "m", "messages": [{"role": "user", "content": ""}]}),
        ] {
            let err = to_gemini(&request(body)).expect_err("refused");
            assert_eq!(err.status(), axum::http::StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn model_prefixes_are_stripped() {
        assert_eq!(
            upstream_model_name("models/gemini-2.5-flash"),
            "gemini-2.5-flash"
        );
        assert_eq!(
            upstream_model_name("google/gemini-2.5-flash"),
            "gemini-2.5-flash"
        );
        assert_eq!(gemini_version("gemini-2.5-flash-lite"), Some((2, 5)));
        assert_eq!(gemini_version("gemini-3-pro-preview"), Some((3, 0)));
        assert_eq!(gemini_version("learnlm-2.0"), None);
    }

    #[test]
    fn penalties_can_be_dropped_for_the_retry() {
        let mut t = to_gemini(&request(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "presence_penalty": 1.0}),
        ))
        .expect("translates");
        assert!(drop_penalties(&mut t.request));
        assert!(!drop_penalties(&mut t.request));
    }

    #[test]
    fn text_answer_maps_to_a_completion() {
        let resp = fixture("gemini/generateContent.response.max-tokens-text.json");
        let c = to_openai(&resp, "my-model", "chatcmpl-x".into(), 1);
        let v = serde_json::to_value(&c).expect("json");
        assert_eq!(v["model"], "my-model");
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["choices"][0]["finish_reason"], "length");
        assert!(
            v["choices"][0]["message"]["content"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
        );
        assert_eq!(assess(&resp), Assessment::Answer);
    }

    #[test]
    fn thoughts_go_to_reasoning_content_and_count_as_completion_tokens() {
        let resp = fixture("gemini/generateContent.response.thought-part-include-thoughts.json");
        let c = to_openai(&resp, "m", "id".into(), 1);
        let msg = &c.choices[0].message;
        assert!(
            msg.reasoning_content
                .as_deref()
                .is_some_and(|r| !r.is_empty())
        );
        assert_eq!(
            msg.content.as_deref(),
            Some(""),
            "the fixture holds only a thought"
        );
        let meta = resp.usage_metadata.expect("usage");
        assert_eq!(
            c.usage.completion_tokens,
            meta.candidates_token_count + meta.thoughts_token_count
        );
        assert_eq!(
            c.usage.completion_tokens_details.reasoning_tokens,
            meta.thoughts_token_count
        );
        assert_eq!(
            c.usage.total_tokens,
            c.usage.prompt_tokens + c.usage.completion_tokens
        );
    }

    #[test]
    fn usage_adds_tool_prompt_and_thoughts() {
        let text = std::fs::read_to_string(format!(
            "{}/tests/fixtures/gemini/usageMetadata.tool-use-and-thoughts.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("fixture");
        let v: Value = serde_json::from_str(&text).expect("json");
        let meta: UsageMetadata =
            serde_json::from_value(v.get("usageMetadata").cloned().unwrap_or(v)).expect("usage");
        let u = usage(Some(&meta));
        assert_eq!(u.total_tokens, meta.total_token_count);
    }

    #[test]
    fn max_tokens_without_parts_is_an_empty_length_answer() {
        let resp = fixture("gemini/generateContent.response.max-tokens-no-parts.json");
        assert_eq!(assess(&resp), Assessment::Answer);
        let c = to_openai(&resp, "m", "id".into(), 1);
        assert_eq!(c.choices[0].finish_reason, Some("length"));
        assert_eq!(c.choices[0].message.content.as_deref(), Some(""));
    }

    #[test]
    fn prompt_blocks_are_recognised() {
        let resp =
            fixture("gemini/generateContent.response.prompt-blocked-prohibited-content.json");
        assert_eq!(
            assess(&resp),
            Assessment::PromptBlocked("PROHIBITED_CONTENT".into())
        );
        let resp = fixture("gemini/generateContent.response.prompt-blocked-safety.json");
        assert_eq!(assess(&resp), Assessment::PromptBlocked("SAFETY".into()));
    }

    #[test]
    fn empty_and_malformed_answers_are_retryable() {
        let empty: GenerateContentResponse = serde_json::from_value(json!({"candidates": [{"content": {"parts": [{"text": ""}], "role": "model"}, "finishReason": "STOP"}]})).expect("json");
        assert!(matches!(assess(&empty), Assessment::Empty(_)));
        let thought_only: GenerateContentResponse = serde_json::from_value(json!({"candidates": [{"content": {"parts": [{"text": "hmm", "thought": true}], "role": "model"}, "finishReason": "STOP"}]})).expect("json");
        assert!(matches!(assess(&thought_only), Assessment::Empty(_)));
        let malformed: GenerateContentResponse = serde_json::from_value(
            json!({"candidates": [{"finishReason": "MALFORMED_FUNCTION_CALL"}]}),
        )
        .expect("json");
        assert_eq!(
            assess(&malformed),
            Assessment::Empty("MALFORMED_FUNCTION_CALL".into())
        );
        let safety: GenerateContentResponse =
            serde_json::from_value(json!({"candidates": [{"finishReason": "SAFETY"}]}))
                .expect("json");
        assert_eq!(assess(&safety), Assessment::Answer);
        assert_eq!(
            to_openai(&safety, "m", "i".into(), 0).choices[0].finish_reason,
            Some("content_filter")
        );
    }

    #[test]
    fn finish_reasons_are_lowercase_openai_values() {
        assert_eq!(finish_reason(Some("STOP"), false), Some("stop"));
        assert_eq!(finish_reason(Some("STOP"), true), Some("tool_calls"));
        assert_eq!(finish_reason(Some("MAX_TOKENS"), false), Some("length"));
        for r in [
            "SAFETY",
            "RECITATION",
            "BLOCKLIST",
            "PROHIBITED_CONTENT",
            "SPII",
            "IMAGE_SAFETY",
        ] {
            assert_eq!(finish_reason(Some(r), false), Some("content_filter"), "{r}");
        }
        for r in ["OTHER", "LANGUAGE", "FINISH_REASON_UNSPECIFIED"] {
            assert_eq!(finish_reason(Some(r), false), Some("stop"), "{r}");
        }
        assert_eq!(finish_reason(None, false), None);
    }

    #[test]
    fn several_candidates_become_several_choices() {
        let resp: GenerateContentResponse = serde_json::from_value(json!({"candidates": [
            {"content": {"parts": [{"text": "one"}]}, "finishReason": "STOP", "index": 0},
            {"content": {"parts": [{"text": "two"}]}, "finishReason": "MAX_TOKENS", "index": 1}
        ]}))
        .expect("json");
        let c = to_openai(&resp, "m", "i".into(), 0);
        assert_eq!(c.choices.len(), 2);
        assert_eq!(c.choices[1].message.content.as_deref(), Some("two"));
        assert_eq!(c.choices[1].finish_reason, Some("length"));
    }

    #[test]
    fn function_calls_become_tool_calls() {
        let resp = fixture("gemini/generateContent.response.function-call-thought-signature.json");
        let c = to_openai(&resp, "m", "i".into(), 0);
        let calls = c.choices[0]
            .message
            .tool_calls
            .as_ref()
            .expect("tool calls");
        assert!(!calls.is_empty());
        assert!(
            calls[0]
                .id
                .as_deref()
                .is_some_and(|id| id.starts_with("call_"))
        );
        assert_eq!(c.choices[0].finish_reason, Some("tool_calls"));
        assert!(
            serde_json::from_str::<Value>(calls[0].function.arguments.as_deref().unwrap_or(""))
                .is_ok()
        );
    }
}
