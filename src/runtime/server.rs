//! Accept loops: HTTP/1.1 and HTTP/2 (prior knowledge) on one listener, every connection
//! bounded in time, graceful and time-limited shutdown. [`serve_proxy`] runs the
//! merchant-facing stack on a worker, over TLS too when the worker has a TLS listener;
//! [`serve`] runs another `Service` (the admin's, the stand-in gateway's).
//!
//! A connection's life is watched in its own task (see `runtime/connection.rs`):
//! - a connection that has not delivered a complete request head `header_read_timeout`
//!   after it was accepted (TLS handshake and HTTP/2 preface included) is dropped;
//! - one with no request in flight for `keepalive_timeout` (HTTP/1.1: or for
//!   `header_read_timeout`, if shorter, which bounds the next head) is shut down gracefully
//!   (HTTP/2: GOAWAY);
//! - on shutdown every connection is shut down gracefully, and whatever is left after the
//!   grace period is dropped with the worker.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;
use tokio_util::either::Either;
use tokio_util::task::TaskTracker;
use tower::{Service, ServiceExt};

use super::connection::{Graceful, Served, watch_connection};
use super::plain::{Counted, Plain, Protocols};
use crate::proxy;
use crate::proxy::conn::{Activity, Conn};
use crate::proxy::worker::Worker;
use crate::response::Body;

/// How long an HTTP/2 ping may go unanswered before the connection is closed.
const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);
/// Streams one HTTP/2 client connection may have open at once.
const H2_MAX_STREAMS: u32 = 100;
/// At most one "connection limit reached" warning per this long.
const LIMIT_WARNING_EVERY: Duration = Duration::from_secs(60);

/// Listener behaviour.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServeOptions {
    /// From the accept, how long a client may take to deliver a complete request head.
    pub(crate) header_read_timeout: Duration,
    /// How long a connection may stay without a request in flight.
    pub(crate) keepalive_timeout: Duration,
    /// How long in-flight requests may run after shutdown starts.
    pub(crate) grace: Duration,
    /// Largest request head (hyper answers 431 past it).
    pub(crate) max_header_bytes: usize,
    /// Upstream exchanges one client connection may have at once.
    pub(crate) max_upstream_per_client: usize,
}

impl ServeOptions {
    /// hyper's builders for plain-TCP proxy connections: the same settings as
    /// [`Self::builder`]'s.
    fn protocols(&self) -> Protocols {
        let mut http1 = hyper::server::conn::http1::Builder::new();
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(None)
            .max_buf_size(self.max_header_bytes)
            .keep_alive(true);
        let mut http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        http2
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(self.max_header_bytes).unwrap_or(u32::MAX))
            .max_concurrent_streams(H2_MAX_STREAMS)
            .keep_alive_interval(self.keepalive_timeout.min(Duration::from_secs(30)))
            .keep_alive_timeout(H2_PING_TIMEOUT);
        Protocols { http1, http2 }
    }

    fn builder(&self) -> auto::Builder<TokioExecutor> {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            // hyper would arm a boxed timer for every request head (an allocation and about
            // 700 instructions of each request, callgrind); the connection's watch bounds
            // the first head from the accept and each later one from the last answer.
            .header_read_timeout(None)
            .max_buf_size(self.max_header_bytes)
            .keep_alive(true);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(self.max_header_bytes).unwrap_or(u32::MAX))
            .max_concurrent_streams(H2_MAX_STREAMS)
            .keep_alive_interval(self.keepalive_timeout.min(Duration::from_secs(30)))
            .keep_alive_timeout(H2_PING_TIMEOUT);
        builder
    }
}

/// Serves the merchant-facing stack on `listener` (and on `tls`, the TLS listener with its
/// acceptor, when configured) for `worker` until `shutdown` resolves; then stops accepting and
/// lets in-flight requests finish for at most `options.grace`. Connections are spawned on the
/// current (worker) runtime and never leave it; each holds a permit of `limit` (the client
/// connections all workers may hold at once, `server.max_connections`) while it is open, over
/// all workers and both listeners. A TLS handshake runs inside its connection's task, within
/// the connection's `header_read_timeout` (see [`crate::tls::listener`]), never in the accept
/// loop.
pub(crate) async fn serve_proxy(
    listener: TcpListener,
    tls: Option<(TcpListener, crate::tls::listener::Acceptor)>,
    worker: Arc<Worker>,
    limit: Arc<Semaphore>,
    shutdown: impl Future<Output = ()>,
    options: ServeOptions,
) {
    let builder = options.builder();
    let protocols = Arc::new(options.protocols());
    let (tls_listener, acceptor) = tls.unzip();
    accept(
        listener,
        tls_listener,
        Some(limit),
        shutdown,
        options,
        |stream, peer, over_tls, activity, mut stop| match acceptor.as_ref().filter(|_| over_tls) {
            None => {
                let conn = Conn::http(peer, activity.clone(), options.max_upstream_per_client);
                let service = Counted::new(stack(&worker, conn), activity.clone());
                let plain = Plain::new(stream, service, protocols.clone(), activity.clone());
                Either::Left(watched(plain, worker.clone(), activity, options, stop))
            }
            // Boxed: a TLS connection's future is ~12 KB, which every plain one would carry.
            Some(acceptor) => {
                let (acceptor, builder, worker) =
                    (acceptor.clone(), builder.clone(), worker.clone());
                Either::Right(Box::pin(async move {
                    let deadline = activity.accepted() + options.header_read_timeout;
                    let Some((stream, server_name)) =
                        acceptor.handshake(stream, peer, deadline, &mut stop).await
                    else {
                        return;
                    };
                    let conn =
                        Conn::https(peer, activity, server_name, options.max_upstream_per_client);
                    let activity = conn.activity.clone();
                    let service = stack(&worker, conn);
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    let conn = Graceful::new(conn.into_owned());
                    watched(conn, worker, activity, options, stop).await;
                }))
            }
        },
    )
    .await;
}

/// The merchant-facing stack of `worker` for one client connection, `conn`.
fn stack(
    worker: &Arc<Worker>,
    conn: Conn,
) -> TowerToHyperService<
    impl Service<
        Request<Incoming>,
        Response = Response<proxy::ResponseBody>,
        Error = Infallible,
        Future: Send + 'static,
    > + Clone
    + Send
    + 'static,
> {
    TowerToHyperService::new(proxy::build(
        worker.clone(),
        Arc::new(conn),
        proxy::forward::Forward,
    ))
}

/// `conn` served and watched until it ends (see `runtime/connection.rs`).
fn watched(
    conn: impl Served + Send + 'static,
    worker: Arc<Worker>,
    activity: Arc<Activity>,
    options: ServeOptions,
    stop: watch::Receiver<bool>,
) -> impl Future<Output = ()> + Send + 'static {
    let watched = watch_connection(conn, activity.clone(), options, stop);
    async move {
        if let Some(head) = watched.await {
            proxy::log::unfinished_head(&worker, head.status, head.error, activity.accepted());
        }
    }
}

/// Serves `service` on `listener` until `shutdown` resolves; then stops accepting and lets
/// in-flight requests finish for at most `options.grace`.
pub(crate) async fn serve<S>(
    listener: TcpListener,
    service: S,
    shutdown: impl Future<Output = ()>,
    options: ServeOptions,
) where
    S: Service<Request<Incoming>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let builder = options.builder();
    accept(
        listener,
        None,
        None,
        shutdown,
        options,
        |stream, _, _, activity, stop| {
            let service = service.clone();
            let requests = activity.clone();
            let service = service_fn(move |req: Request<Incoming>| {
                let in_flight = requests.begin(req.version());
                let response = service.clone().oneshot(req);
                async move {
                    let response = response.await;
                    drop(in_flight);
                    response
                }
            });
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            let conn = Graceful::new(conn.into_owned());
            let watched = watch_connection(conn, activity, options, stop);
            async move {
                watched.await;
            }
        },
    )
    .await;
}

/// The accept loop shared by both: `connection` turns an accepted stream (and whether it
/// came from `second`, the TLS listener) into the future that serves it, which is spawned on
/// the current runtime. With a `limit`, a permit is taken before accepting, so past the limit
/// new connections wait in the kernel's backlog while the existing ones are served; one loop
/// over both listeners, so that permit goes to whichever connection comes first and neither
/// listener can hold the other's room.
async fn accept<C, F>(
    listener: TcpListener,
    second: Option<TcpListener>,
    limit: Option<Arc<Semaphore>>,
    shutdown: impl Future<Output = ()>,
    options: ServeOptions,
    mut connection: C,
) where
    C: FnMut(TcpStream, SocketAddr, bool, Arc<Activity>, watch::Receiver<bool>) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let (stop_tx, stop) = watch::channel(false);
    let tracker = TaskTracker::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut warned = None;
    loop {
        let permit = match &limit {
            None => None,
            Some(limit) => tokio::select! {
                permit = take_permit(limit, &mut warned) => Some(permit),
                () = &mut shutdown => break,
            },
        };
        let (accepted, from_second) = tokio::select! {
            accepted = listener.accept() => (accepted, false),
            accepted = accept_on(second.as_ref()) => (accepted, true),
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(err) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %err, "Accept failed.");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let served = connection(
            stream,
            peer,
            from_second,
            Arc::new(Activity::new()),
            stop.clone(),
        );
        tracker.spawn(async move {
            served.await;
            drop(permit);
        });
    }
    drop((listener, second));
    let _ = stop_tx.send(true);
    tracker.close();
    tokio::select! {
        () = tracker.wait() => tracing::debug!("All connections closed."),
        () = tokio::time::sleep(options.grace) => {
            tracing::warn!(grace = ?options.grace, "Shutdown grace period over; dropping remaining connections.");
        }
    }
}

/// A connection permit of `limit`, waiting for one while all are held. The wait is logged, at
/// most once per [`LIMIT_WARNING_EVERY`] for the accept loop `warned` belongs to.
async fn take_permit(limit: &Arc<Semaphore>, warned: &mut Option<Instant>) -> OwnedSemaphorePermit {
    if let Ok(permit) = limit.clone().try_acquire_owned() {
        return permit;
    }
    if warned.is_none_or(|at| at.elapsed() >= LIMIT_WARNING_EVERY) {
        *warned = Some(Instant::now());
        tracing::warn!(
            "Client connection limit (server.max_connections) reached; new connections wait in the backlog."
        );
    }
    limit
        .clone()
        .acquire_owned()
        .await
        .expect("the connection limit is never closed")
}

/// The next connection on `listener`; with none, never.
async fn accept_on(listener: Option<&TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}
