//! Shutdown: the signal that starts it, and how long requests may still run after it.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::state::AppState;

/// How long in-flight requests and streams may run after a shutdown signal.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(30);

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

/// Stops accepting, lets in-flight requests and streams finish up to [`DRAIN_DEADLINE`],
/// then commits what the store has queued and closes it.
pub async fn drain(
    state: &AppState,
    token: &CancellationToken,
    serving: tokio::task::JoinHandle<anyhow::Result<()>>,
) -> anyhow::Result<()> {
    token.cancel();
    state.tasks.close();
    let served = match tokio::time::timeout(DRAIN_DEADLINE, serving).await {
        Ok(joined) => joined.map_err(anyhow::Error::from).and_then(|r| r),
        Err(_) => {
            tracing::warn!("shutdown deadline passed with requests still running");
            Ok(())
        }
    };
    crate::background::persist_now(state);
    if let Some(store) = state.store.clone() {
        let _ = tokio::task::spawn_blocking(move || store.close()).await;
    }
    served
}
