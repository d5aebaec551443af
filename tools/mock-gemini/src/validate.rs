//! Google-like validation of the tool / function-calling / thinking / inline-data parts of a
//! GenerateContentRequest. Two phases, like Google's: [`check_parse`] finds what the proto JSON
//! parser rejects (unknown names, bad enum values, non-base64 bytes; before the model lookup),
//! [`check_semantics`] the request-level rules (function turns, thought signatures, schema and
//! thinking rules; after it). Both only walk what is present.

use crate::generate::{field, known};
use crate::tools::{SKIP_SIGNATURE, calling_mode};
use crate::wire::ApiError;
use serde_json::{Map, Value};

// Allowed names (camelCase; the snake_case spelling is accepted too).
const TOOL_FIELDS: &str = "functionDeclarations googleSearch googleSearchRetrieval codeExecution \
    urlContext fileSearch googleMaps computerUse mcpServers";
const DECL_FIELDS: &str =
    "name description parameters parametersJsonSchema response responseJsonSchema behavior";
const SCHEMA_FIELDS: &str = "type format title description nullable enum items minItems maxItems \
    properties required minProperties maxProperties minLength maxLength pattern example anyOf \
    propertyOrdering default minimum maximum";
const TOOL_CONFIG_FIELDS: &str = "functionCallingConfig retrievalConfig";
const CALLING_FIELDS: &str = "mode allowedFunctionNames";

const TYPES: &[&str] = &[
    "TYPE_UNSPECIFIED",
    "STRING",
    "NUMBER",
    "INTEGER",
    "BOOLEAN",
    "ARRAY",
    "OBJECT",
    "NULL",
];
const MODES: &[&str] = &["MODE_UNSPECIFIED", "AUTO", "ANY", "NONE", "VALIDATED"];
const LEVELS: &[&str] = &[
    "THINKING_LEVEL_UNSPECIFIED",
    "MINIMAL",
    "LOW",
    "MEDIUM",
    "HIGH",
];

const PROTO: &str = "type.googleapis.com/google.ai.generativelanguage.v1beta";
const BAD_FN_NAME: &str = "Invalid function name. Must start with a letter or an underscore. \
    Must be alphameric (a-z, A-Z, 0-9), underscores (_), dots (.), colons (:) or dashes (-), \
    with a maximum length of 64.";
const RESPONSE_COUNT: &str = "Please ensure that the number of function response parts is equal \
    to the number of function call parts of the function call turn.";
const CALL_ORDER: &str = "Please ensure that function call turn comes immediately after a user \
    turn or after a function response turn.";
const CORRUPTED_SIGNATURE: &str = "Corrupted thought signature.";

/// Parse-level violations, reported together as one `google.rpc.BadRequest`.
#[derive(Default)]
pub(crate) struct Bad(Vec<(String, String)>);

impl Bad {
    /// `Unknown name "<name>" at '<path>': Cannot find field.` (no `at` for the top level).
    pub(crate) fn unknown(&mut self, path: &str, name: &str) {
        let at = if path.is_empty() {
            String::new()
        } else {
            format!(" at '{path}'")
        };
        self.0.push((
            path.to_owned(),
            format!(
                "Invalid JSON payload received. Unknown name \"{name}\"{at}: Cannot find field."
            ),
        ));
    }

    fn not_repeating(&mut self, path: &str, name: &str) {
        self.0.push((
            path.to_owned(),
            format!(
                "Invalid JSON payload received. Unknown name \"{name}\" at '{path}': Proto field is not repeating, cannot start list."
            ),
        ));
    }

    fn invalid_value(&mut self, path: &str, ty: &str, v: &Value) {
        let shown = serde_json::to_string(v).unwrap_or_default();
        self.0.push((
            path.to_owned(),
            format!("Invalid value at '{path}' ({ty}), {shown}"),
        ));
    }

    pub(crate) fn into_result(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::bad_request(&self.0))
        }
    }
}

/// `key` is `camel` or its snake_case spelling.
fn is(key: &str, camel: &str) -> bool {
    known(camel, key)
}

fn is_enum(v: &Value, allowed: &[&str]) -> bool {
    v.as_str()
        .is_some_and(|s| allowed.iter().any(|a| a.eq_ignore_ascii_case(s)))
}

/// Parse-level checks of tools, toolConfig, thinkingLevel, responseSchema and content parts.
pub(crate) fn check_parse(body: &Map<String, Value>, bad: &mut Bad) {
    if let Some(Value::Array(tools)) = field(body, "tools") {
        for (i, tool) in tools.iter().enumerate() {
            check_tool(tool, i, bad);
        }
    }
    if let Some(tc) = field(body, "toolConfig").and_then(Value::as_object) {
        for k in tc.keys().filter(|k| !known(TOOL_CONFIG_FIELDS, k)) {
            bad.unknown("tool_config", k);
        }
        if let Some(fc) = field(tc, "functionCallingConfig").and_then(Value::as_object) {
            let path = "tool_config.function_calling_config";
            for k in fc.keys().filter(|k| !known(CALLING_FIELDS, k)) {
                bad.unknown(path, k);
            }
            if let Some(mode) = field(fc, "mode").filter(|m| !is_enum(m, MODES)) {
                let ty = format!("{PROTO}.FunctionCallingConfig.Mode");
                bad.invalid_value(&format!("{path}.mode"), &ty, mode);
            }
        }
    }
    if let Some(gen_cfg) = field(body, "generationConfig").and_then(Value::as_object) {
        let level = field(gen_cfg, "thinkingConfig")
            .and_then(Value::as_object)
            .and_then(|t| field(t, "thinkingLevel"));
        if let Some(level) = level.filter(|l| !is_enum(l, LEVELS)) {
            let ty = format!("{PROTO}.ThinkingConfig.ThinkingLevel");
            bad.invalid_value(
                "generation_config.thinking_config.thinking_level",
                &ty,
                level,
            );
        }
        if let Some(schema) = field(gen_cfg, "responseSchema") {
            sub_schema(
                schema,
                "generation_config",
                "response_schema",
                "generation_config.response_schema",
                bad,
            );
        }
    }
    if let Some(Value::Array(contents)) = field(body, "contents") {
        for (i, c) in contents.iter().enumerate() {
            let parts = c.get("parts").and_then(Value::as_array);
            for (j, p) in parts.into_iter().flatten().enumerate() {
                check_part(p, i, j, bad);
            }
        }
    }
}

fn check_tool(tool: &Value, i: usize, bad: &mut Bad) {
    let at = format!("tools[{i}]");
    let Some(t) = tool.as_object() else {
        bad.invalid_value(&at, &format!("{PROTO}.Tool"), tool);
        return;
    };
    for k in t.keys().filter(|k| !known(TOOL_FIELDS, k)) {
        bad.unknown(&at, k);
    }
    let Some(Value::Array(decls)) = field(t, "functionDeclarations") else {
        return;
    };
    for (j, decl) in decls.iter().enumerate() {
        let at = format!("tools[{i}].function_declarations[{j}]");
        let Some(d) = decl.as_object() else {
            bad.invalid_value(&at, &format!("{PROTO}.FunctionDeclaration"), decl);
            continue;
        };
        for (k, v) in d {
            if !known(DECL_FIELDS, k) {
                bad.unknown(&at, k);
            } else if k == "parameters" || k == "response" {
                sub_schema(v, &at, k, &format!("{at}.{k}"), bad);
            }
        }
    }
}

/// A Schema-typed field `name` of the message at `parent`, found at `path`.
fn sub_schema(v: &Value, parent: &str, name: &str, path: &str, bad: &mut Bad) {
    match v {
        Value::Object(s) => check_schema(s, path, bad),
        Value::Array(_) => bad.not_repeating(parent, name),
        _ => bad.invalid_value(path, &format!("{PROTO}.Schema"), v),
    }
}

/// Google's OpenAPI-subset `Schema`: recurses into properties values, items and anyOf; never
/// looks inside enum/default/example values; property names are free.
fn check_schema(s: &Map<String, Value>, path: &str, bad: &mut Bad) {
    for (k, v) in s {
        if !known(SCHEMA_FIELDS, k) {
            bad.unknown(path, k);
        } else if k == "type" {
            match v {
                Value::Array(_) => bad.not_repeating(path, k),
                _ if is_enum(v, TYPES) => {}
                _ => bad.invalid_value(&format!("{path}.type"), &format!("{PROTO}.Type"), v),
            }
        } else if k == "properties" {
            if let Value::Object(props) = v {
                for (idx, p) in props.values().enumerate() {
                    let at = format!("{path}.properties[{idx}].value");
                    match p {
                        Value::Object(ps) => check_schema(ps, &at, bad),
                        Value::Array(_) => {
                            bad.not_repeating(&format!("{path}.properties[{idx}]"), "value");
                        }
                        _ => bad.invalid_value(&at, &format!("{PROTO}.Schema"), p),
                    }
                }
            }
        } else if k == "items" {
            sub_schema(v, path, k, &format!("{path}.items"), bad);
        } else if is(k, "anyOf") {
            if let Value::Array(alts) = v {
                for (idx, a) in alts.iter().enumerate() {
                    let at = format!("{path}.any_of[{idx}]");
                    match a {
                        Value::Object(s) => check_schema(s, &at, bad),
                        _ => bad.invalid_value(&at, &format!("{PROTO}.Schema"), a),
                    }
                }
            }
        } else if k == "enum"
            && let Value::Array(values) = v
        {
            for (idx, e) in values.iter().enumerate().filter(|(_, e)| !e.is_string()) {
                bad.invalid_value(&format!("{path}.enum[{idx}]"), "TYPE_STRING", e);
            }
        }
    }
}

/// Standard or URL-safe base64, padding optional (proto3 JSON `bytes`).
fn valid_base64(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    let pad = s.len() - body.len();
    pad <= 2
        && body.len() % 4 != 1
        && (pad == 0 || s.len().is_multiple_of(4))
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_'))
}

fn check_part(p: &Value, i: usize, j: usize, bad: &mut Bad) {
    let Some(p) = p.as_object() else {
        return;
    };
    if p.len() == 1 && p.contains_key("text") {
        return;
    }
    let at = format!("contents[{i}].parts[{j}]");
    if let Some(data) = field(p, "inlineData")
        .and_then(Value::as_object)
        .and_then(|d| d.get("data"))
    {
        let path = format!("{at}.inline_data.data");
        match data.as_str() {
            Some(s) if valid_base64(s) => {}
            Some(s) => {
                let mut end = s.len().min(100);
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                let msg = format!(
                    "Invalid value at '{path}' (TYPE_BYTES), Base64 decoding failed for \"{}\"",
                    &s[..end]
                );
                bad.0.push((path, msg));
            }
            None => bad.invalid_value(&path, "TYPE_BYTES", data),
        }
    }
    let structs = [
        ("functionResponse", "function_response.response", "response"),
        ("functionCall", "function_call.args", "args"),
    ];
    for (camel, sub, key) in structs {
        let value = field(p, camel)
            .and_then(Value::as_object)
            .and_then(|o| o.get(key));
        if let Some(v) = value.filter(|v| !v.is_object()) {
            bad.invalid_value(
                &format!("{at}.{sub}"),
                "type.googleapis.com/google.protobuf.Struct",
                v,
            );
        }
    }
}

fn parts(c: &Value) -> &[Value] {
    c.get("parts")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn role(c: &Value) -> &str {
    c.get("role")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
        .unwrap_or("user")
}

fn call_of(p: &Value) -> Option<&Value> {
    p.get("functionCall").or_else(|| p.get("function_call"))
}

fn response_of(p: &Value) -> Option<&Value> {
    p.get("functionResponse")
        .or_else(|| p.get("function_response"))
}

fn count(c: &Value, f: fn(&Value) -> Option<&Value>) -> usize {
    parts(c).iter().filter(|p| f(p).is_some()).count()
}

fn valid_function_name(name: &str) -> bool {
    let b = name.as_bytes();
    (1..=64).contains(&b.len())
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b':' | b'-'))
}

/// Request-level rules that need the model name. `issued` tells whether the mock issued a
/// thought signature.
pub(crate) fn check_semantics(
    body: &Map<String, Value>,
    model: &str,
    issued: &dyn Fn(&str) -> bool,
) -> Result<(), ApiError> {
    let gen_cfg = field(body, "generationConfig").and_then(Value::as_object);
    if let Some(t) = gen_cfg
        .and_then(|g| field(g, "thinkingConfig"))
        .and_then(Value::as_object)
    {
        check_thinking(t, model)?;
    }
    if field(body, "tools").is_some() {
        check_declarations(body)?;
    }
    if let Some(g) = gen_cfg {
        if field(g, "responseSchema").is_some() && field(g, "responseJsonSchema").is_some() {
            return Err(ApiError::invalid(
                "* GenerateContentRequest.generation_config.response_json_schema: response_json_schema and response_schema are mutually exclusive; set only one of them.\n",
            ));
        }
        let json_mime = field(g, "responseMimeType")
            .and_then(Value::as_str)
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
        if json_mime && calling_mode(body).as_deref() == Some("ANY") {
            return Err(ApiError::any_mode_with_json());
        }
    }
    let contents = field(body, "contents")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    check_function_turns(contents)?;
    if model.starts_with("gemini-3") {
        check_signatures(contents, issued)?;
    }
    Ok(())
}

fn check_thinking(t: &Map<String, Value>, model: &str) -> Result<(), ApiError> {
    if let Some(level) = field(t, "thinkingLevel").and_then(Value::as_str) {
        let level = level.to_ascii_uppercase();
        if model.starts_with("gemini-2") {
            return Err(ApiError::invalid(
                "Thinking level is not supported for this model.",
            ));
        }
        // Gemini 3 Pro takes LOW/HIGH; 3.1 Pro added MEDIUM but still refuses MINIMAL.
        let refused = if model.starts_with("gemini-3-pro") {
            matches!(level.as_str(), "MINIMAL" | "MEDIUM")
        } else if model.starts_with("gemini-3.1-pro") {
            level == "MINIMAL"
        } else {
            false
        };
        if refused {
            return Err(ApiError::invalid(&format!(
                "Thinking level {level} is not supported for this model. Please retry with other thinking level."
            )));
        }
    }
    let budget = field(t, "thinkingBudget").and_then(Value::as_i64);
    if budget == Some(0) && model.starts_with("gemini-2.5-pro") {
        return Err(ApiError::invalid(
            "Budget 0 is invalid. This model only works in thinking mode.",
        ));
    }
    Ok(())
}

/// Every OBJECT schema with `properties: {}` below `path` (function parameters only).
fn empty_objects(v: &Value, path: &str, msg: &mut String) {
    let Some(s) = v.as_object() else {
        return;
    };
    let is_object = s
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.eq_ignore_ascii_case("object"));
    match s.get("properties") {
        Some(Value::Object(p)) if p.is_empty() && is_object => msg.push_str(&format!(
            "* GenerateContentRequest.{path}.properties: should be non-empty for OBJECT type\n"
        )),
        Some(Value::Object(p)) => {
            for (name, sub) in p {
                empty_objects(sub, &format!("{path}.properties[{name}]"), msg);
            }
        }
        _ => {}
    }
    if let Some(items) = s.get("items") {
        empty_objects(items, &format!("{path}.items"), msg);
    }
    if let Some(Value::Array(alts)) = field(s, "anyOf") {
        for (k, a) in alts.iter().enumerate() {
            empty_objects(a, &format!("{path}.any_of[{k}]"), msg);
        }
    }
}

fn check_declarations(body: &Map<String, Value>) -> Result<(), ApiError> {
    let mut msg = String::new();
    let tools = field(body, "tools")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    for (i, t) in tools.iter().enumerate() {
        let decls = t
            .as_object()
            .and_then(|t| field(t, "functionDeclarations"))
            .and_then(Value::as_array);
        for (j, d) in decls.into_iter().flatten().enumerate() {
            let Some(d) = d.as_object() else { continue };
            let at = format!("tools[{i}].function_declarations[{j}]");
            let name = d.get("name").and_then(Value::as_str).unwrap_or_default();
            if !valid_function_name(name) {
                msg.push_str(&format!(
                    "* GenerateContentRequest.{at}.name: {BAD_FN_NAME}\n"
                ));
            }
            let pairs = [
                (
                    "parameters",
                    "parametersJsonSchema",
                    "parameters_json_schema",
                ),
                ("response", "responseJsonSchema", "response_json_schema"),
            ];
            for (plain, json, json_snake) in pairs {
                if d.contains_key(plain) && field(d, json).is_some() {
                    msg.push_str(&format!(
                        "* GenerateContentRequest.{at}.{json_snake}: {json_snake} and {plain} are mutually exclusive; set only one of them.\n"
                    ));
                }
            }
            if let Some(p) = d.get("parameters") {
                empty_objects(p, &format!("{at}.parameters"), &mut msg);
            }
        }
    }
    if msg.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(&msg))
    }
}

/// functionResponse contents follow a model functionCall content with as many calls; a model
/// functionCall content never follows another model content; responses name their function
/// and carry an object.
fn check_function_turns(contents: &[Value]) -> Result<(), ApiError> {
    let mut msg = String::new();
    for (i, c) in contents.iter().enumerate() {
        let prev = i.checked_sub(1).and_then(|p| contents.get(p));
        let responses = count(c, response_of);
        if responses > 0 {
            let calls = prev
                .filter(|p| role(p) == "model")
                .map_or(0, |p| count(p, call_of));
            if calls != responses {
                return Err(ApiError::invalid(RESPONSE_COUNT));
            }
            for (j, p) in parts(c).iter().enumerate() {
                let Some(r) = response_of(p).and_then(Value::as_object) else {
                    continue;
                };
                let at = format!("contents[{i}].parts[{j}].function_response");
                if r.get("name")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    msg.push_str(&format!(
                        "* GenerateContentRequest.{at}.name: Name cannot be empty.\n"
                    ));
                }
                if r.get("response").is_none() {
                    msg.push_str(&format!(
                        "* GenerateContentRequest.{at}.response: response is required.\n"
                    ));
                }
            }
        }
        if role(c) == "model" && count(c, call_of) > 0 && prev.is_some_and(|p| role(p) == "model") {
            return Err(ApiError::invalid(CALL_ORDER));
        }
    }
    if msg.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(&msg))
    }
}

fn signature_of(p: &Value) -> Option<&str> {
    p.get("thoughtSignature")
        .or_else(|| p.get("thought_signature"))
        .and_then(Value::as_str)
}

/// Gemini 3: in the current turn (after the last user content with text), the first
/// functionCall part of every model content must carry a signature the mock issued.
fn check_signatures(contents: &[Value], issued: &dyn Fn(&str) -> bool) -> Result<(), ApiError> {
    let start = contents
        .iter()
        .rposition(|c| role(c) == "user" && parts(c).iter().any(|p| p.get("text").is_some()))
        .map_or(0, |i| i + 1);
    for (i, c) in contents.iter().enumerate().skip(start) {
        if role(c) != "model" {
            continue;
        }
        let Some(first) = parts(c).iter().find(|p| call_of(p).is_some()) else {
            continue;
        };
        match signature_of(first) {
            Some(s) if s == SKIP_SIGNATURE || issued(s) => {}
            Some(_) => return Err(ApiError::invalid(CORRUPTED_SIGNATURE)),
            None => {
                let name = call_of(first)
                    .and_then(|f| f.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let n = i + 1;
                return Err(ApiError::invalid(&format!(
                    "Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, and missing thought_signature may lead to degraded model performance. Additional data, function call `default_api:{name}` , position {n}. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_and_names() {
        assert!(valid_base64("aGVsbG8="));
        assert!(valid_base64("aGVsbG8"));
        assert!(valid_base64("a-_b"));
        assert!(valid_base64(""));
        assert!(!valid_base64("not base64!"));
        assert!(!valid_base64("abcde"));
        assert!(!valid_base64("aGVsbG8=="));
        assert!(valid_function_name("get_weather"));
        assert!(valid_function_name("_a.b:c-d"));
        assert!(!valid_function_name("1abc"));
        assert!(!valid_function_name("has space"));
        assert!(!valid_function_name(""));
        assert!(!valid_function_name(&"a".repeat(65)));
        assert!(valid_function_name(&"a".repeat(64)));
    }
}
