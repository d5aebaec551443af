//! Pure functions between wire formats: each client dialect ⇄ Gemini generateContent. No
//! I/O, no settings lookups beyond the options passed in, so every mapping is unit-tested
//! against the recorded fixtures. This module imports nothing of ours but `wire`, `error`
//! and `mask`; settings and memories (thought signatures, the model list) come in as values
//! and closures through the shared `dialect::Context` (the Responses dialect still has its
//! own `Options`).
//!
//! Dialects, each `request → Gemini`, `answer → client`, `stream → client` (they never import
//! one another):
//! - [`openai`] — OpenAI Chat Completions
//! - [`gemini`] — native Gemini, the identity dialect (bytes in, bytes out)
//! - [`anthropic`] — Anthropic Messages
//! - [`responses`] — OpenAI Responses
//!
//! Shared by every dialect (they import only `wire`, `error` and each other, never a dialect):
//! - [`model_name`] — name prefixes, the `-search` suffix, Gemini versions, signature families
//! - [`history`] — conversation building: turns, thought signatures, search prompt, random filler
//! - [`media`] — `data:` URLs → inline data
//! - [`inline`] — inline payloads moved around a translation instead of copied
//! - [`schema`] — JSON Schema → Google's subset
//! - [`thinking`] — reasoning controls → `thinkingConfig`
//! - [`safety`] — the safety settings every request gets
//! - [`fixups`] — changes of a translated request for the retries (schema subset, penalties)
//! - [`assess`] — what an answer or a stream's first event amounts to (answer, blocked, empty)
//! - [`output`] — visible text of a part, grounding citations, usage sums
//! - [`aliases`] — `MODEL_ALIASES`
//! - [`dialect`] — the boundary every dialect implements: the prepared request and its `Render`
//! - [`cache_key`] — response-cache keys hashed from borrowed request values

pub mod aliases;
pub mod anthropic;
pub mod assess;
pub mod cache_key;
pub mod dialect;
pub mod fixups;
pub mod gemini;
pub mod history;
pub mod inline;
pub mod media;
pub mod model_name;
pub mod openai;
pub mod output;
pub mod responses;
pub mod safety;
pub mod schema;
pub mod thinking;

/// `prefix` followed by `n` random ASCII letters and digits.
pub fn random_alnum(prefix: &str, n: usize) -> String {
    let mut s = String::with_capacity(prefix.len() + n);
    s.push_str(prefix);
    s.extend(std::iter::repeat_with(fastrand::alphanumeric).take(n));
    s
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
