//! The Vertex credentials as the dispatch uses them: service accounts and express keys in
//! one [`KeyPool`] (the same state machine as AI Studio's keys: cooldowns, retirement,
//! rotation, limits, statistics), the accounts' access tokens, and the model list fetched
//! from Vertex (kept ten minutes).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::Settings;
use crate::config::credentials::{self, Account, ExpressKey, Loaded, Problem};
use crate::keys::{KeyPool, Kind};
use crate::vertex::token::TokenCache;

/// How long a fetched publisher-model list is used before it is asked for again.
const LIST_TTL: Duration = Duration::from_secs(600);

/// The configured Vertex credentials.
pub struct VertexCreds {
    pub pool: KeyPool,
    pub tokens: Arc<TokenCache>,
    /// The publisher-model list (base ids) and when it was fetched.
    listed: Mutex<Option<(Instant, Arc<Vec<String>>)>>,
}

/// The service accounts (`GOOGLE_CREDENTIALS_JSON`, then `STORAGE_DIR/credentials/*.json`)
/// and the express keys of the settings, with what was wrong. Blocking file I/O (a small
/// directory): at start-up, or in a dashboard write.
pub fn load(settings: &Settings) -> (Loaded, Vec<ExpressKey>) {
    let from_env = settings
        .google_credentials_json
        .as_ref()
        .map(|t| credentials::parse_credentials_json(t.expose()))
        .unwrap_or_default();
    let dir = settings.storage_dir.path.join("credentials");
    let loaded = from_env.merge(credentials::load_dir(&dir));
    let express = settings
        .vertex_express_api_key
        .iter()
        .map(|k| ExpressKey::new(k.expose()))
        .collect();
    (loaded, express)
}

fn entries(accounts: Vec<Account>, express: Vec<ExpressKey>) -> Vec<(String, Kind)> {
    let mut out: Vec<(String, Kind)> = accounts
        .into_iter()
        .map(|a| (a.client_email().to_owned(), Kind::Account(Arc::new(a))))
        .collect();
    for key in express {
        if !out.iter().any(|(s, _)| s == key.secret().expose()) {
            out.push((key.secret().expose().to_owned(), Kind::Express));
        }
    }
    out
}

impl VertexCreds {
    /// The credentials of `settings`; their problems are returned to be reported.
    pub fn new(settings: &Settings) -> (Self, Vec<Problem>) {
        let (loaded, express) = load(settings);
        let zone = settings.stats_reset_timezone.tz().clone();
        let creds = Self {
            pool: KeyPool::of_credentials(entries(loaded.accounts, express), zone),
            tokens: Arc::new(TokenCache::new()),
            listed: Mutex::new(None),
        };
        (creds, loaded.problems)
    }

    /// Re-reads the credentials after a settings change: unchanged ones keep their state
    /// and tokens, removed ones leave the pool and the token cache.
    pub fn sync(&self, settings: &Settings) -> Vec<Problem> {
        let (loaded, express) = load(settings);
        if self.pool.replace(entries(loaded.accounts, express)) {
            self.tokens.retain(&self.accounts());
            *self.lock() = None;
            tracing::info!(credentials = self.pool.len(), "Vertex credentials changed");
        }
        loaded.problems
    }

    /// The service accounts in the pool.
    pub fn accounts(&self) -> Vec<Arc<Account>> {
        self.pool
            .slots()
            .iter()
            .filter_map(|s| match s.kind() {
                Kind::Account(a) => Some(Arc::clone(a)),
                _ => None,
            })
            .collect()
    }

    pub fn has_accounts(&self) -> bool {
        self.pool
            .slots()
            .iter()
            .any(|s| matches!(s.kind(), Kind::Account(_)))
    }

    pub fn has_express(&self) -> bool {
        self.pool
            .slots()
            .iter()
            .any(|s| matches!(s.kind(), Kind::Express))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(Instant, Arc<Vec<String>>)>> {
        self.listed.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The publisher-model list fetched within the last ten minutes.
    pub fn listed(&self) -> Option<Arc<Vec<String>>> {
        self.lock()
            .as_ref()
            .filter(|(at, _)| at.elapsed() < LIST_TTL)
            .map(|(_, ids)| Arc::clone(ids))
    }

    /// Remembers a fetched publisher-model list.
    pub fn remember_list(&self, ids: Vec<String>) {
        *self.lock() = Some((Instant::now(), Arc::new(ids)));
    }
}
