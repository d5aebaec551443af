//! HAJIMI's value rules, applied to one merged view of the configuration sources
//! (decisions §1): booleans are `true`/`1`/`yes`/`on` or `false`/`0`/`no`/`off` (any case),
//! an empty value means unset, surrounding double quotes are stripped, an unparsable value
//! is an error naming the variable, and a parsable but out-of-range value becomes the
//! nearest valid one with a warning. Every read also records the value in effect, masked,
//! for `hajimi config`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

/// Where a value came from, lowest precedence first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Default,
    DotEnv,
    Env,
    Cli,
    Dashboard,
}

impl Source {
    pub fn label(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::DotEnv => ".env",
            Self::Env => "environment",
            Self::Cli => "command line",
            Self::Dashboard => "dashboard",
        }
    }
}

/// An unparsable value: the process prints [`ConfigError`]'s one line and exits with code 2.
/// `value` is as `hajimi config` would show it (a secret is masked).
#[derive(Debug, thiserror::Error)]
#[error(
    "无效的配置 {name}={value:?}：应为{expected_zh} / invalid {name}={value:?}: expected {expected}"
)]
pub struct ConfigError {
    pub name: String,
    pub value: String,
    pub expected: Cow<'static, str>,
    pub expected_zh: Cow<'static, str>,
}

/// The form a value should have had, in English and Chinese: what a setting's parser returns
/// when it refuses a value (the environment turns it into a [`ConfigError`], the dashboard
/// into its 422 message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    pub en: Cow<'static, str>,
    pub zh: Cow<'static, str>,
}

impl Expected {
    pub const fn new(en: &'static str, zh: &'static str) -> Self {
        Self {
            en: Cow::Borrowed(en),
            zh: Cow::Borrowed(zh),
        }
    }

    /// The error for variable `name` holding `raw` (masked as `hajimi config` shows it).
    pub fn error(self, name: &str, raw: &str) -> ConfigError {
        ConfigError {
            name: name.to_owned(),
            value: shown(name, raw),
            expected: self.en,
            expected_zh: self.zh,
        }
    }
}

/// The merged raw values plus the bookkeeping of one load: provenance, the effective value
/// of each setting read (masked, for display), warnings, and the first unparsable value met
/// by a reader that cannot fail on the spot ([`Values::bool`]).
#[derive(Default)]
pub struct Values {
    raw: BTreeMap<String, (String, Source)>,
    pub provenance: BTreeMap<String, Source>,
    /// The value in effect for every variable read, as `hajimi config` shows it: secrets
    /// masked (decisions §7), credentials in URLs hidden, unset values as `(unset)`.
    pub effective: BTreeMap<String, String>,
    pub warnings: Vec<String>,
    error: Option<ConfigError>,
}

impl Values {
    /// Adds a source on top of what is there. Empty values mean unset and are skipped.
    pub fn layer(&mut self, pairs: impl IntoIterator<Item = (String, String)>, source: Source) {
        for (name, value) in pairs {
            let value = normalise(&value);
            if value.is_empty() {
                continue;
            }
            self.raw.insert(name, (value, source));
        }
    }

    /// The raw value of a variable and its source, if set.
    pub fn get(&mut self, name: &str) -> Option<(String, Source)> {
        let found = self.raw.get(name).cloned();
        let source = found.as_ref().map_or(Source::Default, |(_, s)| *s);
        self.provenance.insert(name.to_owned(), source);
        found
    }

    /// Every value that is set, by name (secrets included: never print this).
    pub fn raw_values(&self) -> BTreeMap<String, String> {
        self.raw
            .iter()
            .map(|(k, (v, _))| (k.clone(), v.clone()))
            .collect()
    }

    pub fn is_set(&self, name: &str) -> bool {
        self.raw.contains_key(name)
    }

    /// Records the value in effect for `name` (masked when the name holds a secret).
    pub fn show(&mut self, name: &str, value: &str) {
        self.effective.insert(name.to_owned(), shown(name, value));
    }

    /// The first unparsable value met by [`Values::bool`], if any (taken once).
    pub fn take_error(&mut self) -> Option<ConfigError> {
        self.error.take()
    }

    /// A boolean (decisions §1's words). Anything else is remembered as the load's error
    /// ([`Values::take_error`]) and the default is returned meanwhile.
    pub fn bool(&mut self, name: &str, default: bool) -> bool {
        let value = match self.get(name) {
            None => default,
            Some((raw, _)) => match parse_bool(&raw) {
                Some(b) => b,
                None => {
                    self.error.get_or_insert(
                        Expected::new(
                            "true/false (also 1/0, yes/no, on/off)",
                            "true/false（或 1/0、yes/no、on/off）",
                        )
                        .error(name, &raw),
                    );
                    default
                }
            },
        };
        self.show(name, if value { "true" } else { "false" });
        value
    }

    /// An integer clamped to `[min, max]` with a warning when outside.
    pub fn int(
        &mut self,
        name: &str,
        default: i64,
        min: i64,
        max: i64,
    ) -> Result<i64, ConfigError> {
        let Some((raw, _)) = self.get(name) else {
            self.show(name, &default.to_string());
            return Ok(default);
        };
        let value =
            parse_int(&raw).ok_or_else(|| Expected::new("an integer", "整数").error(name, &raw))?;
        let value = self.clamp(name, value, min, max);
        self.show(name, &value.to_string());
        Ok(value)
    }

    /// A duration given in seconds (`1.5`) or with a unit (`500ms`, `2m`), clamped.
    pub fn duration(
        &mut self,
        name: &str,
        default: Duration,
        min: Duration,
        max: Duration,
    ) -> Result<Duration, ConfigError> {
        let Some((raw, _)) = self.get(name) else {
            self.show(name, &seconds(default));
            return Ok(default);
        };
        let value = parse_duration(&raw).ok_or_else(|| {
            Expected::new(
                "a number of seconds such as 1.5, or a duration such as 500ms",
                "秒数（如 1.5）或带单位的时长（如 500ms）",
            )
            .error(name, &raw)
        })?;
        let value = if value < min || value > max {
            let fixed = value.clamp(min, max);
            self.warn_range(name, &raw, &seconds(fixed));
            fixed
        } else {
            value
        };
        self.show(name, &seconds(value));
        Ok(value)
    }

    /// A byte size (`67108864`, `64MiB`, `10MB`), clamped to `[min, max]`.
    pub fn size(
        &mut self,
        name: &str,
        default: usize,
        min: usize,
        max: usize,
    ) -> Result<usize, ConfigError> {
        let Some((raw, _)) = self.get(name) else {
            self.show(name, &bytes(default));
            return Ok(default);
        };
        let value = parse_size(&raw).ok_or_else(|| {
            Expected::new(
                "a size in bytes such as 67108864 or 64MiB",
                "字节数（如 67108864 或 64MiB）",
            )
            .error(name, &raw)
        })?;
        let value = if value < min || value > max {
            let fixed = value.clamp(min, max);
            self.warn_range(name, &raw, &fixed.to_string());
            fixed
        } else {
            value
        };
        self.show(name, &bytes(value));
        Ok(value)
    }

    /// A comma-separated list, trimmed, empty entries dropped.
    pub fn list(&mut self, name: &str) -> Vec<String> {
        let list = self
            .get(name)
            .map(|(v, _)| split_list(&v))
            .unwrap_or_default();
        if list.is_empty() {
            self.effective.insert(name.to_owned(), "(empty)".to_owned());
        } else {
            self.show(name, &list.join(", "));
        }
        list
    }

    pub fn error(
        name: &str,
        value: &str,
        expected: &'static str,
        expected_zh: &'static str,
    ) -> ConfigError {
        ConfigError {
            name: name.to_owned(),
            value: value.to_owned(),
            expected: expected.into(),
            expected_zh: expected_zh.into(),
        }
    }

    fn clamp(&mut self, name: &str, value: i64, min: i64, max: i64) -> i64 {
        if value < min || value > max {
            let fixed = value.clamp(min, max);
            self.warn_range(name, &value.to_string(), &fixed.to_string());
            fixed
        } else {
            value
        }
    }

    fn warn_range(&mut self, name: &str, raw: &str, fixed: &str) {
        self.warnings.push(format!(
            "{name}={raw} 超出允许范围，改用 {fixed} / {name}={raw} is out of range; using {fixed}"
        ));
    }
}

/// How an unset optional value is shown.
pub const UNSET: &str = "(unset)";

/// A value as `hajimi config` shows it, masked the way the settings table says for `name`
/// ([`super::table::Mask`]): passwords as `…` and their last two characters, keys masked,
/// credentials JSON as `(set)`, and any `user:password@` in a URL (proxies, `REDIS_URL`)
/// with the password replaced by `****`.
pub fn shown(name: &str, value: &str) -> String {
    super::table::find_env(name)
        .map_or(super::table::Mask::Plain, |e| e.mask)
        .apply(value)
}

/// A duration as seconds (`600s`, `0.5s`).
pub fn seconds(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

/// A byte size as `hajimi config` shows it: `67108864 (64 MiB)`.
pub fn bytes(n: usize) -> String {
    const MIB: usize = 1024 * 1024;
    if n >= MIB && n.is_multiple_of(MIB) {
        format!("{n} ({} MiB)", n / MIB)
    } else {
        n.to_string()
    }
}

/// Strips surrounding whitespace and one pair of surrounding double quotes.
pub fn normalise(value: &str) -> String {
    let v = value.trim();
    let v = v
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or(v);
    v.trim().to_owned()
}

/// A boolean as decisions §1 spells it: `true`/`1`/`yes`/`on` or `false`/`0`/`no`/`off`,
/// in any case. Anything else is unparsable (HAJIMI read it as false, silently).
pub fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Python `int()` semantics for the cases people write: optional sign, digits, underscores.
pub fn parse_int(value: &str) -> Option<i64> {
    let v = value.trim().replace('_', "");
    v.parse::<i64>().ok().or_else(|| {
        // `int("3.0")` fails in Python too, but a float that is integral is a common typo in
        // YAML-generated env files; accept it.
        let f = v.parse::<f64>().ok()?;
        (f.fract() == 0.0 && f.is_finite() && f.abs() < 9.0e18).then_some(f as i64)
    })
}

pub fn parse_duration(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite()).then(|| Duration::from_secs_f64(secs.max(0.0)));
    }
    humantime::parse_duration(v).ok()
}

pub fn parse_size(value: &str) -> Option<usize> {
    let v = value.trim();
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let num: f64 = num.parse().ok()?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = num * mult;
    (0.0..1.0e15).contains(&bytes).then_some(bytes as usize)
}

pub fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> Values {
        let mut v = Values::default();
        v.layer(
            pairs
                .iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned())),
            Source::Env,
        );
        v
    }

    #[test]
    fn booleans_accept_exactly_the_contract_words() {
        for yes in ["true", "TRUE", "1", "yes", "Yes", " true ", "on", "ON"] {
            assert_eq!(parse_bool(yes), Some(true), "{yes}");
        }
        for no in ["false", "False", "0", "no", "NO", "off", "Off"] {
            assert_eq!(parse_bool(no), Some(false), "{no}");
        }
        for bad in ["ture", "y", "n", "2", "enabled", "yes please", ""] {
            assert_eq!(parse_bool(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_misspelled_boolean_is_an_error_not_false() {
        let mut v = values(&[("FAKE_STREAMING", "ture")]);
        let _ = v.bool("FAKE_STREAMING", true);
        let err = v.take_error().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("FAKE_STREAMING=\"ture\""), "{err}");
        assert!(err.contains("true/false"), "{err}");
    }

    #[test]
    fn effective_values_are_recorded_for_every_read() {
        let mut v = values(&[("A", "7"), ("P", "hunter22-long")]);
        assert_eq!(v.int("A", 1, 0, 10).ok(), Some(7));
        assert_eq!(v.int("B", 3, 0, 10).ok(), Some(3));
        assert!(v.list("C").is_empty());
        let _ = v.duration("D", Duration::from_secs(600), Duration::ZERO, Duration::MAX);
        assert_eq!(v.effective.get("A").map(String::as_str), Some("7"));
        assert_eq!(v.effective.get("B").map(String::as_str), Some("3"));
        assert_eq!(v.effective.get("C").map(String::as_str), Some("(empty)"));
        assert_eq!(v.effective.get("D").map(String::as_str), Some("600s"));
    }

    #[test]
    fn empty_means_unset_and_quotes_are_stripped() {
        let mut v = values(&[("A", ""), ("B", "\"quoted\""), ("C", "  spaced ")]);
        assert_eq!(v.get("A"), None);
        assert_eq!(v.get("B").map(|(x, _)| x).as_deref(), Some("quoted"));
        assert_eq!(v.get("C").map(|(x, _)| x).as_deref(), Some("spaced"));
        assert_eq!(v.provenance.get("A"), Some(&Source::Default));
        assert_eq!(v.provenance.get("B"), Some(&Source::Env));
    }

    #[test]
    fn unparsable_integer_is_an_error_naming_the_variable() {
        let mut v = values(&[("PORT", "abc")]);
        let err = v
            .int("PORT", 7860, 0, 65535)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("PORT=\"abc\""), "{err}");
        assert!(err.contains("expected an integer"), "{err}");
    }

    #[test]
    fn out_of_range_clamps_with_a_warning() {
        let mut v = values(&[("CONCURRENT_REQUESTS", "-1")]);
        assert_eq!(v.int("CONCURRENT_REQUESTS", 1, 1, 10).ok(), Some(1));
        assert_eq!(v.warnings.len(), 1);
        assert!(v.warnings[0].contains("CONCURRENT_REQUESTS=-1"));
    }

    #[test]
    fn durations_accept_seconds_and_units() {
        assert_eq!(parse_duration("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("soon"), None);
    }

    #[test]
    fn sizes_accept_units() {
        assert_eq!(parse_size("67108864"), Some(67_108_864));
        assert_eq!(parse_size("64MiB"), Some(67_108_864));
        assert_eq!(parse_size("1kb"), Some(1000));
        assert_eq!(parse_size("lots"), None);
    }

    #[test]
    fn lists_drop_empty_entries() {
        assert_eq!(split_list(" a, ,b,,c "), vec!["a", "b", "c"]);
    }
}
