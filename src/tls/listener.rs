//! One TLS client connection on a worker: the handshake runs in the connection's own task
//! (a slow or silent client never holds up the accept loop), bounded by the header-read
//! timeout, then the merchant-facing stack is served on it exactly as on the plain listener,
//! over HTTP/1.1 or h2 as ALPN chose.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::Watcher;
use hyper_util::service::TowerToHyperService;
use rustls::AlertDescription;
use tokio::net::TcpStream;

use crate::proxy::{self, Conn};
use crate::worker::Worker;

/// Accepts TLS on accepted TCP connections. Cheap to clone: one per worker, shared by its
/// connections.
#[derive(Clone)]
pub struct Acceptor {
    tls: tokio_rustls::TlsAcceptor,
    handshake_timeout: Duration,
}

impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acceptor")
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

impl Acceptor {
    pub(super) fn new(config: Arc<rustls::ServerConfig>, handshake_timeout: Duration) -> Self {
        Self {
            tls: tokio_rustls::TlsAcceptor::from(config),
            handshake_timeout,
        }
    }

    /// The task serving one accepted connection from `peer`: handshake, then the stack of
    /// `worker`, watched by `watcher` so shutdown drains it like a plain connection (a
    /// handshake in progress counts as a connection too).
    pub fn connection(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        watcher: Watcher,
        builder: auto::Builder<TokioExecutor>,
        worker: Arc<Worker>,
    ) -> impl Future<Output = ()> + Send + 'static {
        let this = self.clone();
        async move {
            let handshake = tokio::time::timeout(this.handshake_timeout, this.tls.accept(stream));
            let stream = match handshake.await {
                Ok(Ok(stream)) => stream,
                Ok(Err(err)) => return handshake_failed(peer, &err),
                Err(_) => {
                    tracing::debug!(%peer, timeout = ?this.handshake_timeout, "TLS handshake timed out.");
                    return;
                }
            };
            let server_name = stream.get_ref().1.server_name().map(Box::from);
            let conn = Arc::new(Conn::https(peer, server_name));
            let service = TowerToHyperService::new(proxy::stack(worker, conn));
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            if let Err(err) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(error = %err, "Connection ended with an error.");
            }
        }
    }
}

/// Logs a failed handshake: loudly when the client does not trust the shim's certificate
/// (the one failure a user must act on), quietly otherwise (port scans, aborted connects).
/// A refused host name was logged by the resolver already.
fn handshake_failed(peer: SocketAddr, err: &io::Error) {
    let tls = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match tls {
        Some(rustls::Error::AlertReceived(
            alert @ (AlertDescription::UnknownCA
            | AlertDescription::BadCertificate
            | AlertDescription::CertificateUnknown),
        )) => tracing::warn!(
            %peer,
            alert = ?alert,
            "TLS client does not trust the shim's certificate: install ca.pem in its trust store \
             (`webcollect-shim ca install-hint`)."
        ),
        _ => tracing::debug!(%peer, error = %err, "TLS handshake failed."),
    }
}
