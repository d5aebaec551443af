//! OpenAI `tools` and `tool_choice` → Gemini function declarations and `toolConfig`.

use serde_json::{Map, Value, json};

use crate::error::GatewayError;
use crate::translate::schema;
use crate::wire::openai::ChatRequest;

/// OpenAI `tools` → one Gemini Tool with every function declaration. Parameters go as
/// `parametersJsonSchema` (real JSON Schema, accepted with `$schema`,
/// `additionalProperties`…); [`crate::translate::fixups::use_schema_subset`] converts them
/// if a model refuses that.
pub fn function_tools(req: &ChatRequest) -> Result<Vec<Value>, GatewayError> {
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

/// `tool_choice` → Gemini's `toolConfig.functionCallingConfig` (none without function tools).
pub fn tool_config(req: &ChatRequest, tools: &[Value]) -> Result<Option<Value>, GatewayError> {
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
