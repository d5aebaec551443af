//! The atomically swapped settings snapshot. A request takes one `Arc<Settings>` when it
//! starts and uses it throughout; a dashboard change builds a new value (fallible, validated)
//! and publishes it with one pointer swap (infallible), so in-flight requests keep theirs.
//! Changes are serialised: two writers (the dashboard, a background key check) each apply
//! their change to the other's result, so neither is lost.

use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;

use crate::config::Settings;

pub struct Live {
    current: ArcSwap<Settings>,
    /// Held from reading the current value to storing the next one.
    writer: Mutex<()>,
}

impl Live {
    pub fn new(settings: Settings) -> Self {
        crate::labels::global().set_extra(&settings.extra_models);
        Self {
            current: ArcSwap::from_pointee(settings),
            writer: Mutex::new(()),
        }
    }

    /// The snapshot for one request.
    pub fn current(&self) -> Arc<Settings> {
        self.current.load_full()
    }

    /// Builds the next value from the current one and publishes it; requests already
    /// running keep the old one. Nothing is published when `change` fails.
    pub fn update<E>(
        &self,
        change: impl FnOnce(&mut Settings) -> Result<(), E>,
    ) -> Result<Arc<Settings>, E> {
        let _writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let mut next = (*self.current()).clone();
        change(&mut next)?;
        let next = Arc::new(next);
        crate::labels::global().set_extra(&next.extra_models);
        self.current.store(Arc::clone(&next));
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writers racing on the same value: every change survives.
    #[test]
    fn concurrent_updates_are_not_lost() {
        let settings = crate::config::Config::from_sources(
            Vec::new(),
            Vec::new(),
            &crate::config::CliOverrides::default(),
        )
        .map(|c| c.settings)
        .unwrap_or_else(|e| panic!("{e}"));
        let live = Live::new(settings);
        std::thread::scope(|scope| {
            for t in 0..8 {
                let live = &live;
                scope.spawn(move || {
                    for i in 0..200 {
                        let _ = live.update(|s| {
                            s.invalid_api_keys.push(format!("{t}-{i}"));
                            std::thread::yield_now();
                            Ok::<(), ()>(())
                        });
                    }
                });
            }
        });
        assert_eq!(live.current().invalid_api_keys.len(), 8 * 200);
        assert!(live.update(|_| Err(())).is_err());
        assert_eq!(
            live.current().invalid_api_keys.len(),
            8 * 200,
            "a failed change publishes nothing"
        );
    }
}
