//! Names a client chooses, bounded before the gateway keeps or shows them (decisions §7): model
//! names in the usage statistics, the dashboard's request log and the metrics labels, and
//! route labels.
//!
//! A model keeps its own name when it is known: in Google's model list (as last loaded by the
//! catalogue), a `-search` variant of a listed model, or in `EXTRA_MODELS`. Any other name is
//! counted as `other`. Before a list has ever loaded (no key yet, upstream unreachable), the
//! first [`MAX_UNLISTED`] distinct names that look like model ids keep their names, so the
//! usage of a working deployment is not all `other` while the list is missing; later ones are
//! `other`, and once a list loads, only known names keep theirs. Nothing longer than
//! [`MAX_NAME`] characters is ever kept: an id that long is not a model.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::{Arc, LazyLock, PoisonError, RwLock};

/// The longest model name kept, logged or shown (Google's ids are well under 64 characters).
pub const MAX_NAME: usize = 128;
/// Distinct unknown model names that keep their names while no model list is loaded.
pub const MAX_UNLISTED: usize = 16;
/// The most listed models remembered (Google lists about a hundred).
const MAX_LISTED: usize = 2000;
/// The label of every model name that is not kept.
pub const OTHER: &str = "other";
/// The route label of requests no route matched.
pub const UNMATCHED: &str = "unmatched";

#[derive(Default)]
struct Known {
    /// Google's list, without `models/`; `None` until a list has loaded.
    listed: Option<HashSet<String>>,
    /// `EXTRA_MODELS` of the current settings.
    extra: HashSet<String>,
    /// Names kept while no list was loaded (at most [`MAX_UNLISTED`]).
    unlisted: HashSet<String>,
}

impl Known {
    fn knows(&self, m: &str) -> bool {
        let base = m.strip_suffix("-search").unwrap_or(m);
        let listed = self
            .listed
            .as_ref()
            .is_some_and(|l| l.contains(m) || l.contains(base));
        listed || self.extra.contains(m) || self.extra.contains(base) || self.unlisted.contains(m)
    }
}

/// The models that keep their names; one per process ([`global`]), separate ones in tests.
#[derive(Default)]
pub struct KnownModels(RwLock<Known>);

static GLOBAL: LazyLock<Arc<KnownModels>> = LazyLock::new(Arc::default);

/// The process's known models: the catalogue and the settings write them, the statistics and
/// the metrics read them.
pub fn global() -> &'static Arc<KnownModels> {
    &GLOBAL
}

impl KnownModels {
    /// Google's list has loaded: from now on only listed (and extra) names are kept.
    pub fn set_listed(&self, models: impl IntoIterator<Item = String>) {
        let listed: HashSet<String> = models
            .into_iter()
            .filter(|m| m.len() <= MAX_NAME)
            .take(MAX_LISTED)
            .collect();
        let mut known = self.0.write().unwrap_or_else(PoisonError::into_inner);
        known.listed = Some(listed);
        known.unlisted.clear();
    }

    /// `EXTRA_MODELS` of the settings now in force.
    pub fn set_extra(&self, models: &[String]) {
        let extra: HashSet<String> = models
            .iter()
            .filter(|m| m.len() <= MAX_NAME)
            .take(MAX_LISTED)
            .cloned()
            .collect();
        self.0.write().unwrap_or_else(PoisonError::into_inner).extra = extra;
    }

    /// The name under which a model is counted and shown: itself (without `models/`) when
    /// known, else [`OTHER`].
    pub fn label(&self, model: &str) -> String {
        let m = crate::translate::model_name::strip_model_prefix(model);
        if m == OTHER || !looks_like_model_id(m) {
            return OTHER.to_owned();
        }
        {
            let known = self.0.read().unwrap_or_else(PoisonError::into_inner);
            if known.knows(m) {
                return m.to_owned();
            }
            if known.listed.is_some() || known.unlisted.len() >= MAX_UNLISTED {
                return OTHER.to_owned();
            }
        }
        let mut known = self.0.write().unwrap_or_else(PoisonError::into_inner);
        if known.knows(m) {
            return m.to_owned();
        }
        if known.listed.is_none() && known.unlisted.len() < MAX_UNLISTED {
            known.unlisted.insert(m.to_owned());
            return m.to_owned();
        }
        OTHER.to_owned()
    }
}

/// Whether a name has the shape of a model id: 1 to [`MAX_NAME`] letters, digits, `.`, `_`
/// or `-`.
pub fn looks_like_model_id(m: &str) -> bool {
    !m.is_empty()
        && m.len() <= MAX_NAME
        && m.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A client-chosen text fit for a log line: at most `max` characters (then `…`), control
/// characters replaced, so one value can neither flood nor forge log lines.
pub fn capped(text: &str, max: usize) -> Cow<'_, str> {
    let fits = text.len() <= max && !text.chars().any(char::is_control);
    if fits {
        return Cow::Borrowed(text);
    }
    let mut out: String = text
        .chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().nth(max).is_some() {
        out.push('…');
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_outside_the_list_are_other() {
        let known = KnownModels::default();
        known.set_listed(["gemini-2.5-flash".to_owned()]);
        known.set_extra(&["my-relay-model".to_owned()]);
        assert_eq!(known.label("gemini-2.5-flash"), "gemini-2.5-flash");
        assert_eq!(known.label("models/gemini-2.5-flash"), "gemini-2.5-flash");
        assert_eq!(
            known.label("gemini-2.5-flash-search"),
            "gemini-2.5-flash-search"
        );
        assert_eq!(known.label("my-relay-model"), "my-relay-model");
        assert_eq!(known.label("gemini-9-ultra"), OTHER);
        assert_eq!(known.label(""), OTHER);
        known.set_extra(&[]);
        assert_eq!(
            known.label("my-relay-model"),
            OTHER,
            "extras follow the settings"
        );
    }

    #[test]
    fn a_huge_or_odd_model_name_is_never_kept() {
        let known = KnownModels::default();
        let huge = format!("gemini-{}", "x".repeat(1 << 20));
        assert_eq!(known.label(&huge), OTHER, "no list yet, still too long");
        assert_eq!(known.label("gemini 2.5\nflash"), OTHER);
        assert_eq!(known.label(&"a".repeat(MAX_NAME)), "a".repeat(MAX_NAME));
        assert_eq!(known.label(&"b".repeat(MAX_NAME + 1)), OTHER);
    }

    /// Without a list, a few unknown names keep theirs (a deployment whose list never loaded
    /// still shows what it serves); the rest are `other`; a loaded list decides from then on.
    #[test]
    fn unknown_names_are_kept_only_a_few_and_only_until_a_list_loads() {
        let known = KnownModels::default();
        for i in 0..MAX_UNLISTED {
            assert_eq!(known.label(&format!("model-{i}")), format!("model-{i}"));
        }
        assert_eq!(known.label("model-0"), "model-0", "kept names stay kept");
        assert_eq!(known.label("one-too-many"), OTHER);
        known.set_listed(["model-1".to_owned()]);
        assert_eq!(known.label("model-1"), "model-1");
        assert_eq!(known.label("model-0"), OTHER);
        assert_eq!(known.label("model-99"), OTHER);
    }

    #[test]
    fn capped_text_is_short_and_on_one_line() {
        assert_eq!(capped("short", 10), "short");
        assert_eq!(capped("abcdef", 3), "abc…");
        assert_eq!(capped("a\nb", 10), "a?b");
        let long = "é".repeat(300);
        assert_eq!(capped(&long, 128).chars().count(), 129);
    }
}
