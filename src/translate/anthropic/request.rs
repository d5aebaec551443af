//! Anthropic Messages request → Gemini `GenerateContentRequest`.

use serde_json::{Map, Value, json};

use crate::error::GatewayError;
use crate::translate::dialect::Context;
use crate::translate::history::{self, Turns};
use crate::translate::model_name::{is_gemini3, search_base, upstream_model_name};
use crate::translate::safety::safety_settings;
use crate::translate::{schema, thinking};
use crate::wire::anthropic::{
    ContentBlock, Message, MessageContent, MessagesRequest, Source, SystemPrompt, Thinking,
    ToolChoice, ToolResultContent,
};
use crate::wire::gemini::{
    self, Blob, Content, FileData, GenerateContentRequest, GenerationConfig, Part, ThinkingConfig,
};

/// The Gemini request and what answering needs.
#[derive(Debug)]
pub struct Translated {
    /// The model name for the upstream URL (no `models/` prefix, `-search` removed).
    pub upstream_model: String,
    pub request: GenerateContentRequest,
    /// Whether the answer carries thinking blocks: the client sent `thinking` (not
    /// `disabled`). Without it, no thinking block is ever returned.
    pub thinking_blocks: bool,
}

fn bad(message: String) -> GatewayError {
    GatewayError::bad_param(message, "messages")
}

/// Translates a Messages request. Remote images and PDFs (`source.type: "url"`) become
/// `fileData` parts without a MIME type, for `fetch::inline_remote_file_data` (outside
/// `translate`) to replace with the fetched bytes before the request is sent. The model is
/// taken as it is (aliases are resolved by [`super::dialect::prepare`]).
pub fn to_gemini(req: &MessagesRequest, opts: &Context<'_>) -> Result<Translated, GatewayError> {
    let mut upstream_model = upstream_model_name(&req.model).to_owned();
    if upstream_model.is_empty() {
        return Err(GatewayError::bad_param(
            "缺少模型名 / `model` must not be empty",
            "model",
        ));
    }
    if req.messages.is_empty() {
        return Err(bad(
            "messages 不能为空 / `messages` must not be empty".into()
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

    let mut system: Vec<Part> = match &req.system {
        None => Vec::new(),
        Some(SystemPrompt::Text(t)) => text_part(t).into_iter().collect(),
        Some(SystemPrompt::Blocks(blocks)) => text_of_blocks(blocks),
    };
    // A leading run of `system` turns joins the system instruction; a later one is a user
    // turn at its place (Claude Code sends its environment notes that way).
    let leading = req
        .messages
        .iter()
        .position(|m| m.role != "system")
        .unwrap_or(req.messages.len());
    for msg in &req.messages[..leading] {
        system.extend(message_text(msg));
    }

    let mut turns = Turns::new();
    for (i, msg) in req.messages.iter().enumerate().skip(leading) {
        match msg.role.as_str() {
            "user" => user_message(msg, i, &mut turns)?,
            "assistant" => assistant_message(msg, i, &upstream_model, &mut turns)?,
            "system" => turns.user(message_text(msg)),
            other => {
                return Err(bad(format!(
                    "messages[{i}]：不支持的角色 {other:?} / messages[{i}]: unsupported role {other:?}"
                )));
            }
        }
    }
    let mut contents = turns.into_contents();
    let system_instruction = if contents.is_empty() {
        if system.is_empty() {
            return Err(bad(
                "messages 中没有任何内容 / `messages` contain no text".into()
            ));
        }
        contents.push(Content {
            role: Some("user".into()),
            parts: std::mem::take(&mut system),
        });
        None
    } else {
        (!system.is_empty()).then_some(Content {
            role: None,
            parts: system,
        })
    };
    let recall = |id: &str| (opts.recall_signature)(id, &upstream_model);
    history::complete_signatures(&mut contents, gemini3, &recall);
    history::strip_call_ids(&mut contents);

    let (mut tools, has_functions) = tools(req, gemini3)?;
    let tool_config = if has_functions {
        tool_config(req.tool_choice.as_ref())
    } else {
        None
    };
    if let Some(prompt) = search {
        history::add_search(&mut tools, &mut contents, prompt);
    }
    if let Some(len) = opts.random_string {
        history::insert_random_strings(&mut contents, len);
    }

    let mut generation_config = generation_config(req);
    generation_config.thinking_config = thinking_config(
        &upstream_model,
        (opts.model_thinks)(&upstream_model),
        req.thinking.as_ref(),
        req.output_config.as_ref().and_then(|o| o.effort.as_deref()),
    );
    let request = GenerateContentRequest {
        contents,
        system_instruction,
        tools: (!tools.is_empty()).then_some(tools),
        tool_config,
        safety_settings: Some(safety_settings(&upstream_model)),
        generation_config: (!generation_config.is_empty()).then_some(generation_config),
        cached_content: None,
    };
    Ok(Translated {
        upstream_model,
        request,
        thinking_blocks: req.thinking.as_ref().is_some_and(Thinking::is_on),
    })
}

fn text_part(t: &str) -> Option<Part> {
    (!t.is_empty()).then(|| Part::text(t))
}

/// The text blocks of a system prompt or `system` turn, one part each.
fn text_of_blocks(blocks: &[ContentBlock]) -> Vec<Part> {
    blocks
        .iter()
        .filter_map(|b| match b {
            ContentBlock::Text { text } => text_part(text),
            _ => None,
        })
        .collect()
}

fn message_text(msg: &Message) -> Vec<Part> {
    match &msg.content {
        MessageContent::Text(t) => text_part(t).into_iter().collect(),
        MessageContent::Blocks(blocks) => text_of_blocks(blocks),
    }
}

fn blocks_of(msg: &Message) -> Vec<ContentBlock> {
    match &msg.content {
        MessageContent::Text(t) => vec![ContentBlock::Text { text: t.clone() }],
        MessageContent::Blocks(blocks) => blocks.clone(),
    }
}

/// A user turn: tool results first (one function-response turn, in call order), then the
/// other blocks as a user turn.
fn user_message(msg: &Message, i: usize, turns: &mut Turns) -> Result<(), GatewayError> {
    let mut results: Vec<(usize, Part)> = Vec::new();
    let mut extra: Vec<Part> = Vec::new();
    let mut parts: Vec<Part> = Vec::new();
    for (j, block) in blocks_of(msg).iter().enumerate() {
        let at = format!("messages[{i}].content[{j}]");
        match block {
            ContentBlock::ToolResult {
                tool_use_id,
                content,
                is_error,
            } => {
                let name = turns.call_name(tool_use_id).ok_or_else(|| {
                    bad(format!(
                        "{at}：找不到 tool_use_id {tool_use_id:?} 对应的工具调用 / {at}: no tool_use block has id {tool_use_id:?}"
                    ))
                })?;
                let (text, media) = match content {
                    None => (String::new(), Vec::new()),
                    Some(ToolResultContent::Text(t)) => (t.clone(), Vec::new()),
                    Some(ToolResultContent::Blocks(blocks)) => result_blocks(blocks, &at)?,
                };
                let position = turns.call_position(tool_use_id).unwrap_or(usize::MAX);
                results.push((
                    position,
                    Part {
                        function_response: Some(gemini::FunctionResponse {
                            id: Some(tool_use_id.clone()),
                            name,
                            response: history::function_response_value(
                                &text,
                                is_error.unwrap_or(false),
                            ),
                        }),
                        ..Part::default()
                    },
                ));
                extra.extend(media);
            }
            other => parts.extend(content_part(other, &at)?),
        }
    }
    if !results.is_empty() {
        results.sort_by_key(|(p, _)| *p);
        let mut response_parts: Vec<Part> = results.into_iter().map(|(_, p)| p).collect();
        response_parts.extend(extra);
        turns.function_responses(response_parts);
    }
    turns.user(parts);
    Ok(())
}

/// A tool result's content blocks: text joined, images and documents as their own parts.
fn result_blocks(blocks: &[ContentBlock], at: &str) -> Result<(String, Vec<Part>), GatewayError> {
    let mut text = String::new();
    let mut media = Vec::new();
    for block in blocks {
        match block {
            ContentBlock::Text { text: t } => {
                if !text.is_empty() && !t.is_empty() {
                    text.push('\n');
                }
                text.push_str(t);
            }
            other => media.extend(content_part(other, at)?),
        }
    }
    Ok((text, media))
}

/// A user-side content block as a Gemini part (`None` for blocks with nothing to send).
fn content_part(block: &ContentBlock, at: &str) -> Result<Option<Part>, GatewayError> {
    Ok(match block {
        ContentBlock::Text { text } => text_part(text),
        ContentBlock::Image { source } | ContentBlock::Document { source, .. } => {
            media_part(source, at)?
        }
        ContentBlock::SearchResult {
            source,
            title,
            content,
        } => {
            let body: Vec<String> = text_of_blocks(content)
                .into_iter()
                .filter_map(|p| p.text)
                .collect();
            text_part(&format!("{title} ({source})\n{}", body.join("\n")))
        }
        // Thinking and tool blocks in a user turn have no meaning; server-tool blocks have
        // no Gemini counterpart.
        _ => None,
    })
}

fn media_part(source: &Source, at: &str) -> Result<Option<Part>, GatewayError> {
    Ok(match source {
        Source::Base64 { media_type, data } => Some(Part {
            inline_data: Some(Blob {
                mime_type: if media_type.is_empty() {
                    "application/octet-stream".to_owned()
                } else {
                    media_type.clone()
                },
                data: data.clone(),
            }),
            ..Part::default()
        }),
        Source::Text { data, .. } => text_part(data),
        Source::Url { url } if url.starts_with("http://") || url.starts_with("https://") => {
            Some(Part {
                file_data: Some(FileData {
                    mime_type: None,
                    file_uri: url.clone(),
                }),
                ..Part::default()
            })
        }
        Source::Url { url } => match crate::translate::media::parse_data_url(url) {
            Some(blob) => Some(Part {
                inline_data: Some(blob),
                ..Part::default()
            }),
            None => {
                return Err(bad(format!(
                    "{at}：地址必须是 http(s) 或 data: URL / {at}: the source url must be http(s) or a data: URL"
                )));
            }
        },
        Source::Content { content } => match content {
            ToolResultContent::Text(t) => text_part(t),
            ToolResultContent::Blocks(blocks) => {
                let text: Vec<String> = text_of_blocks(blocks)
                    .into_iter()
                    .filter_map(|p| p.text)
                    .collect();
                text_part(&text.join("\n"))
            }
        },
        Source::File { .. } => {
            return Err(bad(format!(
                "{at}：不支持 Anthropic 文件 ID，请直接提供内容 / {at}: Anthropic file ids are not supported; send the content (base64 or url)"
            )));
        }
        Source::Other => {
            return Err(bad(format!(
                "{at}：不支持的来源类型 / {at}: unsupported source type"
            )));
        }
    })
}

/// An assistant turn: text, tool calls with their ids, and the Gemini signatures carried by
/// thinking blocks (the thought text itself is not sent back: Gemini needs only the
/// signature).
fn assistant_message(
    msg: &Message,
    i: usize,
    model: &str,
    turns: &mut Turns,
) -> Result<(), GatewayError> {
    for (j, block) in blocks_of(msg).iter().enumerate() {
        match block {
            ContentBlock::Text { text } => {
                if let Some(p) = text_part(text) {
                    turns.model(p);
                }
            }
            ContentBlock::Thinking { signature, .. } => {
                if let Some(sig) = history::uncarry(signature, model) {
                    turns.signature(sig.to_owned());
                }
            }
            ContentBlock::RedactedThinking { data } => {
                if let Some(sig) = history::uncarry(data, model) {
                    turns.signature(sig.to_owned());
                }
            }
            ContentBlock::ToolUse { id, name, input } => {
                if name.is_empty() {
                    return Err(bad(format!(
                        "messages[{i}].content[{j}]：缺少工具名 / messages[{i}].content[{j}]: tool_use without a name"
                    )));
                }
                let args = match input {
                    Value::Object(_) => input.clone(),
                    Value::Null => json!({}),
                    Value::String(s) => {
                        history::parse_arguments(s).unwrap_or_else(|| json!({"value": s}))
                    }
                    other => json!({ "value": other }),
                };
                turns.model(Part {
                    function_call: Some(gemini::FunctionCall {
                        id: Some(id.clone()),
                        name: name.clone(),
                        args: Some(args),
                    }),
                    ..Part::default()
                });
            }
            _ => {}
        }
    }
    turns.end_model();
    Ok(())
}

/// Client tools become one Tool of function declarations (`input_schema` as
/// `parametersJsonSchema`); Anthropic's web search becomes Google Search; other typed tools
/// (bash, text editor, computer use, code execution, web fetch…) are Anthropic-hosted or
/// tied to Claude, so they are dropped with a warning and the agent keeps working.
/// Returns the tools and whether any function was declared.
fn tools(req: &MessagesRequest, gemini3: bool) -> Result<(Vec<Value>, bool), GatewayError> {
    let mut declarations = Vec::new();
    let mut search = false;
    for (i, tool) in req.tools.iter().flatten().enumerate() {
        let kind = tool.get("type").and_then(Value::as_str).unwrap_or("custom");
        if kind.starts_with("web_search") {
            search = true;
            continue;
        }
        if kind != "custom" {
            tracing::warn!(
                tool = kind,
                "Anthropic tool type has no Gemini counterpart; dropped"
            );
            continue;
        }
        let Some(name) = tool
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        else {
            return Err(GatewayError::bad_param(
                format!("tools[{i}]：缺少工具名 / tools[{i}]: missing `name`"),
                "tools",
            ));
        };
        let mut decl = Map::new();
        decl.insert("name".into(), Value::String(name.to_owned()));
        if let Some(d) = tool
            .get("description")
            .and_then(Value::as_str)
            .filter(|d| !d.is_empty())
        {
            decl.insert("description".into(), Value::String(d.to_owned()));
        }
        if let Some(params) = tool.get("input_schema").filter(|p| p.is_object())
            && schema::to_gemini_parameters(params).is_some()
        {
            decl.insert("parametersJsonSchema".into(), params.clone());
        }
        declarations.push(Value::Object(decl));
    }
    let has_functions = !declarations.is_empty();
    let mut out = Vec::new();
    if has_functions {
        out.push(json!({ "functionDeclarations": declarations }));
    }
    if search {
        if has_functions && !gemini3 {
            tracing::warn!(
                "web search dropped: Gemini before 3 cannot combine Google Search with function calling"
            );
        } else {
            out.push(json!({"googleSearch": {}}));
        }
    }
    Ok((out, has_functions))
}

fn tool_config(choice: Option<&ToolChoice>) -> Option<Value> {
    let config = match choice? {
        ToolChoice::Auto { .. } => json!({"mode": "AUTO"}),
        ToolChoice::Any { .. } => json!({"mode": "ANY"}),
        ToolChoice::Tool { name, .. } => json!({"mode": "ANY", "allowedFunctionNames": [name]}),
        ToolChoice::None => json!({"mode": "NONE"}),
        ToolChoice::Other => return None,
    };
    Some(json!({ "functionCallingConfig": config }))
}

fn generation_config(req: &MessagesRequest) -> GenerationConfig {
    let stop_sequences: Vec<String> = req
        .stop_sequences
        .iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .take(5)
        .cloned()
        .collect();
    let mut cfg = GenerationConfig {
        temperature: req.temperature,
        top_p: req.top_p,
        top_k: req.top_k.map(|k| k.round() as i64),
        max_output_tokens: req.max_tokens.filter(|n| *n > 0),
        stop_sequences: (!stop_sequences.is_empty()).then_some(stop_sequences),
        ..GenerationConfig::default()
    };
    let format = req.output_config.as_ref().and_then(|o| o.format.as_ref());
    if let Some(format) = format
        && format.get("type").and_then(Value::as_str) == Some("json_schema")
    {
        cfg.response_mime_type = Some("application/json".into());
        cfg.response_json_schema = format.get("schema").filter(|s| s.is_object()).cloned();
    }
    cfg
}

/// `thinking` and `output_config.effort` → `thinkingConfig`, with the effort tables of the
/// chat dialect. A budget becomes `thinkingBudget` on 2.x and the nearest level on 3.x;
/// `disabled` is effort `none`; thoughts are included only when the client asked for
/// thinking without `display: "omitted"`. Unknown efforts are ignored (agents send new ones
/// before we know them).
pub fn thinking_config(
    model: &str,
    listed_thinks: Option<bool>,
    thinking_req: Option<&Thinking>,
    effort: Option<&str>,
) -> Option<ThinkingConfig> {
    if !thinking::can_think(model, listed_thinks) {
        return None;
    }
    let fam = thinking::family(model).unwrap_or(thinking::Family::Budget);
    let uses_level = matches!(fam, thinking::Family::Pro3 | thinking::Family::Flash3);
    let mut cfg = ThinkingConfig::default();
    let apply_effort = |cfg: &mut ThinkingConfig, effort: &str| {
        let effort = effort.to_ascii_lowercase();
        if uses_level {
            cfg.thinking_level = thinking::level_for_effort(fam, &effort)
                .ok()
                .map(str::to_owned);
        } else {
            cfg.thinking_budget = thinking::budget_for_effort(fam, &effort)
                .ok()
                .map(|b| thinking::clamp_budget(fam, b));
        }
    };
    match thinking_req {
        Some(Thinking::Enabled {
            budget_tokens: Some(budget),
            ..
        }) => {
            if uses_level {
                let effort = match *budget {
                    b if b <= 1024 => "low",
                    b if b <= 8192 => "medium",
                    _ => "high",
                };
                apply_effort(&mut cfg, effort);
            } else {
                cfg.thinking_budget = Some(thinking::clamp_budget(fam, *budget));
            }
        }
        Some(Thinking::Disabled) => apply_effort(&mut cfg, "none"),
        _ => {
            if let Some(e) = effort {
                apply_effort(&mut cfg, e);
            }
        }
    }
    if thinking_req.is_some_and(Thinking::shows_text) && cfg.thinking_budget != Some(0) {
        cfg.include_thoughts = Some(true);
    }
    (cfg != ThinkingConfig::default()).then_some(cfg)
}
