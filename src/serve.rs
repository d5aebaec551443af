//! Serving connections: our own accept loop over hyper-util's HTTP/1 + HTTP/2 builder, so that
//! no connection holds a file descriptor for nothing.
//! - `HEADER_READ_TIMEOUT`: a new connection must deliver its first request's head within it
//!   (a bare socket is closed); on HTTP/1, hyper applies it again after each response.
//! - `KEEPALIVE_TIMEOUT`: a connection with no request in progress (HTTP/1 or HTTP/2) is
//!   closed after this long since its last response.
//! - `MAX_CONNECTIONS_PER_IP`: open connections per client address (IPv6 per /64); loopback
//!   peers and peers matching `TRUSTED_PROXIES` are exempt; one over the cap is closed at once.
//!
//! A request is "in progress" from the moment its head is parsed until its response body has
//! been sent (or dropped), so none of the timeouts ever cuts an answer being delivered: a long
//! stream or a slow answer padded with keep-alives lasts as long as it needs.
//!
//! Shutdown stops accepting (the listener is dropped), asks every connection to finish
//! gracefully, and waits for them; [`crate::Server::shutdown`] bounds the wait.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::state::AppState;

/// Pending-connection queue of the listening socket (the OS default of 128 drops connects
/// under a burst of a thousand clients; uvicorn, which HAJIMI runs on, uses 2048).
const LISTEN_BACKLOG: u32 = 2048;

/// Binds the first address `bind` resolves to, with [`LISTEN_BACKLOG`] and `SO_REUSEADDR`
/// (a restart does not wait for the previous process's connections in TIME_WAIT).
pub async fn listen(bind: &str) -> std::io::Result<TcpListener> {
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

/// After a connection was asked to close (idle, or shutting down), how long it may take to
/// say goodbye (an HTTP/2 GOAWAY waits for the peer's PING acknowledgement) before it is
/// dropped — unless a request is still in progress on it.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Pause after an accept error that is not about one connection (out of file descriptors).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Raises the soft open-file limit to the hard limit (decisions §6: many held streams need
/// many sockets) and logs the limit in force.
pub fn raise_open_file_limit() {
    #[cfg(unix)]
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::info!(limit = n, "open-file limit {n}"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
    }
}

/// Accepts and serves connections until `shutdown`, then waits for the open ones to finish.
pub async fn run(listener: TcpListener, app: Router, state: AppState, shutdown: CancellationToken) {
    let settings = state.live.current();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let timeouts = Timeouts {
        first_request: settings.header_read_timeout,
        idle: settings.keepalive_timeout,
    };
    drop(settings);
    let cap = Arc::new(ConnectionCap::default());
    let connections = TaskTracker::new();
    let mut last_warning: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    last_warning = Some(Instant::now());
                    tracing::warn!(error = %e, "cannot accept connections (out of file descriptors?)");
                }
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => continue,
                }
            }
        };
        let slot = {
            let snap = state.live.current();
            let ip = peer.ip().to_canonical();
            let exempt = snap.trusted_proxies.trusts(ip)
                || (snap.connection_cap_exempts_loopback && ip.is_loopback());
            if exempt {
                None
            } else {
                match cap.acquire(ip, snap.max_connections_per_ip) {
                    Ok(slot) => slot,
                    Err(OverCap) => {
                        metrics::counter!("hajimi_connections_refused_total").increment(1);
                        tracing::debug!(peer = %ip, "connection over MAX_CONNECTIONS_PER_IP closed");
                        continue;
                    }
                }
            }
        };
        // Small SSE writes go out at once instead of waiting ~40 ms for the peer's delayed ACK.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        connections.spawn(serve_connection(
            Arc::clone(&builder),
            stream,
            peer,
            app.clone(),
            timeouts,
            shutdown.clone(),
            slot,
        ));
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// Errors about one connection (the peer gave up before we accepted it): accept the next.
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

#[derive(Clone, Copy)]
struct Timeouts {
    /// Until the first request of a connection starts.
    first_request: Duration,
    /// From the end of a response until the next request starts.
    idle: Duration,
}

/// Serves one connection: HTTP/1 or HTTP/2 (prior knowledge), closed when idle or at shutdown.
async fn serve_connection(
    builder: Arc<auto::Builder<TokioExecutor>>,
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    timeouts: Timeouts,
    shutdown: CancellationToken,
    _slot: Option<Slot>,
) {
    let activity = Arc::new(Activity::new());
    let requests = Arc::clone(&activity);
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        let busy = Activity::begin(&requests);
        let call = tower::Service::call(&mut app.clone(), request);
        async move {
            let response = call.await?;
            Ok::<_, Infallible>(response.map(|body| Tracked { body, _busy: busy }))
        }
    });
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    let mut closing: Option<Instant> = None;
    let deadline = |closing: Option<Instant>| match closing {
        None => activity.idle_deadline(timeouts, None),
        Some(since) => activity.idle_deadline(
            Timeouts {
                first_request: CLOSE_GRACE,
                idle: CLOSE_GRACE,
            },
            Some(since),
        ),
    };
    loop {
        let changed = activity.changed.notified();
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            () = shutdown.cancelled(), if closing.is_none() => {
                conn.as_mut().graceful_shutdown();
                closing = Some(Instant::now());
            }
            () = changed => {}
            () = sleep_until(deadline(closing)) => {
                // Still idle? A request may have started, or started and ended, meanwhile.
                if deadline(closing).is_some_and(|d| d <= Instant::now()) {
                    if closing.is_some() {
                        return;
                    }
                    conn.as_mut().graceful_shutdown();
                    closing = Some(Instant::now());
                }
            }
        }
    }
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Requests in progress on one connection, and since when it has been idle.
struct Activity {
    in_flight: AtomicUsize,
    /// When the last request ended (or the connection was accepted), and whether a request
    /// has ended yet.
    idle_since: Mutex<(Instant, bool)>,
    changed: tokio::sync::Notify,
}

impl Activity {
    fn new() -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            idle_since: Mutex::new((Instant::now(), false)),
            changed: tokio::sync::Notify::new(),
        }
    }

    /// A request starts. The watcher is not woken: if its idle timer fires meanwhile, it sees
    /// the request and keeps the connection.
    fn begin(this: &Arc<Self>) -> Busy {
        this.in_flight.fetch_add(1, Ordering::AcqRel);
        Busy(Arc::clone(this))
    }

    fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// When an idle connection should be closed (asked to, or dropped when `closing` is the
    /// moment it was asked); `None` while a request is in progress.
    fn idle_deadline(&self, timeouts: Timeouts, closing: Option<Instant>) -> Option<Instant> {
        if self.in_flight() > 0 {
            return None;
        }
        let (since, served) = *self
            .idle_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let wait = if served {
            timeouts.idle
        } else {
            timeouts.first_request
        };
        let since = closing.map_or(since, |c| c.max(since));
        Some(since + wait)
    }
}

/// One request in progress; dropped when its response body is done (or dropped).
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        // The idle clock first, so a watcher that sees zero in flight reads the new time.
        *self
            .0
            .idle_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = (Instant::now(), true);
        // Only the last request's end starts the idle clock the watcher must wait on.
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.changed.notify_one();
        }
    }
}

/// A response body that keeps its request "in progress" until it is sent or dropped.
struct Tracked {
    body: Body,
    _busy: Busy,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Open connections per client address (the map holds only addresses with open
/// connections, so it is bounded by the open-file limit).
#[derive(Default)]
struct ConnectionCap {
    open: Mutex<HashMap<IpAddr, u32>>,
}

impl ConnectionCap {
    /// Counts a connection from `ip` against `cap` (0: no cap, nothing counted). `Err` when
    /// the address already has `cap` connections open.
    fn acquire(self: &Arc<Self>, ip: IpAddr, cap: u32) -> Result<Option<Slot>, OverCap> {
        if cap == 0 {
            return Ok(None);
        }
        let key = group(ip);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let n = open.entry(key).or_insert(0);
        if *n >= cap {
            if *n == 0 {
                open.remove(&key);
            }
            return Err(OverCap);
        }
        *n += 1;
        Ok(Some(Slot {
            cap: Arc::clone(self),
            key,
        }))
    }

    /// Connections open from `ip`'s group.
    #[cfg(test)]
    fn open(&self, ip: IpAddr) -> u32 {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&group(ip))
            .copied()
            .unwrap_or(0)
    }
}

/// The address already has its cap of open connections.
struct OverCap;

/// One counted connection; the count drops with it.
struct Slot {
    cap: Arc<ConnectionCap>,
    key: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.cap.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// The unit a cap counts: the rate limits' client ([`crate::limits::client_group`]): an IPv4
/// address, or an IPv6 /64 (a host with a /64 could otherwise open a new address per
/// connection); IPv4-mapped IPv6 addresses count as the IPv4 address.
fn group(ip: IpAddr) -> IpAddr {
    crate::limits::client_group(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    #[test]
    fn the_cap_counts_open_connections_per_address_and_frees_on_drop() {
        let cap = Arc::new(ConnectionCap::default());
        let a = ip("203.0.113.7");
        let held: Vec<_> = (0..3).map(|_| cap.acquire(a, 3)).collect();
        assert!(held.iter().all(|h| matches!(h, Ok(Some(_)))));
        assert!(cap.acquire(a, 3).is_err(), "a fourth is refused");
        assert!(
            matches!(cap.acquire(ip("203.0.113.8"), 3), Ok(Some(_))),
            "another address has its own count"
        );
        drop(held);
        assert_eq!(cap.open(a), 0);
        assert!(
            cap.open.lock().map(|m| m.is_empty()).unwrap_or(false),
            "closed addresses leave the map"
        );
        assert!(matches!(cap.acquire(a, 3), Ok(Some(_))));
    }

    #[test]
    fn a_zero_cap_counts_nothing() {
        let cap = Arc::new(ConnectionCap::default());
        for _ in 0..10 {
            assert!(matches!(cap.acquire(ip("203.0.113.7"), 0), Ok(None)));
        }
        assert_eq!(cap.open(ip("203.0.113.7")), 0);
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let cap = Arc::new(ConnectionCap::default());
        let first = cap.acquire(ip("2001:db8:1:2::1"), 1);
        assert!(matches!(first, Ok(Some(_))));
        assert!(
            cap.acquire(ip("2001:db8:1:2:ffff::9"), 1).is_err(),
            "the same /64"
        );
        assert!(matches!(cap.acquire(ip("2001:db8:1:3::1"), 1), Ok(Some(_))));
        let v4 = cap.acquire(ip("198.51.100.1"), 1);
        assert!(matches!(v4, Ok(Some(_))));
        assert!(cap.acquire(ip("::ffff:198.51.100.1"), 1).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn idleness_starts_at_accept_then_at_each_response_end() {
        let timeouts = Timeouts {
            first_request: Duration::from_secs(3),
            idle: Duration::from_secs(10),
        };
        let a = Arc::new(Activity::new());
        let accepted = Instant::now();
        assert_eq!(
            a.idle_deadline(timeouts, None),
            Some(accepted + Duration::from_secs(3)),
            "a new connection has HEADER_READ_TIMEOUT for its first request"
        );
        let busy = Activity::begin(&a);
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(
            a.idle_deadline(timeouts, None),
            None,
            "no deadline while a request is in progress, however long"
        );
        drop(busy);
        let ended = Instant::now();
        assert_eq!(
            a.idle_deadline(timeouts, None),
            Some(ended + Duration::from_secs(10))
        );
        let closing = ended + Duration::from_secs(10);
        assert_eq!(
            a.idle_deadline(
                Timeouts {
                    first_request: CLOSE_GRACE,
                    idle: CLOSE_GRACE
                },
                Some(closing)
            ),
            Some(closing + CLOSE_GRACE)
        );
    }
}
