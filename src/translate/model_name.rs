//! Model names as clients send them and as Google wants them: the `models/` and `google/`
//! prefixes, the `-search` suffix of search mode, the `gemini-X.Y` version and the family a
//! thought signature belongs to. Every dialect and the pipeline read names through here.

/// A model name without Google's `models/` prefix (how the model lists compare names).
pub fn strip_model_prefix(model: &str) -> &str {
    model.strip_prefix("models/").unwrap_or(model)
}

/// Upstream model name for a client model name: strips `models/` and `google/` prefixes.
pub fn upstream_model_name(model: &str) -> &str {
    let m = model.trim();
    let m = strip_model_prefix(m);
    m.strip_prefix("google/").unwrap_or(m)
}

/// The model a search-mode name stands for: `gemini-2.5-flash-search` → `gemini-2.5-flash`
/// (`None` when the name has no `-search` suffix, or nothing before it).
pub fn search_base(model: &str) -> Option<&str> {
    model
        .strip_suffix("-search")
        .filter(|base| !base.is_empty())
}

/// `(major, minor)` of a `gemini-X.Y…` model name.
pub fn gemini_version(model: &str) -> Option<(u32, u32)> {
    let rest = upstream_model_name(model).strip_prefix("gemini-")?;
    let version: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut it = version.split('.');
    let major = it.next()?.parse().ok()?;
    let minor = it.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    Some((major, minor))
}

/// Gemini 3 or later: thought signatures are validated on the first call of every turn.
pub fn is_gemini3(model: &str) -> bool {
    gemini_version(model).is_some_and(|(major, _)| major >= 3)
}

/// Thought signatures are bound to the model; a sibling version (`-preview-05-20` vs
/// `-preview`) is the same family, another model is not.
pub fn same_family(a: &str, b: &str) -> bool {
    fn family(m: &str) -> &str {
        let m = strip_model_prefix(m);
        m.split("-preview").next().unwrap_or(m)
    }
    family(a) == family(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_prefixes_are_stripped() {
        assert_eq!(
            upstream_model_name("models/gemini-2.5-flash"),
            "gemini-2.5-flash"
        );
        assert_eq!(
            upstream_model_name("google/gemini-2.5-flash"),
            "gemini-2.5-flash"
        );
        assert_eq!(strip_model_prefix("models/x"), "x");
        assert_eq!(strip_model_prefix("google/x"), "google/x");
        assert_eq!(gemini_version("gemini-2.5-flash-lite"), Some((2, 5)));
        assert_eq!(gemini_version("gemini-3-pro-preview"), Some((3, 0)));
        assert_eq!(gemini_version("learnlm-2.0"), None);
        assert!(is_gemini3("models/gemini-3-flash-preview"));
        assert!(!is_gemini3("gemini-2.5-pro"));
    }

    #[test]
    fn search_names_give_their_base_model() {
        assert_eq!(
            search_base("gemini-2.5-flash-search"),
            Some("gemini-2.5-flash")
        );
        assert_eq!(search_base("-search"), None);
        assert_eq!(search_base("gemini-2.5-flash"), None);
    }

    #[test]
    fn families_ignore_preview_dates_but_not_the_model() {
        assert!(same_family(
            "gemini-3-pro-preview-05-20",
            "models/gemini-3-pro-preview"
        ));
        assert!(!same_family(
            "gemini-3-pro-preview",
            "gemini-3-flash-preview"
        ));
    }
}
