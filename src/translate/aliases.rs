//! `MODEL_ALIASES`: client model names mapped to Gemini models, for clients that insist on
//! their own names (Claude Code asks for `claude-…` models), applied in every dialect.
//!
//! Syntax: comma- or newline-separated `alias=model` entries, e.g.
//! `claude-sonnet-4-5=gemini-2.5-pro, claude-haiku-*=gemini-2.5-flash`. Aliases match
//! case-insensitively; an alias ending in `*` matches every name starting with what comes
//! before it (Claude Code adds dates: `claude-sonnet-4-5-20250929`), and a lone `*` matches
//! any name. An exact alias wins over a prefix, a longer prefix over a shorter one. The
//! answer still names the model the client asked for.

/// Parsed `MODEL_ALIASES`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelAliases {
    /// `(alias, model)`, aliases lowercased; prefixes keep their `*`.
    entries: Vec<(String, String)>,
}

impl ModelAliases {
    /// Parses the variable's value. An entry without `=`, with an empty side, or an alias
    /// given twice is an error naming the entry (the configuration refuses to start).
    pub fn parse(value: &str) -> Result<Self, String> {
        let mut entries: Vec<(String, String)> = Vec::new();
        for raw in value
            .split([',', '\n'])
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let Some((alias, model)) = raw.split_once('=') else {
                return Err(format!("{raw:?} is not alias=model"));
            };
            let alias = alias.trim().to_ascii_lowercase();
            let model = model.trim();
            if alias.is_empty() || model.is_empty() || alias.trim_end_matches('*').contains('*') {
                return Err(format!("{raw:?} is not alias=model"));
            }
            if entries.iter().any(|(a, _)| *a == alias) {
                return Err(format!("alias {alias:?} is given twice"));
            }
            entries.push((alias, model.to_owned()));
        }
        Ok(Self { entries })
    }

    /// No alias at all, for a `'static` default.
    pub fn none() -> &'static Self {
        static NONE: ModelAliases = ModelAliases {
            entries: Vec::new(),
        };
        &NONE
    }

    /// The aliases that name one model (no `*`), with their targets: what the model lists
    /// show besides Google's models.
    pub fn exact(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries
            .iter()
            .filter(|(alias, _)| !alias.ends_with('*'))
            .map(|(alias, model)| (alias.as_str(), model.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The Gemini model for a client's model name (the name itself when no alias matches).
    pub fn resolve<'a>(&'a self, model: &'a str) -> &'a str {
        let wanted = model.trim().to_ascii_lowercase();
        if let Some((_, target)) = self.entries.iter().find(|(a, _)| *a == wanted) {
            return target;
        }
        self.entries
            .iter()
            .filter_map(|(a, target)| {
                let prefix = a.strip_suffix('*')?;
                wanted.starts_with(prefix).then_some((prefix.len(), target))
            })
            .max_by_key(|(len, _)| *len)
            .map_or(model, |(_, target)| target.as_str())
    }
}

/// The entries as the variable writes them (`alias=model, …`; aliases lower-cased): what
/// `hajimi config` and the dashboard show, and what [`ModelAliases::parse`] reads back.
impl std::fmt::Display for ModelAliases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (alias, model)) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{alias}={model}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entries_are_shown_as_they_are_written_and_read_back() {
        let a =
            ModelAliases::parse("Claude-Sonnet-4-5 = gemini-2.5-pro\nclaude-*=gemini-2.5-flash");
        let shown = a.as_ref().map(ToString::to_string).unwrap_or_default();
        assert_eq!(
            shown,
            "claude-sonnet-4-5=gemini-2.5-pro, claude-*=gemini-2.5-flash"
        );
        assert_eq!(ModelAliases::parse(&shown).ok(), a.ok());
    }

    #[test]
    fn exact_names_prefixes_and_a_catch_all() {
        let a = ModelAliases::parse(
            " claude-sonnet-4-5=gemini-2.5-pro,\nclaude-haiku-*=gemini-2.5-flash, claude-*=gemini-3-pro-preview , *=gemini-2.5-flash-lite",
        )
        .expect("parses");
        assert_eq!(a.resolve("claude-sonnet-4-5"), "gemini-2.5-pro");
        assert_eq!(
            a.resolve("Claude-Sonnet-4-5"),
            "gemini-2.5-pro",
            "case-insensitive"
        );
        assert_eq!(
            a.resolve("claude-haiku-4-5-20251001"),
            "gemini-2.5-flash",
            "longest prefix"
        );
        assert_eq!(a.resolve("claude-opus-4-5"), "gemini-3-pro-preview");
        assert_eq!(a.resolve("gpt-5"), "gemini-2.5-flash-lite");
        let none = ModelAliases::parse("").expect("empty");
        assert!(none.is_empty());
        assert_eq!(none.resolve("gemini-2.5-pro"), "gemini-2.5-pro");
    }

    #[test]
    fn malformed_entries_are_refused() {
        for bad in ["claude", "=gemini", "claude=", "a=b,a=c", "cl*ude=x"] {
            assert!(ModelAliases::parse(bad).is_err(), "{bad}");
        }
    }
}
