//! Scripted behaviour: `Rule` (which requests) and `Reply` (what to answer), their JSON form
//! for the control API, and first-match-wins selection with `times` budgets.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Matches requests whose presented key / model / action equal every `Some` field.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub key: Option<String>,
    /// Model name; a `models/` prefix is ignored.
    pub model: Option<String>,
    /// generateContent, streamGenerateContent, countTokens, embedContent, batchEmbedContents,
    /// or "list"/"get" for the model GETs.
    pub action: Option<String>,
    /// How many matches this rule answers; `None` = unlimited.
    pub times: Option<u32>,
    pub reply: Reply,
}

/// What a matched rule answers.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Reply {
    /// A successful answer with this text. Streams are split into `chunks` delta events
    /// (default `Options::stream_chunks`) `chunk_delay_ms` apart, with cumulative usage and
    /// `finish_reason` (default "STOP") on the last one. `thought` is sent first as a
    /// `"thought": true` part. `cut_after: n` sends n events and closes without a finishReason;
    /// `stall_after: n` sends n events and keeps the connection open. `candidates` defaults to
    /// generationConfig.candidateCount; candidate i > 0 says `"<text> [i]"`.
    Text {
        text: String,
        chunks: Option<usize>,
        chunk_delay_ms: Option<u64>,
        finish_reason: Option<String>,
        thought: Option<String>,
        cut_after: Option<usize>,
        stall_after: Option<usize>,
        candidates: Option<usize>,
    },
    /// This HTTP status with this JSON body (pretty-printed).
    Error { status: u16, body: Value },
    /// A named realistic error (see [`crate::PRESETS`]).
    Preset { name: String },
    /// Exact JSON body (status default 200), pretty-printed.
    Json { status: Option<u16>, body: Value },
    /// Exact SSE events; `end` is "close" (default) or "hang".
    Sse {
        events: Vec<Value>,
        delay_ms: Option<u64>,
        end: Option<String>,
    },
    /// Raw bytes.
    Raw {
        status: u16,
        content_type: String,
        body: String,
    },
    /// A function-call answer: one candidate whose parts are the optional `text` part, then one
    /// `functionCall` part per call (`finishReason: STOP`, `finishMessage: "Model generated
    /// function call(s)."`). Streams send one event with all the parts, then a final
    /// `{"text": ""}` event with the finishReason. The FIRST functionCall part carries a fresh
    /// `thoughtSignature` when `signature` is `Some(true)`, or when it is `None` and the model
    /// name starts with `gemini-3`; issued signatures are remembered for the Gemini 3 replay check.
    FunctionCall {
        calls: Vec<CallSpec>,
        text: Option<String>,
        signature: Option<bool>,
    },
    /// A redirect (`status` 301/302/303/307/308) to `location`, with an empty body. Google's
    /// API never redirects; this is what a hostile relay or a captive portal would do.
    Redirect { status: u16, location: String },
    /// Wait, then do `then`.
    Delay { ms: u64, then: Box<Reply> },
    /// Accept the request and never send headers.
    Hang,
}

/// One call of a [`Reply::FunctionCall`]; `args` is omitted from the part when `None`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallSpec {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Value>,
}

/// A reply option used on a reply it does not apply to: a mistake in the test that built it.
#[expect(
    clippy::panic,
    reason = "builders are called by tests; a misused one must fail the test that misused it"
)]
fn misused(builder: &str, reply: &Reply) -> ! {
    panic!("Reply::{builder} does not apply to {reply:?}")
}

impl CallSpec {
    /// A call with these arguments.
    pub fn new(name: impl Into<String>, args: Value) -> CallSpec {
        CallSpec {
            name: name.into(),
            args: Some(args),
        }
    }
    /// A call without an `args` field (Google omits it for a function without parameters).
    pub fn without_args(name: impl Into<String>) -> CallSpec {
        CallSpec {
            name: name.into(),
            args: None,
        }
    }
}

impl Rule {
    /// A rule matching every request, unlimited times.
    pub fn new(reply: Reply) -> Rule {
        Rule {
            key: None,
            model: None,
            action: None,
            times: None,
            reply,
        }
    }
    pub fn key(mut self, key: impl Into<String>) -> Rule {
        self.key = Some(key.into());
        self
    }
    pub fn model(mut self, model: impl Into<String>) -> Rule {
        self.model = Some(model.into());
        self
    }
    pub fn action(mut self, action: impl Into<String>) -> Rule {
        self.action = Some(action.into());
        self
    }
    pub fn times(mut self, times: u32) -> Rule {
        self.times = Some(times);
        self
    }

    /// Whether this rule matches; `action` is "list"/"get" for model GETs.
    pub(crate) fn matches(&self, key: Option<&str>, model: Option<&str>, action: &str) -> bool {
        if self.times == Some(0) {
            return false;
        }
        let strip = |m: &str| m.strip_prefix("models/").unwrap_or(m).to_owned();
        let key_ok = self.key.is_none() || self.key.as_deref() == key;
        let model_ok = self
            .model
            .as_deref()
            .is_none_or(|m| model.is_some_and(|r| strip(m) == r));
        let action_ok = self.action.as_deref().is_none_or(|a| a == action);
        key_ok && model_ok && action_ok && (self.action.is_some() || self.reply.fits(action))
    }
}

impl Reply {
    /// `Reply::Text` with everything else defaulted.
    pub fn text(text: impl Into<String>) -> Reply {
        Reply::Text {
            text: text.into(),
            chunks: None,
            chunk_delay_ms: None,
            finish_reason: None,
            thought: None,
            cut_after: None,
            stall_after: None,
            candidates: None,
        }
    }
    /// `Reply::FunctionCall` with one call, no text and the default signature behaviour.
    pub fn function_call(name: impl Into<String>, args: Value) -> Reply {
        Reply::function_calls([CallSpec::new(name, args)])
    }
    /// `Reply::FunctionCall` with these calls, no text and the default signature behaviour.
    pub fn function_calls(calls: impl IntoIterator<Item = CallSpec>) -> Reply {
        Reply::FunctionCall {
            calls: calls.into_iter().collect(),
            text: None,
            signature: None,
        }
    }
    pub fn preset(name: impl Into<String>) -> Reply {
        Reply::Preset { name: name.into() }
    }
    pub fn redirect(status: u16, location: impl Into<String>) -> Reply {
        Reply::Redirect {
            status,
            location: location.into(),
        }
    }
    /// `Reply::Error`: this HTTP status with this JSON body.
    pub fn error(status: u16, body: Value) -> Reply {
        Reply::Error { status, body }
    }
    /// Google's error envelope without details, `{"error": {"code", "message", "status"}}`,
    /// sent with `code` as the HTTP status (e.g. `400, "INVALID_ARGUMENT", "…"`).
    pub fn google_error(code: u16, status: &str, message: impl Into<String>) -> Reply {
        let body = serde_json::json!({"error": {"code": code, "message": message.into(), "status": status}});
        Reply::Error { status: code, body }
    }
    /// A 429 `RESOURCE_EXHAUSTED` whose `RetryInfo` asks to wait `retry_delay` (Google's
    /// duration format, e.g. `"0.5s"`), with no `QuotaFailure`: a short, per-minute quota.
    pub fn quota_retry(retry_delay: &str) -> Reply {
        let body = serde_json::json!({"error": {"code": 429, "message": crate::wire::QUOTA_MSG,
            "status": "RESOURCE_EXHAUSTED", "details": [{
                "@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay}]}});
        Reply::Error { status: 429, body }
    }
    /// `Reply::Json`: exactly this body with status 200.
    pub fn json(body: Value) -> Reply {
        Reply::Json { status: None, body }
    }
    /// `Reply::Sse`: exactly these events, without delay, then the connection closes.
    pub fn sse(events: impl IntoIterator<Item = Value>) -> Reply {
        Reply::Sse {
            events: events.into_iter().collect(),
            delay_ms: None,
            end: None,
        }
    }
    /// `Reply::Raw`: these bytes with this status and content type.
    pub fn raw(status: u16, content_type: impl Into<String>, body: impl Into<String>) -> Reply {
        Reply::Raw {
            status,
            content_type: content_type.into(),
            body: body.into(),
        }
    }

    /// Waits `ms` milliseconds, then answers with this reply (`Reply::Delay`).
    pub fn after_ms(self, ms: u64) -> Reply {
        Reply::Delay {
            ms,
            then: Box::new(self),
        }
    }
    /// A text stream in `n` delta events.
    pub fn chunks(self, n: usize) -> Reply {
        self.on_text("chunks", |r| {
            if let Reply::Text { chunks, .. } = r {
                *chunks = Some(n);
            }
        })
    }
    /// `ms` milliseconds between the events of a text stream.
    pub fn chunk_delay_ms(self, ms: u64) -> Reply {
        self.on_text("chunk_delay_ms", |r| {
            if let Reply::Text { chunk_delay_ms, .. } = r {
                *chunk_delay_ms = Some(ms);
            }
        })
    }
    /// This `finishReason` instead of "STOP".
    pub fn finish(self, reason: impl Into<String>) -> Reply {
        let reason = reason.into();
        self.on_text("finish", |r| {
            if let Reply::Text { finish_reason, .. } = r {
                *finish_reason = Some(reason);
            }
        })
    }
    /// A `"thought": true` part with this text before the answer.
    pub fn thought(self, text: impl Into<String>) -> Reply {
        let text = text.into();
        self.on_text("thought", |r| {
            if let Reply::Text { thought, .. } = r {
                *thought = Some(text);
            }
        })
    }
    /// A stream that sends `n` events and closes without a finishReason.
    pub fn cut_after(self, n: usize) -> Reply {
        self.on_text("cut_after", |r| {
            if let Reply::Text { cut_after, .. } = r {
                *cut_after = Some(n);
            }
        })
    }
    /// A stream that sends `n` events and keeps the connection open.
    pub fn stall_after(self, n: usize) -> Reply {
        self.on_text("stall_after", |r| {
            if let Reply::Text { stall_after, .. } = r {
                *stall_after = Some(n);
            }
        })
    }
    /// `n` candidates, whatever the request's candidateCount.
    pub fn candidates(self, n: usize) -> Reply {
        self.on_text("candidates", |r| {
            if let Reply::Text { candidates, .. } = r {
                *candidates = Some(n);
            }
        })
    }
    /// Whether the first functionCall part carries a thoughtSignature (default: for
    /// `gemini-3*` models only).
    pub fn signature(self, sign: bool) -> Reply {
        match self {
            Reply::FunctionCall { calls, text, .. } => Reply::FunctionCall {
                calls,
                text,
                signature: Some(sign),
            },
            Reply::Delay { ms, then } => then.signature(sign).after_ms(ms),
            other => misused("signature", &other),
        }
    }

    /// Applies a text option to this `Reply::Text` (or the one a `Reply::Delay` sends).
    fn on_text(self, builder: &str, set: impl FnOnce(&mut Reply)) -> Reply {
        match self {
            mut text @ Reply::Text { .. } => {
                set(&mut text);
                text
            }
            Reply::Delay { ms, then } => then.on_text(builder, set).after_ms(ms),
            other => misused(builder, &other),
        }
    }

    /// Without an explicit action, success replies only apply where they make sense.
    fn fits(&self, action: &str) -> bool {
        match self {
            Reply::Text { .. } | Reply::FunctionCall { .. } => {
                matches!(action, "generateContent" | "streamGenerateContent")
            }
            Reply::Sse { .. } => action == "streamGenerateContent",
            Reply::Delay { then, .. } => then.fits(action),
            _ => true,
        }
    }

    /// The first unknown preset name inside this reply, if any.
    pub(crate) fn unknown_preset(&self) -> Option<&str> {
        match self {
            Reply::Preset { name } if !crate::wire::PRESETS.contains(&name.as_str()) => Some(name),
            Reply::Delay { then, .. } => then.unknown_preset(),
            _ => None,
        }
    }
}

/// Takes the reply of the first matching rule, spending one of its `times`.
pub(crate) fn take(
    rules: &mut Vec<Rule>,
    key: Option<&str>,
    model: Option<&str>,
    action: &str,
) -> Option<Reply> {
    let i = rules.iter().position(|r| r.matches(key, model, action))?;
    let rule = &mut rules[i];
    match rule.times.as_mut() {
        Some(1) => Some(rules.remove(i).reply),
        Some(t) => {
            *t -= 1;
            Some(rule.reply.clone())
        }
        None => Some(rule.reply.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_match_with_times() {
        let mut rules = vec![
            Rule::new(Reply::preset("quota_429")).key("A").times(1),
            Rule::new(Reply::text("hi")).model("models/m"),
        ];
        assert!(matches!(
            take(&mut rules, Some("A"), Some("x"), "generateContent"),
            Some(Reply::Preset { .. })
        ));
        assert!(take(&mut rules, Some("A"), Some("x"), "generateContent").is_none());
        assert!(matches!(
            take(&mut rules, None, Some("m"), "streamGenerateContent"),
            Some(Reply::Text { .. })
        ));
        // Text replies without an explicit action never answer model listings.
        assert!(take(&mut rules, None, Some("m"), "list").is_none());
        let r: Rule = serde_json::from_str(
            r#"{"key":"k","reply":{"kind":"delay","ms":5,"then":{"kind":"hang"}}}"#,
        )
        .unwrap_or_else(|_| Rule::new(Reply::Hang));
        assert!(matches!(r.reply, Reply::Delay { .. }));
        let typo = r#"{"kind":"text","text":"x","stall_afer":1}"#;
        assert!(serde_json::from_str::<Reply>(typo).is_err());
        let ok = r#"{"kind":"text","text":"x","stall_after":1}"#;
        assert!(serde_json::from_str::<Reply>(ok).is_ok());
        let call =
            r#"{"kind":"function_call","calls":[{"name":"get_weather","args":{"city":"Paris"}}]}"#;
        let parsed = serde_json::from_str::<Reply>(call);
        assert!(
            matches!(&parsed, Ok(Reply::FunctionCall { calls, text: None, signature: None })
                if calls.len() == 1
                    && calls[0].name == "get_weather"
                    && calls[0].args.as_ref().and_then(|a| a.get("city")) == Some(&Value::from("Paris"))),
            "{parsed:?}"
        );
        let redirect = r#"{"kind":"redirect","status":302,"location":"http://elsewhere/x"}"#;
        assert!(matches!(
            serde_json::from_str::<Reply>(redirect),
            Ok(Reply::Redirect { status: 302, .. })
        ));
        let bad_call = r#"{"kind":"function_call","calls":[{"name":"f","arg":{}}]}"#;
        assert!(serde_json::from_str::<Reply>(bad_call).is_err());
        let built = serde_json::to_value(Reply::function_call("f", Value::Null));
        assert!(built.is_ok_and(|v| v["kind"] == "function_call"));
    }

    /// The builders produce the same replies as the JSON form the control API accepts.
    #[test]
    fn builders_match_the_json_form() {
        let same = |built: Reply, json: &str| {
            let parsed: Value = serde_json::from_str(json).unwrap_or(Value::Null);
            let built = serde_json::to_value(&built).unwrap_or(Value::Null);
            // Unset options serialize as null; the JSON form leaves them out.
            let set = |v: Value| match v {
                Value::Object(m) => m.into_iter().filter(|(_, v)| !v.is_null()).collect(),
                v => v,
            };
            assert_eq!(set(built), set(parsed), "{json}");
        };
        same(
            Reply::text("a b")
                .chunks(2)
                .chunk_delay_ms(5)
                .finish("MAX_TOKENS")
                .thought("hmm")
                .cut_after(1)
                .stall_after(1)
                .candidates(2),
            r#"{"kind":"text","text":"a b","chunks":2,"chunk_delay_ms":5,"finish_reason":"MAX_TOKENS",
                "thought":"hmm","cut_after":1,"stall_after":1,"candidates":2}"#,
        );
        same(
            Reply::error(418, serde_json::json!({"x": 1})),
            r#"{"kind":"error","status":418,"body":{"x":1}}"#,
        );
        same(
            Reply::json(serde_json::json!({})),
            r#"{"kind":"json","body":{}}"#,
        );
        same(
            Reply::sse([serde_json::json!({"a": 1})]),
            r#"{"kind":"sse","events":[{"a":1}]}"#,
        );
        same(
            Reply::raw(200, "text/html", "<html>"),
            r#"{"kind":"raw","status":200,"content_type":"text/html","body":"<html>"}"#,
        );
        same(
            Reply::function_calls([
                CallSpec::new("a", serde_json::json!({})),
                CallSpec::without_args("b"),
            ])
            .signature(false),
            r#"{"kind":"function_call","calls":[{"name":"a","args":{}},{"name":"b"}],"signature":false}"#,
        );
        // Options reach through a delay, whichever order they are given in.
        let delayed = Reply::text("x").after_ms(5).chunks(3);
        assert!(
            matches!(&delayed, Reply::Delay { ms: 5, then } if matches!(**then, Reply::Text { chunks: Some(3), .. })),
            "{delayed:?}"
        );
        let google = serde_json::to_value(Reply::google_error(400, "INVALID_ARGUMENT", "bad"));
        assert!(google.is_ok_and(|v| v["status"] == 400
            && v["body"] == serde_json::json!({"error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}})));
        let quota = serde_json::to_value(Reply::quota_retry("0.5s")).unwrap_or(Value::Null);
        assert_eq!(quota["status"], 429);
        assert_eq!(quota["body"]["error"]["details"][0]["retryDelay"], "0.5s");
    }

    #[test]
    #[should_panic(expected = "Reply::chunks does not apply")]
    fn a_text_option_on_another_reply_fails_the_test() {
        let _ = Reply::preset("quota_429").chunks(2);
    }
}
