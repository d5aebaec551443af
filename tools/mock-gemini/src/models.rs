//! The model catalogue: the default list (recorded page 1 + modern models), lookup by name,
//! capability queries (thinking, supported methods) and models.list pagination with
//! opaque base64 page tokens.

use crate::wire::{ApiError, pretty};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::HashMap;

const PAGE1: &str = include_str!("../../../tests/fixtures/gemini/models.list.response.page1.json");

const MODERN: &str = r#"[
{"name": "models/gemini-2.5-flash", "version": "001", "displayName": "Gemini 2.5 Flash",
 "description": "Stable version of Gemini 2.5 Flash, our mid-size multimodal model that supports up to 1 million tokens, released in June of 2025.",
 "inputTokenLimit": 1048576, "outputTokenLimit": 65536,
 "supportedGenerationMethods": ["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"],
 "temperature": 1, "topP": 0.95, "topK": 64, "maxTemperature": 2, "thinking": true},
{"name": "models/gemini-2.5-pro", "version": "2.5", "displayName": "Gemini 2.5 Pro",
 "description": "Stable release (June 17th, 2025) of Gemini 2.5 Pro",
 "inputTokenLimit": 1048576, "outputTokenLimit": 65536,
 "supportedGenerationMethods": ["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"],
 "temperature": 1, "topP": 0.95, "topK": 64, "maxTemperature": 2, "thinking": true},
{"name": "models/gemini-2.5-flash-lite", "version": "001", "displayName": "Gemini 2.5 Flash-Lite",
 "description": "Stable version of Gemini 2.5 Flash-Lite, released in July of 2025",
 "inputTokenLimit": 1048576, "outputTokenLimit": 65536,
 "supportedGenerationMethods": ["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"],
 "temperature": 1, "topP": 0.95, "topK": 64, "maxTemperature": 2, "thinking": true},
{"name": "models/gemini-3-pro-preview", "version": "3-pro-preview-11-2025", "displayName": "Gemini 3 Pro Preview",
 "description": "Gemini 3 Pro Preview", "inputTokenLimit": 1048576, "outputTokenLimit": 65536,
 "supportedGenerationMethods": ["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"],
 "temperature": 1, "topP": 0.95, "topK": 64, "maxTemperature": 2, "thinking": true},
{"name": "models/gemini-3-flash-preview", "version": "3-flash-preview-12-2025", "displayName": "Gemini 3 Flash Preview",
 "description": "Gemini 3 Flash Preview", "inputTokenLimit": 1048576, "outputTokenLimit": 65536,
 "supportedGenerationMethods": ["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"],
 "temperature": 1, "topP": 0.95, "topK": 64, "maxTemperature": 2, "thinking": true},
{"name": "models/gemini-2.0-flash-exp", "version": "2.0", "displayName": "Gemini 2.0 Flash Experimental",
 "description": "Gemini 2.0 Flash Experimental", "inputTokenLimit": 1048576, "outputTokenLimit": 8192,
 "supportedGenerationMethods": ["generateContent", "countTokens", "bidiGenerateContent"],
 "temperature": 1, "topP": 0.95, "topK": 40, "maxTemperature": 2},
{"name": "models/gemini-embedding-001", "version": "001", "displayName": "Gemini Embedding 001",
 "description": "Obtain a distributed representation of a text.", "inputTokenLimit": 2048, "outputTokenLimit": 1,
 "supportedGenerationMethods": ["embedContent", "countTextTokens", "countTokens"]}
]"#;

pub(crate) const DEFAULT_PAGE_SIZE: usize = 50;
const MAX_PAGE_SIZE: usize = 1000;

/// One model: its JSON object plus what the mock needs to answer quickly.
pub(crate) struct Model {
    /// Name without the `models/` prefix.
    pub name: String,
    pub thinking: bool,
    methods: Option<Vec<String>>,
    /// Pretty JSON of the object at indent level 0 (models.get body).
    pub pretty: String,
}

impl Model {
    /// Whether `action` may be called on this model (unknown method lists allow everything).
    pub(crate) fn supports(&self, action: &str) -> bool {
        let needed = match action {
            "streamGenerateContent" => "generateContent",
            "batchEmbedContents" => "embedContent",
            other => other,
        };
        self.methods
            .as_ref()
            .is_none_or(|m| m.iter().any(|x| x == needed))
    }
}

#[derive(Default)]
pub(crate) struct ModelStore {
    pub list: Vec<Model>,
    index: HashMap<String, usize>,
}

impl ModelStore {
    pub(crate) fn new(values: Vec<Value>) -> ModelStore {
        ModelStore::build(
            values
                .into_iter()
                .map(|v| (String::from_utf8(pretty(&v)).unwrap_or_default(), v)),
        )
    }

    /// The recorded page 1 plus the modern models, keeping Google's field order.
    pub(crate) fn default_store() -> ModelStore {
        #[derive(serde::Deserialize)]
        struct Page<'a> {
            #[serde(borrow)]
            models: Vec<&'a RawValue>,
        }
        let page1 = serde_json::from_str::<Page<'_>>(PAGE1)
            .map(|p| p.models)
            .unwrap_or_default();
        let modern = serde_json::from_str::<Vec<&RawValue>>(MODERN).unwrap_or_default();
        let raws = page1.into_iter().chain(modern);
        ModelStore::build(
            raws.filter_map(|r| Some((repretty(r.get()), serde_json::from_str(r.get()).ok()?))),
        )
    }

    fn build(models: impl Iterator<Item = (String, Value)>) -> ModelStore {
        let mut store = ModelStore::default();
        for (pretty, v) in models {
            let Some(full) = v.get("name").and_then(Value::as_str) else {
                continue;
            };
            let name = full.strip_prefix("models/").unwrap_or(full).to_owned();
            let thinking = v.get("thinking").and_then(Value::as_bool).unwrap_or(false)
                || name.starts_with("gemini-2.5")
                || name.starts_with("gemini-3");
            let methods = v
                .get("supportedGenerationMethods")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                });
            store.index.insert(name.clone(), store.list.len());
            store.list.push(Model {
                name,
                thinking,
                methods,
                pretty,
            });
        }
        store
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Model> {
        self.index
            .get(name.strip_prefix("models/").unwrap_or(name))
            .and_then(|&i| self.list.get(i))
    }

    /// models.list body for `pageSize`/`pageToken` (raw, already percent-decoded query values).
    pub(crate) fn page(
        &self,
        page_size: Option<&str>,
        page_token: Option<&str>,
    ) -> Result<Vec<u8>, ApiError> {
        let size = match page_size.map(str::parse::<i64>) {
            None => DEFAULT_PAGE_SIZE,
            Some(Ok(n)) if n <= 0 => DEFAULT_PAGE_SIZE,
            Some(Ok(n)) => usize::try_from(n)
                .unwrap_or(MAX_PAGE_SIZE)
                .min(MAX_PAGE_SIZE),
            Some(Err(_)) => {
                return Err(ApiError::invalid(
                    "Invalid value at 'page_size' (TYPE_INT32), Base-10 string expected",
                ));
            }
        };
        let offset = match page_token.filter(|t| !t.is_empty()) {
            None => 0,
            Some(t) => decode_token(t)
                .filter(|&o| o <= self.list.len())
                .ok_or_else(|| ApiError::invalid("Invalid page token."))?,
        };
        let end = offset.saturating_add(size).min(self.list.len());
        let mut out = String::with_capacity(64 + (end - offset) * 600);
        out.push_str("{\n  \"models\": [");
        for (i, m) in self.list[offset..end].iter().enumerate() {
            out.push_str(if i == 0 { "\n    " } else { ",\n    " });
            out.push_str(&m.pretty.replace('\n', "\n    "));
        }
        out.push_str(if end > offset { "\n  ]" } else { "]" });
        if end < self.list.len() {
            out.push_str(",\n  \"nextPageToken\": \"");
            out.push_str(&encode_token(end));
            out.push('"');
        }
        out.push_str("\n}");
        Ok(out.into_bytes())
    }
}

/// Re-indents valid JSON text Google-style (2 spaces, `": "`), keeping the field order.
fn repretty(src: &str) -> String {
    let mut out = String::with_capacity(src.len() * 2);
    let mut depth = 0usize;
    let (mut in_str, mut escaped) = (false, false);
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.extend(std::iter::repeat_n("  ", depth));
    };
    let mut chars = src.chars().peekable();
    while let Some(c) = chars.next() {
        if in_str {
            out.push(c);
            (in_str, escaped) = (escaped || c != '"', !escaped && c == '\\');
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                while chars.next_if(|c| c.is_ascii_whitespace()).is_some() {}
                if let Some(close) = chars.next_if(|&n| n == '}' || n == ']') {
                    out.push(close);
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(',');
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_ascii_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

/// base64 of `offset=N` padded with spaces so the token always ends in `=` like Google's.
pub(crate) fn encode_token(offset: usize) -> String {
    let mut plain = format!("offset={offset}");
    while plain.len() % 3 != 1 {
        plain.push(' ');
    }
    B64.encode(plain)
}

fn decode_token(token: &str) -> Option<usize> {
    let bytes = B64.decode(token.trim()).ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    text.trim_end().strip_prefix("offset=")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_catalogue() {
        let store = ModelStore::default_store();
        let get = include_str!("../../../tests/fixtures/gemini/models.get.response.json");
        let v: Value = serde_json::from_str(get).unwrap_or_default();
        assert_eq!(repretty(get).trim_end(), get.trim_end());
        assert_eq!(
            repretty(&serde_json::to_string(&v).unwrap_or_default()),
            String::from_utf8(pretty(&v)).unwrap_or_default()
        );
        assert_eq!(
            repretty(r#"{"a": [ ], "b": "x\\\"{,"}"#),
            "{\n  \"a\": [],\n  \"b\": \"x\\\\\\\"{,\"\n}"
        );
        assert_eq!(store.list.len(), 57);
        assert!(store.get("gemini-2.5-flash").is_some_and(|m| m.thinking));
        assert!(
            store
                .get("models/gemini-2.0-flash")
                .is_some_and(|m| !m.thinking)
        );
        assert!(
            store
                .get("gemini-embedding-001")
                .is_some_and(|m| m.supports("batchEmbedContents"))
        );
        assert!(
            store
                .get("gemini-embedding-001")
                .is_some_and(|m| !m.supports("generateContent"))
        );
        let t = encode_token(50);
        assert!(t.ends_with('='), "{t}");
        assert_eq!(decode_token(&t), Some(50));
        assert_eq!(decode_token("!!"), None);
    }
}
