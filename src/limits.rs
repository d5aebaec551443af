//! Request rate limits (decisions §6): fixed windows aligned to UTC epoch minutes and days,
//! per client IP (`MAX_REQUESTS_PER_MINUTE`, `MAX_REQUESTS_PER_DAY_PER_IP`), IPv6 clients
//! grouped by /64 ([`client_group`]); refused requests do not consume a slot; memory bounded
//! (windows are cleared when they roll over, and at most [`MAX_TRACKED`] addresses are counted
//! per window). The client IP is the peer's, or the one `X-Forwarded-For`/`X-Real-IP` name
//! when the peer is a trusted proxy.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::request::Parts;

use crate::config::{Settings, TrustedProxies};
use crate::error::GatewayError;

/// Addresses counted per window before new ones pass uncounted (and a warning is logged).
pub const MAX_TRACKED: usize = 200_000;

#[derive(Default)]
struct Window {
    index: u64,
    counts: HashMap<IpAddr, u32>,
}

impl Window {
    fn roll(&mut self, index: u64) {
        if self.index != index {
            self.index = index;
            self.counts.clear();
        }
    }
}

#[derive(Default)]
pub struct RateLimiter {
    windows: Mutex<(Window, Window)>,
}

impl RateLimiter {
    /// Counts one request of `ip` (its [`client_group`]) at `now` (Unix seconds), or refuses it.
    /// A limit of 0 means no limit: that window is neither checked nor counted.
    pub fn admit(
        &self,
        ip: IpAddr,
        per_minute: u32,
        per_day: u32,
        now: u64,
    ) -> Result<(), GatewayError> {
        if per_minute == 0 && per_day == 0 {
            return Ok(());
        }
        let ip = client_group(ip);
        let mut guard = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let (minute, day) = &mut *guard;
        minute.roll(now / 60);
        day.roll(now / 86_400);
        let m = minute.counts.get(&ip).copied().unwrap_or(0);
        let d = day.counts.get(&ip).copied().unwrap_or(0);
        if per_minute > 0 && m >= per_minute {
            let wait = 60 - now % 60;
            return Err(GatewayError::RateLimited {
                message: format!(
                    "请求过于频繁：每分钟最多 {per_minute} 次，请 {wait} 秒后重试 / Too many requests: at most {per_minute} per minute from this address; retry in {wait}s"
                ),
                retry_after: Duration::from_secs(wait),
            });
        }
        if per_day > 0 && d >= per_day {
            let wait = 86_400 - now % 86_400;
            return Err(GatewayError::RateLimited {
                message: format!(
                    "今日请求次数已达上限 {per_day} 次 / Daily limit of {per_day} requests from this address reached; retry in {wait}s"
                ),
                retry_after: Duration::from_secs(wait),
            });
        }
        for (window, count, limit) in [(&mut *minute, m, per_minute), (&mut *day, d, per_day)] {
            if limit == 0 {
                continue;
            }
            if count > 0 || window.counts.len() < MAX_TRACKED {
                window.counts.insert(ip, count + 1);
            } else {
                tracing::warn!(
                    "rate limiter is tracking {MAX_TRACKED} addresses; new ones pass uncounted"
                );
            }
        }
        Ok(())
    }
}

/// The key one client is counted under: an IPv4 address as it is (also when written as an
/// IPv4-mapped IPv6 address, as a dual-stack listener reports IPv4 peers), an IPv6 address by
/// its /64 — one subscriber, one LAN, holds a whole /64, so counting per address would give it
/// 2^64 budgets.
pub fn client_group(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !u128::from(u64::MAX))),
        },
    }
}

/// The client's address: the peer, unless the peer is a trusted proxy, then the right-most
/// untrusted address of `X-Forwarded-For` (or `X-Real-IP`).
pub fn client_ip(parts: &Parts, trusted: &TrustedProxies) -> Option<IpAddr> {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())?;
    if !trusted.trusts(peer) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .collect();
    // `*` trusts the one proxy in front of us: the address it appended (the right-most) is
    // the client's; anything further left was written by the client and proves nothing.
    if matches!(trusted, TrustedProxies::Any) {
        if let Some(last) = forwarded.last() {
            return Some(*last);
        }
    } else if let Some(ip) = forwarded.iter().rev().find(|ip| !trusted.trusts(**ip)) {
        return Some(*ip);
    } else if let Some(first) = forwarded.first() {
        return Some(*first);
    }
    parts
        .headers
        .get("x-real-ip")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .or(Some(peer))
}

/// Applies the limits of the current settings to a request.
pub fn admit(
    limiter: &RateLimiter,
    settings: &Settings,
    parts: &Parts,
) -> Result<(), GatewayError> {
    let Some(ip) = client_ip(parts, &settings.trusted_proxies) else {
        return Ok(());
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    limiter.admit(
        ip,
        settings.max_requests_per_minute,
        settings.max_requests_per_day_per_ip,
        now,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    #[test]
    fn the_minute_window_is_fixed_and_per_address() {
        let l = RateLimiter::default();
        let t = 1_800_000_010; // 1_800_000_000 is a whole minute
        assert!(l.admit(ip("1.1.1.1"), 2, 100, t).is_ok());
        assert!(l.admit(ip("1.1.1.1"), 2, 100, t + 1).is_ok());
        let Err(GatewayError::RateLimited { retry_after, .. }) =
            l.admit(ip("1.1.1.1"), 2, 100, t + 2)
        else {
            panic!("limited")
        };
        assert_eq!(retry_after, Duration::from_secs(48));
        assert!(
            l.admit(ip("2.2.2.2"), 2, 100, t + 2).is_ok(),
            "another address has its own count"
        );
        assert!(
            l.admit(ip("1.1.1.1"), 2, 100, t + 50).is_ok(),
            "the next minute starts afresh"
        );
    }

    #[test]
    fn refused_requests_do_not_count_and_the_day_limit_applies() {
        let l = RateLimiter::default();
        let t = 1_800_000_000;
        for i in 0..3 {
            assert!(l.admit(ip("1.1.1.1"), 100, 3, t + i * 120).is_ok());
        }
        assert!(l.admit(ip("1.1.1.1"), 100, 3, t + 400).is_err());
        assert!(
            l.admit(ip("1.1.1.1"), 100, 3, t + 86_400).is_ok(),
            "a new UTC day"
        );
    }

    /// One IPv6 subscriber holds a whole /64 (2^64 addresses): counting per address would
    /// give each client an unlimited budget.
    #[test]
    fn ipv6_addresses_of_one_64_never_get_separate_budgets() {
        let l = RateLimiter::default();
        let t = 1_800_000_000;
        assert!(l.admit(ip("2001:db8:1:2::1"), 2, 100, t).is_ok());
        assert!(
            l.admit(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"), 2, 100, t)
                .is_ok()
        );
        assert!(
            l.admit(ip("2001:db8:1:2::abcd"), 2, 100, t).is_err(),
            "the same /64 shares one budget"
        );
        assert!(
            l.admit(ip("2001:db8:1:3::1"), 2, 100, t).is_ok(),
            "another /64 has its own"
        );
        assert!(l.admit(ip("::ffff:192.0.2.1"), 1, 100, t).is_ok());
        assert!(
            l.admit(ip("192.0.2.1"), 1, 100, t).is_err(),
            "an IPv4 client written as IPv6 is the same client"
        );
        assert!(
            l.admit(ip("::ffff:192.0.2.2"), 1, 100, t).is_ok(),
            "IPv4 clients are not grouped with each other"
        );
        assert_eq!(
            client_group(ip("2001:db8:1:2:3:4:5:6")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(client_group(ip("10.1.2.3")), ip("10.1.2.3"));
    }

    #[test]
    fn a_zero_limit_is_no_limit_and_counts_nothing() {
        let l = RateLimiter::default();
        let t = 1_800_000_000;
        for i in 0..100 {
            assert!(l.admit(ip("1.1.1.1"), 0, 0, t + i).is_ok());
            assert!(l.admit(ip("1.1.1.1"), 0, 1_000, t + i).is_ok());
        }
        assert!(
            l.admit(ip("1.1.1.1"), 0, 100, t + 100).is_err(),
            "the day window still counts when only the minute is unlimited"
        );
        let guard = l.windows.lock().unwrap_or_else(PoisonError::into_inner);
        assert!(
            guard.0.counts.is_empty(),
            "an unlimited window tracks nobody"
        );
    }

    #[test]
    fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
        let req = |peer: &str, xff: Option<&str>| {
            let mut b = axum::http::Request::builder();
            if let Some(x) = xff {
                b = b.header("x-forwarded-for", x);
            }
            let (mut parts, ()) = b.body(()).unwrap_or_default().into_parts();
            parts
                .extensions
                .insert(ConnectInfo(SocketAddr::new(ip(peer), 1234)));
            parts
        };
        let trusted = TrustedProxies::Nets(vec![
            "10.0.0.0/8"
                .parse()
                .unwrap_or_else(|_| ipnet::IpNet::from(ip("10.0.0.0"))),
        ]);
        assert_eq!(
            client_ip(&req("10.0.0.1", Some("9.9.9.9, 10.0.0.2")), &trusted),
            Some(ip("9.9.9.9"))
        );
        assert_eq!(
            client_ip(&req("8.8.8.8", Some("9.9.9.9")), &trusted),
            Some(ip("8.8.8.8")),
            "an untrusted peer cannot claim an address"
        );
        assert_eq!(
            client_ip(&req("10.0.0.1", None), &trusted),
            Some(ip("10.0.0.1"))
        );
        assert_eq!(
            client_ip(&req("1.2.3.4", Some("5.6.7.8")), &TrustedProxies::Any),
            Some(ip("5.6.7.8"))
        );
    }
}
