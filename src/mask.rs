//! Secret hygiene: short stable key ids for logs, masked keys for people, a `Secret`
//! string whose `Debug`/`Display` never reveal it, redaction of `?key=` in URIs, and
//! scrubbing of keys from free text: every key a live key pool holds, by value (relay keys
//! of any format), and anything `AIza…`-shaped. Owns nothing else; every other module goes
//! through these to print a key.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use aho_corasick::{AhoCorasick, MatchKind};
use arc_swap::ArcSwapOption;

/// Short stable identifier of an upstream key, derived from a hash (never a prefix of the key).
/// What logs, metrics and the store see.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(u32);

impl KeyId {
    pub fn of(secret: &str) -> Self {
        let h = xxhash_rust::xxh64::xxh64(secret.as_bytes(), 0x6861_6a69_6d69);
        // Folding keeps all 64 bits of entropy in play; truncation is fine for an id.
        Self((h ^ (h >> 32)) as u32)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "k{:08x}", self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Masks a key or password for display: first 4 and last 4 characters when it is 16
/// characters or longer (`AIza…x1Yz`), else `…` and the last 2 (decisions §7).
pub fn mask(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    let n = chars.len();
    if n >= 16 {
        let head: String = chars[..4].iter().collect();
        let tail: String = chars[n - 4..].iter().collect();
        format!("{head}…{tail}")
    } else {
        let tail: String = chars[n.saturating_sub(2)..].iter().collect();
        format!("…{tail}")
    }
}

/// Masks a password for display: `…` and at most its last two characters (only when it is 8
/// characters or longer; a shorter one shows nothing). Passwords reveal less than keys.
pub fn mask_password(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() >= 8 {
        let tail: String = chars[chars.len() - 2..].iter().collect();
        format!("…{tail}")
    } else {
        "…".to_owned()
    }
}

/// Hides the credentials of every URL in `text` (`http://user:pass@host:port` becomes
/// `http://user:****@host:port`; a lone `token@` user becomes `****@`), leaving the rest as it is.
pub fn mask_url_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (before, after) = rest.split_at(pos + 3);
        out.push_str(before);
        let authority_end = after
            .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace() || c == ',')
            .unwrap_or(after.len());
        let authority = &after[..authority_end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.split_once(':') {
                    Some((user, _)) => {
                        out.push_str(user);
                        out.push_str(":****");
                    }
                    None => out.push_str("****"),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[authority_end..];
    }
    out.push_str(rest);
    out
}

/// A secret string (password, API key). `Debug` and `Display` print a mask; the value is
/// only reachable through [`Secret::expose`], and it is deliberately not `Serialize`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Constant-time comparison with a presented value.
    pub fn matches(&self, presented: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        // Lengths leak through any comparison; comparing equal-length digests would hide
        // them, but the password length is not a secret worth a hash per request.
        self.0.as_bytes().ct_eq(presented).into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", mask(&self.0))
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mask(&self.0))
    }
}

/// Query parameters whose values are credentials: our password (`key`) and the tokens a
/// client might send for Google (`access_token`, `oauth_token`). None of them goes upstream.
const SECRET_PARAMS: [&str; 3] = ["key", "access_token", "oauth_token"];

/// Replaces the value of every credential parameter (`key=`, …) with `…` so a URI can be
/// logged. Names are compared percent-decoded (`?%6Bey=` is `key`, decisions §2) and
/// case-insensitively; unlike authentication, which decodes a name once, redaction decodes
/// until nothing changes, so no spelling of a credential's name shows its value in a log.
pub fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| {
            let (name, has_value) = match pair.split_once('=') {
                Some((name, _)) => (name, true),
                None => (pair, false),
            };
            let decoded = decode_name(name);
            // `%6Bey%3Dsecret`: the `=` itself was encoded.
            let decoded_name = decoded.split('=').next().unwrap_or_default();
            if !SECRET_PARAMS
                .iter()
                .any(|s| decoded_name.eq_ignore_ascii_case(s))
            {
                pair.to_owned()
            } else if has_value {
                format!("{name}=…")
            } else {
                format!("{decoded_name}=…")
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A query parameter name, form-decoded until it no longer changes (a few rounds at most).
fn decode_name(name: &str) -> String {
    let mut current = name.to_owned();
    for _ in 0..4 {
        let next = url::form_urlencoded::parse(current.as_bytes())
            .next()
            .map(|(n, v)| {
                // A decoded `=` or `&` splits again on the next round; keep the whole text.
                if v.is_empty() {
                    n.into_owned()
                } else {
                    format!("{n}={v}")
                }
            })
            .unwrap_or_default();
        if next == current {
            break;
        }
        current = next;
    }
    current
}

/// Keys shorter than this are not scrubbed by value (they would mangle ordinary words; no
/// real credential is that short).
const MIN_SCRUB_LEN: usize = 8;
/// Most distinct keys scrubbed by value (a bound on the registry; beyond it, `AIza…` keys
/// are still scrubbed by shape).
const MAX_HELD: usize = 100_000;

/// The keys held by live key pools, for scrubbing by value. Each key slot holds its key from
/// creation to drop (so a key removed from the pool stays scrubbed while a request still
/// uses it); the matcher is rebuilt lazily, on the first scrub after a change.
struct Registry {
    /// Key → how many live slots hold it (several pools live in one test process).
    held: Mutex<HashMap<String, usize>>,
    changed: AtomicBool,
    matcher: ArcSwapOption<Matcher>,
}

struct Matcher {
    automaton: AhoCorasick,
    masks: Vec<String>,
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| Registry {
    held: Mutex::new(HashMap::new()),
    changed: AtomicBool::new(false),
    matcher: ArcSwapOption::const_empty(),
});

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn current(&self) -> Option<Arc<Matcher>> {
        if self.changed.swap(false, Ordering::AcqRel) {
            let held = self.lock();
            let keys: Vec<&String> = held.keys().collect();
            let matcher = if keys.is_empty() {
                None
            } else {
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(&keys)
                    .ok()
                    .map(|automaton| {
                        Arc::new(Matcher {
                            automaton,
                            masks: keys.iter().map(|k| mask(k)).collect(),
                        })
                    })
            };
            self.matcher.store(matcher);
        }
        self.matcher.load_full()
    }
}

/// Registers a key held by a key slot: from now on it is scrubbed from free text by value.
pub fn hold_key(secret: &str) {
    if secret.len() < MIN_SCRUB_LEN {
        return;
    }
    let mut held = REGISTRY.lock();
    if let Some(n) = held.get_mut(secret) {
        *n += 1;
        return;
    }
    if held.len() >= MAX_HELD {
        return;
    }
    held.insert(secret.to_owned(), 1);
    REGISTRY.changed.store(true, Ordering::Release);
}

/// The slot holding `secret` is gone.
pub fn release_key(secret: &str) {
    let mut held = REGISTRY.lock();
    if let Some(n) = held.get_mut(secret) {
        *n -= 1;
        if *n == 0 {
            held.remove(secret);
            REGISTRY.changed.store(true, Ordering::Release);
        }
    }
}

/// Replaces every key in free text (an upstream error message, say) by its mask: the keys
/// of live key pools by value, whatever their format, then anything `AIza…`-shaped.
pub fn scrub_keys(text: &str) -> String {
    match REGISTRY.current() {
        Some(m) => scrub_ai_studio(&m.automaton.replace_all(text, &m.masks)),
        None => scrub_ai_studio(text),
    }
}

fn scrub_ai_studio(text: &str) -> String {
    if !text.contains("AIza") {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("AIza") {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        let len = tail
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
            .count();
        if len >= 30 {
            out.push_str(&mask(&tail[..len]));
        } else {
            out.push_str(&tail[..len.max(4)]);
        }
        rest = &tail[len.max(4)..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_secrets_show_four_and_four() {
        assert_eq!(mask("AIzaSyA1234567890abcdefghijklmnopqx1Yz"), "AIza…x1Yz");
    }

    #[test]
    fn short_secrets_show_only_the_last_two() {
        assert_eq!(mask("123"), "…23");
        assert_eq!(mask("a"), "…a");
        assert_eq!(mask(""), "…");
    }

    #[test]
    fn secret_never_prints_itself() {
        let s = Secret::new("AIzaSyA1234567890abcdefghijklmnopqx1Yz");
        assert_eq!(format!("{s:?}"), "Secret(AIza…x1Yz)");
        assert_eq!(format!("{s}"), "AIza…x1Yz");
        assert!(s.matches(b"AIzaSyA1234567890abcdefghijklmnopqx1Yz"));
        assert!(!s.matches(b"AIzaSyA1234567890abcdefghijklmnopqx1Yy"));
    }

    #[test]
    fn key_ids_are_stable_and_not_prefixes() {
        // Fake key-shaped strings, built here so no key-like literal sits in the source.
        let fake = |last: char| format!("AIzaSy{}{last}", "A".repeat(32));
        let a = KeyId::of(&fake('A'));
        assert_eq!(a, KeyId::of(&fake('A')));
        assert_ne!(a, KeyId::of(&fake('B')));
        assert!(!a.to_string().contains("AIza"));
    }

    #[test]
    fn query_keys_are_redacted() {
        assert_eq!(redact_query("alt=sse&key=secret"), "alt=sse&key=…");
        assert_eq!(redact_query("KEY=x"), "KEY=…");
        assert_eq!(redact_query("monkey=1"), "monkey=1");
        assert_eq!(
            redact_query("access_token=t&oauth_token=u"),
            "access_token=…&oauth_token=…"
        );
    }

    #[test]
    fn encoded_key_names_are_redacted() {
        for q in [
            "%6Bey=secret",
            "%6bEY=secret",
            "%4B%45%59=secret",
            "%256Bey=secret",
            "%25256Bey=secret",
            "k%65y=secret",
            "%6Bey%3Dsecret",
            "alt=sse&%6Bey=secret&x=1",
            "%61ccess_token=secret",
        ] {
            let out = redact_query(q);
            assert!(!out.contains("secret"), "{q} -> {out}");
            assert!(out.contains('…'), "{q} -> {out}");
        }
        assert_eq!(
            redact_query("alt=sse&%6Bey=secret&x=1"),
            "alt=sse&%6Bey=…&x=1"
        );
        assert_eq!(redact_query("%6Bey%3Dsecret"), "key=…");
        assert_eq!(redact_query("%6Beys=1&k=2"), "%6Beys=1&k=2");
    }

    #[test]
    fn passwords_show_at_most_two_characters() {
        assert_eq!(mask_password("very-secret-password"), "…rd");
        assert_eq!(mask_password("1234567"), "…");
        assert_eq!(mask_password(""), "…");
    }

    #[test]
    fn url_credentials_are_masked() {
        assert_eq!(
            mask_url_credentials("http://alice:s3cret@proxy.example:3128"),
            "http://alice:****@proxy.example:3128"
        );
        assert_eq!(
            mask_url_credentials("socks5://tok@10.0.0.1:1080/x, redis://:pw@r:6379/0"),
            "socks5://****@10.0.0.1:1080/x, redis://:****@r:6379/0"
        );
        assert_eq!(
            mask_url_credentials("https://example.com/a@b"),
            "https://example.com/a@b"
        );
        assert_eq!(
            mask_url_credentials("localhost,.internal"),
            "localhost,.internal"
        );
    }

    #[test]
    fn relay_keys_held_by_a_pool_are_scrubbed_by_value() {
        let relay = "sk-relay-4f9c2a7be81d03";
        let pool = crate::keys::KeyPool::new(vec![relay.to_owned()]);
        let text = format!("upstream said: invalid key {relay} (code 401)");
        let scrubbed = scrub_keys(&text);
        assert!(!scrubbed.contains(relay), "{scrubbed}");
        assert!(scrubbed.contains(&mask(relay)), "{scrubbed}");
        // A key added at run time is scrubbed too; a removed one no longer matters.
        let added = "relay-added-key-0123456789";
        pool.add(&[added.to_owned()]);
        assert!(!scrub_keys(&format!("x {added} y")).contains(added));
        drop(pool);
    }

    #[test]
    fn keys_in_text_are_scrubbed() {
        let text = "url https://x/v1beta/models?key=AIzaSyA1234567890abcdefghijklmnopqx1Yz failed";
        assert_eq!(
            scrub_keys(text),
            "url https://x/v1beta/models?key=AIza…x1Yz failed"
        );
        assert_eq!(scrub_keys("AIza alone"), "AIza alone");
    }
}
