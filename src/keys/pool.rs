//! The key pool: HAJIMI's shared shuffled rotation (one permutation consumed by all requests,
//! refilled when empty) over the keys that can serve the model now. Each key has a state
//! (active, invalid, suspended), per key × model cooldowns (quota `RetryInfo`, exhausted until
//! Google's daily reset), a count of today's calls for `API_KEY_DAILY_LIMIT` (a soft limit:
//! when every key is over it, one is used anyway) and an in-flight count for the optional
//! per-key concurrency cap. A key is used through a [`Lease`]; dropping it (an attempt ended,
//! a race lost, a client left) costs the key nothing. Time is `tokio::time::Instant`, so
//! cooldowns are tested on a paused clock.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::time::Instant;

pub use crate::config::vertex::{Kind, Only};
use crate::mask::{KeyId, Secret};
use crate::upstream::classify::{Failure, KeyEffect};

/// How long a key rests after a 429 that did not say how long.
pub const DEFAULT_QUOTA_COOLDOWN: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum KeyState {
    Active = 0,
    Invalid = 1,
    Suspended = 2,
}

impl KeyState {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Invalid,
            2 => Self::Suspended,
            _ => Self::Active,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Invalid => "invalid",
            Self::Suspended => "suspended",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Cooldown {
    pub model: String,
    pub until: Instant,
    /// Exhausted until the daily reset rather than cooling for a while.
    pub daily: bool,
}

#[derive(Debug)]
pub struct KeySlot {
    pub id: KeyId,
    secret: Secret,
    kind: Kind,
    state: AtomicU8,
    cooldowns: Mutex<Vec<Cooldown>>,
    /// Successful calls since the last daily reset (`API_KEY_DAILY_LIMIT`).
    calls_today: AtomicU64,
    in_flight: AtomicU32,
    /// Passed a key check or served a call: a usable key as HAJIMI's dashboard counts them
    /// (a key whose check got no verdict, say Google unreachable, is not).
    verified: AtomicBool,
    /// The last failure seen on this key: its kind (`Failure::kind`) and when (unix seconds),
    /// for the dashboard ("invalid since", "last error").
    last_error: Mutex<Option<(&'static str, i64)>>,
}

impl Drop for KeySlot {
    fn drop(&mut self) {
        if !matches!(self.kind, Kind::Account(_)) {
            crate::mask::release_key(self.secret.expose());
        }
    }
}

impl KeySlot {
    /// A slot for `secret`; while it lives, the key is scrubbed from error text by value.
    fn new(secret: String) -> Self {
        Self::of_kind(secret, Kind::ApiKey)
    }

    /// A slot for a credential of any kind (a service account's secret is its email, which
    /// is not scrubbed: it is how the dashboard names the account).
    fn of_kind(secret: String, kind: Kind) -> Self {
        if !matches!(kind, Kind::Account(_)) {
            crate::mask::hold_key(&secret);
        }
        Self {
            id: KeyId::of(&secret),
            secret: Secret::new(secret),
            kind,
            state: AtomicU8::new(KeyState::Active as u8),
            cooldowns: Mutex::new(Vec::new()),
            calls_today: AtomicU64::new(0),
            in_flight: AtomicU32::new(0),
            verified: AtomicBool::new(false),
            last_error: Mutex::new(None),
        }
    }

    pub fn secret(&self) -> &str {
        self.secret.expose()
    }

    /// How the dashboard shows the credential: a key masked, a service account by its email.
    pub fn masked(&self) -> String {
        match &self.kind {
            Kind::Account(a) => a.client_email().to_owned(),
            _ => crate::mask::mask(self.secret.expose()),
        }
    }

    pub fn kind(&self) -> &Kind {
        &self.kind
    }

    pub fn state(&self) -> KeyState {
        KeyState::from_u8(self.state.load(Ordering::Relaxed))
    }

    pub fn set_state(&self, state: KeyState) {
        self.state.store(state as u8, Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Cooldown>> {
        self.cooldowns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// When this key can serve `model` again (`None`: now, or never if retired).
    pub fn cooling_until(&self, model: &str, now: Instant) -> Option<Instant> {
        let mut cds = self.lock();
        cds.retain(|c| c.until > now);
        cds.iter()
            .filter(|c| c.model == model)
            .map(|c| c.until)
            .max()
    }

    /// This key's cooldown for `model`, if any: until when, and whether that is the daily
    /// quota reset.
    pub fn cooldown_for(&self, model: &str, now: Instant) -> Option<(Instant, bool)> {
        let mut cds = self.lock();
        cds.retain(|c| c.until > now);
        cds.iter()
            .filter(|c| c.model == model)
            .max_by_key(|c| c.until)
            .map(|c| (c.until, c.daily))
    }

    pub fn cooldowns(&self, now: Instant) -> Vec<Cooldown> {
        let mut cds = self.lock();
        cds.retain(|c| c.until > now);
        cds.clone()
    }

    /// Active and not cooling for this model.
    pub fn usable_for(&self, model: &str, now: Instant) -> bool {
        self.state() == KeyState::Active && self.cooling_until(model, now).is_none()
    }

    pub fn record_success(&self) {
        self.calls_today.fetch_add(1, Ordering::Relaxed);
        self.mark_verified();
    }

    /// Google accepted this key (a check passed, or a call succeeded).
    pub fn mark_verified(&self) {
        self.verified.store(true, Ordering::Relaxed);
    }

    pub fn verified(&self) -> bool {
        self.verified.load(Ordering::Relaxed)
    }

    /// Restores today's count (from the store, at start-up).
    pub fn set_calls_today(&self, n: u64) {
        self.calls_today.store(n, Ordering::Relaxed);
    }

    pub fn calls_today(&self) -> u64 {
        self.calls_today.load(Ordering::Relaxed)
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Remembers a failure of this key (kind and time) for the dashboard.
    pub fn note_failure(&self, failure: &Failure) {
        let at = jiff::Timestamp::now().as_second();
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some((failure.kind(), at));
    }

    /// The last failure seen on this key: its kind and when (unix seconds).
    pub fn last_error(&self) -> Option<(&'static str, i64)> {
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies what one failed attempt means for this key.
    pub fn settle(&self, failure: &Failure, model: &str, now: Instant) {
        self.note_failure(failure);
        match failure.key_effect() {
            KeyEffect::None => {}
            KeyEffect::Invalid => {
                self.set_state(KeyState::Invalid);
                tracing::warn!(key = %self.id, "key is invalid (API_KEY_INVALID); taken out of rotation");
            }
            KeyEffect::Suspended => {
                self.set_state(KeyState::Suspended);
                tracing::warn!(key = %self.id, "key is suspended or denied (403); taken out of rotation");
            }
            KeyEffect::Cooldown(after) => {
                let rest = after.unwrap_or(DEFAULT_QUOTA_COOLDOWN);
                self.cool(model, now + rest, false);
                tracing::info!(key = %self.id, model, cooldown_s = rest.as_secs_f64(), "key cooling down after a quota error");
            }
            KeyEffect::ExhaustedForToday => {
                let until = now + until_pacific_midnight();
                self.cool(model, until, true);
                tracing::info!(key = %self.id, model, "key exhausted for this model until the daily reset (midnight America/Los_Angeles)");
            }
        }
    }

    pub fn cool(&self, model: &str, until: Instant, daily: bool) {
        let mut cds = self.lock();
        if let Some(c) = cds.iter_mut().find(|c| c.model == model) {
            if until > c.until {
                c.until = until;
                c.daily = daily;
            }
        } else {
            cds.push(Cooldown {
                model: model.to_owned(),
                until,
                daily,
            });
        }
    }

    /// Puts a key back into service (operator reset).
    pub fn reset(&self) {
        self.set_state(KeyState::Active);
        self.lock().clear();
    }
}

/// Google's daily quota resets at midnight in this zone.
fn pacific() -> jiff::tz::TimeZone {
    // The zone database is compiled in (`tzdb-bundle-always`): the lookup cannot fail.
    jiff::tz::TimeZone::get("America/Los_Angeles").unwrap_or(jiff::tz::TimeZone::UTC)
}

/// Time until the next midnight in America/Los_Angeles (Google's daily quota reset).
pub fn until_pacific_midnight() -> Duration {
    let now = jiff::Timestamp::now().as_second();
    let next = crate::stats::day_bounds(&pacific(), now).1;
    Duration::from_secs(u64::try_from(next - now).unwrap_or(86_400))
}

/// A key in use by one attempt. Dropping it releases the key without judging it.
#[derive(Debug)]
pub struct Lease {
    slot: Arc<KeySlot>,
    released: Arc<tokio::sync::Notify>,
}

impl Lease {
    pub fn slot(&self) -> &Arc<KeySlot> {
        &self.slot
    }
}

impl std::ops::Deref for Lease {
    type Target = KeySlot;
    fn deref(&self) -> &KeySlot {
        &self.slot
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.slot.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.released.notify_waiters();
    }
}

/// Per-pick limits from the settings of the request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    /// `API_KEY_DAILY_LIMIT` (0: none): keys over it are skipped unless all are.
    pub daily_limit: u32,
    /// Most attempts in flight per key (0: unlimited).
    pub max_in_flight: u32,
    /// Which kinds of credential may serve.
    pub only: Only,
}

/// The result of asking the pool for a key.
#[derive(Debug)]
pub enum Pick {
    Key(Lease),
    /// Every usable key has been tried by this request already.
    AllTried,
    /// No key can serve the model before this instant.
    CoolingUntil(Instant),
    /// Usable keys exist but all are at their concurrency cap.
    Busy,
    /// No active key at all.
    NoneUsable,
}

pub struct KeyPool {
    slots: ArcSwap<Vec<Arc<KeySlot>>>,
    /// HAJIMI's shared shuffled stack, popped from the end.
    stack: Mutex<Vec<Arc<KeySlot>>>,
    released: Arc<tokio::sync::Notify>,
    /// Unix second of the next daily reset of `calls_today`, and the zone that defines it.
    next_reset: AtomicU64,
    reset_zone: jiff::tz::TimeZone,
}

impl KeyPool {
    pub fn new(keys: Vec<String>) -> Self {
        Self::with_reset_zone(keys, pacific())
    }

    /// A pool whose daily call counts reset at midnight in `zone` (`STATS_RESET_TIMEZONE`).
    pub fn with_reset_zone(keys: Vec<String>, zone: jiff::tz::TimeZone) -> Self {
        let slots: Vec<Arc<KeySlot>> = keys
            .into_iter()
            .map(|k| Arc::new(KeySlot::new(k)))
            .collect();
        Self {
            slots: ArcSwap::from_pointee(slots),
            stack: Mutex::new(Vec::new()),
            released: Arc::new(tokio::sync::Notify::new()),
            next_reset: AtomicU64::new(next_midnight_unix(&zone)),
            reset_zone: zone,
        }
    }

    pub fn slots(&self) -> Arc<Vec<Arc<KeySlot>>> {
        self.slots.load_full()
    }

    pub fn len(&self) -> usize {
        self.slots.load().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn active_count(&self) -> usize {
        self.slots
            .load()
            .iter()
            .filter(|s| s.state() == KeyState::Active)
            .count()
    }

    /// Active keys that Google accepted (passed a check or served a call): HAJIMI's
    /// "usable keys" (`key_count`).
    pub fn usable_count(&self) -> usize {
        self.slots
            .load()
            .iter()
            .filter(|s| s.state() == KeyState::Active && s.verified())
            .count()
    }

    pub fn find(&self, id: KeyId) -> Option<Arc<KeySlot>> {
        self.slots.load().iter().find(|s| s.id == id).cloned()
    }

    /// A pool of credentials of any kind (Vertex accounts and express keys).
    pub fn of_credentials(creds: Vec<(String, Kind)>, zone: jiff::tz::TimeZone) -> Self {
        let pool = Self::with_reset_zone(Vec::new(), zone);
        pool.replace(creds);
        pool
    }

    /// Makes the pool hold exactly these credentials: those already present (same secret and
    /// kind) keep their state, the others are added, the rest removed; returns whether
    /// anything changed.
    pub fn replace(&self, creds: Vec<(String, Kind)>) -> bool {
        let current = self.slots.load_full();
        let same = |s: &KeySlot, secret: &str, kind: &Kind| {
            s.secret() == secret
                && match (&s.kind, kind) {
                    (Kind::Account(a), Kind::Account(b)) => a.same_credentials(b),
                    (a, b) => a.as_str() == b.as_str(),
                }
        };
        let next: Vec<Arc<KeySlot>> = creds
            .into_iter()
            .map(|(secret, kind)| {
                current
                    .iter()
                    .find(|s| same(s, &secret, &kind))
                    .cloned()
                    .unwrap_or_else(|| Arc::new(KeySlot::of_kind(secret, kind)))
            })
            .collect();
        let changed = next.len() != current.len()
            || next
                .iter()
                .zip(current.iter())
                .any(|(a, b)| !Arc::ptr_eq(a, b));
        if changed {
            self.slots.store(Arc::new(next));
            self.lock_stack().clear();
        }
        changed
    }

    /// Adds keys not already present; returns how many were added.
    pub fn add(&self, keys: &[String]) -> usize {
        let current = self.slots.load_full();
        let mut next: Vec<Arc<KeySlot>> = current.as_ref().clone();
        let mut added = 0;
        for k in keys {
            if !next.iter().any(|s| s.secret() == k) {
                next.push(Arc::new(KeySlot::new(k.clone())));
                added += 1;
            }
        }
        if added > 0 {
            self.slots.store(Arc::new(next));
            self.lock_stack().clear();
        }
        added
    }

    /// Removes keys; returns how many were removed.
    pub fn remove(&self, keys: &[String]) -> usize {
        let current = self.slots.load_full();
        let next: Vec<Arc<KeySlot>> = current
            .iter()
            .filter(|s| !keys.iter().any(|k| k == s.secret()))
            .cloned()
            .collect();
        let removed = current.len() - next.len();
        if removed > 0 {
            self.slots.store(Arc::new(next));
            self.lock_stack().clear();
        }
        removed
    }

    fn lock_stack(&self) -> std::sync::MutexGuard<'_, Vec<Arc<KeySlot>>> {
        self.stack.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Resets today's call counts when the daily reset time has passed.
    fn roll_day(&self) {
        let now = jiff::Timestamp::now().as_second();
        let reset = self.next_reset.load(Ordering::Relaxed);
        if u64::try_from(now).is_ok_and(|n| n >= reset) {
            let next = next_midnight_unix(&self.reset_zone);
            if self
                .next_reset
                .compare_exchange(reset, next, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                for s in self.slots.load().iter() {
                    s.calls_today.store(0, Ordering::Relaxed);
                }
                tracing::info!("daily key call counts reset");
            }
        }
    }

    fn lease(&self, slot: Arc<KeySlot>) -> Lease {
        slot.in_flight.fetch_add(1, Ordering::Relaxed);
        Lease {
            slot,
            released: Arc::clone(&self.released),
        }
    }

    /// The next key from the shared rotation that can serve `model` now and that this
    /// request has not tried yet.
    pub fn pick(&self, model: &str, tried: &HashSet<KeyId>, now: Instant, limits: Limits) -> Pick {
        self.roll_day();
        let slots = self.slots.load();
        if slots.is_empty() {
            return Pick::NoneUsable;
        }
        let under_cap =
            |s: &KeySlot| limits.max_in_flight == 0 || s.in_flight() < limits.max_in_flight;
        let over_daily = |s: &KeySlot| {
            limits.daily_limit > 0 && s.calls_today() >= u64::from(limits.daily_limit)
        };
        let mut over_limit_fallback: Option<Arc<KeySlot>> = None;
        {
            let mut stack = self.lock_stack();
            let mut refilled = false;
            // Each pick looks at no more than one full permutation plus what was left.
            let mut budget = stack.len() + slots.len();
            while budget > 0 {
                budget -= 1;
                let Some(slot) = stack.pop() else {
                    if refilled {
                        break;
                    }
                    refilled = true;
                    let mut fresh: Vec<Arc<KeySlot>> = slots.iter().cloned().collect();
                    fastrand::shuffle(&mut fresh);
                    *stack = fresh;
                    budget = stack.len();
                    continue;
                };
                if tried.contains(&slot.id)
                    || !limits.only.admits(&slot.kind)
                    || !slot.usable_for(model, now)
                    || !under_cap(&slot)
                {
                    continue;
                }
                if over_daily(&slot) {
                    over_limit_fallback.get_or_insert(slot);
                    continue;
                }
                return Pick::Key(self.lease(slot));
            }
        }
        if let Some(slot) = over_limit_fallback {
            // HAJIMI's soft limit: when every key is over it, traffic still flows.
            tracing::debug!(key = %slot.id, "every usable key is over API_KEY_DAILY_LIMIT; using one anyway");
            return Pick::Key(self.lease(slot));
        }
        // Nothing found: say why.
        let active: Vec<&Arc<KeySlot>> = slots
            .iter()
            .filter(|s| s.state() == KeyState::Active && limits.only.admits(&s.kind))
            .collect();
        if active.is_empty() {
            return Pick::NoneUsable;
        }
        let free: Vec<&&Arc<KeySlot>> = active
            .iter()
            .filter(|s| s.cooling_until(model, now).is_none())
            .collect();
        if free.iter().any(|s| !tried.contains(&s.id) && !under_cap(s)) {
            return Pick::Busy;
        }
        if !free.is_empty() {
            return Pick::AllTried;
        }
        match active
            .iter()
            .filter_map(|s| s.cooling_until(model, now))
            .min()
        {
            Some(until) => Pick::CoolingUntil(until),
            None => Pick::NoneUsable,
        }
    }

    /// Signalled whenever a lease is released (for requests waiting on busy keys). Register
    /// interest (`Notified::enable`) before [`KeyPool::pick`] so a release in between is not
    /// missed.
    pub fn release_signal(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.released)
    }

    /// When the first key can serve `model` again, if no active key can serve it now: the
    /// earliest cooldown end among the active keys, and whether that is the daily reset.
    /// `None` when some active key is free (or none is active).
    pub fn earliest_return(&self, model: &str, now: Instant) -> Option<(Instant, bool)> {
        let slots = self.slots.load();
        let mut earliest: Option<(Instant, bool)> = None;
        for slot in slots.iter().filter(|s| s.state() == KeyState::Active) {
            let cooldown = slot.cooldown_for(model, now)?;
            if earliest.is_none_or(|(until, _)| cooldown.0 < until) {
                earliest = Some(cooldown);
            }
        }
        earliest
    }
}

/// Unix second of the next midnight in a time zone.
pub fn next_midnight_unix(zone: &jiff::tz::TimeZone) -> u64 {
    let next = crate::stats::day_bounds(zone, jiff::Timestamp::now().as_second()).1;
    u64::try_from(next).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("AIzaSyTEST{i:029}")).collect()
    }

    fn pick_key(pool: &KeyPool, model: &str, tried: &HashSet<KeyId>) -> Option<Arc<KeySlot>> {
        match pool.pick(model, tried, Instant::now(), Limits::default()) {
            Pick::Key(k) => Some(Arc::clone(k.slot())),
            _ => None,
        }
    }

    #[test]
    fn the_daily_limit_is_soft() {
        let pool = KeyPool::new(keys(2));
        let limits = Limits {
            daily_limit: 1,
            max_in_flight: 0,
            ..Limits::default()
        };
        let a = pick_key(&pool, "m", &HashSet::new()).expect("key");
        a.record_success();
        for _ in 0..4 {
            let Pick::Key(k) = pool.pick("m", &HashSet::new(), Instant::now(), limits) else {
                panic!("a key")
            };
            assert_ne!(
                k.id, a.id,
                "the key over its daily limit is skipped while another is under it"
            );
        }
        for s in pool.slots().iter() {
            s.record_success();
        }
        assert!(
            matches!(
                pool.pick("m", &HashSet::new(), Instant::now(), limits),
                Pick::Key(_)
            ),
            "all over: one is used anyway"
        );
    }

    #[test]
    fn the_concurrency_cap_makes_keys_busy_until_released() {
        let pool = KeyPool::new(keys(1));
        let limits = Limits {
            daily_limit: 0,
            max_in_flight: 1,
            ..Limits::default()
        };
        let Pick::Key(lease) = pool.pick("m", &HashSet::new(), Instant::now(), limits) else {
            panic!("a key")
        };
        assert!(matches!(
            pool.pick("m", &HashSet::new(), Instant::now(), limits),
            Pick::Busy
        ));
        drop(lease);
        assert!(matches!(
            pool.pick("m", &HashSet::new(), Instant::now(), limits),
            Pick::Key(_)
        ));
    }

    #[test]
    fn keys_can_be_removed() {
        let pool = KeyPool::new(keys(3));
        assert_eq!(pool.remove(&keys(1)), 1);
        assert_eq!(pool.len(), 2);
    }

    #[test]
    fn rotation_spreads_consecutive_requests_over_all_keys() {
        let pool = KeyPool::new(keys(5));
        let mut seen = HashSet::new();
        for _ in 0..5 {
            let k = pick_key(&pool, "m", &HashSet::new()).expect("a key");
            seen.insert(k.id);
        }
        assert_eq!(seen.len(), 5, "one permutation uses every key once");
    }

    #[test]
    fn a_request_never_gets_a_key_it_already_tried_until_all_were_tried() {
        let pool = KeyPool::new(keys(3));
        let mut tried = HashSet::new();
        for _ in 0..3 {
            let k = pick_key(&pool, "m", &tried).expect("a key");
            assert!(tried.insert(k.id));
        }
        assert!(matches!(
            pool.pick("m", &tried, Instant::now(), Limits::default()),
            Pick::AllTried
        ));
    }

    #[test]
    fn invalid_keys_leave_the_rotation_for_good() {
        let pool = KeyPool::new(keys(2));
        let k = pick_key(&pool, "m", &HashSet::new()).expect("key");
        k.settle(&Failure::KeyInvalid, "m", Instant::now());
        for _ in 0..10 {
            let other = pick_key(&pool, "m", &HashSet::new()).expect("key");
            assert_ne!(other.id, k.id);
        }
        assert_eq!(pool.active_count(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn quota_cools_a_key_for_one_model_only_and_then_it_returns() {
        let pool = KeyPool::new(keys(1));
        let k = pick_key(&pool, "flash", &HashSet::new()).expect("key");
        k.settle(
            &Failure::Quota {
                retry_after: Some(Duration::from_secs(30)),
                daily: false,
            },
            "flash",
            Instant::now(),
        );
        let Pick::CoolingUntil(until) =
            pool.pick("flash", &HashSet::new(), Instant::now(), Limits::default())
        else {
            panic!("cooling expected")
        };
        assert_eq!(until - Instant::now(), Duration::from_secs(30));
        assert!(
            pick_key(&pool, "pro", &HashSet::new()).is_some(),
            "other models are unaffected"
        );
        tokio::time::advance(Duration::from_secs(29)).await;
        assert!(pick_key(&pool, "flash", &HashSet::new()).is_none());
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(pick_key(&pool, "flash", &HashSet::new()).is_some());
    }

    /// Must show (issue 4): a 429 with `retryDelay: 30s` keeps that key off that model for
    /// 30 s while the other keys serve, on a paused clock.
    #[tokio::test(start_paused = true)]
    async fn a_throttled_key_sits_out_30s_while_the_others_serve() {
        let pool = KeyPool::new(keys(3));
        let throttled = pick_key(&pool, "flash", &HashSet::new()).expect("key");
        throttled.settle(
            &Failure::Quota {
                retry_after: Some(Duration::from_secs(30)),
                daily: false,
            },
            "flash",
            Instant::now(),
        );
        for _ in 0..29 {
            for _ in 0..6 {
                let k = pick_key(&pool, "flash", &HashSet::new()).expect("the others serve");
                assert_ne!(k.id, throttled.id);
            }
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        tokio::time::advance(Duration::from_secs(2)).await;
        let served: HashSet<KeyId> = (0..6)
            .filter_map(|_| pick_key(&pool, "flash", &HashSet::new()))
            .map(|k| k.id)
            .collect();
        assert!(served.contains(&throttled.id), "back after 30 s");
    }

    #[test]
    fn overload_leaves_the_key_active() {
        let pool = KeyPool::new(keys(1));
        let k = pick_key(&pool, "m", &HashSet::new()).expect("key");
        k.settle(&Failure::Overloaded, "m", Instant::now());
        k.settle(&Failure::Timeout, "m", Instant::now());
        assert!(pick_key(&pool, "m", &HashSet::new()).is_some());
    }

    #[test]
    fn daily_exhaustion_lasts_until_pacific_midnight() {
        let pool = KeyPool::new(keys(1));
        let k = pick_key(&pool, "m", &HashSet::new()).expect("key");
        let now = Instant::now();
        k.settle(
            &Failure::Quota {
                retry_after: None,
                daily: true,
            },
            "m",
            now,
        );
        let Pick::CoolingUntil(until) = pool.pick("m", &HashSet::new(), now, Limits::default())
        else {
            panic!("cooling")
        };
        let left = until - now;
        assert!(
            left > Duration::ZERO && left <= Duration::from_secs(25 * 3600),
            "{left:?}"
        );
    }

    #[test]
    fn a_request_only_gets_the_kinds_it_admits_and_replace_keeps_state() {
        let zone = jiff::tz::TimeZone::UTC;
        let express = |i: usize| (format!("AQ.express-key-{i:02}"), Kind::Express);
        let pool = KeyPool::of_credentials(vec![express(0), express(1)], zone);
        let accounts_only = Limits {
            only: Only::Accounts,
            ..Limits::default()
        };
        assert!(matches!(
            pool.pick("m", &HashSet::new(), Instant::now(), accounts_only),
            Pick::NoneUsable
        ));
        let k = pick_key(&pool, "m", &HashSet::new()).expect("an express key");
        k.settle(&Failure::KeyInvalid, "m", Instant::now());
        assert!(
            !pool.replace(vec![express(0), express(1)]),
            "nothing changed"
        );
        assert_eq!(pool.active_count(), 1, "the retired key stays retired");
        assert!(pool.replace(vec![express(1)]));
        assert_eq!(pool.len(), 1);
    }

    #[test]
    fn empty_pool_has_nothing_usable() {
        let pool = KeyPool::new(Vec::new());
        assert!(matches!(
            pool.pick("m", &HashSet::new(), Instant::now(), Limits::default()),
            Pick::NoneUsable
        ));
        assert_eq!(pool.add(&keys(2)), 2);
        assert_eq!(pool.add(&keys(2)), 0);
        assert!(pick_key(&pool, "m", &HashSet::new()).is_some());
    }
}
