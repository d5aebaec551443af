//! Request semantics: Google-like validation of GenerateContentRequest, lenient extraction of
//! what the answer depends on (last user text, token counts, candidateCount, includeThoughts),
//! and the answer bodies: unary / SSE / JSON-array GenerateContentResponses, countTokens and
//! deterministic embeddings.

use crate::models::Model;
use crate::validate::{self, Bad};
use crate::wire::{
    ApiError, Candidate, Content, FunctionCall, GenResponse, Grounding, Part, Usage, pretty,
    sse_event,
};
use serde_json::{Map, Value, json};
use std::borrow::Cow;
use std::collections::HashMap;

// Allowed request fields (camelCase; the snake_case spelling is accepted too).
const TOP_FIELDS: &str = "contents systemInstruction tools toolConfig safetySettings generationConfig \
    cachedContent serviceTier model";
const GEN_FIELDS: &str = "temperature topP topK candidateCount maxOutputTokens stopSequences seed \
    presencePenalty frequencyPenalty responseLogprobs logprobs responseMimeType responseSchema \
    responseJsonSchema responseModalities mediaResolution speechConfig imageConfig thinkingConfig \
    enableEnhancedCivicAnswers";
const THINKING_FIELDS: &str = "thinkingBudget thinkingLevel includeThoughts";

pub(crate) const THOUGHT_TEXT: &str = "Thinking about it...";
const MAX_CANDIDATES: usize = 8;

/// A field by its camelCase name, also accepting the proto snake_case spelling.
pub(crate) fn field<'a>(obj: &'a Map<String, Value>, camel: &str) -> Option<&'a Value> {
    obj.get(camel).or_else(|| obj.get(snake(camel).as_ref()))
}

fn snake(camel: &str) -> Cow<'_, str> {
    if !camel.bytes().any(|b| b.is_ascii_uppercase()) {
        return Cow::Borrowed(camel);
    }
    let mut s = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            s.push('_');
            s.push(c.to_ascii_lowercase());
        } else {
            s.push(c);
        }
    }
    Cow::Owned(s)
}

/// `name` equals the snake_case spelling of `camel`, without allocating.
fn snake_eq(camel: &str, name: &str) -> bool {
    let mut n = name.bytes();
    for c in camel.bytes() {
        if c.is_ascii_uppercase() {
            if n.next() != Some(b'_') || n.next() != Some(c.to_ascii_lowercase()) {
                return false;
            }
        } else if n.next() != Some(c) {
            return false;
        }
    }
    n.next().is_none()
}

/// Whether `name` is one of the whitespace-separated camelCase names (or their snake_case).
pub(crate) fn known(allowed: &str, name: &str) -> bool {
    allowed
        .split_ascii_whitespace()
        .any(|a| a == name || snake_eq(a, name))
}

fn obj(v: Option<&Value>) -> Option<&Map<String, Value>> {
    v.and_then(Value::as_object)
}

/// Rough token estimate: bytes/4, at least 1 for non-empty text.
pub(crate) fn tokens(bytes: usize) -> u64 {
    bytes.div_ceil(4) as u64
}

/// What a success answer depends on, read leniently from any request body.
pub(crate) struct ReqInfo {
    pub last_user_text: String,
    pub prompt_tokens: u64,
    pub candidate_count: usize,
    pub include_thoughts: bool,
}

fn text_bytes(contents: Option<&Value>) -> usize {
    let items: &[Value] = match contents {
        Some(Value::Array(a)) => a,
        Some(v @ Value::Object(_)) => std::slice::from_ref(v),
        _ => &[],
    };
    let parts = items
        .iter()
        .filter_map(|c| c.get("parts").and_then(Value::as_array))
        .flatten();
    parts
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .map(str::len)
        .sum()
}

impl ReqInfo {
    pub(crate) fn from_body(body: &Map<String, Value>) -> ReqInfo {
        let contents = field(body, "contents");
        let bytes = text_bytes(contents) + text_bytes(field(body, "systemInstruction"));
        let last_user_text = contents
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .rev()
            .filter(|c| {
                c.get("role")
                    .and_then(Value::as_str)
                    .is_none_or(|r| r.is_empty() || r == "user")
            })
            .filter_map(|c| c.get("parts").and_then(Value::as_array))
            .flat_map(|parts| parts.iter().rev())
            .find_map(|p| p.get("text").and_then(Value::as_str))
            .unwrap_or_default()
            .to_owned();
        let gen_cfg = obj(field(body, "generationConfig"));
        let candidate_count = gen_cfg
            .and_then(|g| field(g, "candidateCount"))
            .and_then(Value::as_u64)
            .map_or(1, |n| (n as usize).clamp(1, MAX_CANDIDATES));
        let include_thoughts = obj(gen_cfg.and_then(|g| field(g, "thinkingConfig")))
            .and_then(|t| field(t, "includeThoughts"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        ReqInfo {
            last_user_text,
            prompt_tokens: tokens(bytes).max(1),
            candidate_count,
            include_thoughts,
        }
    }
}

/// Parse-level checks (run before the model lookup, like Google's JSON parser): unknown
/// fields, bad enum values, schemas, tools and non-base64 inline data.
pub(crate) fn check_fields(body: &Map<String, Value>) -> Result<(), ApiError> {
    let mut bad = Bad::default();
    for k in body.keys().filter(|k| !known(TOP_FIELDS, k)) {
        bad.unknown("", k);
    }
    if let Some(gen_cfg) = obj(field(body, "generationConfig")) {
        for k in gen_cfg.keys().filter(|k| !known(GEN_FIELDS, k)) {
            bad.unknown("generation_config", k);
        }
        if let Some(t) = obj(field(gen_cfg, "thinkingConfig")) {
            for k in t.keys().filter(|k| !known(THINKING_FIELDS, k)) {
                bad.unknown("generation_config.thinking_config", k);
            }
        }
    }
    validate::check_parse(body, &mut bad);
    bad.into_result()
}

/// Semantic checks that need the model (after it was found).
/// `issued` tells whether the mock issued a thought signature (Gemini 3 replay check).
pub(crate) fn check_semantics(
    body: &Map<String, Value>,
    model: &Model,
    issued: &dyn Fn(&str) -> bool,
) -> Result<(), ApiError> {
    let gen_cfg = obj(field(body, "generationConfig"));
    let thinking = obj(gen_cfg.and_then(|g| field(g, "thinkingConfig")));
    if let Some(t) = thinking
        && field(t, "thinkingBudget").is_some()
        && field(t, "thinkingLevel").is_some()
    {
        return Err(ApiError::invalid(
            "You can only set only one of thinking budget and thinking level.",
        ));
    }
    let contents = field(body, "contents")
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty());
    let Some(contents) = contents else {
        return Err(ApiError::invalid(
            "* GenerateContentRequest.contents: contents is not specified\n",
        ));
    };
    let mut msg = String::new();
    for (i, c) in contents.iter().enumerate() {
        if c.get("parts")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
        {
            msg.push_str(&format!(
                "* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.\n"
            ));
        }
    }
    if !msg.is_empty() {
        return Err(ApiError::invalid(&msg));
    }
    let role_ok = |c: &Value| match c.get("role") {
        None | Some(Value::Null) => true,
        Some(r) => matches!(
            r.as_str(),
            Some("" | "user" | "model" | "function" | "tool")
        ),
    };
    if !contents.iter().all(role_ok) {
        return Err(ApiError::invalid("Please use a valid role: user, model."));
    }
    let penalty = gen_cfg.is_some_and(|g| {
        field(g, "presencePenalty").is_some() || field(g, "frequencyPenalty").is_some()
    });
    if penalty && (model.name.contains("2.5") || model.name.contains("gemini-3")) {
        return Err(ApiError::penalty(&model.name));
    }
    if thinking.is_some() && !model.thinking {
        return Err(ApiError::invalid(
            "Thinking is not supported by this model.",
        ));
    }
    validate::check_semantics(body, &model.name, issued)
}

/// One function call of a decided answer.
pub(crate) struct PlannedCall {
    pub name: String,
    pub args: Option<Value>,
    /// `thoughtSignature` of this part (Gemini 3 signs only the first of parallel calls).
    pub signature: Option<String>,
}

pub(crate) const FUNCTION_CALL_MESSAGE: &str = "Model generated function call(s).";

/// A fully decided successful answer.
pub(crate) struct TextPlan {
    /// Full text per candidate (with `calls`: one optional leading text, "" for none).
    pub texts: Vec<String>,
    pub thought: Option<String>,
    pub finish_reason: String,
    pub prompt_tokens: u64,
    pub model: String,
    pub response_id: String,
    /// Function calls; when non-empty the answer is one candidate of functionCall parts.
    pub calls: Vec<PlannedCall>,
    /// `groundingMetadata` per candidate (empty: none); streams send it on the last event.
    pub grounding: Vec<Grounding>,
    /// `Some(createTime)` for a Vertex answer: `createTime`, `trafficType`, no `index` on a
    /// single candidate.
    pub vertex: Option<String>,
}

/// `n` byte-balanced pieces of `s`, split on char boundaries.
fn split(s: &str, n: usize) -> Vec<&str> {
    let mut cuts = Vec::with_capacity(n + 1);
    for i in 0..=n {
        let mut at = s.len() * i / n;
        while !s.is_char_boundary(at) {
            at += 1;
        }
        cuts.push(at);
    }
    cuts.windows(2).map(|w| &s[w[0]..w[1]]).collect()
}

impl TextPlan {
    pub(crate) fn new(text: &str, candidates: usize, model: &str) -> TextPlan {
        let texts = (0..candidates.max(1))
            .map(|i| {
                if i == 0 {
                    text.to_owned()
                } else {
                    format!("{text} [{i}]")
                }
            })
            .collect();
        TextPlan {
            texts,
            thought: None,
            finish_reason: "STOP".to_owned(),
            prompt_tokens: 1,
            model: model.to_owned(),
            response_id: response_id(),
            calls: Vec::new(),
            grounding: Vec::new(),
            vertex: None,
        }
    }

    /// A function-call answer: optional leading text, then the calls.
    pub(crate) fn function_calls(
        text: Option<&str>,
        calls: Vec<PlannedCall>,
        model: &str,
    ) -> TextPlan {
        let mut plan = TextPlan::new(text.unwrap_or_default(), 1, model);
        plan.calls = calls;
        plan
    }

    /// Adds Google Search `groundingMetadata` to every candidate.
    pub(crate) fn ground(&mut self, last_user_text: &str) {
        self.grounding = self
            .texts
            .iter()
            .map(|t| crate::tools::grounding(t, last_user_text))
            .collect();
    }

    fn response<'a>(
        &'a self,
        pieces: &[&'a str],
        first: bool,
        finish: bool,
        usage: Usage,
    ) -> GenResponse<'a> {
        let candidates = pieces
            .iter()
            .enumerate()
            .map(|(index, text)| {
                let mut parts = Vec::with_capacity(2);
                if let (true, 0, Some(t)) = (first, index, &self.thought) {
                    parts.push(Part::thought(t));
                }
                parts.push(Part::text(text));
                Candidate {
                    content: Content {
                        parts,
                        role: "model",
                    },
                    finish_reason: finish.then_some(self.finish_reason.as_str()),
                    grounding_metadata: self.grounding.get(index).filter(|_| finish),
                    index: Some(index),
                    finish_message: None,
                }
            })
            .collect();
        self.wrap(candidates, usage)
    }

    fn wrap<'a>(&'a self, mut candidates: Vec<Candidate<'a>>, mut usage: Usage) -> GenResponse<'a> {
        if self.vertex.is_some() {
            usage.traffic_type = Some("ON_DEMAND");
            if let [only] = &mut candidates[..] {
                only.index = None;
            }
        }
        GenResponse {
            candidates,
            create_time: self.vertex.as_deref(),
            usage_metadata: usage,
            model_version: &self.model,
            response_id: &self.response_id,
        }
    }

    /// The parts of a function-call answer: thought, text (if any), one part per call.
    fn call_parts(&self) -> Vec<Part<'_>> {
        let mut parts = Vec::with_capacity(self.calls.len() + 2);
        if let Some(t) = &self.thought {
            parts.push(Part::thought(t));
        }
        if let Some(t) = self.texts.first().filter(|t| !t.is_empty()) {
            parts.push(Part::text(t));
        }
        parts.extend(self.calls.iter().map(|c| Part {
            text: None,
            thought: false,
            function_call: Some(FunctionCall {
                name: &c.name,
                args: c.args.as_ref(),
            }),
            thought_signature: c.signature.as_deref(),
        }));
        parts
    }

    fn call_usage(&self) -> Usage {
        let text = self.texts.first().map_or(0, String::len);
        let calls: usize = self
            .calls
            .iter()
            .map(|c| c.name.len() + c.args.as_ref().map_or(0, |a| a.to_string().len()))
            .sum();
        Usage::new(
            self.prompt_tokens,
            tokens(text + calls).max(1),
            self.thought_tokens(),
        )
    }

    fn call_candidate<'a>(
        &'a self,
        parts: Vec<Part<'a>>,
        finish: bool,
        message: bool,
    ) -> Candidate<'a> {
        Candidate {
            content: Content {
                parts,
                role: "model",
            },
            finish_reason: finish.then_some(self.finish_reason.as_str()),
            grounding_metadata: None,
            index: Some(0),
            finish_message: message.then_some(FUNCTION_CALL_MESSAGE),
        }
    }

    fn thought_tokens(&self) -> u64 {
        self.thought
            .as_deref()
            .map_or(0, |t| tokens(t.len()).max(1))
    }

    /// The generateContent body.
    pub(crate) fn unary(&self) -> Vec<u8> {
        if !self.calls.is_empty() {
            let c = self.call_candidate(self.call_parts(), true, true);
            return pretty(&self.wrap(vec![c], self.call_usage()));
        }
        let pieces: Vec<&str> = self.texts.iter().map(String::as_str).collect();
        let out: u64 = pieces.iter().map(|t| tokens(t.len())).sum();
        pretty(&self.response(
            &pieces,
            true,
            true,
            Usage::new(self.prompt_tokens, out, self.thought_tokens()),
        ))
    }

    /// The stream as `chunks` delta events, each already encoded (`sse` or pretty for the array).
    /// Function calls come whole in one event, followed by a final `{"text": ""}` event.
    pub(crate) fn events(&self, chunks: usize, sse: bool) -> Vec<Vec<u8>> {
        let encode = |r: &GenResponse<'_>| if sse { sse_event(r) } else { pretty(r) };
        if !self.calls.is_empty() {
            let usage = self.call_usage();
            let first = self.call_candidate(self.call_parts(), false, false);
            let last = self.call_candidate(vec![Part::text("")], true, false);
            return vec![
                encode(&self.wrap(vec![first], usage)),
                encode(&self.wrap(vec![last], usage)),
            ];
        }
        let n = chunks.max(1);
        let split_texts: Vec<Vec<&str>> = self.texts.iter().map(|t| split(t, n)).collect();
        let mut sent = vec![0usize; self.texts.len()];
        (0..n)
            .map(|e| {
                let pieces: Vec<&str> = split_texts.iter().map(|p| p[e]).collect();
                for (s, p) in sent.iter_mut().zip(&pieces) {
                    *s += p.len();
                }
                let out = sent.iter().map(|&b| tokens(b)).sum();
                let usage = Usage::new(self.prompt_tokens, out, self.thought_tokens());
                encode(&self.response(&pieces, e == 0, e + 1 == n, usage))
            })
            .collect()
    }
}

/// A random 23-character id like Google's `responseId`.
pub(crate) fn response_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..23)
        .map(|_| char::from(ALPHABET[fastrand::usize(..ALPHABET.len())]))
        .collect()
}

/// countTokens: `{contents}` or `{generateContentRequest}`; Vertex adds
/// `totalBillableCharacters`.
pub(crate) fn count_tokens(body: &Map<String, Value>, vertex: bool) -> Vec<u8> {
    let inner = obj(field(body, "generateContentRequest")).unwrap_or(body);
    let bytes =
        text_bytes(field(inner, "contents")) + text_bytes(field(inner, "systemInstruction"));
    let n = tokens(bytes);
    let mut v =
        json!({"totalTokens": n, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": n}]});
    if vertex {
        v["totalBillableCharacters"] = json!(bytes);
    }
    pretty(&v)
}

#[derive(serde::Serialize)]
struct Embedding {
    values: Vec<f32>,
}

/// Deterministic pseudo-embedding of the request's text.
fn embedding(req: &Map<String, Value>) -> Embedding {
    let text: String = field(req, "content")
        .and_then(|c| c.get("parts"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .collect();
    let dims = field(req, "outputDimensionality")
        .and_then(Value::as_u64)
        .map_or(3072, |d| d.clamp(1, 3072));
    let mut state = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let values = (0..dims)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            ((z >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.1
        })
        .collect();
    Embedding { values }
}

pub(crate) fn embed_content(body: &Map<String, Value>) -> Vec<u8> {
    pretty(&HashMap::from([("embedding", embedding(body))]))
}

pub(crate) fn batch_embed(body: &Map<String, Value>, model: &str) -> Result<Vec<u8>, ApiError> {
    let requests: &[Value] = field(body, "requests")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    if requests.len() > 100 {
        return Err(over_100());
    }
    let want = format!("models/{model}");
    let mut embeddings = Vec::with_capacity(requests.len());
    for (i, r) in requests.iter().enumerate() {
        let r = r
            .as_object()
            .ok_or_else(|| ApiError::invalid("Invalid JSON payload received."))?;
        let got = r.get("model").and_then(Value::as_str).unwrap_or_default();
        if got != want {
            return Err(ApiError::invalid(&format!(
                "* BatchEmbedContentsRequest.requests[{i}].model: Model \"{got}\" does not match the model \"{want}\" of the request.\n"
            )));
        }
        embeddings.push(embedding(r));
    }
    Ok(pretty(&HashMap::from([("embeddings", embeddings)])))
}

/// The recorded >100 batch error (the fixture wraps the real status and body).
fn over_100() -> ApiError {
    let fixture =
        include_str!("../../../tests/fixtures/gemini/error.400.batch-embed-over-100.json");
    let wrapper: Value = serde_json::from_str(fixture).unwrap_or_default();
    let status = wrapper
        .get("status")
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or(400);
    ApiError {
        status,
        body: pretty(&wrapper["body"]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_chars() {
        assert_eq!(split("héllo", 3).concat(), "héllo");
        assert_eq!(split("ab", 4).len(), 4);
    }

    #[test]
    fn snake_names_accepted() {
        let body: Map<String, Value> =
            serde_json::from_str(r#"{"contents":[],"generation_config":{"max_output_tokens":5,"thinking_config":{"include_thoughts":true}}}"#)
                .unwrap_or_default();
        assert!(check_fields(&body).is_ok());
        assert!(ReqInfo::from_body(&body).include_thoughts);
    }
}
