//! OpenAI chat `messages` → Gemini `contents` and `systemInstruction` (decisions §5): where
//! system and developer messages go, speaker names, user parts (text, data-URL images and
//! files, audio), assistant text and tool calls with their thought signatures, and tool
//! results grouped in call order right after their call.

use serde_json::{Value, json};

use super::answer::signature_of;
use crate::error::GatewayError;
use crate::translate::history::SKIP_VALIDATOR;
use crate::translate::media::parse_data_url;
use crate::wire::gemini::{self, Blob, Content, Part};
use crate::wire::openai::{ChatMessage, ContentPart, MessageContent, ToolCall};

/// A chat's messages as Gemini wants them.
pub struct Conversation {
    pub contents: Vec<Content>,
    /// The leading system/developer messages (`None` when there are none, or when they were
    /// all there was and became the user's message).
    pub system_instruction: Option<Content>,
}

/// Translates the messages of a chat. `gemini3`: the first call of each assistant turn needs
/// a thought signature (`recall_signature` finds a remembered one by tool-call id, else the
/// documented placeholder stands in).
pub fn conversation(
    messages: &[ChatMessage],
    gemini3: bool,
    recall_signature: &dyn Fn(&str) -> Option<String>,
) -> Result<Conversation, GatewayError> {
    // The leading run of system/developer messages is the system instruction; a later one is
    // a user turn at its own position (decisions §5: SillyTavern's author's notes and
    // post-history instructions depend on where they are).
    let leading = messages
        .iter()
        .position(|m| !is_system(m))
        .unwrap_or(messages.len());
    let mut system: Vec<Part> = Vec::new();
    for (i, msg) in messages[..leading].iter().enumerate() {
        let mut parts = text_parts(msg, i)?;
        label(&mut parts, msg.name.as_deref(), false);
        system.extend(parts);
    }
    let mut turns: Vec<Turn> = Vec::new();
    let mut i = leading;
    while i < messages.len() {
        let msg = &messages[i];
        match msg.role.as_str() {
            "system" | "developer"
                if !(ends_with_call(&turns) && exchange_end(messages, i).is_some()) =>
            {
                let mut parts = text_parts(msg, i)?;
                label(&mut parts, msg.name.as_deref(), false);
                push_turn(&mut turns, "user", parts, false);
            }
            "user" => {
                let mut parts = user_parts(msg, i)?;
                label(&mut parts, msg.name.as_deref(), true);
                push_turn(&mut turns, "user", parts, false);
            }
            "assistant" => {
                let mut parts = assistant_parts(msg, i, gemini3, recall_signature)?;
                label(&mut parts, msg.name.as_deref(), false);
                push_turn(&mut turns, "model", parts, false);
            }
            "tool" | "function" | "system" | "developer" => {
                // All tool results of one call turn are one content, in call order, right
                // after the call (Gemini requires it); system messages among them (or between
                // the call and them) follow the results.
                let end = exchange_end(messages, i).unwrap_or(i);
                let (results, notes) = tool_results(messages, i, end)?;
                push_turn(&mut turns, "user", results, true);
                push_turn(&mut turns, "user", notes, false);
                i = end;
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
        i += 1;
    }
    let mut contents: Vec<Content> = turns.into_iter().map(|t| t.content).collect();

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
    Ok(Conversation {
        contents,
        system_instruction,
    })
}

/// A content and whether it holds function responses (those are never merged with text).
struct Turn {
    content: Content,
    function_responses: bool,
}

fn push_turn(turns: &mut Vec<Turn>, role: &str, parts: Vec<Part>, function_responses: bool) {
    if parts.is_empty() {
        return;
    }
    if let Some(last) = turns.last_mut()
        && last.content.role.as_deref() == Some(role)
        && last.function_responses == function_responses
        && !function_responses
    {
        last.content.parts.extend(parts);
        return;
    }
    turns.push(Turn {
        content: Content {
            role: Some(role.to_owned()),
            parts,
        },
        function_responses,
    });
}

fn is_system(msg: &ChatMessage) -> bool {
    matches!(msg.role.as_str(), "system" | "developer")
}

fn is_tool_result(msg: &ChatMessage) -> bool {
    matches!(msg.role.as_str(), "tool" | "function")
}

/// Whether the last turn so far is a model turn that calls functions (its results must come
/// next).
fn ends_with_call(turns: &[Turn]) -> bool {
    turns.last().is_some_and(|t| {
        t.content.role.as_deref() == Some("model")
            && t.content.parts.iter().any(|p| p.function_call.is_some())
    })
}

/// The index of the last tool result in the run of tool and system/developer messages that
/// starts at `from`; `None` when the run holds no tool result.
fn exchange_end(messages: &[ChatMessage], from: usize) -> Option<usize> {
    messages[from..]
        .iter()
        .take_while(|m| is_tool_result(m) || is_system(m))
        .enumerate()
        .filter(|(_, m)| is_tool_result(m))
        .map(|(k, _)| from + k)
        .last()
}

/// Keeps a speaker's `name` (example dialogue, group chats) as a `Name: ` prefix of the
/// message's first text part, since Gemini has no speaker field (decisions §5). When the
/// content starts with something else (an image, a function call), `own_part` adds a `Name:`
/// text part in front (user content); otherwise nothing is added, so function calls are never
/// labeled. Text that already starts with `Name:` is left as it is.
fn label(parts: &mut Vec<Part>, name: Option<&str>, own_part: bool) {
    let Some(name) = name.map(str::trim).filter(|n| !n.is_empty()) else {
        return;
    };
    let Some(first) = parts.first_mut() else {
        return;
    };
    if let Some(text) = first.text.as_mut() {
        let labeled = text
            .strip_prefix(name)
            .is_some_and(|rest| rest.starts_with(':'));
        if !labeled {
            text.insert_str(0, &format!("{name}: "));
        }
    } else if own_part {
        parts.insert(0, Part::text(format!("{name}:")));
    }
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
            } else if url.starts_with("http://") || url.starts_with("https://") {
                // Fetched by the pipeline (SSRF-checked, within MAX_FETCHED_BYTES) once it
                // knows the answer is not in the cache: a file part without a MIME type.
                Ok(Some(Part {
                    file_data: Some(crate::wire::gemini::FileData {
                        mime_type: None,
                        file_uri: url.to_owned(),
                    }),
                    ..Part::default()
                }))
            } else {
                Err(GatewayError::bad_param(
                    format!(
                        "{at}：图片地址必须是 http(s) 或 data: URL / {at}: image_url must be an http(s) or data: URL"
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

fn assistant_parts(
    msg: &ChatMessage,
    i: usize,
    gemini3: bool,
    recall_signature: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Part>, GatewayError> {
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
    for (n, call) in msg.tool_calls.iter().flatten().enumerate() {
        let name = call.function.name.clone();
        if name.is_empty() {
            return Err(GatewayError::bad_param(
                format!(
                    "messages[{i}].tool_calls[{n}]：缺少函数名 / messages[{i}].tool_calls[{n}]: missing function name"
                ),
                "messages",
            ));
        }
        let raw = call.function.arguments.as_deref().unwrap_or("").trim();
        let args = if raw.is_empty() {
            json!({})
        } else {
            match serde_json::from_str::<Value>(raw) {
                Ok(v @ Value::Object(_)) => v,
                Ok(other) => json!({ "value": other }),
                Err(_) => {
                    return Err(GatewayError::bad_param(
                        format!(
                            "messages[{i}].tool_calls[{n}].function.arguments 不是有效的 JSON / is not valid JSON"
                        ),
                        "messages",
                    ));
                }
            }
        };
        let signature = signature_of(call)
            .map(str::to_owned)
            .or_else(|| call.id.as_deref().and_then(recall_signature))
            // Gemini 3 validates the first call of each turn; the documented placeholder
            // stands in for a signature nobody kept.
            .or_else(|| (gemini3 && n == 0).then(|| SKIP_VALIDATOR.to_owned()));
        parts.push(Part {
            function_call: Some(gemini::FunctionCall {
                id: None,
                name,
                args: Some(args),
            }),
            thought_signature: signature,
            ..Part::default()
        });
    }
    Ok(parts)
}

/// `tool` messages `from..=to` → functionResponse parts in the order of the calls they answer,
/// and the text of the system/developer messages among them (labeled, in order).
fn tool_results(
    messages: &[ChatMessage],
    from: usize,
    to: usize,
) -> Result<(Vec<Part>, Vec<Part>), GatewayError> {
    // The assistant turn these results answer: the last assistant message with tool calls.
    let calls: Vec<&ToolCall> = messages[..from]
        .iter()
        .rev()
        .find(|m| m.role == "assistant" && m.tool_calls.as_ref().is_some_and(|c| !c.is_empty()))
        .and_then(|m| m.tool_calls.as_ref())
        .map(|c| c.iter().collect())
        .unwrap_or_default();
    let mut keyed: Vec<(usize, Part)> = Vec::new();
    let mut extra: Vec<Part> = Vec::new();
    let mut notes: Vec<Part> = Vec::new();
    for (i, msg) in messages.iter().enumerate().take(to + 1).skip(from) {
        if is_system(msg) {
            let mut parts = text_parts(msg, i)?;
            label(&mut parts, msg.name.as_deref(), false);
            notes.extend(parts);
            continue;
        }
        let position = msg
            .tool_call_id
            .as_deref()
            .and_then(|id| calls.iter().position(|c| c.id.as_deref() == Some(id)));
        let name = match (position, msg.name.as_deref()) {
            (Some(p), _) => calls[p].function.name.clone(),
            (None, Some(n)) if !n.is_empty() => n.to_owned(),
            _ => {
                // Search the whole history (a client may re-order or repeat tool messages).
                let found = msg.tool_call_id.as_deref().and_then(|id| {
                    messages[..from]
                        .iter()
                        .rev()
                        .flat_map(|m| m.tool_calls.iter().flatten())
                        .find(|c| c.id.as_deref() == Some(id))
                        .map(|c| c.function.name.clone())
                });
                found.ok_or_else(|| {
                    GatewayError::bad_param(
                        format!(
                            "messages[{i}]：找不到 tool_call_id {:?} 对应的工具调用 / messages[{i}]: no assistant tool call has id {:?}",
                            msg.tool_call_id.as_deref().unwrap_or(""),
                            msg.tool_call_id.as_deref().unwrap_or("")
                        ),
                        "messages",
                    )
                })?
            }
        };
        let (text, images) = tool_content(msg, i)?;
        let response = match serde_json::from_str::<Value>(&text) {
            Ok(obj @ Value::Object(_)) => obj,
            Ok(other) if !text.trim().is_empty() => json!({ "output": other }),
            _ => json!({ "output": text }),
        };
        keyed.push((
            position.unwrap_or(usize::MAX),
            Part {
                function_response: Some(gemini::FunctionResponse {
                    id: None,
                    name,
                    response,
                }),
                ..Part::default()
            },
        ));
        extra.extend(images);
    }
    keyed.sort_by_key(|(p, _)| *p);
    let mut parts: Vec<Part> = keyed.into_iter().map(|(_, p)| p).collect();
    parts.extend(extra);
    Ok((parts, notes))
}

/// A tool message's text (text parts joined) and any images it carries.
fn tool_content(msg: &ChatMessage, i: usize) -> Result<(String, Vec<Part>), GatewayError> {
    match &msg.content {
        None => Ok((String::new(), Vec::new())),
        Some(MessageContent::Text(t)) => Ok((t.clone(), Vec::new())),
        Some(MessageContent::Parts(items)) => {
            let mut text = String::new();
            let mut images = Vec::new();
            for (j, p) in items.iter().enumerate() {
                match p.kind.as_str() {
                    "text" | "input_text" | "output_text" => {
                        text.push_str(p.text.as_deref().unwrap_or_default());
                    }
                    _ => images.extend(user_part(p, i, j)?),
                }
            }
            Ok((text, images))
        }
    }
}
