//! Accept loops: HTTP/1.1 and HTTP/2 (prior knowledge) on one listener, graceful and
//! time-limited shutdown. Used for both the proxy and the admin listener.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::response::Body;

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
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .max_buf_size(options.max_header_bytes)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(options.max_header_bytes).unwrap_or(u32::MAX));
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
        let handler = handler.clone();
        let service = service_fn(move |req| {
            let response = handler(req, peer);
            async move { Ok::<_, Infallible>(response.await) }
        });
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn.into_owned());
        tokio::spawn(async move {
            if let Err(err) = conn.await {
                tracing::debug!(error = %err, "Connection ended with an error.");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => tracing::debug!("All connections closed."),
        () = tokio::time::sleep(options.grace) => {
            tracing::warn!(grace = ?options.grace, "Shutdown grace period over; dropping remaining connections.");
        }
    }
}
