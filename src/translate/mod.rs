//! Pure functions between wire formats: OpenAI chat ⇄ Gemini generateContent. No I/O, no
//! settings lookups beyond the options passed in, so every mapping is unit-tested against
//! the recorded fixtures.

pub mod answer;
pub mod chat;
pub mod schema;
pub mod stream;
pub mod thinking;

/// A fresh OpenAI-style completion id (`chatcmpl-` + 24 random alphanumerics).
pub fn completion_id() -> String {
    let mut id = String::with_capacity(33);
    id.push_str("chatcmpl-");
    for _ in 0..24 {
        id.push(fastrand::alphanumeric());
    }
    id
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
