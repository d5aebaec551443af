//! Pure functions between wire formats: OpenAI chat ⇄ Gemini generateContent. No I/O, no
//! settings lookups beyond the options passed in, so every mapping is unit-tested against
//! the recorded fixtures.

pub mod aliases;
pub mod anthropic;
pub mod assess;
pub mod fixups;
pub mod history;
pub mod media;
pub mod model_name;
pub mod openai;
pub mod output;
pub mod responses;
pub mod safety;
pub mod schema;
pub mod thinking;

/// A fresh OpenAI-style completion id (`chatcmpl-` + 24 random alphanumerics).
pub fn completion_id() -> String {
    random_alnum("chatcmpl-", 24)
}

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
