//! Conversation-building pieces shared by the dialects: turns merged the way Gemini wants
//! them, tool results in call order, thought signatures carried by the client (inside
//! Anthropic thinking-block signatures and Responses reasoning items) or recalled by
//! tool-call id, and the proxy's additions (search mode's prompt, `RANDOM_STRING` filler)
//! kept away from tool exchanges. (The OpenAI chat dialect builds its turns itself, in
//! `openai::messages`, and takes the signature placeholder, insertion points and additions
//! from here.)
//!
//! ## Thought signatures carried by clients
//!
//! Gemini 3 rejects a tool loop whose function calls come back without the thought signature
//! Gemini put on them. Anthropic and Responses clients keep opaque reasoning state verbatim
//! (thinking blocks with `signature`, reasoning items with `encrypted_content`), so the
//! signature travels there as [`carry`] `hjm1:<model>:<signature>`: the model is kept so a
//! signature is never sent to a different model family (Gemini refuses a foreign
//! signature; a client can switch models mid-conversation). A carried signature belongs to
//! the next function call (or text) of the same assistant turn. Server-side memory by
//! tool-call id (kept by the caller, offered here as `recall`) covers clients that drop
//! reasoning state; when both are missing, Gemini 3 gets the documented [`SKIP_VALIDATOR`].

use serde_json::{Value, json};

use crate::translate::model_name::same_family;
use crate::wire::gemini::{Content, Part};

/// What Google documents for a function call whose thought signature is unknown.
pub const SKIP_VALIDATOR: &str = "skip_thought_signature_validator";

/// Longest `RANDOM_STRING` filler (one is added twice to every request); the setting is
/// bounded by it.
pub const RANDOM_STRING_LENGTH_MAX: usize = 256;

/// The prefix of a signature hajimi wrote into a client's reasoning state.
const CARRY_PREFIX: &str = "hjm1:";

/// A Gemini thought signature as a client carries it: `hjm1:<model>:<signature>`.
pub fn carry(model: &str, signature: &str) -> String {
    format!("{CARRY_PREFIX}{model}:{signature}")
}

/// The Gemini signature inside a carried one, if it was made for `model`'s family. Strings
/// hajimi did not write (another provider's signatures) are ignored.
pub fn uncarry<'a>(carried: &'a str, model: &str) -> Option<&'a str> {
    let rest = carried.strip_prefix(CARRY_PREFIX)?;
    let (made_for, signature) = rest.split_once(':')?;
    (!signature.is_empty() && same_family(made_for, model)).then_some(signature)
}

/// A content under construction, and whether it holds function responses (those are never
/// merged with other user parts: Gemini wants the results as their own turn).
#[derive(Debug)]
struct Turn {
    content: Content,
    function_responses: bool,
}

/// Builds `contents` turn by turn: consecutive parts of one role are merged, except
/// function-response turns; a carried signature waits for the model part it belongs to.
#[derive(Debug, Default)]
pub struct Turns {
    turns: Vec<Turn>,
    /// A signature from a thinking block / reasoning item, for the next model part.
    pending_signature: Option<String>,
}

impl Turns {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts from earlier contents (a stored conversation).
    pub fn with_contents(contents: Vec<Content>) -> Self {
        let turns = contents
            .into_iter()
            .map(|content| Turn {
                function_responses: is_function_response(&content),
                content,
            })
            .collect();
        Self {
            turns,
            pending_signature: None,
        }
    }

    pub fn user(&mut self, parts: Vec<Part>) {
        self.pending_signature = None;
        self.push("user", parts, false);
    }

    /// Function responses: one user turn per exchange, parts in the order given.
    pub fn function_responses(&mut self, parts: Vec<Part>) {
        self.pending_signature = None;
        if parts.is_empty() {
            return;
        }
        if let Some(last) = self.turns.last_mut()
            && last.function_responses
        {
            last.content.parts.extend(parts);
            return;
        }
        self.turns.push(Turn {
            content: Content {
                role: Some("user".into()),
                parts,
            },
            function_responses: true,
        });
    }

    /// A signature (already uncarried) for the next model part of this assistant turn.
    pub fn signature(&mut self, signature: String) {
        self.pending_signature = Some(signature);
    }

    /// A model part; a pending signature goes on it.
    pub fn model(&mut self, mut part: Part) {
        if let Some(sig) = self.pending_signature.take()
            && part.thought_signature.is_none()
        {
            part.thought_signature = Some(sig);
        }
        self.push("model", vec![part], false);
    }

    /// Ends an assistant message: a signature nothing followed is dropped.
    pub fn end_model(&mut self) {
        self.pending_signature = None;
    }

    fn push(&mut self, role: &str, parts: Vec<Part>, function_responses: bool) {
        if parts.is_empty() {
            return;
        }
        if let Some(last) = self.turns.last_mut()
            && last.content.role.as_deref() == Some(role)
            && !last.function_responses
        {
            last.content.parts.extend(parts);
            return;
        }
        self.turns.push(Turn {
            content: Content {
                role: Some(role.to_owned()),
                parts,
            },
            function_responses,
        });
    }

    /// The name of the function call with `id`, searching backwards (ids are kept on the
    /// calls until [`strip_call_ids`]).
    pub fn call_name(&self, id: &str) -> Option<String> {
        self.turns
            .iter()
            .rev()
            .flat_map(|t| t.content.parts.iter().rev())
            .filter_map(|p| p.function_call.as_ref())
            .find(|c| c.id.as_deref() == Some(id))
            .map(|c| c.name.clone())
    }

    /// The position of call `id` in the last model turn with calls (for result ordering).
    pub fn call_position(&self, id: &str) -> Option<usize> {
        let turn = self.turns.iter().rev().find(|t| {
            t.content.role.as_deref() == Some("model")
                && t.content.parts.iter().any(|p| p.function_call.is_some())
        })?;
        turn.content
            .parts
            .iter()
            .filter_map(|p| p.function_call.as_ref())
            .position(|c| c.id.as_deref() == Some(id))
    }

    pub fn is_empty(&self) -> bool {
        self.turns.is_empty()
    }

    pub fn into_contents(self) -> Vec<Content> {
        self.turns.into_iter().map(|t| t.content).collect()
    }
}

fn is_function_response(c: &Content) -> bool {
    c.parts.iter().any(|p| p.function_response.is_some())
}

/// Puts a signature on the first function call of every model turn that lacks one: the
/// one remembered for its call id (`recall`), else, for Gemini 3, the documented
/// placeholder. Only the first call of a turn carries one (Google's rule).
pub fn complete_signatures(
    contents: &mut [Content],
    gemini3: bool,
    recall: &dyn Fn(&str) -> Option<String>,
) {
    for content in contents
        .iter_mut()
        .filter(|c| c.role.as_deref() == Some("model"))
    {
        let Some(first) = content.parts.iter_mut().find(|p| p.function_call.is_some()) else {
            continue;
        };
        if first.thought_signature.is_some() {
            continue;
        }
        first.thought_signature = first
            .function_call
            .as_ref()
            .and_then(|c| c.id.as_deref())
            .and_then(recall)
            .or_else(|| gemini3.then(|| SKIP_VALIDATOR.to_owned()));
    }
}

/// Removes the client's call ids from function calls and responses: they are ours to
/// match results with names, and are not sent upstream (as in the chat dialect).
pub fn strip_call_ids(contents: &mut [Content]) {
    for part in contents.iter_mut().flat_map(|c| c.parts.iter_mut()) {
        if let Some(call) = part.function_call.as_mut() {
            call.id = None;
        }
        if let Some(response) = part.function_response.as_mut() {
            response.id = None;
        }
    }
}

/// Removes signatures a different model family produced, before a stored conversation is
/// continued with another model.
pub fn strip_signatures(contents: &mut [Content]) {
    for part in contents.iter_mut().flat_map(|c| c.parts.iter_mut()) {
        part.thought_signature = None;
    }
}

/// An insertion index that never separates a function-call turn from its responses.
pub fn safe_insert_index(contents: &[Content], mut at: usize) -> usize {
    at = at.min(contents.len());
    while at > 0 && at < contents.len() && is_function_response(&contents[at]) {
        at -= 1;
    }
    at
}

/// Search mode (a `-search` model name with `SEARCH_MODE` on): the Google Search tool
/// (once) and HAJIMI's search prompt as a user turn before the last two contents, never
/// between a function call and its results.
pub fn add_search(tools: &mut Vec<Value>, contents: &mut Vec<Content>, prompt: String) {
    if !tools.iter().any(|t| t.get("googleSearch").is_some()) {
        tools.push(json!({"googleSearch": {}}));
    }
    let at = safe_insert_index(contents, contents.len().saturating_sub(2));
    contents.insert(
        at,
        Content {
            role: Some("user".into()),
            parts: vec![Part::text(prompt)],
        },
    );
}

/// HAJIMI's `RANDOM_STRING` disguise: a random user turn after the first content and one
/// before the last, never between a function call and its results.
pub fn insert_random_strings(contents: &mut Vec<Content>, len: usize) {
    if len == 0 {
        return;
    }
    let len = len.min(RANDOM_STRING_LENGTH_MAX);
    let filler = || Content {
        role: Some("user".into()),
        parts: vec![Part::text(crate::translate::random_alnum("", len))],
    };
    let first = safe_insert_index(contents, 1);
    contents.insert(first, filler());
    let last = safe_insert_index(contents, contents.len().saturating_sub(1));
    contents.insert(last, filler());
}

/// A tool's output as Gemini's `functionResponse.response` (which must be an object):
/// a JSON object stays as it is, anything else is `{"output": …}`; an error is
/// `{"error": …}` (the keys Google's documentation uses).
pub fn function_response_value(text: &str, is_error: bool) -> Value {
    if is_error {
        return json!({ "error": text });
    }
    match serde_json::from_str::<Value>(text) {
        Ok(obj @ Value::Object(_)) => obj,
        _ => json!({ "output": text }),
    }
}

/// Function-call arguments from a JSON string (`""` is `{}`); a non-object is wrapped as
/// `{"value": …}`. `None` when the string is not JSON.
pub fn parse_arguments(raw: &str) -> Option<Value> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Some(json!({}));
    }
    match serde_json::from_str::<Value>(raw).ok()? {
        v @ Value::Object(_) => Some(v),
        other => Some(json!({ "value": other })),
    }
}

/// Mints the ids an answer needs (`toolu_…`, `call_…`, `msg_…`): random in service,
/// sequential in tests so rendered streams can be compared byte for byte.
#[derive(Debug, Clone)]
pub enum IdMint {
    Random,
    Sequential(u32),
}

impl IdMint {
    /// `prefix` and 24 random letters and digits (or a counter, zero-padded to 24).
    pub fn next(&mut self, prefix: &str) -> String {
        match self {
            Self::Random => crate::translate::random_alnum(prefix, 24),
            Self::Sequential(n) => {
                *n += 1;
                format!("{prefix}{n:024}")
            }
        }
    }
}

/// Helpers for the dialect tests: fixtures and golden files.
#[cfg(test)]
pub(crate) mod testing {
    /// A file under `tests/fixtures/`.
    pub(crate) fn fixture_text(path: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/tests/fixtures/{path}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("fixture")
    }

    /// Compares with `tests/fixtures/golden/<path>`, or rewrites it with
    /// `HAJIMI_UPDATE_GOLDEN=1`.
    pub(crate) fn golden(path: &str, actual: &str) {
        let full = format!(
            "{}/tests/fixtures/golden/{path}",
            env!("CARGO_MANIFEST_DIR")
        );
        if std::env::var_os("HAJIMI_UPDATE_GOLDEN").is_some() {
            std::fs::write(&full, actual).expect("write golden");
            return;
        }
        let expected =
            std::fs::read_to_string(&full).expect("golden file (HAJIMI_UPDATE_GOLDEN=1)");
        assert_eq!(actual, expected, "golden {path} differs");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::gemini::FunctionCall;

    fn call(id: &str, name: &str) -> Part {
        Part {
            function_call: Some(FunctionCall {
                id: Some(id.into()),
                name: name.into(),
                args: Some(json!({})),
            }),
            ..Part::default()
        }
    }

    #[test]
    fn carried_signatures_come_back_for_the_same_family_only() {
        let c = carry("gemini-3-pro-preview", "c2ln");
        assert_eq!(c, "hjm1:gemini-3-pro-preview:c2ln");
        assert_eq!(uncarry(&c, "gemini-3-pro-preview"), Some("c2ln"));
        assert_eq!(uncarry(&c, "gemini-3-flash-preview"), None);
        assert_eq!(uncarry("EvQBCkYICxgCKkAx", "gemini-3-pro-preview"), None);
        assert_eq!(
            uncarry("hjm1:gemini-3-pro-preview:", "gemini-3-pro-preview"),
            None
        );
    }

    #[test]
    fn a_pending_signature_lands_on_the_next_model_part_only() {
        let mut t = Turns::new();
        t.user(vec![Part::text("hi")]);
        t.signature("S".into());
        t.model(call("a", "f"));
        t.model(call("b", "g"));
        t.end_model();
        t.function_responses(vec![]);
        let c = t.into_contents();
        assert_eq!(c[1].parts[0].thought_signature.as_deref(), Some("S"));
        assert_eq!(c[1].parts[1].thought_signature, None);
    }

    #[test]
    fn missing_signatures_are_recalled_or_replaced_on_gemini3() {
        let mut contents = vec![Content {
            role: Some("model".into()),
            parts: vec![call("a", "f"), call("b", "g")],
        }];
        complete_signatures(&mut contents, false, &|_| None);
        assert_eq!(contents[0].parts[0].thought_signature, None);
        complete_signatures(&mut contents, true, &|id| (id == "a").then(|| "R".into()));
        assert_eq!(contents[0].parts[0].thought_signature.as_deref(), Some("R"));
        assert_eq!(contents[0].parts[1].thought_signature, None);
        contents[0].parts[0].thought_signature = None;
        complete_signatures(&mut contents, true, &|_| None);
        assert_eq!(
            contents[0].parts[0].thought_signature.as_deref(),
            Some(SKIP_VALIDATOR)
        );
    }

    #[test]
    fn tool_outputs_become_objects() {
        assert_eq!(
            function_response_value("18C", false),
            json!({"output": "18C"})
        );
        assert_eq!(function_response_value("{\"t\":1}", false), json!({"t": 1}));
        assert_eq!(
            function_response_value("[1]", false),
            json!({"output": "[1]"})
        );
        assert_eq!(
            function_response_value("boom", true),
            json!({"error": "boom"})
        );
        assert_eq!(parse_arguments(""), Some(json!({})));
        assert_eq!(parse_arguments("[1]"), Some(json!({"value": [1]})));
        assert_eq!(parse_arguments("{"), None);
    }

    #[test]
    fn random_strings_never_split_a_call_from_its_results() {
        let mut t = Turns::new();
        t.user(vec![Part::text("a")]);
        t.model(call("x", "f"));
        t.function_responses(vec![Part {
            function_response: Some(crate::wire::gemini::FunctionResponse {
                id: None,
                name: "f".into(),
                response: json!({}),
            }),
            ..Part::default()
        }]);
        let mut c = t.into_contents();
        insert_random_strings(&mut c, 4);
        for (i, content) in c.iter().enumerate() {
            if is_function_response(content) {
                assert!(c[i - 1].parts.iter().any(|p| p.function_call.is_some()));
            }
        }
        assert_eq!(c.len(), 5);
    }
}
