//! One worker's keep-alive connections to one upstream. Each worker owns its pools, so a
//! request and its upstream exchange stay on the thread that accepted it.
//!
//! A connection is reused only when it is idle, younger than `pool_idle_timeout`, still
//! open as far as hyper knows, and quiet when its socket is peeked at: an upstream that
//! closed an idle connection is noticed before a request is written to it, never after.
//! Nothing here ever sends a request twice.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::{Notify, OwnedSemaphorePermit};
use tokio::time::Instant;

use super::body::UpstreamBody;
use crate::response::BoxError;
use crate::upstream::{IdleConnections, Probe, Target, probe};

/// Idle connections kept per worker and upstream; more are closed when released.
const MAX_IDLE: usize = 512;

/// Keep-alive connections of one worker to one upstream.
#[derive(Debug)]
pub(crate) struct Pool {
    target: Arc<Target>,
    // Only the owning worker's thread touches it (but for a rare close_one_idle from a
    // worker at the upstream's limit): the lock is practically never contended. It is a
    // Mutex rather than a RefCell because hyper wants `Send` bodies and futures.
    idle: Mutex<Vec<Idle>>,
    /// Signalled when a connection comes back to `idle`.
    released: Notify,
}

#[derive(Debug)]
struct Idle {
    conn: Pooled,
    since: Instant,
}

/// A connection taken from the pool for one exchange.
#[derive(Debug)]
pub(crate) struct Pooled {
    sender: SendRequest<UpstreamBody>,
    stream: Arc<TcpStream>,
}

/// Why no connection could be had.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    /// TCP, TLS or name resolution failed, or `connect_timeout` passed.
    #[error("cannot connect to the upstream")]
    Io(#[source] io::Error),
    /// The HTTP/1.1 handshake on a fresh connection failed.
    #[error("cannot start HTTP/1.1 on the upstream connection")]
    Handshake(#[source] hyper::Error),
    /// `max_connections` were open and none came free within `connect_timeout`.
    #[error("all {0} allowed connections stayed busy for {1:?}")]
    Busy(usize, std::time::Duration),
}

impl Pool {
    /// An empty pool for `target`, known to the target's connection limit.
    #[must_use]
    pub(crate) fn new(target: Arc<Target>) -> Arc<Self> {
        let pool = Arc::new(Self {
            target,
            idle: Mutex::new(Vec::new()),
            released: Notify::new(),
        });
        let weak: Weak<dyn IdleConnections> = Arc::downgrade(&pool) as Weak<Self>;
        pool.target.limit.register(weak);
        pool
    }

    /// The upstream this pool connects to.
    #[must_use]
    pub(crate) fn target(&self) -> &Arc<Target> {
        &self.target
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Idle>> {
        // Every mutation is one push, pop or retain: a panic cannot leave it half-done.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A usable connection: the most recently used idle one that passes every check, else a
    /// new one if `max_connections` allows, else the first to come free within
    /// `connect_timeout`.
    ///
    /// # Errors
    /// When a new connection is needed and cannot be opened, or none came free.
    pub(crate) async fn acquire(&self) -> Result<Pooled, ConnectError> {
        let limit = &self.target.limit;
        let wait = self.target.config.connect_timeout;
        let deadline = super::deadline(Instant::now(), wait);
        loop {
            if let Some(conn) = self.reuse().await {
                return Ok(conn);
            }
            // Registered before the checks, so nothing freed in between is missed.
            let freed = limit.freed.notified();
            let released = self.released.notified();
            let (mut freed, mut released) = (std::pin::pin!(freed), std::pin::pin!(released));
            freed.as_mut().enable();
            released.as_mut().enable();
            if !self.idle().is_empty() {
                continue;
            }
            if limit.try_open() {
                return self.connect(Opened(self.target.clone())).await;
            }
            limit.close_one_idle(self);
            tokio::select! {
                () = freed => {}
                () = released => {}
                () = tokio::time::sleep_until(deadline) => {
                    return Err(ConnectError::Busy(self.target.config.max_connections, wait));
                }
            }
        }
    }

    /// The most recently used idle connection that passes every check.
    async fn reuse(&self) -> Option<Pooled> {
        let max_idle = self.target.config.pool_idle_timeout;
        loop {
            let Idle { mut conn, since } = self.idle().pop()?;
            if since.elapsed() >= max_idle || conn.sender.is_closed() {
                continue;
            }
            match probe(&conn.stream) {
                Probe::Quiet => {}
                Probe::Closed => continue,
                // Unsolicited bytes on plain HTTP/1.1 mean a broken exchange; on TLS they can
                // be a session ticket that the connection task has not read yet.
                Probe::Unread if !self.target.is_tls() => continue,
                Probe::Unread => {}
            }
            // The previous exchange may still be finishing inside the connection task. An
            // error here means nothing was written: safe to try the next connection.
            if conn.sender.ready().await.is_ok() {
                return Some(conn);
            }
        }
    }

    /// Opens a connection in the slot `opened` took; the slot lives as long as the
    /// connection, or ends here if it cannot be opened (or this future is dropped).
    async fn connect(&self, opened: Opened) -> Result<Pooled, ConnectError> {
        let (io, stream) = self.target.connect().await.map_err(ConnectError::Io)?;
        let (sender, conn) = hyper::client::conn::http1::Builder::new()
            .handshake(TokioIo::new(io))
            .await
            .map_err(ConnectError::Handshake)?;
        tokio::spawn(async move {
            if let Err(err) = conn.await {
                tracing::debug!(error = %err, "Upstream connection ended with an error.");
            }
            drop(opened);
        });
        Ok(Pooled { sender, stream })
    }

    /// Takes a connection back after its exchange ended cleanly.
    fn release(&self, conn: Pooled) {
        if conn.sender.is_closed() {
            return;
        }
        let mut idle = self.idle();
        if idle.len() < MAX_IDLE {
            idle.push(Idle {
                conn,
                since: Instant::now(),
            });
            drop(idle);
            self.released.notify_one();
        }
    }

    /// Closes idle connections older than `pool_idle_timeout` (or already closed).
    pub(crate) fn evict_expired(&self) {
        let max_idle = self.target.config.pool_idle_timeout;
        self.idle()
            .retain(|i| i.since.elapsed() < max_idle && !i.conn.sender.is_closed());
    }
}

impl Pooled {
    /// Sends `req` on this connection. hyper hands the request back, unsent, when the
    /// connection turned out to be closed before a byte was written.
    ///
    /// # Errors
    /// The exchange failed; see [`hyper::client::conn::TrySendError::take_message`].
    pub(crate) async fn send(
        mut self,
        pool: Arc<Pool>,
        req: Request<UpstreamBody>,
        permit: OwnedSemaphorePermit,
    ) -> Result<Response<PooledBody>, hyper::client::conn::TrySendError<Request<UpstreamBody>>>
    {
        let response = self.sender.try_send_request(req).await?;
        Ok(response.map(|body| {
            PooledBody::new(
                body,
                Ticket {
                    pool,
                    conn: self,
                    _permit: permit,
                },
            )
        }))
    }
}

impl IdleConnections for Pool {
    /// Closes the oldest idle connection; false when there is none.
    fn close_one_idle(&self) -> bool {
        let mut idle = self.idle();
        if idle.is_empty() {
            return false;
        }
        // Dropping the sender ends the connection task, which frees the slot.
        drop(idle.remove(0));
        true
    }
}

/// One of the upstream's `max_connections`, held while a connection is (being) opened.
#[derive(Debug)]
struct Opened(Arc<Target>);

impl Drop for Opened {
    fn drop(&mut self) {
        self.0.limit.closed();
    }
}

/// The right to put a connection back in its pool, and the client's share of upstream
/// exchanges it uses until then.
#[derive(Debug)]
struct Ticket {
    pool: Arc<Pool>,
    conn: Pooled,
    _permit: OwnedSemaphorePermit,
}

/// An upstream response body that returns its connection to the pool when it ends. If it
/// is dropped before its end, the connection is dropped with it: hyper closes it.
#[derive(Debug)]
pub(crate) struct PooledBody {
    body: Incoming,
    ticket: Option<Ticket>,
}

impl PooledBody {
    fn new(body: Incoming, ticket: Ticket) -> Self {
        let mut this = Self {
            body,
            ticket: Some(ticket),
        };
        // A body that is empty from the start may never be polled.
        if this.body.is_end_stream() {
            this.release();
        }
        this
    }

    fn release(&mut self) {
        if let Some(Ticket { pool, conn, .. }) = self.ticket.take() {
            pool.release(conn);
        }
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let frame = ready!(Pin::new(&mut self.body).poll_frame(cx));
        match &frame {
            None => self.release(),
            Some(Err(_)) => self.ticket = None,
            Some(Ok(_)) if self.body.is_end_stream() => self.release(),
            Some(Ok(_)) => {}
        }
        Poll::Ready(frame.map(|f| f.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
