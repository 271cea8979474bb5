//! Listeners with limits: a connection cap, a first-byte/header timeout and an idle timeout,
//! the same for every protocol (HTTP today; MQTT, ksqlDB and model serving next).
//!
//! [`Acceptor`] accepts under the cap (a connection over it is closed at once and counted);
//! each accepted connection carries a [`ConnState`] that its [`TrackedIo`] and the protocol
//! update — bytes seen, an exchange (request) started, finished — and [`ConnState::verdict`]
//! says when the connection must be closed:
//!
//! - a connection that has sent nothing since it was accepted, or that has started a request
//!   but not completed its head, within `header_timeout_ms` (slow-loris, half-sent requests);
//! - a connection with nothing in flight and no bytes for `idle_timeout_ms` after its last
//!   exchange (idle keep-alive sockets).
//!
//! Time is read from a monotonic clock as milliseconds since the state was made, in atomics:
//! the hot path (every read) is one relaxed store.

use fleetwatch_metrics::{Metrics, MetricsResult};
use serde::{Deserialize, Serialize};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Limits of one listener (`[connections]`, overridable per listener).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectionLimits {
    /// Open connections at most; one more is closed at once and counted as refused.
    pub max_connections: usize,
    /// A connection must send its first bytes, and a started request must complete its head
    /// (HTTP headers, MQTT CONNECT), within this long.
    pub header_timeout_ms: u64,
    /// A connection with nothing in flight and no traffic for this long is closed.
    pub idle_timeout_ms: u64,
    /// Largest HTTP request head (URI and headers), in bytes: 431 over it.
    pub max_header_bytes: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 4096,
            header_timeout_ms: 10_000,
            idle_timeout_ms: 120_000,
            max_header_bytes: 64 * 1024,
        }
    }
}

impl ConnectionLimits {
    /// Checks the values; errors name `key` (e.g. `connections`).
    pub fn validate(&self, key: &str) -> Result<(), String> {
        if self.max_connections == 0 {
            return Err(format!("{key}.max_connections must be at least 1"));
        }
        if self.header_timeout_ms < 10 {
            return Err(format!("{key}.header_timeout_ms must be at least 10"));
        }
        if self.idle_timeout_ms < 10 {
            return Err(format!("{key}.idle_timeout_ms must be at least 10"));
        }
        if self.max_header_bytes < 1024 {
            return Err(format!("{key}.max_header_bytes must be at least 1024"));
        }
        Ok(())
    }

    fn header_timeout(&self) -> Duration {
        Duration::from_millis(self.header_timeout_ms)
    }

    fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }

    /// How often a connection's verdict is checked.
    pub fn check_interval(&self) -> Duration {
        (self.header_timeout().min(self.idle_timeout()) / 4)
            .clamp(Duration::from_millis(5), Duration::from_secs(1))
    }
}

/// Connection metrics of every listener, labelled by `server`.
#[derive(Clone)]
pub struct ConnMetrics {
    open: fleetwatch_metrics::IntGaugeVec,
    accepted: fleetwatch_metrics::IntCounterVec,
    closed: fleetwatch_metrics::IntCounterVec,
}

impl ConnMetrics {
    /// Registers them.
    pub fn new(metrics: &Metrics) -> MetricsResult<Self> {
        Ok(ConnMetrics {
            open: metrics.gauge(
                "fleetwatch_connections_open",
                "Client connections open, per listener.",
                &["server"],
            )?,
            accepted: metrics.counter(
                "fleetwatch_connections_accepted_total",
                "Client connections accepted, per listener.",
                &["server"],
            )?,
            closed: metrics.counter(
                "fleetwatch_connections_refused_total",
                "Client connections refused or closed by a limit, per listener and reason (limit, header_timeout, idle_timeout).",
                &["server", "reason"],
            )?,
        })
    }

    /// Counts a connection refused or closed for `reason`.
    pub fn refused(&self, server: &str, reason: Verdict) {
        self.closed
            .with_label_values(&[server, reason.as_str()])
            .inc();
    }
}

/// Why a connection is closed by its limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Over `max_connections`.
    Limit,
    /// No first bytes, or an incomplete request head, within `header_timeout_ms`.
    HeaderTimeout,
    /// Idle past `idle_timeout_ms`.
    IdleTimeout,
}

impl Verdict {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Limit => "limit",
            Verdict::HeaderTimeout => "header_timeout",
            Verdict::IdleTimeout => "idle_timeout",
        }
    }
}

/// What one connection has done, for its timeouts.
#[derive(Debug)]
pub struct ConnState {
    base: Instant,
    /// ms since `base` of the last time the connection became idle (accepted, or an
    /// exchange finished).
    idle_since: AtomicU64,
    /// ms since `base` of the first byte read while idle (`u64::MAX`: none).
    started_at: AtomicU64,
    in_flight: AtomicUsize,
    exchanges: AtomicU64,
    closed_by_limit: AtomicBool,
}

impl Default for ConnState {
    fn default() -> Self {
        ConnState {
            base: Instant::now(),
            idle_since: AtomicU64::new(0),
            started_at: AtomicU64::new(u64::MAX),
            in_flight: AtomicUsize::new(0),
            exchanges: AtomicU64::new(0),
            closed_by_limit: AtomicBool::new(false),
        }
    }
}

impl ConnState {
    fn now(&self) -> u64 {
        self.base.elapsed().as_millis() as u64
    }

    /// Bytes arrived. While idle, the first ones start the header clock.
    pub fn saw_bytes(&self) {
        if self.in_flight.load(Ordering::Relaxed) == 0
            && self.started_at.load(Ordering::Relaxed) == u64::MAX
        {
            self.started_at.store(self.now(), Ordering::Relaxed);
        }
    }

    /// A request head is complete and being served.
    pub fn exchange_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.started_at.store(u64::MAX, Ordering::Relaxed);
    }

    /// A request was answered.
    pub fn exchange_finished(&self) {
        self.exchanges.fetch_add(1, Ordering::Relaxed);
        if self.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.idle_since.store(self.now(), Ordering::Relaxed);
        }
    }

    /// Whether the connection must be closed now under `limits`.
    pub fn verdict(&self, limits: &ConnectionLimits) -> Option<Verdict> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let now = self.now();
        let started = self.started_at.load(Ordering::Relaxed);
        if started != u64::MAX {
            return (now.saturating_sub(started) >= limits.header_timeout_ms)
                .then_some(Verdict::HeaderTimeout);
        }
        let idle = now.saturating_sub(self.idle_since.load(Ordering::Relaxed));
        if self.exchanges.load(Ordering::Relaxed) == 0 {
            // Nothing sent since accepted: the first-byte timeout.
            (idle >= limits.header_timeout_ms).then_some(Verdict::HeaderTimeout)
        } else {
            (idle >= limits.idle_timeout_ms).then_some(Verdict::IdleTimeout)
        }
    }

    /// Marks that the limits closed this connection (so the close is counted once).
    pub fn mark_closed_by_limit(&self) -> bool {
        !self.closed_by_limit.swap(true, Ordering::Relaxed)
    }
}

/// A stream that reports reads to its [`ConnState`].
pub struct TrackedIo<T> {
    inner: T,
    state: Arc<ConnState>,
}

impl<T> TrackedIo<T> {
    /// Wraps `inner`.
    pub fn new(inner: T, state: Arc<ConnState>) -> Self {
        TrackedIo { inner, state }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for TrackedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.state.saw_bytes();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for TrackedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// One accepted connection within the cap: dropping it frees its slot.
pub struct Accepted {
    /// The socket.
    pub stream: TcpStream,
    /// The peer.
    pub peer: SocketAddr,
    /// Its state (shared with its [`TrackedIo`]).
    pub state: Arc<ConnState>,
    _slot: Slot,
}

struct Slot {
    _permit: OwnedSemaphorePermit,
    open: fleetwatch_metrics::IntGauge,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.open.dec();
    }
}

/// Accepts connections of one listener under its cap.
pub struct Acceptor {
    listener: TcpListener,
    server: String,
    limits: ConnectionLimits,
    slots: Arc<Semaphore>,
    metrics: ConnMetrics,
}

impl Acceptor {
    /// An acceptor for `listener`, named `server` in metrics.
    pub fn new(
        listener: TcpListener,
        server: impl Into<String>,
        limits: ConnectionLimits,
        metrics: ConnMetrics,
    ) -> Self {
        Acceptor {
            listener,
            server: server.into(),
            slots: Arc::new(Semaphore::new(limits.max_connections)),
            limits,
            metrics,
        }
    }

    /// The listener's address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The limits.
    pub fn limits(&self) -> &ConnectionLimits {
        &self.limits
    }

    /// The server name.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The metrics.
    pub fn metrics(&self) -> &ConnMetrics {
        &self.metrics
    }

    /// The next connection within the cap. Connections over the cap are closed at once and
    /// counted; transient accept errors (EMFILE, ECONNABORTED) are logged and retried after a
    /// short pause, so a burst cannot spin the loop.
    pub async fn accept(&self) -> Accepted {
        loop {
            let (stream, peer) = match self.listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(server = %self.server, error = %e, "accept failed; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(permit) = self.slots.clone().try_acquire_owned() else {
                self.metrics.refused(&self.server, Verdict::Limit);
                tracing::debug!(server = %self.server, %peer, "connection refused: at max_connections");
                drop(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            self.metrics
                .accepted
                .with_label_values(&[self.server.as_str()])
                .inc();
            let open = self.metrics.open.with_label_values(&[self.server.as_str()]);
            open.inc();
            return Accepted {
                stream,
                peer,
                state: Arc::new(ConnState::default()),
                _slot: Slot {
                    _permit: permit,
                    open,
                },
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            max_connections: 2,
            header_timeout_ms: 100,
            idle_timeout_ms: 300,
            max_header_bytes: 8192,
        }
    }

    fn at(s: &ConnState, ms: u64) {
        // Pretend `ms` have passed by moving the state's reference points back.
        let shift = |a: &AtomicU64| {
            let v = a.load(Ordering::Relaxed);
            if v != u64::MAX {
                a.store(v.saturating_sub(ms), Ordering::Relaxed);
            }
        };
        shift(&s.idle_since);
        shift(&s.started_at);
    }

    #[test]
    fn silent_new_connection_hits_the_header_timeout() {
        let s = ConnState::default();
        assert_eq!(s.verdict(&limits()), None);
        s.idle_since.store(0, Ordering::Relaxed);
        let s2 = ConnState {
            base: Instant::now() - Duration::from_millis(150),
            ..ConnState::default()
        };
        assert_eq!(s2.verdict(&limits()), Some(Verdict::HeaderTimeout));
    }

    #[test]
    fn half_sent_head_hits_the_header_timeout_but_a_served_request_does_not() {
        let s = ConnState {
            base: Instant::now() - Duration::from_millis(1000),
            ..ConnState::default()
        };
        s.idle_since.store(1000, Ordering::Relaxed);
        s.exchanges.store(1, Ordering::Relaxed);
        assert_eq!(s.verdict(&limits()), None, "idle 0 ms");
        s.saw_bytes();
        assert_eq!(s.verdict(&limits()), None);
        at(&s, 150);
        assert_eq!(s.verdict(&limits()), Some(Verdict::HeaderTimeout));
        s.exchange_started();
        assert_eq!(s.verdict(&limits()), None, "in flight: never closed");
        s.exchange_finished();
        assert_eq!(s.verdict(&limits()), None);
        at(&s, 299);
        assert_eq!(s.verdict(&limits()), None);
        at(&s, 2);
        assert_eq!(s.verdict(&limits()), Some(Verdict::IdleTimeout));
    }

    #[test]
    fn limits_are_validated_naming_the_key() {
        let mut l = limits();
        l.max_connections = 0;
        assert_eq!(
            l.validate("connections").unwrap_err(),
            "connections.max_connections must be at least 1"
        );
        assert!(ConnectionLimits::default().validate("c").is_ok());
    }
}
