//! Waiting for something to happen without guessing how long it takes: ask again every
//! [`POLL_EVERY`] until the answer is yes, and fail after [`PATIENCE`] with what was asked and
//! the last answer. The patience is generous (a loaded 2-core CI) and costs nothing when
//! things go well. Shared by hajimi's and mock-gemini's integration tests (the latter include
//! this file by path), so it depends on std and tokio only.
#![allow(dead_code, clippy::panic)]

use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

/// How long [`eventually`] keeps asking before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(20);
/// How long it waits between two questions.
pub const POLL_EVERY: Duration = Duration::from_millis(20);

/// An answer to "has it happened yet?": `true`, `Some(value)` or `Ok(value)` mean yes (and give
/// the value to keep); `false`, `None` or `Err(last seen)` mean not yet.
pub trait Settled {
    type Value;
    /// The value, or a description of the last observation for the failure message.
    fn settled(self) -> Result<Self::Value, String>;
}

impl Settled for bool {
    type Value = ();
    fn settled(self) -> Result<(), String> {
        if self { Ok(()) } else { Err("false".into()) }
    }
}

impl<T> Settled for Option<T> {
    type Value = T;
    fn settled(self) -> Result<T, String> {
        self.ok_or_else(|| "None".into())
    }
}

impl<T, E: Debug> Settled for Result<T, E> {
    type Value = T;
    fn settled(self) -> Result<T, String> {
        self.map_err(|e| format!("{e:?}"))
    }
}

/// Asks `probe` until it settles and returns its value; fails the test after [`PATIENCE`],
/// naming `what` was awaited and the last answer. The clock is tokio's, so a paused clock
/// moves on by itself.
pub async fn eventually<F, Fut, S>(what: &str, mut probe: F) -> S::Value
where
    F: FnMut() -> Fut,
    Fut: Future<Output = S>,
    S: Settled,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match probe().await.settled() {
            Ok(value) => return value,
            Err(last) if tokio::time::Instant::now() >= deadline => {
                panic!("still waiting after {PATIENCE:?} for {what}; last seen: {last}")
            }
            Err(_) => tokio::time::sleep(POLL_EVERY).await,
        }
    }
}

/// [`eventually`] for tests without a runtime (child processes, threads).
pub fn eventually_blocking<S: Settled>(what: &str, mut probe: impl FnMut() -> S) -> S::Value {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        match probe().settled() {
            Ok(value) => return value,
            Err(last) if std::time::Instant::now() >= deadline => {
                panic!("still waiting after {PATIENCE:?} for {what}; last seen: {last}")
            }
            Err(_) => std::thread::sleep(POLL_EVERY),
        }
    }
}
