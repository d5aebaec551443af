//! Secret hygiene: short stable key ids for logs, masked keys for people, a `Secret`
//! string whose `Debug`/`Display` never reveal it, and redaction of `?key=` in URIs.
//! Owns nothing else; every other module goes through these to print a key.

use std::fmt;

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
/// characters or longer (`AIza…x1Yz`), else `…` and the last 2 (CONTRACT §7).
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
/// logged. Names are compared percent-decoded (`?%6Bey=` is `key`, CONTRACT §2) and
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

/// Replaces every `AIza…` key found in free text (an upstream error message, say) by its mask.
pub fn scrub_keys(text: &str) -> String {
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
        let a = KeyId::of("AIzaSyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(a, KeyId::of("AIzaSyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
        assert_ne!(a, KeyId::of("AIzaSyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB"));
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
    fn keys_in_text_are_scrubbed() {
        let text = "url https://x/v1beta/models?key=AIzaSyA1234567890abcdefghijklmnopqx1Yz failed";
        assert_eq!(
            scrub_keys(text),
            "url https://x/v1beta/models?key=AIza…x1Yz failed"
        );
        assert_eq!(scrub_keys("AIza alone"), "AIza alone");
    }
}
