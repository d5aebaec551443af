#![recursion_limit = "256"]
//! hajimi: an OpenAI-, Gemini- and Anthropic-compatible gateway to Google Gemini over a
//! managed pool of upstream credentials; a drop-in replacement for HAJIMI.
//!
//! The module list and [`Server`], which only wires the parts together: open the store,
//! build the state, start the background jobs, serve, drain. The map of the modules and the
//! order of their floors is in `docs/ARCHITECTURE.md`.

pub mod access;
pub mod admin;
pub mod app;
pub mod background;
pub mod cache;
pub mod cli;
pub mod config;
pub mod error;
pub mod fetch;
pub mod kept;
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
pub mod shutdown;
pub mod signatures;
pub mod state;
pub mod stats;
pub mod store;
pub mod telemetry;
pub mod translate;
pub mod upstream;
pub mod vertex;
pub mod web;
pub mod wire;

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
pub use crate::shutdown::shutdown_signal;
use crate::state::AppState;

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
        let listener = serve::listen(&bind).await.map_err(|e| {
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
        persist::restore_key_states(&state.vertex.pool, &loaded);
        if let Some(reader) = &reader {
            let vertex = state.vertex.pool.slots();
            let ids: Vec<_> = state
                .keys
                .slots()
                .iter()
                .chain(vertex.iter())
                .map(|k| k.id)
                .collect();
            state.stats.restore(reader, &ids);
            match store::kept_rows(reader) {
                Ok(rows) => state.kept.restore(rows),
                Err(e) => tracing::warn!(error = %e, "kept records could not be read"),
            }
            for slot in state.keys.slots().iter().chain(vertex.iter()) {
                slot.set_calls_today(state.stats.key_today(slot.id).total.successes);
            }
        }
        drop(reader);
        background::spawn(&state);
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

    /// Stops accepting, lets in-flight requests and streams finish up to
    /// [`shutdown::DRAIN_DEADLINE`],
    /// then commits what the store has queued.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        shutdown::drain(&self.state, &self.shutdown, self.handle).await
    }

    /// Serves until the shutdown token is cancelled (by a signal, in `main`).
    pub async fn run_until(self, signal: impl Future<Output = ()>) -> anyhow::Result<()> {
        signal.await;
        tracing::info!("shutting down");
        self.shutdown().await
    }
}
