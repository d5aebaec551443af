//! Upstream key extraction (decisions §1): `AIzaSy…` keys are found by pattern anywhere in a
//! variable's text; a variable holding no such key is split on commas, whitespace and
//! newlines instead (relays with other key formats). De-duplicated, order kept.

use std::collections::HashSet;

/// The length of an AI Studio key: `AIzaSy` + 33 characters of `[A-Za-z0-9_-]`.
const KEY_LEN: usize = 39;

/// Every `AIzaSy[A-Za-z0-9_-]{33}` occurrence in `text`, in order (HAJIMI's regex).
pub fn find_ai_studio_keys(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while let Some(pos) = text[i..].find("AIzaSy") {
        let start = i + pos;
        let tail = &bytes[start + 6..];
        let body = tail
            .iter()
            .take(KEY_LEN - 6)
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_' || **b == b'-')
            .count();
        if body == KEY_LEN - 6 {
            found.push(text[start..start + KEY_LEN].to_owned());
            i = start + KEY_LEN;
        } else {
            i = start + 6;
        }
    }
    found
}

/// The keys held by one variable's value.
pub fn extract_keys(text: &str) -> Vec<String> {
    let found = find_ai_studio_keys(text);
    if !found.is_empty() {
        return found;
    }
    text.split(|c: char| c == ',' || c.is_whitespace())
        .map(|s| s.trim_matches(|c| c == '"' || c == '\''))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Characters an AI Studio key is made of.
fn key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// In a variable that holds AI Studio keys, the entries that look like an attempt at a key
/// but are not one: `(position, token, truncated)`, position counted from 1 over the entries
/// separated by commas, semicolons and whitespace. A token is a run of key characters that
/// starts with `AIza`, or is 30 characters or longer, and is not exactly a key; `truncated`
/// when a key was still taken from its first 39 characters (HAJIMI's pattern has no end
/// anchor). Variables holding no AI Studio key are relay keys, taken as they are: nothing
/// is reported there.
pub fn malformed(text: &str) -> Vec<(usize, String, bool)> {
    if find_ai_studio_keys(text).is_empty() {
        return Vec::new();
    }
    let entries = text
        .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
        .filter(|e| !e.is_empty());
    let mut found = Vec::new();
    for (i, entry) in entries.enumerate() {
        for run in entry.split(|c: char| !key_char(c)) {
            let is_key = run.len() == KEY_LEN && run.starts_with("AIzaSy");
            if is_key || !(run.starts_with("AIza") || run.len() >= 30) {
                continue;
            }
            let truncated = run.len() > KEY_LEN && !find_ai_studio_keys(run).is_empty();
            found.push((i + 1, run.to_owned(), truncated));
        }
    }
    found
}

/// Appends keys not seen before, keeping first-seen order.
pub fn dedup_into(into: &mut Vec<String>, seen: &mut HashSet<String>, keys: Vec<String>) {
    for key in keys {
        if seen.insert(key.clone()) {
            into.push(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fake keys of the AI Studio shape: `AIzaSy` + 33 characters, built here so that no
    /// key-shaped literal sits in the source.
    fn fake(tail: &str) -> String {
        format!("AIzaSy{tail:0>33}")
    }

    #[test]
    fn keys_are_found_in_messy_text() {
        let (k1, k2) = (fake("A1"), fake("B_-2"));
        assert_eq!(k1.len(), 39);
        let text = format!("first: {k1};\n  second=\"{k2}\" junk AIzaSyTooShort");
        assert_eq!(find_ai_studio_keys(&text), vec![k1, k2]);
    }

    #[test]
    fn non_google_keys_are_split_on_separators() {
        assert_eq!(
            extract_keys("sk-one, sk-two\nsk-three  sk-four"),
            vec!["sk-one", "sk-two", "sk-three", "sk-four"]
        );
    }

    #[test]
    fn google_keys_win_over_splitting() {
        let k1 = fake("A1");
        let text = format!("{k1},not-a-key");
        assert_eq!(extract_keys(&text), vec![k1]);
    }

    #[test]
    fn near_keys_are_reported_by_position() {
        let (k1, k2) = (fake("A1"), fake("B2"));
        let text = format!("{k1}, AIzaSyTooShort; note\n\"{k2}X\" first: {k2}");
        assert_eq!(
            malformed(&text),
            vec![
                (2, "AIzaSyTooShort".to_owned(), false),
                (4, format!("{k2}X"), true)
            ]
        );
        assert!(
            malformed("sk-relay-one, AIzaShort").is_empty(),
            "no AI Studio key: relay keys"
        );
        assert!(malformed(&format!("key={k1}")).is_empty());
    }

    #[test]
    fn duplicates_are_removed_in_order() {
        let mut all = Vec::new();
        let mut seen = HashSet::new();
        let (k1, k2) = (fake("A1"), fake("B_-2"));
        dedup_into(&mut all, &mut seen, vec![k2.clone(), k1.clone()]);
        dedup_into(&mut all, &mut seen, vec![k1.clone(), k2.clone()]);
        assert_eq!(all, vec![k2, k1]);
    }
}
