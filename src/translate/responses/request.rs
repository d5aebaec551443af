//! OpenAI Responses request → Gemini `GenerateContentRequest`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::store::StoredConversation;
use crate::error::GatewayError;
use crate::translate::dialect::Context;
use crate::translate::history::{self, Turns};
use crate::translate::media::parse_data_url;
use crate::translate::model_name::{is_gemini3, search_base, upstream_model_name};
use crate::translate::safety::safety_settings;
use crate::translate::{schema, thinking};
use crate::wire::gemini::{
    self, Content, FileData, GenerateContentRequest, GenerationConfig, Part,
};
use crate::wire::responses::{
    CallOutput, CallOutputContent, ContentPart, CreateResponse, Input, InputItem, MessageContent,
};

/// The Gemini request and what answering needs.
#[derive(Debug)]
pub struct Translated {
    /// The model name for the upstream URL (no `models/` prefix, `-search` removed).
    pub upstream_model: String,
    pub request: GenerateContentRequest,
    /// The conversation so far (the previous response's, then this input), with call ids on
    /// calls and results and without the proxy's filler: what a stored response keeps, with
    /// the answer appended (`store::StoredConversation::new`).
    pub conversation: Vec<Content>,
    pub answer: AnswerContext,
}

/// What the answer mapping needs from the request.
#[derive(Debug, Clone, Default)]
pub struct AnswerContext {
    pub upstream_model: String,
    /// Freeform (`custom`) tools: their calls are answered as `custom_tool_call` items.
    pub custom_tools: BTreeSet<String>,
    /// Tools declared inside a `namespace` tool: name → namespace.
    pub namespaces: BTreeMap<String, String>,
    /// `parallel_tool_calls: false`: only the first call of an answer is kept (Gemini has no
    /// such switch).
    pub single_call: bool,
}

fn bad(message: String) -> GatewayError {
    GatewayError::bad_param(message, "input")
}

/// Translates a Responses request with the server's context, continuing `previous` (the
/// stored conversation named by `previous_response_id`, loaded by the caller). Remote images
/// and files (`image_url` / `file_url` over http(s)) become `fileData` parts without a MIME
/// type, for `fetch::inline_remote_file_data` (outside `translate`). The proxy's filler
/// (`RANDOM_STRING`) is not inserted: the caller takes the cache key first.
pub fn to_gemini(
    req: &CreateResponse,
    ctx: &Context<'_>,
    previous: Option<&StoredConversation>,
) -> Result<Translated, GatewayError> {
    let mut upstream_model = upstream_model_name(&req.model).to_owned();
    if upstream_model.is_empty() {
        return Err(GatewayError::bad_param(
            "缺少模型名 / `model` must not be empty",
            "model",
        ));
    }
    let search = match (ctx.search_prompt, search_base(&upstream_model)) {
        (Some(prompt), Some(base)) => {
            upstream_model = base.to_owned();
            Some(prompt.to_owned())
        }
        _ => None,
    };
    let gemini3 = is_gemini3(&upstream_model);

    let mut system: Vec<Part> = req
        .instructions
        .as_deref()
        .filter(|t| !t.is_empty())
        .map(Part::text)
        .into_iter()
        .collect();
    let mut turns = match previous {
        Some(prev) => {
            let mut contents = prev.contents.clone();
            if !crate::translate::model_name::same_family(&prev.model, &upstream_model) {
                history::strip_signatures(&mut contents);
            }
            Turns::with_contents(contents)
        }
        None => Turns::new(),
    };
    match &req.input {
        None => {}
        Some(Input::Text(t)) => turns.user(text_parts(t)),
        Some(Input::Items(items)) => {
            input_items(items, &upstream_model, &mut system, &mut turns)?;
        }
    }
    let mut contents = turns.into_contents();
    let system_instruction = if contents.is_empty() {
        if system.is_empty() {
            return Err(bad("input 中没有任何内容 / `input` contains no text".into()));
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
    let conversation = contents.clone();
    let recall = |id: &str| (ctx.recall_signature)(id, &upstream_model);
    history::complete_signatures(&mut contents, gemini3, &recall);
    history::strip_call_ids(&mut contents);

    let mut answer = AnswerContext {
        upstream_model: upstream_model.clone(),
        single_call: req.parallel_tool_calls == Some(false),
        ..AnswerContext::default()
    };
    let (mut tools, has_functions) = tools(req, gemini3, &mut answer)?;
    let tool_config = if has_functions {
        tool_config(req.tool_choice.as_ref())
    } else {
        None
    };
    if let Some(prompt) = search {
        history::add_search(&mut tools, &mut contents, prompt);
    }

    let mut generation_config = generation_config(req)?;
    generation_config.thinking_config = thinking::thinking_config(
        &upstream_model,
        (ctx.model_thinks)(&upstream_model),
        ctx.enable_thinking,
        &thinking::Requested {
            reasoning_effort: req.reasoning.as_ref().and_then(|r| r.effort.as_deref()),
            ..thinking::Requested::default()
        },
    )?;
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
        conversation,
        answer,
    })
}

fn text_parts(t: &str) -> Vec<Part> {
    if t.is_empty() {
        Vec::new()
    } else {
        vec![Part::text(t)]
    }
}

fn input_items(
    items: &[InputItem],
    model: &str,
    system: &mut Vec<Part>,
    turns: &mut Turns,
) -> Result<(), GatewayError> {
    // The leading run of system/developer messages joins the instructions; a later one is a
    // user turn at its place (decisions §5).
    let leading = items
        .iter()
        .position(|item| {
            !matches!(item, InputItem::Message(m) if m.role == "system" || m.role == "developer")
        })
        .unwrap_or(items.len());
    let mut i = 0;
    while i < items.len() {
        let at = format!("input[{i}]");
        match &items[i] {
            InputItem::Message(msg) => {
                let parts = message_parts(&msg.content, &at)?;
                match msg.role.as_str() {
                    "system" | "developer" if i < leading => system.extend(parts),
                    "system" | "developer" | "user" => turns.user(parts),
                    "assistant" => parts.into_iter().for_each(|p| turns.model(p)),
                    other => {
                        return Err(bad(format!(
                            "{at}：不支持的角色 {other:?} / {at}: unsupported role {other:?}"
                        )));
                    }
                }
            }
            InputItem::Reasoning(r) => {
                if let Some(sig) = r
                    .encrypted_content
                    .as_deref()
                    .and_then(|c| history::uncarry(c, model))
                {
                    turns.signature(sig.to_owned());
                }
            }
            InputItem::FunctionCall(call) => {
                let args = history::parse_arguments(&call.arguments).ok_or_else(|| {
                    bad(format!(
                        "{at}.arguments 不是有效的 JSON / {at}.arguments is not valid JSON"
                    ))
                })?;
                turns.model(function_call(&call.call_id, &call.name, args));
            }
            InputItem::CustomToolCall(call) => {
                turns.model(function_call(
                    &call.call_id,
                    &call.name,
                    json!({ "input": call.input }),
                ));
            }
            InputItem::FunctionCallOutput(_) | InputItem::CustomToolCallOutput(_) => {
                // All outputs in a row answer one call turn: one content, in call order.
                let end = items[i..]
                    .iter()
                    .position(|it| {
                        !matches!(
                            it,
                            InputItem::FunctionCallOutput(_) | InputItem::CustomToolCallOutput(_)
                        )
                    })
                    .map_or(items.len(), |n| i + n);
                call_outputs(&items[i..end], i, turns)?;
                i = end;
                continue;
            }
            InputItem::Other(kind) => {
                tracing::warn!(item = %kind, "Responses input item has no Gemini counterpart; dropped");
            }
        }
        i += 1;
    }
    Ok(())
}

fn function_call(call_id: &str, name: &str, args: Value) -> Part {
    Part {
        function_call: Some(gemini::FunctionCall {
            id: Some(call_id.to_owned()),
            name: name.to_owned(),
            args: Some(args),
        }),
        ..Part::default()
    }
}

fn call_outputs(
    outputs: &[InputItem],
    first: usize,
    turns: &mut Turns,
) -> Result<(), GatewayError> {
    let mut keyed: Vec<(usize, Part)> = Vec::new();
    let mut media: Vec<Part> = Vec::new();
    for (k, item) in outputs.iter().enumerate() {
        let (InputItem::FunctionCallOutput(CallOutput { call_id, output })
        | InputItem::CustomToolCallOutput(CallOutput { call_id, output })) = item
        else {
            continue;
        };
        let at = format!("input[{}]", first + k);
        let name = turns.call_name(call_id).ok_or_else(|| {
            bad(format!(
                "{at}：找不到 call_id {call_id:?} 对应的函数调用 / {at}: no function call has call_id {call_id:?}"
            ))
        })?;
        let text = match output {
            CallOutputContent::Text(t) => t.clone(),
            CallOutputContent::Parts(parts) => {
                let mut text = String::new();
                for (j, p) in parts.iter().enumerate() {
                    match p {
                        ContentPart::InputText { text: t }
                        | ContentPart::OutputText { text: t } => {
                            text.push_str(t);
                        }
                        other => media.extend(content_part(other, &format!("{at}.output[{j}]"))?),
                    }
                }
                text
            }
        };
        keyed.push((
            turns.call_position(call_id).unwrap_or(usize::MAX),
            Part {
                function_response: Some(gemini::FunctionResponse {
                    id: Some(call_id.clone()),
                    name,
                    response: history::function_response_value(&text, false),
                }),
                ..Part::default()
            },
        ));
    }
    keyed.sort_by_key(|(p, _)| *p);
    let mut parts: Vec<Part> = keyed.into_iter().map(|(_, p)| p).collect();
    parts.extend(media);
    turns.function_responses(parts);
    Ok(())
}

fn message_parts(content: &MessageContent, at: &str) -> Result<Vec<Part>, GatewayError> {
    match content {
        MessageContent::Text(t) => Ok(text_parts(t)),
        MessageContent::Parts(parts) => {
            let mut out = Vec::with_capacity(parts.len());
            for (j, p) in parts.iter().enumerate() {
                out.extend(content_part(p, &format!("{at}.content[{j}]"))?);
            }
            Ok(out)
        }
    }
}

fn url_part(url: &str, at: &str) -> Result<Part, GatewayError> {
    if url.starts_with("http://") || url.starts_with("https://") {
        return Ok(Part {
            file_data: Some(FileData {
                mime_type: None,
                file_uri: url.to_owned(),
            }),
            ..Part::default()
        });
    }
    match parse_data_url(url) {
        Some(blob) => Ok(Part {
            inline_data: Some(blob),
            ..Part::default()
        }),
        None => Err(bad(format!(
            "{at}：地址必须是 http(s) 或 data: URL / {at}: the URL must be http(s) or a data: URL"
        ))),
    }
}

fn content_part(p: &ContentPart, at: &str) -> Result<Option<Part>, GatewayError> {
    Ok(match p {
        ContentPart::InputText { text } | ContentPart::OutputText { text } => {
            text_parts(text).pop()
        }
        ContentPart::Refusal { refusal } => text_parts(refusal).pop(),
        ContentPart::InputImage {
            image_url: Some(url),
            ..
        } => Some(url_part(url, at)?),
        ContentPart::InputFile {
            file_data: Some(data),
            ..
        } => Some(url_part(data, at)?),
        ContentPart::InputFile {
            file_url: Some(url),
            ..
        } => Some(url_part(url, at)?),
        ContentPart::InputImage { .. } | ContentPart::InputFile { .. } => {
            return Err(bad(format!(
                "{at}：不支持 file_id，请以 URL 或 data URL 提供 / {at}: file ids are not supported; send an image_url, file_url or file_data"
            )));
        }
        ContentPart::Other => None,
    })
}

/// Function tools and freeform (`custom`) tools become function declarations (a custom tool
/// takes one string, `input`; its grammar goes into the description); tools inside a
/// `namespace` are declared by their own names; web search becomes Google Search; tools
/// OpenAI hosts (file search, computer use, code interpreter, image generation, MCP, local
/// shell…) are dropped with a warning, never refused, so agents keep working.
fn tools(
    req: &CreateResponse,
    gemini3: bool,
    answer: &mut AnswerContext,
) -> Result<(Vec<Value>, bool), GatewayError> {
    let mut declarations = Vec::new();
    let mut search = false;
    for (i, tool) in req.tools.iter().flatten().enumerate() {
        match tool
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("function")
        {
            "function" | "custom" => declarations.push(declaration(tool, i, answer)?),
            "namespace" => {
                let ns = tool.get("name").and_then(Value::as_str).unwrap_or_default();
                for inner in tool
                    .get("tools")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let decl = declaration(inner, i, answer)?;
                    if let Some(name) = decl.get("name").and_then(Value::as_str) {
                        answer.namespaces.insert(name.to_owned(), ns.to_owned());
                    }
                    declarations.push(decl);
                }
            }
            kind if kind.starts_with("web_search") => search = true,
            kind => tracing::warn!(
                tool = kind,
                "hosted Responses tool hajimi cannot run; dropped"
            ),
        }
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

fn declaration(tool: &Value, i: usize, answer: &mut AnswerContext) -> Result<Value, GatewayError> {
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
    let mut description = tool
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let mut decl = Map::new();
    decl.insert("name".into(), Value::String(name.to_owned()));
    if tool.get("type").and_then(Value::as_str) == Some("custom") {
        answer.custom_tools.insert(name.to_owned());
        let format = tool.get("format");
        if format.and_then(|f| f.get("type")).and_then(Value::as_str) == Some("grammar") {
            let syntax = format
                .and_then(|f| f.get("syntax"))
                .and_then(Value::as_str)
                .unwrap_or("lark");
            let definition = format
                .and_then(|f| f.get("definition"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            description.push_str(&format!(
                "\n\nThe `input` string must follow this {syntax} grammar:\n{definition}"
            ));
        }
        decl.insert(
            "parametersJsonSchema".into(),
            json!({"type": "object", "properties": {"input": {"type": "string",
                "description": "The tool's input, free-form text."}}, "required": ["input"]}),
        );
    } else if let Some(params) = tool.get("parameters").filter(|p| p.is_object())
        && schema::to_gemini_parameters(params).is_some()
    {
        decl.insert("parametersJsonSchema".into(), params.clone());
    }
    if !description.is_empty() {
        decl.insert("description".into(), Value::String(description));
    }
    Ok(Value::Object(decl))
}

fn tool_config(choice: Option<&Value>) -> Option<Value> {
    let config = match choice? {
        Value::String(s) => match s.as_str() {
            "auto" => json!({"mode": "AUTO"}),
            "none" => json!({"mode": "NONE"}),
            "required" => json!({"mode": "ANY"}),
            _ => return None,
        },
        Value::Object(o) => match o.get("type").and_then(Value::as_str) {
            Some("function" | "custom") => {
                let name = o.get("name").and_then(Value::as_str).unwrap_or_default();
                json!({"mode": "ANY", "allowedFunctionNames": [name]})
            }
            Some("allowed_tools") => {
                let mode = match o.get("mode").and_then(Value::as_str) {
                    Some("required") => "ANY",
                    _ => "AUTO",
                };
                let names: Vec<Value> = o
                    .get("tools")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t.get("name").cloned())
                    .collect();
                if names.is_empty() {
                    json!({ "mode": mode })
                } else {
                    json!({"mode": mode, "allowedFunctionNames": names})
                }
            }
            // Hosted tool types (`web_search_preview`, `file_search`…): nothing to force.
            _ => return None,
        },
        _ => return None,
    };
    Some(json!({ "functionCallingConfig": config }))
}

fn generation_config(req: &CreateResponse) -> Result<GenerationConfig, GatewayError> {
    let mut cfg = GenerationConfig {
        temperature: req.temperature,
        top_p: req.top_p,
        max_output_tokens: req.max_output_tokens.filter(|n| *n > 0),
        ..GenerationConfig::default()
    };
    let format = req.text.as_ref().and_then(|t| t.format.as_ref());
    match format.and_then(|f| f.get("type")).and_then(Value::as_str) {
        None | Some("text") => {}
        Some("json_object") => cfg.response_mime_type = Some("application/json".into()),
        Some("json_schema") => {
            cfg.response_mime_type = Some("application/json".into());
            cfg.response_json_schema = format
                .and_then(|f| f.get("schema"))
                .filter(|s| s.is_object())
                .cloned();
        }
        Some(other) => {
            return Err(GatewayError::bad_param(
                format!(
                    "不支持的 text.format 类型 {other:?} / Unsupported text.format type {other:?}"
                ),
                "text.format",
            ));
        }
    }
    Ok(cfg)
}
