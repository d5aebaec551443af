//! The atomically swapped settings snapshot. A request takes one `Arc<Settings>` when it
//! starts and uses it throughout; a dashboard change builds a new value (fallible, validated)
//! and publishes it with one pointer swap (infallible), so in-flight requests keep theirs.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::Settings;

pub struct Live(ArcSwap<Settings>);

impl Live {
    pub fn new(settings: Settings) -> Self {
        Self(ArcSwap::from_pointee(settings))
    }

    /// The snapshot for one request.
    pub fn current(&self) -> Arc<Settings> {
        self.0.load_full()
    }

    /// Publishes a validated value; requests already running keep the old one.
    pub fn publish(&self, next: Settings) {
        self.0.store(Arc::new(next));
    }

    /// Builds the next value from the current one and publishes it.
    pub fn update<E>(
        &self,
        change: impl FnOnce(&mut Settings) -> Result<(), E>,
    ) -> Result<Arc<Settings>, E> {
        let mut next = (*self.current()).clone();
        change(&mut next)?;
        let next = Arc::new(next);
        self.0.store(Arc::clone(&next));
        Ok(next)
    }
}
