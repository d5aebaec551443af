//! JSON Schema → Google's OpenAPI-subset `Schema`, for the fallback path
//! when a model or endpoint refuses `parametersJsonSchema`/`responseJsonSchema`. Allow-list,
//! not deny-list: `$ref`/`$defs` are inlined (cycle-safe), `const` becomes a one-value `enum`,
//! type arrays and `anyOf: [X, null]` become `nullable`, `oneOf` becomes `anyOf`, exclusive
//! bounds become inclusive ones, and every other unknown keyword is dropped. Values inside
//! `enum`, `default` and `example` are never touched; property names are kept as they are.

use serde_json::{Map, Value};

/// Keywords Google's `Schema` accepts.
const ALLOWED: [&str; 22] = [
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "items",
    "minItems",
    "maxItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "anyOf",
    "propertyOrdering",
    "default",
    "minimum",
    "maximum",
];

/// How deep `$ref` inlining and nesting may go before the rest is cut off.
const MAX_DEPTH: usize = 32;
/// How many schema nodes one conversion may produce. `$ref`s that share a definition are
/// inlined once per use, so a few KB of definitions that each point several times at the
/// next could otherwise expand exponentially; past this budget the rest is cut off.
const MAX_NODES: usize = 10_000;

/// Sanitises a JSON Schema. `None` when nothing useful remains (an object with no
/// properties, which Gemini refuses as function parameters).
pub fn to_gemini_schema(schema: &Value) -> Option<Value> {
    let defs = collect_defs(schema);
    let mut cleaner = Cleaner {
        defs: &defs,
        stack: Vec::new(),
        budget: MAX_NODES,
    };
    let out = cleaner.clean(schema, 0);
    match &out {
        Value::Object(m) if m.is_empty() => None,
        _ => Some(out),
    }
}

/// For function parameters: also drops an empty root object schema.
pub fn to_gemini_parameters(schema: &Value) -> Option<Value> {
    let out = to_gemini_schema(schema)?;
    let empty_object = out
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.eq_ignore_ascii_case("object"))
        && out
            .get("properties")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty);
    (!empty_object).then_some(out)
}

/// The definitions a schema's `$ref`s may point to (borrowed from the schema).
fn collect_defs(schema: &Value) -> Defs<'_> {
    ["$defs", "definitions"]
        .iter()
        .filter_map(|key| schema.get(key).and_then(Value::as_object))
        .flat_map(|m| m.iter().map(|(k, v)| (k.as_str(), v)))
        .collect()
}

/// Definitions by name, borrowed from the schema.
type Defs<'a> = std::collections::BTreeMap<&'a str, &'a Value>;

struct Cleaner<'a> {
    defs: &'a Defs<'a>,
    /// The `$ref`s being inlined right now (a repeat is a recursive schema).
    stack: Vec<&'a str>,
    /// Nodes this conversion may still produce ([`MAX_NODES`]).
    budget: usize,
}

impl<'a> Cleaner<'a> {
    fn resolve(&self, reference: &str) -> Option<&'a Value> {
        let name = reference.rsplit('/').next()?;
        self.defs.get(name).copied()
    }

    fn clean(&mut self, schema: &'a Value, depth: usize) -> Value {
        let Value::Object(src) = schema else {
            // `true`/`{}` schemas: anything goes; the caller decides what an empty one means.
            return Value::Object(Map::new());
        };
        if depth > MAX_DEPTH || self.budget == 0 {
            return Value::Object(Map::new());
        }
        self.budget -= 1;
        if let Some(reference) = src.get("$ref").and_then(Value::as_str) {
            if self.stack.contains(&reference) {
                // A recursive schema: stop here with an untyped object.
                let mut m = Map::new();
                m.insert("type".into(), Value::String("object".into()));
                return Value::Object(m);
            }
            if let Some(target) = self.resolve(reference) {
                self.stack.push(reference);
                let mut resolved = self.clean(target, depth + 1);
                self.stack.pop();
                // Sibling keywords (`description` next to `$ref`) win over the target's.
                if let Value::Object(r) = &mut resolved {
                    for key in ["description", "title", "default", "example"] {
                        if let Some(v) = src.get(key) {
                            r.insert(key.into(), v.clone());
                        }
                    }
                }
                return resolved;
            }
        }
        self.clean_object(src, depth)
    }

    fn clean_object(&mut self, src: &'a Map<String, Value>, depth: usize) -> Value {
        let mut out = Map::new();
        let mut nullable = src
            .get("nullable")
            .and_then(Value::as_bool)
            .unwrap_or(false);

        // `type` may be a list: null becomes `nullable`, several others become `anyOf`.
        let mut any_of_types: Vec<String> = Vec::new();
        match src.get("type") {
            Some(Value::String(t)) if t == "null" => nullable = true,
            Some(Value::String(t)) => {
                out.insert("type".into(), Value::String(t.clone()));
            }
            Some(Value::Array(types)) => {
                let names: Vec<String> = types
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect();
                nullable |= names.iter().any(|t| t == "null");
                let real: Vec<String> = names.into_iter().filter(|t| t != "null").collect();
                match real.len() {
                    0 => {}
                    1 => {
                        out.insert("type".into(), Value::String(real[0].clone()));
                    }
                    _ => any_of_types = real,
                }
            }
            _ => {}
        }

        // `const` → a one-value enum.
        if let Some(c) = src.get("const") {
            out.insert("enum".into(), Value::Array(vec![enum_value(c)]));
            if !out.contains_key("type") {
                out.insert("type".into(), Value::String("string".into()));
            }
        }
        if let Some(Value::Array(values)) = src.get("enum") {
            let values: Vec<Value> = values
                .iter()
                .filter(|v| !v.is_null())
                .map(enum_value)
                .filter(|v| v.as_str() != Some(""))
                .collect();
            nullable |= src
                .get("enum")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(Value::is_null));
            if !values.is_empty() {
                out.insert("enum".into(), Value::Array(values));
                // Gemini's enums are strings.
                out.insert("type".into(), Value::String("string".into()));
            }
        }

        // anyOf / oneOf, with `{type: null}` members turned into `nullable`.
        let mut branches: Vec<Value> = Vec::new();
        for key in ["anyOf", "oneOf"] {
            if let Some(Value::Array(list)) = src.get(key) {
                for b in list {
                    if b.get("type").and_then(Value::as_str) == Some("null")
                        && b.as_object().is_some_and(|m| m.len() == 1)
                    {
                        nullable = true;
                    } else {
                        branches.push(self.clean(b, depth + 1));
                    }
                }
            }
        }
        for t in any_of_types {
            let mut m = Map::new();
            m.insert("type".into(), Value::String(t));
            branches.push(Value::Object(m));
        }
        // allOf: merge the members into this schema.
        if let Some(Value::Array(all)) = src.get("allOf") {
            for member in all {
                if let Value::Object(m) = self.clean(member, depth + 1) {
                    merge_into(&mut out, m);
                }
            }
        }
        match branches.len() {
            0 => {}
            1 => {
                if let Some(Value::Object(m)) = branches.pop() {
                    merge_into(&mut out, m);
                }
            }
            _ => {
                out.insert("anyOf".into(), Value::Array(branches));
            }
        }

        for (key, value) in src {
            match key.as_str() {
                "type" | "enum" | "const" | "anyOf" | "oneOf" | "allOf" | "nullable" => {}
                "properties" => {
                    if let Value::Object(props) = value {
                        let cleaned: Map<String, Value> = props
                            .iter()
                            .map(|(name, p)| (name.clone(), self.clean(p, depth + 1)))
                            .collect();
                        if !cleaned.is_empty() {
                            out.insert("properties".into(), Value::Object(cleaned));
                        }
                    }
                }
                "items" => {
                    let items = match value {
                        Value::Array(tuple) => tuple.first().map(|t| self.clean(t, depth + 1)),
                        other => Some(self.clean(other, depth + 1)),
                    };
                    let items = items.map(|i| match i {
                        Value::Object(m) if m.is_empty() => {
                            let mut m = Map::new();
                            m.insert("type".into(), Value::String("string".into()));
                            Value::Object(m)
                        }
                        other => other,
                    });
                    if let Some(items) = items {
                        out.insert("items".into(), items);
                    }
                }
                "required" => {
                    if let Value::Array(names) = value {
                        out.insert(
                            "required".into(),
                            Value::Array(names.iter().filter(|n| n.is_string()).cloned().collect()),
                        );
                    }
                }
                "format" => {
                    if let Some(f) = value.as_str()
                        && matches!(
                            f,
                            "enum" | "date-time" | "int32" | "int64" | "float" | "double"
                        )
                    {
                        out.insert("format".into(), value.clone());
                    }
                }
                "exclusiveMinimum" if value.is_number() => {
                    out.entry("minimum").or_insert_with(|| value.clone());
                }
                "exclusiveMaximum" if value.is_number() => {
                    out.entry("maximum").or_insert_with(|| value.clone());
                }
                "examples" => {
                    if let Some(first) = value.as_array().and_then(|a| a.first()) {
                        out.entry("example").or_insert_with(|| first.clone());
                    }
                }
                k if ALLOWED.contains(&k) => {
                    out.insert(key.clone(), value.clone());
                }
                _ => {}
            }
        }

        // `required` may only name existing properties.
        if let Some(Value::Array(req)) = out.get("required").cloned() {
            let props = out.get("properties").and_then(Value::as_object);
            let kept: Vec<Value> = req
                .into_iter()
                .filter(|r| {
                    r.as_str()
                        .is_some_and(|n| props.is_some_and(|p| p.contains_key(n)))
                })
                .collect();
            if kept.is_empty() {
                out.remove("required");
            } else {
                out.insert("required".into(), Value::Array(kept));
            }
        }
        // An object type with properties is implied when only properties were given.
        if out.contains_key("properties") && !out.contains_key("type") && !out.contains_key("anyOf")
        {
            out.insert("type".into(), Value::String("object".into()));
        }
        // Gemini's `format` on a string other than enum/date-time is refused.
        if out.get("type").and_then(Value::as_str) == Some("string")
            && out
                .get("format")
                .and_then(Value::as_str)
                .is_some_and(|f| !matches!(f, "enum" | "date-time"))
        {
            out.remove("format");
        }
        if out.contains_key("anyOf") {
            // With anyOf, Gemini (Vertex) refuses most siblings: keep only descriptive ones.
            out.retain(|k, _| matches!(k.as_str(), "anyOf" | "description" | "title" | "nullable"));
        }
        if nullable {
            out.insert("nullable".into(), Value::Bool(true));
        }
        Value::Object(out)
    }
}

fn merge_into(out: &mut Map<String, Value>, add: Map<String, Value>) {
    for (k, v) in add {
        match (k.as_str(), out.get_mut(&k), v) {
            ("properties", Some(Value::Object(existing)), Value::Object(more)) => {
                for (pk, pv) in more {
                    existing.insert(pk, pv);
                }
            }
            ("required", Some(Value::Array(existing)), Value::Array(more)) => {
                for r in more {
                    if !existing.contains(&r) {
                        existing.push(r);
                    }
                }
            }
            (_, Some(_), _) => {}
            (_, None, v) => {
                out.insert(k, v);
            }
        }
    }
}

fn enum_value(v: &Value) -> Value {
    match v {
        Value::String(_) => v.clone(),
        other => Value::String(other.to_string()),
    }
}

/// Keywords of a cleaned schema that Google would refuse (for tests: must always be empty).
pub fn unknown_keywords(schema: &Value) -> Vec<String> {
    let mut found = Vec::new();
    walk(schema, &mut found);
    found
}

fn walk(schema: &Value, found: &mut Vec<String>) {
    let Value::Object(m) = schema else { return };
    for (k, v) in m {
        if !ALLOWED.contains(&k.as_str()) {
            found.push(k.clone());
        }
        match k.as_str() {
            "properties" => {
                if let Value::Object(props) = v {
                    for p in props.values() {
                        walk(p, found);
                    }
                }
            }
            "items" => walk(v, found),
            "anyOf" => {
                if let Value::Array(list) = v {
                    for b in list {
                        walk(b, found);
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(t) = m.get("type")
        && !t.is_string()
    {
        found.push("type (not a string)".into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strict_mode_leftovers_are_removed() {
        let s = json!({"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "additionalProperties": false,
            "properties": {"city": {"type": "string", "title": "City"}, "unit": {"type": ["string", "null"], "enum": ["c", "f", null]}},
            "required": ["city", "unit", "ghost"]});
        let out = to_gemini_parameters(&s).expect("kept");
        assert!(unknown_keywords(&out).is_empty(), "{out}");
        assert_eq!(
            out["properties"]["unit"],
            json!({"type": "string", "enum": ["c", "f"], "nullable": true})
        );
        assert_eq!(out["required"], json!(["city", "unit"]));
    }

    #[test]
    fn refs_are_inlined_and_cycles_stop() {
        let s = json!({"type": "object", "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}, "v": {"type": "integer"}}}},
            "properties": {"root": {"$ref": "#/$defs/Node", "description": "the root"}}});
        let out = to_gemini_parameters(&s).expect("kept");
        assert!(unknown_keywords(&out).is_empty(), "{out}");
        assert_eq!(out["properties"]["root"]["description"], "the root");
        assert_eq!(
            out["properties"]["root"]["properties"]["v"]["type"],
            "integer"
        );
        assert_eq!(
            out["properties"]["root"]["properties"]["next"]["type"],
            "object"
        );
    }

    /// 16 definitions, each with 4 properties pointing at the next: 4^16 nodes if every use
    /// were inlined. The conversion stops at its node budget instead.
    #[test]
    fn shared_refs_cannot_expand_exponentially() {
        let mut defs = serde_json::Map::new();
        for i in 0..16 {
            let next = json!({"$ref": format!("#/$defs/D{}", i + 1)});
            let props: serde_json::Map<String, Value> =
                (0..4).map(|p| (format!("p{p}"), next.clone())).collect();
            defs.insert(
                format!("D{i}"),
                json!({"type": "object", "properties": props}),
            );
        }
        defs.insert("D16".into(), json!({"type": "string"}));
        let s = json!({"$defs": defs, "type": "object", "properties": {"root": {"$ref": "#/$defs/D0"}}});
        let out = to_gemini_schema(&s).expect("something is left");
        fn count(v: &Value) -> usize {
            match v {
                Value::Object(m) => 1 + m.values().map(count).sum::<usize>(),
                Value::Array(a) => a.iter().map(count).sum(),
                _ => 0,
            }
        }
        let nodes = count(&out);
        assert!(nodes < 4 * MAX_NODES, "bounded output: {nodes} nodes");
        assert_eq!(
            out["properties"]["root"]["properties"]["p0"]["type"],
            "object"
        );
    }

    #[test]
    fn const_any_of_one_of_and_bounds() {
        let s = json!({"type": "object", "properties": {
            "kind": {"const": "x"},
            "n": {"type": "number", "exclusiveMinimum": 0, "multipleOf": 2},
            "v": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "w": {"oneOf": [{"type": "string"}, {"type": "integer"}], "description": "either"},
            "arr": {"type": "array", "items": {}, "uniqueItems": true},
            "when": {"type": "string", "format": "uri"}
        }});
        let out = to_gemini_parameters(&s).expect("kept");
        assert!(unknown_keywords(&out).is_empty(), "{out}");
        let p = &out["properties"];
        assert_eq!(p["kind"], json!({"enum": ["x"], "type": "string"}));
        assert_eq!(p["n"], json!({"type": "number", "minimum": 0}));
        assert_eq!(p["v"], json!({"type": "string", "nullable": true}));
        assert_eq!(p["w"]["anyOf"].as_array().map(Vec::len), Some(2));
        assert_eq!(p["arr"]["items"], json!({"type": "string"}));
        assert!(p["when"].get("format").is_none());
    }

    #[test]
    fn empty_object_parameters_are_dropped() {
        assert!(to_gemini_parameters(&json!({"type": "object", "properties": {}})).is_none());
        assert!(
            to_gemini_parameters(&json!({"type": "object", "additionalProperties": false}))
                .is_none()
        );
    }

    #[test]
    fn property_names_that_look_like_keywords_are_kept() {
        let s = json!({"type": "object", "properties": {"format": {"type": "string"}, "type": {"type": "string"}}});
        let out = to_gemini_parameters(&s).expect("kept");
        assert!(
            out["properties"].get("format").is_some() && out["properties"].get("type").is_some()
        );
    }

    #[test]
    fn the_recorded_draft07_schema_cleans_to_the_subset() {
        let text = std::fs::read_to_string(format!(
            "{}/tests/fixtures/gemini/generateContent.request.responseJsonSchema-draft07.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("fixture");
        let req: Value = serde_json::from_str(&text).expect("json");
        let schema = &req["generationConfig"]["responseJsonSchema"];
        let out = to_gemini_schema(schema).expect("kept");
        assert!(unknown_keywords(&out).is_empty(), "{out}");
    }
}
