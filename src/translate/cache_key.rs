//! Response-cache keys, hashed from the request's own values as they are serialised (nothing
//! is built or copied, images included): what a key covers is what may change the answer
//! (decisions §6) — the model, the system instruction, the messages taken into account (the
//! last `CALCULATE_CACHE_ENTRIES`, or all with `PRECISE_CACHE`), every generation parameter,
//! the tools and the full content of inline images.

use std::borrow::Cow;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use xxhash_rust::xxh64::Xxh64;

use crate::wire::gemini::{Content, GenerateContentRequest, GenerationConfig};
use crate::wire::openai::{ChatMessage, ChatRequest};

/// Which messages a key takes into account.
#[derive(Clone, Copy, Debug)]
pub struct KeyRule {
    /// `CALCULATE_CACHE_ENTRIES`: the last this many messages.
    pub last_n: usize,
    /// `PRECISE_CACHE`: every message.
    pub precise: bool,
}

/// Feeds everything written to it into xxh64: a key is hashed from the request's own values
/// as they are serialised, without building or copying anything (images included).
struct HashWriter(Xxh64);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl HashWriter {
    fn for_model(model: &str) -> Self {
        let mut hasher = Xxh64::new(0);
        hasher.update(model.as_bytes());
        hasher.update(&[0]);
        Self(hasher)
    }

    fn json(&mut self, value: &impl Serialize) {
        if serde_json::to_writer(&mut *self, value).is_err() {
            self.0.update(b"?");
        }
    }
}

/// What an OpenAI chat request's key covers, borrowed from the request.
#[derive(Serialize)]
struct ChatKey<'a> {
    /// Every field but `model`, `messages` and streaming (`ChatRequest`'s `Serialize`).
    params: &'a ChatRequest,
    system: Vec<SystemMessage<'a>>,
    messages: &'a [&'a ChatMessage],
}

#[derive(Serialize)]
struct SystemMessage<'a> {
    message: &'a ChatMessage,
    /// For a system message after the conversation began (sent as a user turn at its
    /// place): how many other messages follow it, so its position counts too.
    depth: Option<usize>,
}

fn is_system(m: &ChatMessage) -> bool {
    matches!(m.role.as_str(), "system" | "developer")
}

/// The cache key of an OpenAI chat request: the model, every system/developer message (and
/// the place of those after the first turn), the last `last_n` other messages (all when
/// `precise`), and every other field but streaming. Remote images count by their URL, inline
/// ones by their full content.
pub fn openai_key(req: &ChatRequest, last_n: usize, precise: bool) -> u64 {
    let leading = req.messages.iter().take_while(|m| is_system(m)).count();
    let others: Vec<&ChatMessage> = req.messages.iter().filter(|m| !is_system(m)).collect();
    let mut after = others.len();
    let mut system = Vec::new();
    for (i, m) in req.messages.iter().enumerate() {
        if is_system(m) {
            system.push(SystemMessage {
                message: m,
                depth: (i >= leading).then_some(after),
            });
        } else {
            after -= 1;
        }
    }
    let tail = if precise {
        &others[..]
    } else {
        &others[others.len().saturating_sub(last_n)..]
    };
    let mut w = HashWriter::for_model(&req.model);
    w.json(&ChatKey {
        params: req,
        system,
        messages: tail,
    });
    w.0.digest()
}

/// A native body's top level, borrowed: its contents and every other member as written.
struct NativeBody<'a> {
    contents: Vec<&'a RawValue>,
    others: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'de> Deserialize<'de> for NativeBody<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NativeBody<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut body = NativeBody {
                    contents: Vec::new(),
                    others: Vec::new(),
                };
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    if key == "contents" {
                        body.contents = map
                            .next_value::<Option<Vec<&'de RawValue>>>()?
                            .unwrap_or_default();
                    } else {
                        body.others.push((key, map.next_value()?));
                    }
                }
                Ok(body)
            }
        }
        d.deserialize_map(V)
    }
}

/// The cache key of a native `generateContent` body: the model, the last `last_n` contents
/// (all when `precise`), and every other member, each hashed as the client wrote it (members
/// in sorted order). `None` when the body is not a JSON object.
pub fn native_key(model: &str, body: &[u8], last_n: usize, precise: bool) -> Option<u64> {
    let mut parsed: NativeBody<'_> = serde_json::from_slice(body).ok()?;
    parsed.others.sort_by(|a, b| a.0.cmp(&b.0));
    let tail = if precise {
        &parsed.contents[..]
    } else {
        &parsed.contents[parsed.contents.len().saturating_sub(last_n)..]
    };
    let mut w = HashWriter::for_model(model);
    for (key, raw) in &parsed.others {
        w.0.update(key.as_bytes());
        w.0.update(&[0]);
        w.0.update(raw.get().as_bytes());
        w.0.update(&[0]);
    }
    w.0.update(b"contents\0");
    for raw in tail {
        w.0.update(raw.get().as_bytes());
        w.0.update(&[0]);
    }
    Some(w.0.digest())
}

/// What a translated request's key covers, borrowed from it.
#[derive(Serialize)]
struct TranslatedKey<'a> {
    system: Option<&'a Content>,
    tools: Option<&'a Vec<serde_json::Value>>,
    tool_config: Option<&'a serde_json::Value>,
    generation_config: Option<&'a GenerationConfig>,
    contents: &'a [Content],
}

/// The cache key of a request translated to Gemini (dialects whose wire types are parsed
/// loosely, such as Anthropic Messages): the model, the system instruction, the tools, the
/// generation config and the last `last_n` contents (all when `precise`), inline data in
/// full. Taken before the proxy's own additions (`RANDOM_STRING` filler), which change
/// nothing the client asked.
pub fn translated_key(model: &str, req: &GenerateContentRequest, rule: KeyRule) -> u64 {
    let tail = if rule.precise {
        &req.contents[..]
    } else {
        &req.contents[req.contents.len().saturating_sub(rule.last_n)..]
    };
    let mut w = HashWriter::for_model(model);
    w.json(&TranslatedKey {
        system: req.system_instruction.as_ref(),
        tools: req.tools.as_ref(),
        tool_config: req.tool_config.as_ref(),
        generation_config: req.generation_config.as_ref(),
        contents: tail,
    });
    w.0.digest()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn key_of(body: &Value, last_n: usize, precise: bool) -> u64 {
        let req: ChatRequest = serde_json::from_value(body.clone()).expect("a chat request");
        openai_key(&req, last_n, precise)
    }

    #[test]
    fn keys_cover_what_changes_the_answer_and_ignore_what_does_not() {
        let base = json!({"model": "m", "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "a"}, {"role": "user", "content": "b"}], "temperature": 0.5});
        let k = key_of(&base, 6, false);
        let mut v = base.clone();
        v["stream"] = json!(true);
        v["stream_options"] = json!({"include_usage": true});
        assert_eq!(
            key_of(&v, 6, false),
            k,
            "streaming does not change the answer"
        );
        for change in [
            json!({"temperature": 0.6}),
            json!({"tools": [{"type": "function", "function": {"name": "f"}}]}),
            json!({"model": "n"}),
            json!({"include_reasoning": false}),
        ] {
            let mut v = base.clone();
            for (key, val) in change.as_object().into_iter().flatten() {
                v[key] = val.clone();
            }
            assert_ne!(key_of(&v, 6, false), k, "{change}");
        }
        let mut v = base.clone();
        v["messages"][0]["content"] = json!("T");
        assert_ne!(
            key_of(&v, 1, false),
            k,
            "the system message counts even outside the last N"
        );
        let at = |messages: Value| key_of(&json!({"model": "m", "messages": messages}), 6, false);
        assert_ne!(
            at(
                json!([{"role": "user", "content": "a"}, {"role": "system", "content": "note"}, {"role": "user", "content": "b"}])
            ),
            at(
                json!([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}, {"role": "system", "content": "note"}])
            ),
            "a later system message is sent at its position, so its position counts"
        );
        let img = |data: &str| json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": format!("data:image/png;base64,iVBORw0KGgoAAAANSUhEUg{data}")}}]}]});
        assert_ne!(
            key_of(&img("AAAA"), 6, false),
            key_of(&img("BBBB"), 6, false),
            "full image content (HAJIMI hashed 32 chars)"
        );
        let old = json!({"model": "m", "messages": [{"role": "user", "content": "old"}, {"role": "user", "content": "b"}]});
        let new = json!({"model": "m", "messages": [{"role": "user", "content": "new"}, {"role": "user", "content": "b"}]});
        assert_eq!(
            key_of(&old, 1, false),
            key_of(&new, 1, false),
            "only the last N messages"
        );
        assert_ne!(
            key_of(&old, 1, true),
            key_of(&new, 1, true),
            "PRECISE_CACHE takes all"
        );
    }

    #[test]
    fn a_later_system_message_counts_with_its_place() {
        let at = |depth: usize| {
            let mut messages: Vec<Value> = (0..4)
                .map(|i| json!({"role": "user", "content": format!("m{i}")}))
                .collect();
            messages.insert(4 - depth, json!({"role": "system", "content": "note"}));
            json!({"model": "m", "messages": messages})
        };
        assert_ne!(key_of(&at(1), 6, false), key_of(&at(2), 6, false));
        assert_eq!(key_of(&at(1), 6, false), key_of(&at(1), 6, false));
    }

    #[test]
    fn native_keys_cover_the_last_contents_and_every_other_member() {
        let body = |first: &str, temp: f64| {
            json!({"generationConfig": {"temperature": temp}, "contents": [
                {"role": "user", "parts": [{"text": first}]},
                {"role": "user", "parts": [{"text": "last"}]}]})
            .to_string()
        };
        let key = |b: &str, n: usize, precise: bool| native_key("m", b.as_bytes(), n, precise);
        let k = key(&body("a", 0.5), 1, false);
        assert!(k.is_some());
        assert_eq!(
            key(&body("b", 0.5), 1, false),
            k,
            "only the last N contents"
        );
        assert_ne!(key(&body("b", 0.5), 1, true), key(&body("a", 0.5), 1, true));
        assert_ne!(key(&body("a", 0.6), 1, false), k, "parameters count");
        assert_ne!(
            native_key("n", body("a", 0.5).as_bytes(), 1, false),
            k,
            "model"
        );
        let v: Value = serde_json::from_str(&body("a", 0.5)).expect("json");
        let reordered = format!(
            r#"{{"generationConfig": {}, "contents": {}}}"#,
            v["generationConfig"], v["contents"]
        );
        assert_eq!(
            key(&reordered, 1, false),
            k,
            "top-level order does not matter"
        );
        assert_eq!(native_key("m", b"[1]", 1, false), None);
    }
}
