//! OpenAI chat request → Gemini `GenerateContentRequest` (decisions §5). Only what the client sent is sent; the proxy adds what decisions §5 says it
//! adds (safety settings). The way back is `translate::openai::answer`.

pub mod answer;
pub mod inline;
pub mod stream;

use serde_json::{Map, Value, json};

use crate::error::GatewayError;
use crate::translate::history::{RANDOM_STRING_LENGTH_MAX, SKIP_VALIDATOR, safe_insert_index};
use crate::translate::media::parse_data_url;
use crate::translate::model_name::{gemini_version, upstream_model_name};
use crate::translate::safety::safety_settings;
use crate::translate::{schema, thinking};
use crate::wire::gemini::{self, Blob, Content, GenerateContentRequest, GenerationConfig, Part};
use crate::wire::openai::{ChatMessage, ChatRequest, ContentPart, MessageContent, Stop, ToolCall};

/// What the caller needs besides the request body.
#[derive(Debug)]
pub struct Translated {
    /// The model name to put in the upstream URL (no `models/` prefix).
    pub upstream_model: String,
    pub request: GenerateContentRequest,
}

/// Settings and lookups the translation needs (kept out of the pure function's inputs).
pub struct Options<'a> {
    pub enable_thinking: bool,
    /// The model list's `thinking` flag for the model, when known.
    pub model_thinks: Option<bool>,
    /// `Some(SEARCH_PROMPT)` when search mode is on.
    pub search_prompt: Option<&'a str>,
    /// A remembered thought signature by tool-call id, for the request's model.
    pub recall_signature: &'a dyn Fn(&str) -> Option<String>,
    /// HAJIMI's `RANDOM_STRING` disguise: the length of the two random user turns.
    pub random_string: Option<usize>,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Self {
            enable_thinking: false,
            model_thinks: None,
            search_prompt: None,
            recall_signature: &|_| None,
            random_string: None,
        }
    }
}

/// A content and whether it holds function responses (those are never merged with text).
struct Turn {
    content: Content,
    function_responses: bool,
}

pub fn to_gemini(req: &ChatRequest, opts: &Options<'_>) -> Result<Translated, GatewayError> {
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
    let search = match (opts.search_prompt, upstream_model.strip_suffix("-search")) {
        (Some(prompt), Some(base)) if !base.is_empty() => {
            let prompt = prompt.to_owned();
            upstream_model = base.to_owned();
            Some(prompt)
        }
        _ => None,
    };
    let gemini3 = gemini_version(&upstream_model).is_some_and(|(major, _)| major >= 3);

    // The leading run of system/developer messages is the system instruction; a later one is
    // a user turn at its own position (decisions §5: SillyTavern's author's notes and
    // post-history instructions depend on where they are).
    let leading = req
        .messages
        .iter()
        .position(|m| !is_system(m))
        .unwrap_or(req.messages.len());
    let mut system: Vec<Part> = Vec::new();
    for (i, msg) in req.messages[..leading].iter().enumerate() {
        let mut parts = text_parts(msg, i)?;
        label(&mut parts, msg.name.as_deref(), false);
        system.extend(parts);
    }
    let mut turns: Vec<Turn> = Vec::new();
    let mut i = leading;
    while i < req.messages.len() {
        let msg = &req.messages[i];
        match msg.role.as_str() {
            "system" | "developer"
                if !(ends_with_call(&turns) && exchange_end(&req.messages, i).is_some()) =>
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
                let mut parts = assistant_parts(msg, i, gemini3, opts)?;
                label(&mut parts, msg.name.as_deref(), false);
                push_turn(&mut turns, "model", parts, false);
            }
            "tool" | "function" | "system" | "developer" => {
                // All tool results of one call turn are one content, in call order, right
                // after the call (Gemini requires it); system messages among them (or between
                // the call and them) follow the results.
                let end = exchange_end(&req.messages, i).unwrap_or(i);
                let (results, notes) = tool_results(&req.messages, i, end)?;
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

    let mut tools = function_tools(req)?;
    let tool_config = tool_config(req, &tools)?;
    if let Some(prompt) = &search {
        tools.push(json!({"googleSearch": {}}));
        let at = safe_insert_index(&contents, contents.len().saturating_sub(2));
        contents.insert(
            at,
            Content {
                role: Some("user".into()),
                parts: vec![Part::text(prompt.clone())],
            },
        );
    }

    if let Some(len) = opts.random_string.filter(|n| *n > 0) {
        // HAJIMI: one random user turn after the first content, one before the last.
        let first = safe_insert_index(&contents, 1);
        contents.insert(
            first,
            Content {
                role: Some("user".into()),
                parts: vec![Part::text(random_text(len))],
            },
        );
        let last = safe_insert_index(&contents, contents.len().saturating_sub(1));
        contents.insert(
            last,
            Content {
                role: Some("user".into()),
                parts: vec![Part::text(random_text(len))],
            },
        );
    }

    let mut generation_config = generation_config(req)?;
    let google = req
        .google
        .as_ref()
        .and_then(|g| g.get("google").or(Some(g)));
    let extra_google = req.extra_body.as_ref().and_then(|e| e.get("google"));
    generation_config.thinking_config = thinking::thinking_config(
        &upstream_model,
        opts.model_thinks,
        opts.enable_thinking,
        &thinking::Requested {
            reasoning_effort: req.reasoning_effort.as_deref(),
            thinking_budget: req.thinking_budget,
            google,
            extra_body_google: extra_google,
            exclude_thoughts: req.excludes_reasoning(),
        },
    )?;
    let cached_content = extra_google
        .or(google)
        .and_then(|g| g.get("cached_content").or_else(|| g.get("cachedContent")))
        .and_then(Value::as_str)
        .map(str::to_owned);

    let request = GenerateContentRequest {
        contents,
        system_instruction,
        tools: (!tools.is_empty()).then_some(tools),
        tool_config,
        safety_settings: Some(safety_settings(&upstream_model)),
        generation_config: (!generation_config.is_empty()).then_some(generation_config),
        cached_content,
    };
    Ok(Translated {
        upstream_model,
        request,
    })
}

fn random_text(len: usize) -> String {
    crate::translate::random_alnum("", len.min(RANDOM_STRING_LENGTH_MAX))
}

fn generation_config(req: &ChatRequest) -> Result<GenerationConfig, GatewayError> {
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
    let mut cfg = GenerationConfig {
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
    };
    if req.logprobs == Some(true) {
        cfg.response_logprobs = Some(true);
        cfg.logprobs = req.top_logprobs;
    }
    if let Some(format) = &req.response_format {
        match format.get("type").and_then(Value::as_str) {
            None | Some("text") => {}
            Some("json_object") => cfg.response_mime_type = Some("application/json".into()),
            Some("json_schema") => {
                cfg.response_mime_type = Some("application/json".into());
                let schema = format.get("json_schema").and_then(|j| j.get("schema"));
                if let Some(schema) = schema.filter(|s| s.is_object()) {
                    cfg.response_json_schema = Some(schema.clone());
                }
            }
            Some(other) => {
                return Err(GatewayError::bad_param(
                    format!(
                        "不支持的 response_format 类型 {other:?} / Unsupported response_format type {other:?}"
                    ),
                    "response_format",
                ));
            }
        }
    }
    Ok(cfg)
}

/// OpenAI `tools` → one Gemini Tool with every function declaration. Parameters go as
/// `parametersJsonSchema` (real JSON Schema, accepted with `$schema`,
/// `additionalProperties`…); [`use_schema_subset`] converts them if a model refuses that.
fn function_tools(req: &ChatRequest) -> Result<Vec<Value>, GatewayError> {
    let Some(tools) = &req.tools else {
        return Ok(Vec::new());
    };
    let mut declarations = Vec::new();
    for (i, tool) in tools.iter().enumerate() {
        let kind = tool
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("function");
        if kind != "function" {
            continue;
        }
        let Some(function) = tool.get("function") else {
            return Err(GatewayError::bad_param(
                format!("tools[{i}]：缺少 function / tools[{i}]: missing `function`"),
                "tools",
            ));
        };
        let Some(name) = function
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        else {
            return Err(GatewayError::bad_param(
                format!("tools[{i}]：缺少函数名 / tools[{i}].function: missing `name`"),
                "tools",
            ));
        };
        let mut decl = Map::new();
        decl.insert("name".into(), Value::String(name.to_owned()));
        if let Some(d) = function
            .get("description")
            .and_then(Value::as_str)
            .filter(|d| !d.is_empty())
        {
            decl.insert("description".into(), Value::String(d.to_owned()));
        }
        if let Some(params) = function.get("parameters").filter(|p| p.is_object())
            && schema::to_gemini_parameters(params).is_some()
        {
            decl.insert("parametersJsonSchema".into(), params.clone());
        }
        declarations.push(Value::Object(decl));
    }
    if declarations.is_empty() {
        return Ok(Vec::new());
    }
    Ok(vec![json!({ "functionDeclarations": declarations })])
}

fn tool_config(req: &ChatRequest, tools: &[Value]) -> Result<Option<Value>, GatewayError> {
    let Some(choice) = &req.tool_choice else {
        return Ok(None);
    };
    if tools.is_empty() {
        return Ok(None);
    }
    let config = match choice {
        Value::String(s) => match s.as_str() {
            "auto" => json!({"mode": "AUTO"}),
            "none" => json!({"mode": "NONE"}),
            "required" | "any" => json!({"mode": "ANY"}),
            other => {
                return Err(GatewayError::bad_param(
                    format!("不支持的 tool_choice {other:?} / Unsupported tool_choice {other:?}"),
                    "tool_choice",
                ));
            }
        },
        Value::Object(o) => match o.get("type").and_then(Value::as_str) {
            Some("function") => {
                let name = o
                    .get("function")
                    .and_then(|f| f.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                json!({"mode": "ANY", "allowedFunctionNames": [name]})
            }
            Some("allowed_tools") => {
                let allowed = o.get("allowed_tools");
                let mode = match allowed.and_then(|a| a.get("mode")).and_then(Value::as_str) {
                    Some("required") => "ANY",
                    _ => "AUTO",
                };
                let names: Vec<Value> = allowed
                    .and_then(|a| a.get("tools"))
                    .and_then(Value::as_array)
                    .map(|list| {
                        list.iter()
                            .filter_map(|t| {
                                t.get("function")
                                    .and_then(|f| f.get("name"))
                                    .or_else(|| t.get("name"))
                            })
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                if names.is_empty() {
                    json!({"mode": mode})
                } else {
                    json!({"mode": mode, "allowedFunctionNames": names})
                }
            }
            _ => {
                return Err(GatewayError::bad_param(
                    "无法识别的 tool_choice / Unrecognised tool_choice object",
                    "tool_choice",
                ));
            }
        },
        Value::Null => return Ok(None),
        _ => {
            return Err(GatewayError::bad_param(
                "无法识别的 tool_choice / Unrecognised tool_choice",
                "tool_choice",
            ));
        }
    };
    Ok(Some(json!({ "functionCallingConfig": config })))
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
    opts: &Options<'_>,
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
        let signature = answer::signature_of(call)
            .map(str::to_owned)
            .or_else(|| {
                call.id
                    .as_deref()
                    .and_then(|id| (opts.recall_signature)(id))
            })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::fixups::{drop_penalties, refuses_json_schema, use_schema_subset};
    use serde_json::json;

    fn request(body: Value) -> ChatRequest {
        serde_json::from_value(body).expect("valid chat request")
    }

    fn translate(body: Value) -> Value {
        let t = to_gemini(&request(body), &Options::default()).expect("translates");
        serde_json::to_value(&t.request).expect("serialises")
    }

    #[test]
    fn leading_system_messages_become_the_system_instruction_and_later_ones_keep_their_place() {
        let g = translate(json!({"model": "gemini-2.5-flash", "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Use metric units."}]},
            {"role": "user", "content": "Hi"},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            {"role": "assistant", "content": "Salut"},
            {"role": "user", "content": "Again"}
        ]}));
        assert_eq!(
            g["systemInstruction"],
            json!({"parts": [{"text": "You are terse."}, {"text": "Use metric units."}]})
        );
        assert_eq!(
            g["contents"],
            json!([
                {"role": "user", "parts": [{"text": "Hi"}, {"text": "Answer in French."}]},
                {"role": "model", "parts": [{"text": "Salut"}]},
                {"role": "user", "parts": [{"text": "Again"}]}
            ]),
            "a later system message is a user turn at its position, merged with the adjacent user turn"
        );
    }

    /// What SillyTavern sends: main prompt and character card, example dialogue as named
    /// system messages, the chat, an author's note at depth 4 and a post-history instruction.
    fn sillytavern_chat() -> Value {
        json!({"model": "gemini-2.5-flash", "messages": [
            {"role": "system", "content": "Write Seraphina's next reply in a fictional chat between Seraphina and Ash."},
            {"role": "system", "content": "[Seraphina's personality: caring, protective]"},
            {"role": "system", "content": "[Example Chat]"},
            {"role": "system", "name": "example_user", "content": "Who are you?"},
            {"role": "system", "name": "example_assistant", "content": "*smiles* I am Seraphina, guardian of this forest."},
            {"role": "system", "content": "[Start a new Chat]"},
            {"role": "assistant", "content": "*You wake up in a glade.*"},
            {"role": "user", "content": "Where am I?"},
            {"role": "system", "content": "[Author's note: it starts to rain.]"},
            {"role": "assistant", "content": "In the Eldoria forest."},
            {"role": "user", "content": "Is it safe?"},
            {"role": "assistant", "content": "Not at night."},
            {"role": "user", "content": "Then let's go."},
            {"role": "system", "content": "[Stay in character; never speak for Ash.]"}
        ]})
    }

    #[test]
    fn sillytavern_authors_note_and_post_history_instruction_keep_their_place() {
        let g = translate(sillytavern_chat());
        assert_eq!(
            g["systemInstruction"],
            json!({"parts": [
                {"text": "Write Seraphina's next reply in a fictional chat between Seraphina and Ash."},
                {"text": "[Seraphina's personality: caring, protective]"},
                {"text": "[Example Chat]"},
                {"text": "example_user: Who are you?"},
                {"text": "example_assistant: *smiles* I am Seraphina, guardian of this forest."},
                {"text": "[Start a new Chat]"}
            ]}),
            "the example dialogue keeps its speakers"
        );
        assert_eq!(
            g["contents"],
            json!([
                {"role": "model", "parts": [{"text": "*You wake up in a glade.*"}]},
                {"role": "user", "parts": [{"text": "Where am I?"}, {"text": "[Author's note: it starts to rain.]"}]},
                {"role": "model", "parts": [{"text": "In the Eldoria forest."}]},
                {"role": "user", "parts": [{"text": "Is it safe?"}]},
                {"role": "model", "parts": [{"text": "Not at night."}]},
                {"role": "user", "parts": [{"text": "Then let's go."}, {"text": "[Stay in character; never speak for Ash.]"}]}
            ])
        );
    }

    #[test]
    fn a_later_system_message_between_model_turns_is_its_own_user_turn() {
        let g = translate(json!({"model": "m", "messages": [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"role": "system", "content": "note"},
            {"role": "assistant", "content": "c"}
        ]}));
        assert_eq!(
            g["contents"],
            json!([
                {"role": "user", "parts": [{"text": "a"}]},
                {"role": "model", "parts": [{"text": "b"}]},
                {"role": "user", "parts": [{"text": "note"}]},
                {"role": "model", "parts": [{"text": "c"}]}
            ])
        );
        assert!(g.get("systemInstruction").is_none());
    }

    #[test]
    fn speaker_names_become_prefixes_and_merged_turns_stay_labeled() {
        let g = translate(json!({"model": "m", "messages": [
            {"role": "system", "content": "A group chat."},
            {"role": "user", "name": "Alice", "content": "hi all"},
            {"role": "user", "name": "Bob", "content": [
                {"type": "text", "text": "look at this"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
            ]},
            {"role": "assistant", "name": "Seraphina", "content": "Hello, both of you."},
            {"role": "assistant", "name": "Lilith", "content": "Hmph."},
            {"role": "user", "name": "Alice", "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "text", "text": "and this"}
            ]},
            {"role": "user", "name": "Bob", "content": "Bob: already labeled"},
            {"role": "user", "name": " ", "content": "blank names add nothing"}
        ]}));
        let image = json!({"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}});
        assert_eq!(
            g["contents"],
            json!([
                {"role": "user", "parts": [{"text": "Alice: hi all"}, {"text": "Bob: look at this"}, image]},
                {"role": "model", "parts": [{"text": "Seraphina: Hello, both of you."}, {"text": "Lilith: Hmph."}]},
                {"role": "user", "parts": [
                    {"text": "Alice:"}, image, {"text": "and this"},
                    {"text": "Bob: already labeled"},
                    {"text": "blank names add nothing"}
                ]}
            ])
        );
    }

    #[test]
    fn a_named_assistant_labels_its_text_never_its_function_calls() {
        let mut body = tool_loop("gemini-3-pro-preview");
        body["messages"][1]["name"] = json!("Seraphina");
        let g = translate(body.clone());
        let turn = &g["contents"][1]["parts"];
        assert_eq!(turn[0], json!({"text": "Seraphina: Let me check."}));
        assert_eq!(
            turn[1],
            json!({"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": SKIP_VALIDATOR})
        );
        assert_eq!(turn[2]["functionCall"]["name"], "get_time");
        body["messages"][1]["content"] = Value::Null;
        let g = translate(body);
        assert_eq!(
            g["contents"][1]["parts"][0]["functionCall"]["name"], "get_weather",
            "a call-only turn gets no label part"
        );
    }

    #[test]
    fn system_messages_inside_a_tool_exchange_follow_the_results() {
        // A system message between the call and its results, and one between two results.
        let mut body = tool_loop("gemini-2.5-flash");
        let messages = body["messages"].as_array_mut().expect("messages");
        messages.insert(3, json!({"role": "system", "content": "between results"}));
        messages.insert(2, json!({"role": "system", "content": "before results"}));
        let g = translate(body);
        let c = &g["contents"];
        assert!(c[1]["parts"][1].get("functionCall").is_some(), "{g}");
        assert_eq!(
            c[2]["parts"].as_array().map(Vec::len),
            Some(2),
            "both results in one turn right after the call: {g}"
        );
        assert_eq!(c[2]["parts"][0]["functionResponse"]["name"], "get_weather");
        assert_eq!(c[2]["parts"][1]["functionResponse"]["name"], "get_time");
        assert_eq!(
            c[3],
            json!({"role": "user", "parts": [{"text": "before results"}, {"text": "between results"}, {"text": "Thanks"}]}),
            "the notes come right after the results, in order"
        );
        assert_eq!(c.as_array().map(Vec::len), Some(4));
    }

    #[test]
    fn system_messages_after_a_tool_exchange_keep_their_place() {
        let mut body = tool_loop("gemini-2.5-flash");
        let messages = body["messages"].as_array_mut().expect("messages");
        messages.insert(4, json!({"role": "system", "content": "after results"}));
        let g = translate(body);
        assert_eq!(
            g["contents"][3],
            json!({"role": "user", "parts": [{"text": "after results"}, {"text": "Thanks"}]})
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
        let g = translate(json!({"model": "m", "messages": [
            {"role": "system", "content": "Say hi"},
            {"role": "developer", "name": "Narrator", "content": "Briefly."}
        ]}));
        assert_eq!(
            g["contents"],
            json!([{"role": "user", "parts": [{"text": "Say hi"}, {"text": "Narrator: Briefly."}]}])
        );
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
            let err = to_gemini(&request(body), &Options::default()).expect_err("refused");
            assert_eq!(err.status(), axum::http::StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn penalties_can_be_dropped_for_the_retry() {
        let mut t = to_gemini(
            &request(
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "presence_penalty": 1.0}),
            ),
            &Options::default(),
        )
        .expect("translates");
        assert!(drop_penalties(&mut t.request));
        assert!(!drop_penalties(&mut t.request));
    }

    fn translate_with(body: Value, opts: &Options<'_>) -> Value {
        let t = to_gemini(&request(body), opts).expect("translates");
        serde_json::to_value(&t.request).expect("serialises")
    }

    fn tool_loop(model: &str) -> Value {
        json!({"model": model, "messages": [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {"role": "assistant", "content": "Let me check.", "tool_calls": [
                {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": ""}}
            ]},
            {"role": "tool", "tool_call_id": "call_b", "content": "12:00"},
            {"role": "tool", "tool_call_id": "call_a", "content": "{\"tempC\": 18}"},
            {"role": "user", "content": "Thanks"}
        ], "tools": [
            {"type": "function", "function": {"name": "get_weather", "description": "Weather", "strict": true,
             "parameters": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "additionalProperties": false,
                            "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
            {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
        ], "tool_choice": "auto"})
    }

    #[test]
    fn tools_become_function_declarations_with_json_schema() {
        let g = translate(tool_loop("gemini-2.5-flash"));
        let decls = &g["tools"][0]["functionDeclarations"];
        assert_eq!(decls[0]["name"], "get_weather");
        assert_eq!(
            decls[0]["parametersJsonSchema"]["additionalProperties"], false,
            "real JSON Schema is kept"
        );
        assert!(
            decls[1].get("parametersJsonSchema").is_none(),
            "no-argument tools omit parameters"
        );
        assert_eq!(
            g["toolConfig"],
            json!({"functionCallingConfig": {"mode": "AUTO"}})
        );
    }

    #[test]
    fn tool_history_becomes_function_calls_and_grouped_responses_in_call_order() {
        let g = translate(tool_loop("gemini-2.5-flash"));
        let c = &g["contents"];
        assert_eq!(c[1]["role"], "model");
        assert_eq!(c[1]["parts"][0], json!({"text": "Let me check."}));
        assert_eq!(
            c[1]["parts"][1]["functionCall"],
            json!({"name": "get_weather", "args": {"city": "Paris"}})
        );
        assert_eq!(
            c[1]["parts"][2]["functionCall"],
            json!({"name": "get_time", "args": {}})
        );
        assert!(
            c[1]["parts"][1].get("thoughtSignature").is_none(),
            "2.5 needs no placeholder"
        );
        assert_eq!(c[2]["role"], "user");
        assert_eq!(
            c[2]["parts"].as_array().map(Vec::len),
            Some(2),
            "one turn for all results"
        );
        assert_eq!(
            c[2]["parts"][0]["functionResponse"],
            json!({"name": "get_weather", "response": {"tempC": 18}})
        );
        assert_eq!(
            c[2]["parts"][1]["functionResponse"],
            json!({"name": "get_time", "response": {"output": "12:00"}})
        );
        assert_eq!(
            c[3],
            json!({"role": "user", "parts": [{"text": "Thanks"}]}),
            "text after results is its own turn"
        );
    }

    #[test]
    fn gemini3_signatures_are_restored_or_replaced_by_the_placeholder() {
        let g = translate(tool_loop("gemini-3-pro-preview"));
        assert_eq!(
            g["contents"][1]["parts"][1]["thoughtSignature"],
            SKIP_VALIDATOR
        );
        assert!(
            g["contents"][1]["parts"][2]
                .get("thoughtSignature")
                .is_none(),
            "only the first call of a turn"
        );
        let recall = |id: &str| (id == "call_a").then(|| "c2lnbmF0dXJl".to_owned());
        let opts = Options {
            recall_signature: &recall,
            ..Options::default()
        };
        let g = translate_with(tool_loop("gemini-3-pro-preview"), &opts);
        assert_eq!(
            g["contents"][1]["parts"][1]["thoughtSignature"],
            "c2lnbmF0dXJl"
        );
    }

    #[test]
    fn signatures_in_extra_content_are_accepted() {
        let mut body = tool_loop("gemini-3-pro-preview");
        body["messages"][1]["tool_calls"][0]["extra_content"] =
            json!({"google": {"thought_signature": "ZnJvbS1jbGllbnQ="}});
        let g = translate(body);
        assert_eq!(
            g["contents"][1]["parts"][1]["thoughtSignature"],
            "ZnJvbS1jbGllbnQ="
        );
    }

    #[test]
    fn an_unknown_tool_call_id_is_a_400() {
        let body = json!({"model": "m", "messages": [{"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "call_zzz", "content": "1"}]});
        assert!(to_gemini(&request(body), &Options::default()).is_err());
        let body = json!({"model": "m", "messages": [{"role": "user", "content": "x"}, {"role": "function", "name": "f", "content": "1"}]});
        let g = translate(body);
        assert_eq!(
            g["contents"][1]["parts"][0]["functionResponse"]["name"],
            "f"
        );
    }

    #[test]
    fn tool_choice_maps_to_function_calling_modes() {
        let mut body = tool_loop("gemini-2.5-flash");
        for (choice, expected) in [
            (json!("none"), json!({"mode": "NONE"})),
            (json!("required"), json!({"mode": "ANY"})),
            (
                json!({"type": "function", "function": {"name": "get_time"}}),
                json!({"mode": "ANY", "allowedFunctionNames": ["get_time"]}),
            ),
            (
                json!({"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [{"type": "function", "function": {"name": "get_weather"}}]}}),
                json!({"mode": "ANY", "allowedFunctionNames": ["get_weather"]}),
            ),
        ] {
            body["tool_choice"] = choice;
            assert_eq!(
                translate(body.clone())["toolConfig"]["functionCallingConfig"],
                expected
            );
        }
    }

    #[test]
    fn the_schema_subset_fallback_converts_every_schema() {
        let mut body = tool_loop("gemini-2.0-flash");
        body["response_format"] = json!({"type": "json_schema", "json_schema": {"name": "x", "strict": true,
            "schema": {"type": "object", "additionalProperties": false, "properties": {"a": {"type": ["string", "null"]}}}}});
        let mut t = to_gemini(&request(body), &Options::default()).expect("translates");
        assert!(use_schema_subset(&mut t.request));
        let g = serde_json::to_value(&t.request).expect("json");
        let params = &g["tools"][0]["functionDeclarations"][0]["parameters"];
        assert!(schema::unknown_keywords(params).is_empty(), "{params}");
        assert!(
            g["tools"][0]["functionDeclarations"][0]
                .get("parametersJsonSchema")
                .is_none()
        );
        assert_eq!(
            g["generationConfig"]["responseSchema"]["properties"]["a"],
            json!({"type": "string", "nullable": true})
        );
        assert!(refuses_json_schema(
            "Invalid JSON payload received. Unknown name \"parametersJsonSchema\" at 'tools[0]'"
        ));
    }

    #[test]
    fn response_format_maps_to_mime_type_and_schema() {
        let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_object"}});
        assert_eq!(
            translate(body.clone())["generationConfig"],
            json!({"responseMimeType": "application/json"})
        );
        body["response_format"] = json!({"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object", "properties": {"n": {"type": "integer"}}}}});
        let g = translate(body.clone());
        assert_eq!(
            g["generationConfig"]["responseJsonSchema"]["properties"]["n"]["type"],
            "integer"
        );
        body["response_format"] = json!({"type": "text"});
        assert!(translate(body).get("generationConfig").is_none());
    }

    #[test]
    fn search_models_add_the_tool_and_the_prompt() {
        let opts = Options {
            search_prompt: Some("SEARCH!"),
            ..Options::default()
        };
        let body = json!({"model": "gemini-2.5-flash-search", "messages": [
            {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]});
        let t = to_gemini(&request(body.clone()), &opts).expect("translates");
        assert_eq!(t.upstream_model, "gemini-2.5-flash");
        let g = serde_json::to_value(&t.request).expect("json");
        assert_eq!(g["tools"], json!([{"googleSearch": {}}]));
        assert_eq!(
            g["contents"][1],
            json!({"role": "user", "parts": [{"text": "SEARCH!"}]}),
            "HAJIMI's position: len - 2"
        );
        let t = to_gemini(&request(body), &Options::default()).expect("translates");
        assert_eq!(
            t.upstream_model, "gemini-2.5-flash-search",
            "without search mode the name is sent as is"
        );
    }

    #[test]
    fn inserted_turns_never_split_a_call_from_its_result() {
        let g = translate(tool_loop("gemini-2.5-flash"));
        let contents: Vec<Content> =
            serde_json::from_value(g["contents"].clone()).expect("contents");
        // Inserting before the function-response turn would separate it from its call.
        assert_eq!(safe_insert_index(&contents, 2), 1);
        assert_eq!(safe_insert_index(&contents, 3), 3);
    }

    #[test]
    fn reasoning_effort_reaches_the_thinking_config() {
        let opts = Options {
            enable_thinking: true,
            ..Options::default()
        };
        let g = translate_with(
            json!({"model": "gemini-2.5-flash", "reasoning_effort": "low", "messages": [{"role": "user", "content": "x"}]}),
            &opts,
        );
        assert_eq!(
            g["generationConfig"]["thinkingConfig"],
            json!({"thinkingBudget": 1024, "includeThoughts": true})
        );
        let g = translate_with(
            json!({"model": "gemini-2.0-flash", "reasoning_effort": "low", "messages": [{"role": "user", "content": "x"}]}),
            &opts,
        );
        assert!(
            g.get("generationConfig").is_none(),
            "non-thinking models get no thinkingConfig (HAJIMI #304)"
        );
        let g = translate_with(
            json!({"model": "gemini-3-flash-preview", "extra_body": {"google": {"thinking_config": {"thinking_level": "low", "include_thoughts": false}}}, "messages": [{"role": "user", "content": "x"}]}),
            &opts,
        );
        assert_eq!(
            g["generationConfig"]["thinkingConfig"],
            json!({"thinkingLevel": "LOW", "includeThoughts": false})
        );
    }

    #[test]
    fn excluded_reasoning_asks_for_no_thoughts_but_keeps_the_thinking_effort() {
        let opts = Options {
            enable_thinking: true,
            ..Options::default()
        };
        for exclude in [
            json!({"include_reasoning": false}),
            json!({"reasoning": {"exclude": true}}),
            json!({"extra_body": {"include_reasoning": false}}),
        ] {
            let mut body = json!({"model": "gemini-2.5-flash", "reasoning_effort": "high", "messages": [{"role": "user", "content": "x"}]});
            for (k, v) in exclude.as_object().into_iter().flatten() {
                body[k] = v.clone();
            }
            let g = translate_with(body, &opts);
            assert_eq!(
                g["generationConfig"]["thinkingConfig"],
                json!({"thinkingBudget": 24576, "includeThoughts": false}),
                "{exclude}"
            );
        }
        let g = translate_with(
            json!({"model": "gemini-3-pro-preview", "include_reasoning": false, "messages": [{"role": "user", "content": "x"}],
                   "google": {"thinking_config": {"thinking_level": "high", "include_thoughts": true}}}),
            &opts,
        );
        assert_eq!(
            g["generationConfig"]["thinkingConfig"],
            json!({"thinkingLevel": "HIGH", "includeThoughts": false}),
            "exclusion wins over a request for thoughts"
        );
        for keep in [
            json!({"include_reasoning": true}),
            json!({"reasoning": {"exclude": false}}),
        ] {
            let mut body = json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "x"}]});
            for (k, v) in keep.as_object().into_iter().flatten() {
                body[k] = v.clone();
            }
            assert_eq!(
                translate_with(body, &opts)["generationConfig"]["thinkingConfig"],
                json!({"includeThoughts": true}),
                "{keep}"
            );
        }
    }

    #[test]
    fn random_strings_are_inserted_as_hajimi_does_but_never_inside_a_tool_exchange() {
        let opts = Options {
            random_string: Some(5),
            ..Options::default()
        };
        let g = translate_with(
            json!({"model": "m", "messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]}),
            &opts,
        );
        let c = g["contents"].as_array().expect("contents");
        assert_eq!(c.len(), 5);
        assert_eq!(c[0]["parts"][0]["text"], "a");
        assert_eq!(c[1]["parts"][0]["text"].as_str().map(str::len), Some(5));
        assert_eq!(c[3]["parts"][0]["text"].as_str().map(str::len), Some(5));
        assert_eq!(c[4]["parts"][0]["text"], "c");
        let g = translate_with(tool_loop("gemini-2.5-flash"), &opts);
        let c = g["contents"].as_array().expect("contents");
        for (i, content) in c.iter().enumerate() {
            if content["parts"][0].get("functionResponse").is_some() {
                assert!(
                    c[i - 1]["parts"]
                        .as_array()
                        .is_some_and(|p| p.iter().any(|p| p.get("functionCall").is_some())),
                    "a result follows its call: {g}"
                );
            }
        }
    }
}
