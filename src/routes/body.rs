//! Request bodies: bounded by `MAX_BODY_SIZE` (413 before reading when `Content-Length`
//! says so), bounded in what they may expand to once parsed (`MAX_MESSAGES`,
//! `MAX_CONTENT_PARTS` and [`MAX_JSON_ITEMS`], counted by a scan that stops at the first
//! limit, before anything is built), and parsed as JSON with a clear 400 naming what is wrong.

use std::fmt;

use axum::body::Body;
use axum::http::{HeaderMap, header};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use serde::de::{DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use crate::config::Settings;
use crate::error::GatewayError;

/// Reads the whole body into one buffer, sized from `Content-Length` when it is declared, so
/// the body is held once (not as received chunks plus a joined copy).
pub async fn read_limited(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
) -> Result<Bytes, GatewayError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(GatewayError::PayloadTooLarge { limit });
    }
    let mut body = body;
    let mut buf = BytesMut::with_capacity(
        declared
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(0)
            .min(limit),
    );
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| {
            GatewayError::bad_request("读取请求体失败 / Could not read the request body")
        })?;
        let Ok(chunk) = frame.into_data() else {
            continue; // trailers
        };
        if buf.len() + chunk.len() > limit {
            return Err(GatewayError::PayloadTooLarge { limit });
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, GatewayError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(GatewayError::bad_request(
            "请求体为空 / The request body is empty; a JSON object is expected",
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        GatewayError::bad_request(format!(
            "请求体不是有效的 JSON：{e} / Invalid JSON body: {e}"
        ))
    })
}

/// [`check_items`], then [`parse_json`]: nothing is built for a body over a limit.
pub fn parse_bounded<T: DeserializeOwned>(
    bytes: &[u8],
    shape: Shape,
    limits: ItemLimits,
) -> Result<T, GatewayError> {
    check_items(bytes, shape, limits)?;
    parse_json(bytes)
}

/// Array elements and object members a body may hold besides its messages and parts (tool
/// schemas, response formats, `extra_body`, function arguments, members of messages and
/// parts…). A backstop for the fields parsed as free-form JSON: real requests stay far below
/// (OpenAI allows 128 tools; a request at both default limits holds ~300,000 items), while one
/// item costs up to ~100 bytes once parsed, so this bounds them at ~100 MB.
pub const MAX_JSON_ITEMS: usize = 1_000_000;

/// How many messages and content parts one request may hold (`MAX_MESSAGES`,
/// `MAX_CONTENT_PARTS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ItemLimits {
    pub messages: usize,
    pub parts: usize,
}

impl ItemLimits {
    pub fn of(snap: &Settings) -> Self {
        Self {
            messages: snap.max_messages,
            parts: snap.max_content_parts,
        }
    }
}

/// Where a body keeps its messages and their parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// OpenAI chat: `messages[]`, each with `content[]` and `tool_calls[]` (a tool call
    /// becomes a Gemini part too).
    Chat,
    /// Gemini `generateContent`: `contents[]`, each with `parts[]`.
    Gemini,
    /// OpenAI Responses: `input[]` items, each with `content[]` (a tool call or its output is
    /// one item).
    Responses,
    /// Anything else: only [`MAX_JSON_ITEMS`].
    Plain,
}

impl Shape {
    fn list(self) -> &'static str {
        match self {
            Self::Chat => "messages",
            Self::Gemini => "contents",
            Self::Responses => "input",
            Self::Plain => "",
        }
    }

    fn holds_parts(self, key: &str) -> bool {
        match self {
            Self::Chat => key == "content" || key == "tool_calls",
            Self::Gemini => key == "parts",
            Self::Responses => key == "content",
            Self::Plain => false,
        }
    }
}

/// Counts a body's messages, parts and other items without building anything, and stops
/// at the first limit exceeded (the rest of the body is not even read). A body that is not
/// valid JSON passes: the typed parse that follows reports it with its own message.
pub fn check_items(bytes: &[u8], shape: Shape, limits: ItemLimits) -> Result<(), GatewayError> {
    let mut tally = Tally {
        shape,
        limits,
        messages: 0,
        parts: 0,
        items: 0,
        exceeded: None,
    };
    let level = if shape == Shape::Plain {
        Level::Any
    } else {
        Level::Top
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let _ = Scan {
        tally: &mut tally,
        level,
    }
    .deserialize(&mut de);
    match tally.exceeded {
        None => Ok(()),
        Some(which) => Err(exceeded(which, shape, limits)),
    }
}

fn exceeded(which: Count, shape: Shape, limits: ItemLimits) -> GatewayError {
    let list = shape.list();
    match which {
        Count::Message => GatewayError::bad_param(
            format!(
                "{list} 超过 {max} 条上限（MAX_MESSAGES）/ More than {max} {list} in one request: the limit is set by MAX_MESSAGES",
                max = limits.messages
            ),
            list,
        ),
        Count::Part => GatewayError::bad_param(
            format!(
                "内容分段超过 {max} 个上限（所有消息合计，MAX_CONTENT_PARTS）/ More than {max} content parts (texts, images, tool calls) in one request, all {list} together: the limit is set by MAX_CONTENT_PARTS",
                max = limits.parts
            ),
            list,
        ),
        Count::Item => GatewayError::bad_request(format!(
            "请求中的 JSON 元素超过 {MAX_JSON_ITEMS} 个 / The request holds more than {MAX_JSON_ITEMS} JSON array elements and object members"
        )),
    }
}

#[derive(Clone, Copy, Debug)]
enum Count {
    Message,
    Part,
    Item,
}

struct Tally {
    shape: Shape,
    limits: ItemLimits,
    messages: usize,
    parts: usize,
    items: usize,
    exceeded: Option<Count>,
}

impl Tally {
    fn count(&mut self, what: Count) -> Result<(), Count> {
        let (n, max) = match what {
            Count::Message => (&mut self.messages, self.limits.messages),
            Count::Part => (&mut self.parts, self.limits.parts),
            Count::Item => (&mut self.items, MAX_JSON_ITEMS),
        };
        *n += 1;
        if *n > max {
            self.exceeded = Some(what);
            return Err(what);
        }
        Ok(())
    }
}

/// Where the scan is: the body, its message list, one message, one message's parts, or
/// anything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    Top,
    List,
    Message,
    Parts,
    Any,
}

struct Scan<'t> {
    tally: &'t mut Tally,
    level: Level,
}

fn stop<E: serde::de::Error>(which: Count) -> E {
    E::custom(format_args!("over the {which:?} limit"))
}

impl<'de> DeserializeSeed<'de> for Scan<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Scan<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let (child, what) = match self.level {
            Level::List => (Level::Message, Count::Message),
            Level::Parts => (Level::Any, Count::Part),
            _ => (Level::Any, Count::Item),
        };
        while seq
            .next_element_seed(Scan {
                tally: &mut *self.tally,
                level: child,
            })?
            .is_some()
        {
            self.tally.count(what).map_err(stop)?;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let shape = self.tally.shape;
        while let Some(child) = map.next_key_seed(KeyLevel {
            shape,
            level: self.level,
        })? {
            self.tally.count(Count::Item).map_err(stop)?;
            map.next_value_seed(Scan {
                tally: &mut *self.tally,
                level: child,
            })?;
        }
        Ok(())
    }
}

/// Reads an object key and says at which level its value is scanned.
struct KeyLevel {
    shape: Shape,
    level: Level,
}

impl<'de> DeserializeSeed<'de> for KeyLevel {
    type Value = Level;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Level, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeyLevel {
    type Value = Level;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, key: &str) -> Result<Level, E> {
        Ok(match self.level {
            Level::Top if key == self.shape.list() => Level::List,
            Level::Message if self.shape.holds_parts(key) => Level::Parts,
            _ => Level::Any,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ItemLimits = ItemLimits {
        messages: 3,
        parts: 4,
    };

    fn check(body: &str, shape: Shape) -> Result<(), String> {
        check_items(body.as_bytes(), shape, LIMITS).map_err(|e| e.to_string())
    }

    fn parts(n: usize) -> String {
        let list: Vec<String> = (0..n)
            .map(|i| format!(r#"{{"type":"text","text":"p{i}"}}"#))
            .collect();
        format!("[{}]", list.join(","))
    }

    #[test]
    fn messages_and_parts_are_counted_across_the_whole_request() {
        let ok = format!(
            r#"{{"model":"m","messages":[{{"role":"user","content":{}}},{{"role":"user","content":"text"}},{{"role":"assistant","content":null,"tool_calls":[{{"id":"a","function":{{"name":"f"}}}}]}}]}}"#,
            parts(3)
        );
        assert_eq!(check(&ok, Shape::Chat), Ok(()), "3 messages, 4 parts");
        let five_parts = format!(
            r#"{{"messages":[{{"role":"user","content":{}}},{{"role":"user","content":{}}}]}}"#,
            parts(3),
            parts(2)
        );
        let e = check(&five_parts, Shape::Chat).unwrap_err();
        assert!(e.contains("MAX_CONTENT_PARTS") && e.contains('4'), "{e}");
        let four =
            r#"{"messages":[{"role":"user"},{"role":"user"},{"role":"user"},{"role":"user"}]}"#;
        let e = check(four, Shape::Chat).unwrap_err();
        assert!(e.contains("MAX_MESSAGES") && e.contains('3'), "{e}");
    }

    #[test]
    fn the_scan_stops_at_the_limit_without_reading_the_rest() {
        // Parts after the fifth are not JSON at all: the limit is found first, so the body
        // was not read (let alone built) past it.
        let body = format!(
            r#"{{"messages":[{{"role":"user","content":[{}, this is not JSON"#,
            (0..5)
                .map(|_| r#"{"type":"text","text":"x"}"#)
                .collect::<Vec<_>>()
                .join(",")
        );
        let e = check(&body, Shape::Chat).unwrap_err();
        assert!(e.contains("MAX_CONTENT_PARTS"), "{e}");
        let messages = format!(
            r#"{{"messages":[{}, {{{{{{ garbage"#,
            [r#"{"role":"user","content":"x"}"#; 4].join(",")
        );
        let e = check(&messages, Shape::Chat).unwrap_err();
        assert!(e.contains("MAX_MESSAGES"), "{e}");
    }

    #[test]
    fn gemini_bodies_count_contents_and_parts() {
        let content = |n: usize| {
            format!(
                r#"{{"role":"user","parts":[{}]}}"#,
                vec![r#"{"text":"x"}"#; n].join(",")
            )
        };
        let ok = format!(r#"{{"contents":[{},{}]}}"#, content(2), content(2));
        assert_eq!(check(&ok, Shape::Gemini), Ok(()));
        let e = check(
            &format!(r#"{{"contents":[{},{}]}}"#, content(4), content(1)),
            Shape::Gemini,
        )
        .unwrap_err();
        assert!(e.contains("MAX_CONTENT_PARTS"), "{e}");
        let e = check(
            &format!(r#"{{"contents":[{}]}}"#, vec![content(1); 4].join(",")),
            Shape::Gemini,
        )
        .unwrap_err();
        assert!(e.contains("MAX_MESSAGES") && e.contains("contents"), "{e}");
    }

    #[test]
    fn free_form_json_anywhere_is_bounded_too() {
        let many = format!(
            r#"{{"messages":[],"extra_body":[{}]}}"#,
            vec!["0"; MAX_JSON_ITEMS + 1].join(",")
        );
        let e = check(&many, Shape::Chat).unwrap_err();
        assert!(e.contains(&MAX_JSON_ITEMS.to_string()), "{e}");
        let e = check(&many, Shape::Plain).unwrap_err();
        assert!(e.contains(&MAX_JSON_ITEMS.to_string()), "{e}");
    }

    #[test]
    fn invalid_json_is_left_to_the_typed_parse() {
        assert_eq!(check("{nope", Shape::Chat), Ok(()));
        assert_eq!(check("", Shape::Chat), Ok(()));
        assert_eq!(check("[1,2]", Shape::Chat), Ok(()));
        let e = parse_bounded::<serde_json::Value>(b"{nope", Shape::Chat, LIMITS).unwrap_err();
        assert!(e.to_string().contains("Invalid JSON body"), "{e}");
    }
}
