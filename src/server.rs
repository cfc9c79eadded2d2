//! Accept loops: HTTP/1.1 and HTTP/2 (prior knowledge) on one listener, graceful and
//! time-limited shutdown. [`serve_proxy`] runs the merchant-facing stack on a worker;
//! [`serve`] runs a plain handler (the admin listener, the stand-in gateway).

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
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};

use crate::proxy::{self, Conn};
use crate::response::Body;
use crate::worker::Worker;

/// Listener behaviour.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// How long a client may take to send request headers (slow-header clients are closed).
    pub header_read_timeout: Duration,
    /// How long in-flight requests may run after shutdown starts.
    pub grace: Duration,
    /// Largest request head (hyper answers 431 past it).
    pub max_header_bytes: usize,
}

impl ServeOptions {
    fn builder(&self) -> auto::Builder<TokioExecutor> {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout)
            .max_buf_size(self.max_header_bytes)
            .keep_alive(true);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(self.max_header_bytes).unwrap_or(u32::MAX));
        builder
    }
}

/// Serves the merchant-facing stack on `listener` for `worker` until `shutdown` resolves;
/// then stops accepting and lets in-flight requests finish for at most `options.grace`.
/// Connections are spawned on the current (worker) runtime and never leave it.
pub async fn serve_proxy(
    listener: TcpListener,
    worker: Arc<Worker>,
    shutdown: impl Future<Output = ()>,
    options: ServeOptions,
) {
    let builder = options.builder();
    accept(
        listener,
        shutdown,
        options.grace,
        |stream, peer, graceful| {
            let service =
                TowerToHyperService::new(proxy::stack(worker.clone(), Arc::new(Conn::http(peer))));
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            let conn = graceful.watch(conn.into_owned());
            async move {
                if let Err(err) = conn.await {
                    tracing::debug!(error = %err, "Connection ended with an error.");
                }
            }
        },
    )
    .await;
}

/// Serves `handler` on `listener` until `shutdown` resolves; then stops accepting and lets
/// in-flight requests finish for at most `options.grace`.
pub async fn serve<H, F>(
    listener: TcpListener,
    handler: H,
    shutdown: impl Future<Output = ()>,
    options: ServeOptions,
) where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let builder = options.builder();
    accept(
        listener,
        shutdown,
        options.grace,
        |stream, peer, graceful| {
            let handler = handler.clone();
            let service = service_fn(move |req| {
                let response = handler(req, peer);
                async move { Ok::<_, Infallible>(response.await) }
            });
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            let conn = graceful.watch(conn.into_owned());
            async move {
                if let Err(err) = conn.await {
                    tracing::debug!(error = %err, "Connection ended with an error.");
                }
            }
        },
    )
    .await;
}

/// The accept loop shared by both: `connection` turns an accepted stream into the future
/// that serves it (watched by `graceful`), which is spawned on the current runtime.
async fn accept<C, F>(
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
    mut connection: C,
) where
    C: FnMut(TcpStream, SocketAddr, &GracefulShutdown) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %err, "Accept failed.");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(stream, peer, &graceful));
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => tracing::debug!("All connections closed."),
        () = tokio::time::sleep(grace) => {
            tracing::warn!(grace = ?grace, "Shutdown grace period over; dropping remaining connections.");
        }
    }
}
