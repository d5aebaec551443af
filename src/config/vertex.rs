//! Vertex AI names the configuration checks: locations, project ids, and the default
//! `VERTEX_BASE_URL` of a location; and the kinds of credential a pool holds.

use std::sync::Arc;

use crate::config::credentials::Account;

/// Vertex AI's host for the `global` location (and the express surface).
pub const VERTEX_GLOBAL_BASE: &str = "https://aiplatform.googleapis.com";
/// A Vertex location: `global` or a region such as `us-central1`, `europe-west4`
/// (lowercase letters, digits and `-`, at most 64).
pub fn valid_vertex_location(location: &str) -> bool {
    let b = location.as_bytes();
    b.first().is_some_and(u8::is_ascii_lowercase)
        && b.len() <= 64
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// A Google Cloud project id: 1 to 128 ASCII letters, digits, `-`, `.` and `:` (Google's
/// ids are `[a-z][a-z0-9-]{4,28}[a-z0-9]`; old domain-scoped ones look like
/// `example.com:project`), starting with a letter or digit.
pub fn valid_project_id(project: &str) -> bool {
    let b = project.as_bytes();
    b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.len() <= 128
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b':'))
}

/// The default `VERTEX_BASE_URL` for a location: [`VERTEX_GLOBAL_BASE`] for `global`,
/// `https://{location}-aiplatform.googleapis.com` otherwise; `None` for a location that is
/// not one.
pub fn vertex_default_base(location: &str) -> Option<String> {
    if location == "global" {
        return Some(VERTEX_GLOBAL_BASE.to_owned());
    }
    valid_vertex_location(location).then(|| format!("https://{location}-aiplatform.googleapis.com"))
}

/// What a credential of the pool is: an AI Studio key, a Vertex service account (its secret
/// in the pool is its `client_email`; the key stays in the [`Account`]) or a Vertex express
/// key.
#[derive(Debug, Clone)]
pub enum Kind {
    ApiKey,
    Account(Arc<Account>),
    Express,
}

impl Kind {
    /// The dashboard's name of the kind.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::ApiKey => "api_key",
            Self::Account(_) => "service_account",
            Self::Express => "express_key",
        }
    }
}

/// Which credentials of a pool a request may use (Vertex model prefixes `[PAY]`,
/// `[EXPRESS] `).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Only {
    #[default]
    Any,
    Accounts,
    Express,
}

impl Only {
    /// Whether a credential of this kind may serve.
    pub fn admits(self, kind: &Kind) -> bool {
        match self {
            Self::Any => true,
            Self::Accounts => matches!(kind, Kind::Account(_)),
            Self::Express => matches!(kind, Kind::Express),
        }
    }
}
