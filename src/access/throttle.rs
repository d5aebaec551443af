//! The failed-login throttle (decisions §2): per client (an IPv4 address, or an IPv6 /64, see
//! [`crate::limits::client_group`]), the first [`FREE_FAILURES`] failed password attempts cost
//! nothing; after that every password attempt from that client, right or wrong, is answered
//! only after a delay that starts at [`FIRST_DELAY`] and doubles with each further failure up
//! to [`MAX_DELAY`]. A right password still succeeds after its delay (and clears the
//! client's failures): guessing is slowed, the owner is never locked out — not even when
//! someone else fails in the owner's name (a forged `X-Forwarded-For` behind
//! `TRUSTED_PROXIES=*`).
//!
//! Failures are forgotten [`FORGET_AFTER`] after the client's last one. At most [`CAPACITY`]
//! clients are remembered; when full, the one whose last failure is oldest is forgotten first.
//!
//! Attempts sent in parallel each wait their own delay, so a client guesses at most about
//! (its parallel connections) / [`MAX_DELAY`] passwords a second once throttled; making
//! attempts wait for each other would let a flood delay the owner without bound.

use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use hashlink::LinkedHashMap;
use tokio::time::Instant;

/// Failed attempts a client may make before its attempts are delayed.
pub const FREE_FAILURES: u32 = 10;
/// The delay after [`FREE_FAILURES`] failures; it doubles with each further failure.
pub const FIRST_DELAY: Duration = Duration::from_secs(1);
/// The longest delay.
pub const MAX_DELAY: Duration = Duration::from_secs(10);
/// A client's failures are forgotten this long after its last one.
pub const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Clients remembered at most.
pub const CAPACITY: usize = 100_000;

#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

/// Failed password attempts per client, oldest last failure first.
pub struct LoginThrottle {
    clients: Mutex<LinkedHashMap<IpAddr, Failures>>,
    capacity: usize,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self::with_capacity(CAPACITY)
    }
}

/// The delay before answering an attempt from a client with `failures` recent failures.
pub fn delay_after(failures: u32) -> Duration {
    if failures < FREE_FAILURES {
        return Duration::ZERO;
    }
    let doublings = (failures - FREE_FAILURES).min(8);
    FIRST_DELAY.saturating_mul(1 << doublings).min(MAX_DELAY)
}

impl LoginThrottle {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            clients: Mutex::new(LinkedHashMap::new()),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LinkedHashMap<IpAddr, Failures>> {
        self.clients.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How long an attempt from `ip` arriving at `now` waits before it is answered.
    pub fn delay(&self, ip: IpAddr, now: Instant) -> Duration {
        let client = crate::limits::client_group(ip);
        let failures = self
            .lock()
            .get(&client)
            .filter(|f| now.saturating_duration_since(f.last) < FORGET_AFTER)
            .map_or(0, |f| f.count);
        delay_after(failures)
    }

    /// A wrong password from `ip` at `now`.
    pub fn failed(&self, ip: IpAddr, now: Instant) {
        let client = crate::limits::client_group(ip);
        let mut clients = self.lock();
        let count = clients
            .remove(&client)
            .filter(|f| now.saturating_duration_since(f.last) < FORGET_AFTER)
            .map_or(0, |f| f.count);
        // Forget what has expired (the front holds the oldest last failures), then the
        // oldest while full.
        while let Some((_, f)) = clients.front() {
            let expired = now.saturating_duration_since(f.last) >= FORGET_AFTER;
            if !expired && clients.len() < self.capacity {
                break;
            }
            clients.pop_front();
        }
        clients.insert(
            client,
            Failures {
                count: count.saturating_add(1),
                last: now,
            },
        );
    }

    /// The right password from `ip`: its failures are forgotten.
    pub fn succeeded(&self, ip: IpAddr) {
        self.lock().remove(&crate::limits::client_group(ip));
    }

    /// Clients currently remembered.
    #[cfg(test)]
    pub fn remembered(&self) -> usize {
        self.lock().len()
    }

    /// Waits out the delay of an attempt from `ip` (none for an unknown address).
    pub async fn wait(&self, ip: Option<IpAddr>) {
        let Some(ip) = ip else { return };
        let delay = self.delay(ip, Instant::now());
        if !delay.is_zero() {
            tracing::debug!(client = %ip, delay_ms = delay.as_millis(), "login attempt throttled");
            tokio::time::sleep(delay).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    #[test]
    fn the_delay_starts_after_ten_failures_and_grows_to_ten_seconds() {
        let secs: Vec<u64> = (0..16).map(|n| delay_after(n).as_secs()).collect();
        assert_eq!(secs, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 4, 8, 10, 10]);
        assert_eq!(delay_after(u32::MAX), MAX_DELAY);
    }

    #[test]
    fn one_ipv6_64_is_one_client_and_another_64_is_not() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        for i in 0..10 {
            t.failed(ip(&format!("2001:db8:aa:bb::{i:x}")), now);
        }
        assert_eq!(t.delay(ip("2001:db8:aa:bb:ffff::1"), now), FIRST_DELAY);
        assert_eq!(t.delay(ip("2001:db8:aa:bc::1"), now), Duration::ZERO);
        assert_eq!(t.delay(ip("198.51.100.1"), now), Duration::ZERO);
        t.succeeded(ip("2001:db8:aa:bb::99"));
        assert_eq!(t.delay(ip("2001:db8:aa:bb::1"), now), Duration::ZERO);
    }

    #[test]
    fn failures_expire() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        for _ in 0..12 {
            t.failed(ip("198.51.100.1"), now);
        }
        assert_eq!(t.delay(ip("198.51.100.1"), now), Duration::from_secs(4));
        let later = now + FORGET_AFTER;
        assert_eq!(t.delay(ip("198.51.100.1"), later), Duration::ZERO);
        t.failed(ip("198.51.100.1"), later);
        assert_eq!(
            t.delay(ip("198.51.100.1"), later),
            Duration::ZERO,
            "counting starts again"
        );
    }

    #[test]
    fn the_map_stays_bounded_under_many_addresses() {
        let t = LoginThrottle::with_capacity(1000);
        let now = Instant::now();
        for _ in 0..10 {
            t.failed(ip("198.51.100.1"), now);
        }
        for i in 0..50_000u32 {
            t.failed(IpAddr::from(i.wrapping_add(0x0a00_0000).to_be_bytes()), now);
            // Different /64s, all with failures.
            t.failed(
                IpAddr::from((0x2001_0db8_u128 << 96 | u128::from(i) << 64 | 1).to_be_bytes()),
                now,
            );
        }
        assert_eq!(t.remembered(), 1000);
        assert_eq!(
            t.delay(ip("198.51.100.1"), now),
            Duration::ZERO,
            "the oldest was forgotten first"
        );
        let expired = now + FORGET_AFTER;
        t.failed(ip("203.0.113.9"), expired);
        assert_eq!(t.remembered(), 1, "expired clients are dropped");
    }
}
