//! The settings table: every setting described once ([`TABLE`], in `table/entries.rs`), with
//! its environment variable, its dashboard key when the dashboard may change it, its kind with
//! default and bounds, its group, a one-line help in English and Chinese, whether it is secret,
//! whether a change needs a restart, and typed accessors to its [`Settings`] field.
//!
//! Everything else is derived from the table:
//! - environment parsing ([`Entry::load`], used by `config::build`) with decisions §1's rules:
//!   an unparsable value is an error, an out-of-range number is clamped with a warning;
//! - dashboard editing ([`find`], [`Entry::get`], [`Entry::set`], [`Entry::persisted`],
//!   [`Entry::listing`]): the same bounds, an out-of-range value refused (HAJIMI's 422);
//!   saved values are re-applied at start-up through the same [`Entry::set`];
//! - `hajimi config` (rows in table order, values masked as [`Mask`] says);
//! - README.md's configuration tables (`table/docs.rs`, checked by a test).

mod docs;
mod entries;
mod json;

use std::time::Duration;

use serde_json::{Value, json};

pub use docs::{README_BEGIN, README_END, markdown};
pub use entries::TABLE;

use super::parse::{Expected, UNSET, Values, bytes, seconds};
use super::{ConfigError, Settings, Source};

/// Where a setting is shown (the dashboard's settings page groups its settings this way; HAJIMI's page
/// had "基本配置", "功能配置" and "Vertex 配置").
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    Basic,
    Keys,
    Delivery,
    Retries,
    Cache,
    Search,
    Models,
    Limits,
    Upstream,
    Server,
    Vertex,
}

impl Group {
    /// Every group, in display order.
    pub const ALL: [Group; 11] = [
        Group::Basic,
        Group::Keys,
        Group::Delivery,
        Group::Retries,
        Group::Cache,
        Group::Search,
        Group::Models,
        Group::Limits,
        Group::Upstream,
        Group::Server,
        Group::Vertex,
    ];

    /// The group's title: (English, Chinese).
    pub fn title(self) -> (&'static str, &'static str) {
        match self {
            Self::Basic => ("Basic", "基本配置"),
            Self::Keys => ("Keys", "密钥"),
            Self::Delivery => ("Delivery", "响应方式"),
            Self::Retries => ("Retries and racing", "重试与并发"),
            Self::Cache => ("Cache", "缓存"),
            Self::Search => ("Search", "联网搜索"),
            Self::Models => ("Models", "模型"),
            Self::Limits => ("Request limits", "请求限制"),
            Self::Upstream => ("Upstream", "上游"),
            Self::Server => ("Server", "服务"),
            Self::Vertex => ("Vertex AI", "Vertex 配置"),
        }
    }
}

/// How a value is shown by `hajimi config` and in error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mask {
    /// As is, except a `user:password@` in a URL, whose password becomes `****`.
    Plain,
    /// At most the last two characters.
    Password,
    /// Every key of a list masked.
    Keys,
    /// Only `(set)`.
    Whole,
}

impl Mask {
    pub fn apply(self, value: &str) -> String {
        use crate::mask::{mask, mask_password, mask_url_credentials};
        match self {
            Self::Plain => mask_url_credentials(value),
            Self::Password => mask_password(value),
            Self::Whole => "(set)".to_owned(),
            Self::Keys => value
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|k| !k.is_empty())
                .map(mask)
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

/// Typed access to a `Settings` field whose values are always valid once in range.
pub struct Field<T> {
    pub get: fn(&Settings) -> T,
    pub set: fn(&mut Settings, T),
}

/// Typed access to a `Settings` field whose setter parses and may refuse (a time zone, a URL,
/// CIDRs, credentials): the same check for the environment and the dashboard.
pub struct Checked<T> {
    pub get: fn(&Settings) -> T,
    pub set: fn(&mut Settings, T) -> Result<(), Expected>,
}

/// The default of a text setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextDefault {
    /// This text.
    Value(&'static str),
    /// Unset: the setting is optional.
    Unset,
    /// Computed by the setter from other settings or the machine; the words describe it.
    Computed(&'static str),
}

/// What a setting holds, its default and bounds, and the accessor to its field.
pub enum Kind {
    /// `true`/`1`/`yes`/`on` or `false`/`0`/`no`/`off`; from the dashboard also a JSON boolean.
    Bool { default: bool, field: Field<bool> },
    /// An integer in `min..=max`.
    Int {
        default: i64,
        min: i64,
        max: i64,
        field: Field<i64>,
    },
    /// A duration in `min..=max`: seconds (`1.5`) or with a unit (`500ms`) from the
    /// environment; seconds from the dashboard, whole seconds when `whole`.
    Duration {
        default: Duration,
        min: Duration,
        max: Duration,
        whole: bool,
        field: Field<Duration>,
    },
    /// A byte size in `min..=max` (`67108864`, `64MiB`).
    Size {
        default: usize,
        min: usize,
        max: usize,
        field: Field<usize>,
    },
    /// Text; `form` describes what is accepted.
    Text {
        default: TextDefault,
        form: &'static str,
        field: Checked<Option<String>>,
    },
    /// A comma-separated list (from the dashboard also a JSON array); `count`: the dashboard
    /// sees how many entries, not the entries.
    List {
        form: &'static str,
        count: bool,
        field: Checked<Vec<String>>,
    },
    /// Upstream keys: collected into `Config::keys`, not a `Settings` field (the dashboard adds
    /// keys through the key API). `numbered`: `GEMINI_API_KEYS_1` … `_98`.
    Keys { numbered: bool },
}

/// One setting.
pub struct Entry {
    /// The environment variable (HAJIMI's name).
    pub env: &'static str,
    /// A lower-case twin read when `env` is unset (`https_proxy`).
    pub alias: Option<&'static str>,
    /// HAJIMI's snake_case key in `/api/update-config`, when the dashboard may change it.
    pub key: Option<&'static str>,
    pub group: Group,
    pub kind: Kind,
    pub help_en: &'static str,
    pub help_zh: &'static str,
    /// The dashboard sees only whether it is set, and `""`/`"true"` leave it unchanged.
    pub secret: bool,
    pub mask: Mask,
    /// Read once at start-up: a change takes effect after a restart.
    pub restart: bool,
}

impl Entry {
    pub const fn new(env: &'static str, group: Group, kind: Kind) -> Self {
        Self {
            env,
            alias: None,
            key: None,
            group,
            kind,
            help_en: "",
            help_zh: "",
            secret: false,
            mask: Mask::Plain,
            restart: false,
        }
    }

    pub const fn help(mut self, en: &'static str, zh: &'static str) -> Self {
        self.help_en = en;
        self.help_zh = zh;
        self
    }

    /// Editable from the dashboard under `key`.
    pub const fn key(mut self, key: &'static str) -> Self {
        self.key = Some(key);
        self
    }

    pub const fn secret(mut self, mask: Mask) -> Self {
        self.secret = true;
        self.mask = mask;
        self
    }

    pub const fn masked(mut self, mask: Mask) -> Self {
        self.mask = mask;
        self
    }

    pub const fn restart(mut self) -> Self {
        self.restart = true;
        self
    }

    pub const fn alias(mut self, alias: &'static str) -> Self {
        self.alias = Some(alias);
        self
    }

    /// Reads the variable from `v` into `s`: its default when unset, an error when it cannot
    /// be parsed, the nearest valid value (with a warning) when out of range. Records the
    /// value in effect for `hajimi config`.
    pub fn load(&self, v: &mut Values, s: &mut Settings) -> Result<(), ConfigError> {
        let name = self.env;
        match &self.kind {
            Kind::Bool { default, field } => (field.set)(s, v.bool(name, *default)),
            Kind::Int {
                default,
                min,
                max,
                field,
            } => (field.set)(s, v.int(name, *default, *min, *max)?),
            Kind::Duration {
                default,
                min,
                max,
                field,
                ..
            } => (field.set)(s, v.duration(name, *default, *min, *max)?),
            Kind::Size {
                default,
                min,
                max,
                field,
            } => (field.set)(s, v.size(name, *default, *min, *max)?),
            Kind::Text { default, field, .. } => {
                let mut raw = v.get(name).map(|(x, _)| x);
                let given = raw.is_some();
                if let (None, Some(alias)) = (&raw, self.alias) {
                    raw = v.get(alias).map(|(x, _)| x);
                    let shown = raw
                        .as_deref()
                        .map_or_else(|| UNSET.to_owned(), |x| self.mask.apply(x));
                    v.effective.insert(alias.to_owned(), shown);
                }
                let value = match (raw, default) {
                    (Some(x), _) => Some(x),
                    (None, TextDefault::Value(d)) => Some((*d).to_owned()),
                    (None, _) => None,
                };
                if let Err(e) = (field.set)(s, value.clone()) {
                    return Err(e.error(name, value.as_deref().unwrap_or_default()));
                }
                // A value taken from the lower-case twin is shown on the twin's row.
                let from_alias = !given && value.is_some() && self.alias.is_some();
                let shown = match ((field.get)(s), default) {
                    _ if from_alias => UNSET.to_owned(),
                    (_, TextDefault::Computed(words)) if !given && self.secret => {
                        format!("({words})")
                    }
                    (Some(x), _) => self.mask.apply(&x),
                    (None, _) => UNSET.to_owned(),
                };
                v.effective.insert(name.to_owned(), shown);
            }
            Kind::List { field, .. } => {
                let list = v.list(name);
                if let Err(e) = (field.set)(s, list) {
                    let raw = v.get(name).map(|(x, _)| x).unwrap_or_default();
                    return Err(e.error(name, &raw));
                }
            }
            Kind::Keys { .. } => {}
        }
        Ok(())
    }

    /// The value the dashboard sees: secrets as whether they are set, counted lists as their
    /// length, durations in seconds.
    pub fn get(&self, s: &Settings) -> Value {
        match &self.kind {
            Kind::Text { field, .. } if self.secret => json!((field.get)(s).is_some()),
            Kind::List { field, .. } if self.secret => json!(!(field.get)(s).is_empty()),
            Kind::List { field, count, .. } if *count => json!((field.get)(s).len()),
            Kind::Text { field, .. } => json!((field.get)(s)),
            _ => self.persisted(s),
        }
    }

    /// The value as the store keeps it (secrets included: for the store only); an unset text
    /// is `""`, which [`Entry::set`] reads back as unset.
    pub fn persisted(&self, s: &Settings) -> Value {
        match &self.kind {
            Kind::Bool { field, .. } => json!((field.get)(s)),
            Kind::Int { field, .. } => json!((field.get)(s)),
            Kind::Duration { field, whole, .. } => seconds_value((field.get)(s), *whole),
            Kind::Size { field, .. } => json!((field.get)(s)),
            Kind::Text { field, .. } => json!((field.get)(s).unwrap_or_default()),
            Kind::List { field, .. } => json!((field.get)(s)),
            Kind::Keys { .. } => Value::Null,
        }
    }

    /// Changes the setting from a dashboard value, validated with the table's bounds; an
    /// out-of-range value is refused (the environment would clamp it). Integers also accept
    /// numeric strings and booleans, as HAJIMI's `int()` did.
    pub fn set(&self, s: &mut Settings, value: &Value) -> Result<(), String> {
        if self.key.is_none() {
            return Err(format!("{} cannot be changed from the dashboard", self.env));
        }
        match &self.kind {
            Kind::Bool { field, .. } => (field.set)(s, json::boolean(value)?),
            Kind::Int {
                min, max, field, ..
            } => (field.set)(s, json::in_range(json::int(value)?, *min, *max)?),
            Kind::Duration {
                min,
                max,
                whole,
                field,
                ..
            } => (field.set)(s, json::duration(value, *whole, *min, *max)?),
            Kind::Size {
                min, max, field, ..
            } => {
                let (lo, hi) = (to_i64(*min), to_i64(*max));
                let n = json::in_range(json::int(value)?, lo, hi)?;
                (field.set)(s, usize::try_from(n).unwrap_or(*max));
            }
            Kind::Text { field, .. } => {
                (field.set)(s, Some(json::text(value)?)).map_err(|e| e.en.into_owned())?;
            }
            Kind::List { field, .. } => {
                (field.set)(s, json::list(value)?).map_err(|e| e.en.into_owned())?;
            }
            Kind::Keys { .. } => {
                return Err(format!("{} is changed through the key API", self.env));
            }
        }
        Ok(())
    }

    /// The current value as `hajimi config` shows it (secrets: `(set)` or `(unset)`).
    pub fn shown(&self, s: &Settings) -> String {
        if self.secret {
            return match self.get(s) {
                Value::Bool(true) => "(set)".to_owned(),
                _ => UNSET.to_owned(),
            };
        }
        match &self.kind {
            Kind::Bool { field, .. } => (field.get)(s).to_string(),
            Kind::Int { field, .. } => (field.get)(s).to_string(),
            Kind::Duration { field, .. } => seconds((field.get)(s)),
            Kind::Size { field, .. } => bytes((field.get)(s)),
            Kind::Text { field, .. } => {
                (field.get)(s).map_or_else(|| UNSET.to_owned(), |x| self.mask.apply(&x))
            }
            Kind::List { field, .. } => {
                let list = (field.get)(s);
                if list.is_empty() {
                    "(empty)".to_owned()
                } else {
                    self.mask.apply(&list.join(", "))
                }
            }
            Kind::Keys { .. } => UNSET.to_owned(),
        }
    }

    /// What `/api/config` lists for the setting: HAJIMI-compatible `key`, `env`, `value`,
    /// `source`, `secret`, and for the dashboard `group`, `help`, `type`, `default`, `min`,
    /// `max` (durations in seconds) and `restart`.
    pub fn listing(&self, s: &Settings, source: Source) -> Value {
        let (kind, default, min, max) = self.bounds();
        json!({
            "key": self.key,
            "env": self.env,
            "value": self.get(s),
            "source": source,
            "secret": self.secret,
            "group": self.group,
            "help": {"en": self.help_en, "zh": self.help_zh},
            "type": kind,
            "default": if self.secret { Value::Null } else { default },
            "min": min,
            "max": max,
            "restart": self.restart,
        })
    }

    /// The kind's name as `/api/config` lists it (`bool`, `int`, `seconds`, `bytes`, `text`,
    /// `list`, `keys`).
    pub fn kind_name(&self) -> &'static str {
        self.bounds().0
    }

    /// The kind's name, default and bounds as JSON (durations in seconds).
    fn bounds(&self) -> (&'static str, Value, Value, Value) {
        match &self.kind {
            Kind::Bool { default, .. } => ("bool", json!(default), Value::Null, Value::Null),
            Kind::Int {
                default, min, max, ..
            } => ("int", json!(default), json!(min), json!(max)),
            Kind::Duration {
                default,
                min,
                max,
                whole,
                ..
            } => (
                "seconds",
                seconds_value(*default, *whole),
                seconds_value(*min, *whole),
                seconds_value(*max, *whole),
            ),
            Kind::Size {
                default, min, max, ..
            } => ("bytes", json!(default), json!(min), json!(max)),
            Kind::Text { default, .. } => (
                "text",
                match default {
                    TextDefault::Value(d) => json!(d),
                    _ => Value::Null,
                },
                Value::Null,
                Value::Null,
            ),
            Kind::List { .. } => ("list", json!([]), Value::Null, Value::Null),
            Kind::Keys { .. } => ("keys", Value::Null, Value::Null, Value::Null),
        }
    }
}

fn seconds_value(d: Duration, whole: bool) -> Value {
    if whole {
        json!(d.as_secs())
    } else {
        json!(d.as_secs_f64())
    }
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The setting the dashboard calls `key`.
pub fn find(key: &str) -> Option<&'static Entry> {
    TABLE.iter().find(|e| e.key == Some(key))
}

/// The setting read from variable `name` (`GEMINI_API_KEYS_7` is the numbered keys' entry;
/// a lower-case proxy twin is its upper-case entry).
pub fn find_env(name: &str) -> Option<&'static Entry> {
    TABLE
        .iter()
        .find(|e| e.env == name || e.alias == Some(name))
        .or_else(|| {
            name.strip_prefix("GEMINI_API_KEYS_")
                .filter(|n| n.parse::<u8>().is_ok())
                .and_then(|_| {
                    TABLE
                        .iter()
                        .find(|e| matches!(e.kind, Kind::Keys { numbered: true }))
                })
        })
}

/// The settings the dashboard may change, in table order.
pub fn editable() -> impl Iterator<Item = &'static Entry> {
    TABLE.iter().filter(|e| e.key.is_some())
}

#[cfg(test)]
mod tests;
