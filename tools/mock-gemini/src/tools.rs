//! What tools and output settings change in a successful answer: forced function calls
//! (`functionCallingConfig.mode: ANY`), sample arguments / JSON-mode objects drawn from a
//! schema, Google Search `groundingMetadata`, and fresh thought signatures.

use crate::generate::field;
use crate::wire::{
    Grounding, GroundingChunk, GroundingSupport, SearchEntryPoint, Segment, WebChunk,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value, json};

/// How deep sample objects are filled in (deeper objects stay `{}`).
const MAX_SAMPLE_DEPTH: usize = 3;
const REDIRECT: &str = "https://vertexaisearch.cloud.google.com/grounding-api-redirect/";
/// Literal thought signature that disables Gemini 3's replay check for a part.
pub(crate) const SKIP_SIGNATURE: &str = "skip_thought_signature_validator";

/// The parts of `tools` / `toolConfig` an answer depends on, read leniently.
#[derive(Default)]
pub(crate) struct ToolInfo<'a> {
    pub declarations: Vec<&'a Map<String, Value>>,
    pub google_search: bool,
    /// `functionCallingConfig.mode`, upper-cased.
    pub mode: Option<String>,
    pub allowed: Option<&'a str>,
}

fn tool_objects(body: &Map<String, Value>) -> impl Iterator<Item = &Map<String, Value>> {
    field(body, "tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
}

/// Whether `tools` asks for Google Search grounding (googleSearch or googleSearchRetrieval).
pub(crate) fn has_google_search(body: &Map<String, Value>) -> bool {
    tool_objects(body)
        .any(|t| field(t, "googleSearch").is_some() || field(t, "googleSearchRetrieval").is_some())
}

/// `functionCallingConfig.mode`, upper-cased.
pub(crate) fn calling_mode(body: &Map<String, Value>) -> Option<String> {
    field(body, "toolConfig")
        .and_then(Value::as_object)
        .and_then(|t| field(t, "functionCallingConfig"))
        .and_then(Value::as_object)
        .and_then(|f| field(f, "mode"))
        .and_then(Value::as_str)
        .map(str::to_ascii_uppercase)
}

impl<'a> ToolInfo<'a> {
    pub(crate) fn from_body(body: &'a Map<String, Value>) -> ToolInfo<'a> {
        if field(body, "tools").is_none() {
            return ToolInfo::default();
        }
        let mut info = ToolInfo {
            mode: calling_mode(body),
            ..ToolInfo::default()
        };
        for t in tool_objects(body) {
            info.google_search |=
                field(t, "googleSearch").is_some() || field(t, "googleSearchRetrieval").is_some();
            let decls = field(t, "functionDeclarations").and_then(Value::as_array);
            info.declarations
                .extend(decls.into_iter().flatten().filter_map(Value::as_object));
        }
        info.allowed = field(body, "toolConfig")
            .and_then(Value::as_object)
            .and_then(|t| field(t, "functionCallingConfig"))
            .and_then(Value::as_object)
            .and_then(|f| field(f, "allowedFunctionNames"))
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_str);
        info
    }

    /// With mode ANY and declarations: the call to make (first allowed function, args
    /// filled from the schema's required properties).
    pub(crate) fn forced_call(&self) -> Option<(String, Value)> {
        if self.mode.as_deref() != Some("ANY") {
            return None;
        }
        let first = self.declarations.first()?;
        let decl = match self.allowed {
            Some(name) => self
                .declarations
                .iter()
                .find(|d| d.get("name").and_then(Value::as_str) == Some(name)),
            None => Some(first),
        };
        let name = self
            .allowed
            .or_else(|| first.get("name").and_then(Value::as_str))
            .unwrap_or_default()
            .to_owned();
        let schema =
            decl.and_then(|d| field(d, "parameters").or_else(|| field(d, "parametersJsonSchema")));
        let args = match schema {
            Some(s) => sample_object(s, 0, true),
            None => Value::Object(Map::new()),
        };
        Some((name, args))
    }
}

/// The lower-case JSON type of a schema: its `type` (first non-null of a type array), else
/// "object" when it has properties, else "string".
fn schema_type(s: &Map<String, Value>) -> String {
    let ty = match s.get("type") {
        Some(Value::String(t)) => Some(t.as_str()),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| !t.eq_ignore_ascii_case("null")),
        _ => None,
    };
    match ty {
        Some(t) => t.to_ascii_lowercase(),
        None if s.contains_key("properties") => "object".to_owned(),
        None => "string".to_owned(),
    }
}

/// A sample value for a schema: string "sample", number/integer 1, boolean true, array [],
/// object filled (all properties, or only `required` ones) up to a small depth; `const` and
/// the first `enum` value win; `anyOf`/`oneOf` use the first non-null alternative.
pub(crate) fn sample(schema: &Value, depth: usize, required_only: bool) -> Value {
    let Some(s) = schema.as_object() else {
        return Value::from("sample");
    };
    if let Some(c) = s.get("const") {
        return c.clone();
    }
    if let Some(first) = s
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    let alternatives = field(s, "anyOf")
        .or_else(|| field(s, "oneOf"))
        .and_then(Value::as_array);
    if let Some(alt) = alternatives.and_then(|a| {
        a.iter().find(|v| {
            v.get("type")
                .and_then(Value::as_str)
                .is_none_or(|t| !t.eq_ignore_ascii_case("null"))
        })
    }) {
        return sample(alt, depth, required_only);
    }
    match schema_type(s).as_str() {
        "number" | "integer" => Value::from(1),
        "boolean" => Value::Bool(true),
        "array" => Value::Array(Vec::new()),
        "null" => Value::Null,
        "object" => sample_object(schema, depth, required_only),
        _ => Value::from("sample"),
    }
}

fn sample_object(schema: &Value, depth: usize, required_only: bool) -> Value {
    let mut out = Map::new();
    let props = schema.get("properties").and_then(Value::as_object);
    if depth >= MAX_SAMPLE_DEPTH {
        return Value::Object(out);
    }
    if required_only {
        let required = schema.get("required").and_then(Value::as_array);
        for name in required.into_iter().flatten().filter_map(Value::as_str) {
            let v = props
                .and_then(|p| p.get(name))
                .map_or_else(|| Value::from("sample"), |p| sample(p, depth + 1, true));
            out.insert(name.to_owned(), v);
        }
    } else {
        for (name, p) in props.into_iter().flatten() {
            out.insert(name.clone(), sample(p, depth + 1, false));
        }
    }
    Value::Object(out)
}

/// The answer text in JSON mode (`responseMimeType: application/json`), else `None`.
/// With a schema: an object of all its properties, an array of one sampled item, or a sampled
/// scalar; without one (or with a type-less schema): `{"answer": "<text>"}`.
pub(crate) fn json_answer(body: &Map<String, Value>, text: &str) -> Option<String> {
    let gen_cfg = field(body, "generationConfig").and_then(Value::as_object)?;
    let mime = field(gen_cfg, "responseMimeType").and_then(Value::as_str)?;
    if !mime
        .trim()
        .to_ascii_lowercase()
        .starts_with("application/json")
    {
        return None;
    }
    let schema = field(gen_cfg, "responseJsonSchema")
        .or_else(|| field(gen_cfg, "responseSchema"))
        .filter(|v| v.is_object());
    let value = match schema.and_then(|v| Some((v, v.as_object()?))) {
        Some((v, s)) if s.get("properties").and_then(Value::as_object).is_some() => {
            sample_object(v, 0, false)
        }
        Some((_, s)) if s.contains_key("type") && schema_type(s) == "array" => {
            let item = s
                .get("items")
                .map_or(Value::from("sample"), |i| sample(i, 1, false));
            json!([item])
        }
        Some((v, s))
            if ["type", "enum", "const", "anyOf", "any_of", "oneOf"]
                .iter()
                .any(|k| s.contains_key(*k)) =>
        {
            sample(v, 0, false)
        }
        _ => json!({ "answer": text }),
    };
    serde_json::to_string(&value).ok()
}

fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..len)
        .map(|_| char::from(ALPHABET[fastrand::usize(..ALPHABET.len())]))
        .collect()
}

/// A fresh random thought signature: base64 of 45 random bytes (60 characters).
pub(crate) fn new_signature() -> String {
    let bytes: Vec<u8> = (0..45).map(|_| fastrand::u8(..)).collect();
    B64.encode(bytes)
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// The search query the mock pretends to have run: the last user text (shortened).
fn search_query(last_user_text: &str) -> String {
    let t = last_user_text.trim();
    if t.is_empty() {
        return "mock search query".to_owned();
    }
    let mut end = t.len().min(100);
    while !t.is_char_boundary(end) {
        end -= 1;
    }
    t[..end].to_owned()
}

/// Where the grounded segment ends: the first sentence or line of `text`, at most 200 bytes.
fn first_segment_end(text: &str) -> usize {
    let cap = text.len().min(200);
    let mut end = text[..]
        .char_indices()
        .take_while(|&(i, _)| i < cap)
        .find(|&(_, c)| matches!(c, '.' | '!' | '?' | '\n'))
        .map_or(cap, |(i, c)| if c == '\n' { i } else { i + 1 });
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// `groundingMetadata` for an answer `text` to `last_user_text`, shaped like the recording.
pub(crate) fn grounding(text: &str, last_user_text: &str) -> Grounding {
    let query = search_query(last_user_text);
    let chip = format!("{REDIRECT}AUBnsY{}", random_token(120));
    let rendered_content = format!(
        "<style>\n.container {{\n  align-items: center;\n  border-radius: 8px;\n  display: flex;\n}}\n\
         .chip {{\n  display: inline-block;\n  border: solid 1px;\n  border-radius: 16px;\n}}\n</style>\n\
         <div class=\"container\">\n  <div class=\"headline\">\n  </div>\n  <div class=\"carousel\">\n    \
         <a class=\"chip\" href=\"{chip}\">{}</a>\n  </div>\n</div>\n",
        html_escape(&query)
    );
    let grounding_chunks = (0..2)
        .map(|_| GroundingChunk {
            web: WebChunk {
                uri: format!("{REDIRECT}AUBnsY{}", random_token(110)),
                title: "example.com",
            },
        })
        .collect();
    let end = first_segment_end(text);
    let grounding_supports = if end == 0 {
        Vec::new()
    } else {
        vec![GroundingSupport {
            segment: Segment {
                start_index: 0,
                end_index: end as u64,
                text: text[..end].to_owned(),
            },
            grounding_chunk_indices: vec![0],
            confidence_scores: vec![0.95],
        }]
    };
    Grounding {
        search_entry_point: SearchEntryPoint { rendered_content },
        grounding_chunks,
        grounding_supports,
        retrieval_metadata: Map::new(),
        web_search_queries: vec![query],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_follow_the_schema() {
        let schema = json!({"type": "OBJECT", "required": ["city", "days", "opts", "missing"],
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"},
                           "opts": {"type": "object", "required": ["metric"],
                                    "properties": {"metric": {"type": "boolean"}}},
                           "unit": {"type": "string", "enum": ["C", "F"]}}});
        assert_eq!(
            sample_object(&schema, 0, true),
            json!({"city": "sample", "days": 1, "opts": {"metric": true}, "missing": "sample"})
        );
        assert_eq!(
            sample_object(&schema, 0, false)["unit"],
            json!("C"),
            "first enum value"
        );
        assert_eq!(
            sample(&json!({"type": ["null", "number"]}), 0, false),
            json!(1)
        );
        assert_eq!(
            sample(
                &json!({"anyOf": [{"type": "null"}, {"type": "array"}]}),
                0,
                false
            ),
            json!([])
        );
    }

    #[test]
    fn segments_and_signatures() {
        assert_eq!(first_segment_end("Hi there. More."), 9);
        assert_eq!(first_segment_end("line one\nline two"), 8);
        assert_eq!(first_segment_end(""), 0);
        let long = "é".repeat(150);
        assert!(long.is_char_boundary(first_segment_end(&long)));
        let sig = new_signature();
        assert_eq!(sig.len(), 60);
        assert!(B64.decode(&sig).is_ok());
        assert_ne!(sig, new_signature());
    }
}
