//! Fix-ups of an already translated request, for the retries of decisions §4 (they apply to
//! the request of every dialect): the JSON-schema subset for models that refuse real JSON
//! Schema, and dropping the penalties a model does not support.

use serde_json::Value;

use crate::translate::schema;
use crate::wire::gemini::GenerateContentRequest;

/// The fallback for models that refuse real JSON Schema: `parametersJsonSchema` →
/// `parameters` and `responseJsonSchema` → `responseSchema`, both sanitised. Returns whether
/// anything changed.
pub fn use_schema_subset(request: &mut GenerateContentRequest) -> bool {
    let mut changed = false;
    if let Some(tools) = request.tools.as_mut() {
        for tool in tools.iter_mut() {
            let Some(decls) = tool
                .get_mut("functionDeclarations")
                .and_then(Value::as_array_mut)
            else {
                continue;
            };
            for decl in decls.iter_mut() {
                let Some(obj) = decl.as_object_mut() else {
                    continue;
                };
                if let Some(js) = obj.remove("parametersJsonSchema") {
                    changed = true;
                    if let Some(p) = schema::to_gemini_parameters(&js) {
                        obj.insert("parameters".into(), p);
                    }
                }
            }
        }
    }
    if let Some(cfg) = request.generation_config.as_mut()
        && let Some(js) = cfg.response_json_schema.take()
    {
        changed = true;
        cfg.response_schema = schema::to_gemini_schema(&js);
    }
    changed
}

/// Whether an upstream 400 is about the JSON-schema fields (the cue for [`use_schema_subset`]).
pub fn refuses_json_schema(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("parameters_json_schema")
        || m.contains("parametersjsonschema")
        || m.contains("response_json_schema")
        || m.contains("responsejsonschema")
}

/// Removes the penalties (the retry of decisions §4 for "Penalty is not enabled").
pub fn drop_penalties(request: &mut GenerateContentRequest) -> bool {
    let Some(cfg) = request.generation_config.as_mut() else {
        return false;
    };
    let had = cfg.presence_penalty.is_some() || cfg.frequency_penalty.is_some();
    cfg.presence_penalty = None;
    cfg.frequency_penalty = None;
    had
}
