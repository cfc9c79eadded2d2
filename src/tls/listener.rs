//! The TLS handshake of one client connection on a worker. It runs in the connection's own
//! task (a slow or silent client never holds up the accept loop), bounded by the
//! connection's header-read deadline, which counts from the accept; after it, the
//! merchant-facing stack is served exactly as on the plain listener
//! ([`crate::runtime::server::serve_proxy`]), over HTTP/1.1 or h2 as ALPN chose.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use rustls::AlertDescription;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_rustls::server::TlsStream;

/// Accepts TLS on accepted TCP connections. Cheap to clone: one per worker, shared by its
/// connections.
#[derive(Clone)]
pub(crate) struct Acceptor {
    tls: tokio_rustls::TlsAcceptor,
}

impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acceptor").finish_non_exhaustive()
    }
}

impl Acceptor {
    pub(super) fn new(config: Arc<rustls::ServerConfig>) -> Self {
        Self {
            tls: tokio_rustls::TlsAcceptor::from(config),
        }
    }

    /// Completes the handshake with `peer` by `deadline`, or gives up when `stop` turns true
    /// (shutdown: a connection with no request yet has nothing to drain). Returns the stream
    /// and the host name the client asked for (lowercase), or `None` after logging why not.
    pub(crate) async fn handshake(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        deadline: Instant,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<(TlsStream<TcpStream>, Option<Box<str>>)> {
        let handshake = tokio::time::timeout_at(deadline, self.tls.accept(stream));
        let stream = tokio::select! {
            done = handshake => match done {
                Ok(Ok(stream)) => stream,
                Ok(Err(err)) => {
                    handshake_failed(peer, &err);
                    return None;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake not done within header_read_timeout.");
                    return None;
                }
            },
            _ = stop.wait_for(|stop| *stop) => return None,
        };
        let server_name = stream
            .get_ref()
            .1
            .server_name()
            .map(|n| n.to_ascii_lowercase().into_boxed_str());
        Some((stream, server_name))
    }
}

/// Logs a failed handshake: loudly when the client does not trust the shim's certificate
/// (the one failure a user must act on), quietly otherwise (port scans, aborted connects).
/// A refused host name was logged by the resolver already. At most one line a second, with
/// `suppressed`: the failures not logged since the last line ([`super::throttle`]).
fn handshake_failed(peer: SocketAddr, err: &io::Error) {
    let Some(suppressed) = super::throttle::HANDSHAKE_FAILED.admit(std::time::Instant::now())
    else {
        return;
    };
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
            suppressed,
            "TLS client does not trust the shim's certificate: install ca.pem in its trust store \
             (`webcollect-shim ca install-hint`)."
        ),
        _ => tracing::debug!(%peer, error = %err, suppressed, "TLS handshake failed."),
    }
}
