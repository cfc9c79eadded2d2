//! A client connection as the request path sees it: who it is from, and the [`Activity`]
//! its watch (in `runtime::server`) reads to close it when silent or idle.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use http::{HeaderValue, Version};
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// What the shim knows about a client connection, worked out once when it is accepted.
#[derive(Debug)]
pub(crate) struct Conn {
    /// The TCP peer.
    pub(crate) peer: SocketAddr,
    /// The peer's address as an `X-Forwarded-For` entry.
    pub(crate) forwarded_for: HeaderValue,
    /// `X-Forwarded-Proto`: how the client reached the shim.
    pub(crate) proto: HeaderValue,
    /// The requests in flight on it, for its idle and header timeouts.
    pub(crate) activity: Arc<Activity>,
    /// For TLS, the host name the client asked for (SNI), lowercase.
    pub(crate) server_name: Option<Box<str>>,
    /// Its share of upstream exchanges (`server.max_upstream_per_client`): a permit is held
    /// from before an upstream connection is taken until that connection is given back, so
    /// one client's HTTP/2 streams cannot take every connection of an upstream.
    pub(crate) upstream: Arc<Semaphore>,
}

impl Conn {
    /// A plain-HTTP client connection from `peer`, allowed `max_upstream` upstream exchanges
    /// at once.
    #[must_use]
    pub(crate) fn http(peer: SocketAddr, activity: Arc<Activity>, max_upstream: usize) -> Self {
        let ip = peer.ip().to_canonical().to_string();
        Self {
            peer,
            forwarded_for: HeaderValue::from_str(&ip)
                .unwrap_or_else(|_| HeaderValue::from_static("unknown")),
            proto: HeaderValue::from_static("http"),
            activity,
            server_name: None,
            upstream: Arc::new(Semaphore::new(max_upstream)),
        }
    }

    /// A TLS client connection from `peer` that asked for `server_name` (lowercase).
    #[must_use]
    pub(crate) fn https(
        peer: SocketAddr,
        activity: Arc<Activity>,
        server_name: Option<Box<str>>,
        max_upstream: usize,
    ) -> Self {
        Self {
            proto: HeaderValue::from_static("https"),
            server_name,
            ..Self::http(peer, activity, max_upstream)
        }
    }
}

/// What a connection's task knows of the requests on it. Updated by the request path with
/// relaxed atomics on a word only this connection uses.
#[derive(Debug)]
pub(crate) struct Activity {
    accepted: Instant,
    started: AtomicBool,
    /// The requests come over HTTP/2 (known from the first one).
    h2: AtomicBool,
    in_flight: AtomicU32,
    /// Milliseconds after `accepted` at which the last request ended.
    last_end: AtomicU64,
    /// Exchanges hyper has not finished writing (from the call of the service to the end of
    /// the response body), the last request's body, bytes written since the last flush: while
    /// any is there, hyper's state cannot be released (see `runtime::plain`).
    open: AtomicU32,
    body: AtomicBool,
    unflushed: AtomicBool,
}

impl Activity {
    pub(crate) fn new() -> Self {
        Self {
            accepted: Instant::now(),
            started: AtomicBool::new(false),
            h2: AtomicBool::new(false),
            in_flight: AtomicU32::new(0),
            last_end: AtomicU64::new(0),
            open: AtomicU32::new(0),
            body: AtomicBool::new(false),
            unflushed: AtomicBool::new(false),
        }
    }

    /// Activity not watched by any connection task (for tests that build a stack alone).
    #[must_use]
    pub(crate) fn detached() -> Arc<Self> {
        Arc::new(Self::new())
    }

    /// A request over `version` began; the returned guard says when it ends (even if it
    /// is dropped).
    #[must_use]
    pub(crate) fn begin(self: &Arc<Self>, version: Version) -> InFlight {
        if !self.started.swap(true, Ordering::Relaxed) && version == Version::HTTP_2 {
            self.h2.store(true, Ordering::Relaxed);
        }
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// Whether the connection's requests come over HTTP/2.
    pub(crate) fn is_h2(&self) -> bool {
        self.h2.load(Ordering::Relaxed)
    }

    /// When the connection was accepted.
    pub(crate) fn accepted(&self) -> Instant {
        self.accepted
    }

    /// Where the connection stands, for its watch.
    pub(crate) fn phase(&self) -> Phase {
        if !self.started.load(Ordering::Relaxed) {
            Phase::Unused
        } else if self.in_flight.load(Ordering::Relaxed) > 0 {
            Phase::Busy
        } else {
            let last_end = Duration::from_millis(self.last_end.load(Ordering::Relaxed));
            Phase::IdleSince(self.accepted + last_end)
        }
    }

    /// hyper starts an exchange (`body`: its request has a body); the guard ends it when
    /// dropped with the response body.
    #[must_use]
    pub(crate) fn exchange(self: &Arc<Self>, body: bool) -> Exchange {
        self.body.store(body, Ordering::Relaxed);
        self.open.fetch_add(1, Ordering::Relaxed);
        Exchange(self.clone())
    }

    /// Whether everything hyper wrote has been flushed to the socket (`false`: it wrote since).
    pub(crate) fn set_flushed(&self, flushed: bool) {
        self.unflushed.store(!flushed, Ordering::Relaxed);
    }

    /// No exchange under way, the last request had no body hyper might still be reading, and
    /// all hyper wrote went out: HTTP/1.1 is between two messages.
    pub(crate) fn at_rest(&self) -> bool {
        self.open.load(Ordering::Relaxed) == 0
            && !self.body.load(Ordering::Relaxed)
            && !self.unflushed.load(Ordering::Relaxed)
    }

    fn since_accept(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.accepted).as_millis()).unwrap_or(u64::MAX)
    }
}

/// A request in flight on a connection (see [`Activity::begin`]).
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.0;
        let now = activity.since_accept(Instant::now());
        activity.last_end.store(now, Ordering::Relaxed);
        activity.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An exchange hyper has not finished (see [`Activity::exchange`]).
#[derive(Debug)]
pub(crate) struct Exchange(Arc<Activity>);

impl Drop for Exchange {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Where a connection stands (see [`Activity::phase`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// No request has begun since the accept.
    Unused,
    /// At least one request is in flight.
    Busy,
    /// No request in flight; the last one ended at this instant.
    IdleSince(Instant),
}
