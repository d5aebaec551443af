#![recursion_limit = "256"]
//! hajimi: an OpenAI-, Gemini- and Anthropic-compatible gateway to Google Gemini over a
//! managed pool of upstream credentials; a drop-in replacement for HAJIMI.
//!
//! Layout (see `docs/ARCHITECTURE.md`): `config` builds [`config::Settings`]; `live` holds
//! the swappable snapshot; `wire` has the serde types; `translate` the pure mappings;
//! `upstream` talks to Google; `keys` owns the key pool; `pipeline` composes them per
//! endpoint; `routes` are thin handlers; `app` assembles the router.

pub mod app;
pub mod cache;
pub mod cli;
pub mod config;
pub mod error;
pub mod fetch;
pub mod keys;
pub mod labels;
pub mod limits;
pub mod live;
pub mod mask;
pub mod metrics;
pub mod models;
pub mod persist;
pub mod pipeline;
pub mod routes;
pub mod serve;
pub mod signatures;
pub mod stats;
pub mod store;
pub mod telemetry;
pub mod translate;
pub mod upstream;
pub mod vertex;
pub mod wire;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::app::AppState;
use crate::config::Config;

/// How long in-flight requests and streams may run after a shutdown signal.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(30);

/// Pending-connection queue of the listening socket (the OS default of 128 drops connects
/// under a burst of a thousand clients; uvicorn, which HAJIMI runs on, uses 2048).
const LISTEN_BACKLOG: u32 = 2048;

/// Binds the first address `bind` resolves to, with [`LISTEN_BACKLOG`] and `SO_REUSEADDR`
/// (a restart does not wait for the previous process's connections in TIME_WAIT).
async fn listen(bind: &str) -> std::io::Result<TcpListener> {
    let mut last = None;
    for addr in tokio::net::lookup_host(bind).await? {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        match socket
            .bind(addr)
            .and_then(|()| socket.listen(LISTEN_BACKLOG))
        {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("the address resolves to nothing")))
}

/// A running server (tests and `main` use it the same way).
pub struct Server {
    pub addr: SocketAddr,
    pub state: AppState,
    shutdown: CancellationToken,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Server {
    /// Binds `HOST:PORT` of the configuration (port 0 picks a free port) and starts serving.
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        let bind = format!("{}:{}", config.settings.host, config.settings.port);
        let port = config.settings.port;
        let listener = listen(&bind).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::AddrInUse {
                anyhow::anyhow!(
                    "端口 {port} 已被占用（{bind}），请用 PORT 或 --port 换一个端口，或先停止占用它的程序 / port {port} is already in use ({bind}): choose another with PORT or --port, or stop the program using it"
                )
            } else {
                anyhow::anyhow!("无法监听 {bind}：{e} / cannot listen on {bind}: {e}")
            }
        })?;
        Self::start_on(config, listener).await
    }

    pub async fn start_on(mut config: Config, listener: TcpListener) -> anyhow::Result<Self> {
        let addr = listener.local_addr()?;
        serve::raise_open_file_limit();
        let shutdown = CancellationToken::new();
        metrics::install();
        let (store, loaded, reader) = persist::open(&config)?;
        if let Some(store) = &store {
            let mut ops = persist::apply_saved(&mut config, &loaded);
            let dir = config.settings.storage_dir.path.clone();
            ops.extend(persist::import_hajimi(&mut config, &dir, &loaded));
            if !ops.is_empty() {
                store
                    .commit(ops)
                    .await
                    .map_err(|e| anyhow::anyhow!("store: {e}"))?;
            }
        }
        let state = AppState::new(config, shutdown.clone(), store)?;
        persist::restore_key_states(&state.keys, &loaded);
        if let Some(reader) = &reader {
            let ids: Vec<_> = state.keys.slots().iter().map(|k| k.id).collect();
            state.stats.restore(reader, &ids);
            for slot in state.keys.slots().iter() {
                slot.set_calls_today(state.stats.key_today(slot.id).total.successes);
            }
        }
        drop(reader);
        spawn_background(&state);
        let app = app::router(state.clone());
        let token = shutdown.clone();
        let serving = state.clone();
        let handle = state.tasks.spawn(async move {
            serve::run(listener, app, serving, token).await;
            Ok(())
        });
        tracing::info!(address = %addr, "listening on http://{addr}");
        Ok(Self {
            addr,
            state,
            shutdown,
            handle,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets in-flight requests and streams finish up to [`DRAIN_DEADLINE`],
    /// then commits what the store has queued.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.state.tasks.close();
        let served = match tokio::time::timeout(DRAIN_DEADLINE, self.handle).await {
            Ok(joined) => joined.map_err(anyhow::Error::from).and_then(|r| r),
            Err(_) => {
                tracing::warn!("shutdown deadline passed with requests still running");
                Ok(())
            }
        };
        persist_now(&self.state);
        if let Some(store) = self.state.store.clone() {
            let _ = tokio::task::spawn_blocking(move || store.close()).await;
        }
        served
    }

    /// Serves until the shutdown token is cancelled (by a signal, in `main`).
    pub async fn run_until(self, signal: impl Future<Output = ()>) -> anyhow::Result<()> {
        signal.await;
        tracing::info!("shutting down");
        self.shutdown().await
    }
}

/// Background work: the start-up key check, the re-check of retired keys, the model list
/// (fetched at start-up, refreshed periodically) and the cache sweep.
fn spawn_background(state: &AppState) {
    let s = state.clone();
    state.spawn_tracked(async move {
        let snap = s.live.current();
        if !snap.skip_check_api_key && !s.keys.is_empty() {
            let report = keys::health::check_all(&s.upstream, &snap, s.keys.slots().to_vec()).await;
            record_invalid(&s, &report.changed);
            // Only keys Google accepted count as usable; a key whose check got no verdict
            // stays in rotation but is reported as unchecked, not as active.
            tracing::info!(
                keys = s.keys.len(),
                passed = report.passed,
                refused = report.refused,
                limited = report.limited,
                unchecked = report.unchecked(),
                "start-up key check done"
            );
            if report.nothing_reached_upstream() {
                tracing::warn!("{}", keys::health::unreachable_hint(&snap));
            }
        }
        loop {
            let every = s.live.current().key_recheck_interval;
            tokio::select! {
                () = s.shutdown.cancelled() => break,
                () = tokio::time::sleep(every) => {}
            }
            let snap = s.live.current();
            // Retired keys, and (when keys are checked) keys not yet accepted by Google.
            let retired: Vec<_> = s
                .keys
                .slots()
                .iter()
                .filter(|k| {
                    k.state() != keys::KeyState::Active
                        || (!snap.skip_check_api_key && !k.verified())
                })
                .cloned()
                .collect();
            if !retired.is_empty() {
                let report = keys::health::check_all(&s.upstream, &snap, retired).await;
                record_invalid(&s, &report.changed);
            }
        }
    });
    let s = state.clone();
    state.spawn_tracked(async move {
        loop {
            tokio::select! {
                () = s.shutdown.cancelled() => break,
                () = tokio::time::sleep(std::time::Duration::from_secs(60)) => s.cache.sweep(),
            }
        }
    });
    let s = state.clone();
    state.spawn_tracked(async move {
        loop {
            tokio::select! {
                () = s.shutdown.cancelled() => break,
                () = tokio::time::sleep(std::time::Duration::from_millis(500)) => persist_now(&s),
            }
        }
    });
    let s = state.clone();
    state.spawn_tracked(async move {
        loop {
            let snap = s.live.current();
            if !s.keys.is_empty()
                && let Err(f) = s.models.refresh(&snap, &s.keys, &s.upstream).await
            {
                tracing::warn!(error = f.label(), "model list refresh failed");
            }
            tokio::select! {
                () = s.shutdown.cancelled() => break,
                () = tokio::time::sleep(models::REFRESH_EVERY) => {}
            }
        }
    });
}

/// Hands statistics and key states to the store (every half second, and at shutdown).
fn persist_now(state: &AppState) {
    state.stats.flush();
    update_key_gauges(state);
    if let Some(store) = &state.store {
        let mut last = state
            .persisted_keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        persist::snapshot_key_states(&state.keys, store, &mut last);
    }
}

/// The `hajimi_keys{state}` gauges (one pass: each key's state is read once).
pub fn update_key_gauges(state: &AppState) {
    let now = tokio::time::Instant::now();
    let (mut active, mut cooling, mut invalid, mut suspended) = (0, 0, 0, 0);
    for slot in state.keys.slots().iter() {
        match slot.state() {
            keys::KeyState::Active if slot.cooldowns(now).is_empty() => active += 1,
            keys::KeyState::Active => cooling += 1,
            keys::KeyState::Invalid => invalid += 1,
            keys::KeyState::Suspended => suspended += 1,
        }
    }
    metrics::key_states(active, cooling, invalid, suspended);
}

/// Keeps HAJIMI's `INVALID_API_KEYS` record in step with key checks.
pub fn record_invalid(
    state: &AppState,
    changed: &[(std::sync::Arc<keys::KeySlot>, keys::KeyState)],
) {
    if changed.is_empty() {
        return;
    }
    let _ = state.live.update(|s| {
        for (key, now) in changed {
            let secret = key.secret().to_owned();
            s.invalid_api_keys.retain(|k| *k != secret);
            if *now != keys::KeyState::Active {
                s.invalid_api_keys.push(secret);
            }
        }
        Ok::<(), std::convert::Infallible>(())
    });
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
