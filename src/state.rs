//! The application state: everything a request, a background job or the dashboard shares,
//! built once at start-up. Imported by routes, the pipeline and the services; imports no
//! handler and nothing above the services (the floors are listed in docs/ARCHITECTURE.md).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::access::session::Sessions;
use crate::cache::{Inflight, ResponseCache};
use crate::config::{Config, RawEnv};
use crate::fetch::Fetcher;
use crate::kept::Kept;
use crate::keys::KeyPool;
use crate::keys::health::KeyTest;
use crate::limits::RateLimiter;
use crate::live::Live;
use crate::models::Catalog;
use crate::signatures::Signatures;
use crate::stats::Stats;
use crate::store::Store;
use crate::upstream::Upstream;

/// Shared state; cheap to clone into handlers.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub live: Live,
    pub keys: KeyPool,
    /// Vertex AI's service accounts and express keys (the same state machine as the keys).
    pub vertex: crate::vertex::VertexCreds,
    pub stats: Arc<Stats>,
    /// The embedded store (`None`: memory only).
    pub store: Option<Arc<Store>>,
    /// The raw configuration values (the precedence rule of saved settings).
    pub env: RawEnv,
    /// For each key from the environment, the variable that holds it.
    pub key_vars: Vec<(String, String)>,
    /// Where each setting's value came from.
    pub provenance: std::sync::Mutex<std::collections::BTreeMap<String, crate::config::Source>>,
    pub models: Catalog,
    pub signatures: Signatures,
    /// What dialects keep after an answer (stored Responses), 24 h.
    pub kept: Kept,
    pub upstream: Upstream,
    pub fetcher: Fetcher,
    pub cache: ResponseCache,
    pub inflight: Inflight,
    pub limiter: RateLimiter,
    pub sessions: Sessions,
    pub key_test: std::sync::Mutex<KeyTest>,
    /// Serialises dashboard writes (settings, keys).
    pub admin_lock: tokio::sync::Mutex<()>,
    /// Key states last handed to the store.
    pub persisted_keys: std::sync::Mutex<std::collections::HashMap<String, (String, String)>>,
    pub started: Instant,
    pub ready: AtomicBool,
    pub shutdown: CancellationToken,
    pub tasks: TaskTracker,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(
        config: Config,
        shutdown: CancellationToken,
        store: Option<Arc<Store>>,
    ) -> anyhow::Result<Self> {
        let upstream = Upstream::new(&config.settings)?;
        let fetcher = Fetcher::new(config.settings.image_fetch_allow_loopback)?;
        let zone = config.settings.stats_reset_timezone.tz().clone();
        let (vertex, problems) = crate::vertex::VertexCreds::new(&config.settings);
        for p in &problems {
            tracing::warn!("{}", p.message());
        }
        if config.settings.enable_vertex && vertex.pool.is_empty() {
            tracing::warn!(
                "ENABLE_VERTEX 已开启，但没有 Vertex 凭据：Vertex 请求将返回 503，直到配置 GOOGLE_CREDENTIALS_JSON、STORAGE_DIR/credentials 或 VERTEX_EXPRESS_API_KEY / ENABLE_VERTEX is on but no Vertex credential is configured: Vertex requests answer 503 until GOOGLE_CREDENTIALS_JSON, STORAGE_DIR/credentials or VERTEX_EXPRESS_API_KEY provides one"
            );
        } else if !vertex.pool.is_empty() {
            tracing::info!(
                accounts = vertex.accounts().len(),
                credentials = vertex.pool.len(),
                "Vertex AI credentials loaded"
            );
        }
        Ok(Self(Arc::new(Inner {
            vertex,
            kept: Kept::new(store.clone()),
            keys: KeyPool::with_reset_zone(config.keys, zone.clone()),
            stats: Arc::new(Stats::new(zone, store.clone())),
            store,
            env: config.env,
            key_vars: config.key_vars,
            provenance: std::sync::Mutex::new(config.provenance),
            live: Live::new(config.settings),
            models: Catalog::default(),
            signatures: Signatures::default(),
            upstream,
            fetcher,
            cache: ResponseCache::default(),
            inflight: Inflight::default(),
            limiter: RateLimiter::default(),
            persisted_keys: std::sync::Mutex::new(std::collections::HashMap::new()),
            sessions: Sessions::default(),
            key_test: std::sync::Mutex::new(KeyTest::default()),
            admin_lock: tokio::sync::Mutex::new(()),
            started: Instant::now(),
            ready: AtomicBool::new(true),
            shutdown,
            tasks: TaskTracker::new(),
        })))
    }

    /// What sends upstream calls with any credential (keys, express keys, accounts' tokens).
    pub fn caller(&self) -> crate::vertex::send::Caller {
        crate::vertex::send::Caller {
            upstream: self.upstream.clone(),
            tokens: std::sync::Arc::clone(&self.vertex.tokens),
        }
    }

    /// Every credential, as the dashboard lists them: the AI Studio keys, then the Vertex
    /// credentials (service accounts, express keys). One list, one state machine.
    pub fn credentials(&self) -> Vec<Arc<crate::keys::KeySlot>> {
        let mut slots = self.keys.slots().to_vec();
        slots.extend(self.vertex.pool.slots().iter().cloned());
        slots
    }

    pub fn inflight_len(&self) -> usize {
        self.inflight.len()
    }

    /// Spawns a background task that shutdown waits for.
    pub fn spawn_tracked<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(future);
    }
}
