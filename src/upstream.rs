//! How to reach one upstream: its address (resolved, or `connect_to`), `Host`, TLS settings
//! and timeouts, and the connect step (TCP, then rustls for https) that the per-worker pools
//! call.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, ready};

use http::HeaderValue;
use http::uri::Scheme;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::config::Upstream;

/// Everything needed to open a connection to one upstream. Built once per config load and
/// shared (read-only) by every worker; a reload that leaves an upstream unchanged keeps its
/// `Target`, so the workers keep their pooled connections.
#[derive(Debug)]
pub(crate) struct Target {
    /// The upstream as configured (used to recognise it again after a reload).
    pub(crate) config: Upstream,
    /// `Host` sent upstream: the URL's authority.
    pub(crate) host: HeaderValue,
    host_name: String,
    port: u16,
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    /// `max_connections`, over every worker's pool.
    pub(crate) limit: ConnectionLimit,
}

/// A pool of idle connections to an upstream (each worker has one per upstream).
pub(crate) trait IdleConnections: Send + Sync + std::fmt::Debug {
    /// Closes the oldest idle connection; false when there is none.
    fn close_one_idle(&self) -> bool;
}

/// The connections all workers may have open to one upstream (`max_connections`).
#[derive(Debug)]
pub(crate) struct ConnectionLimit {
    max: usize,
    open: AtomicUsize,
    /// Signalled whenever a connection to this upstream closes.
    pub(crate) freed: Notify,
    /// Every worker's pool for this upstream, so one at the limit can ask another to close
    /// an idle connection.
    pools: Mutex<Vec<Weak<dyn IdleConnections>>>,
}

impl ConnectionLimit {
    fn new(max: usize) -> Self {
        Self {
            max,
            open: AtomicUsize::new(0),
            freed: Notify::new(),
            pools: Mutex::new(Vec::new()),
        }
    }

    /// Counts a new connection, unless the limit is reached.
    #[must_use]
    pub(crate) fn try_open(&self) -> bool {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .is_ok()
    }

    /// A connection counted by [`ConnectionLimit::try_open`] closed (or was never opened).
    pub(crate) fn closed(&self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
        self.freed.notify_one();
    }

    fn pools(&self) -> MutexGuard<'_, Vec<Weak<dyn IdleConnections>>> {
        self.pools.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Remembers a worker's pool for this upstream.
    pub(crate) fn register(&self, pool: Weak<dyn IdleConnections>) {
        let mut pools = self.pools();
        pools.retain(|p| p.strong_count() > 0);
        pools.push(pool);
    }

    /// Closes one idle connection held by a pool other than `except`, if any: at the limit,
    /// an idle connection on another worker would otherwise block this one until it expires.
    pub(crate) fn close_one_idle(&self, except: &dyn IdleConnections) {
        let pools: Vec<Arc<dyn IdleConnections>> =
            self.pools().iter().filter_map(Weak::upgrade).collect();
        for pool in pools {
            if !std::ptr::addr_eq(Arc::as_ptr(&pool), except) && pool.close_one_idle() {
                return;
            }
        }
    }
}

impl Target {
    /// Prepares `upstream`: parses its URL and builds its TLS client configuration (the
    /// public web roots plus `ca_file`, HTTP/1.1 by ALPN).
    ///
    /// # Errors
    /// When the TLS configuration cannot be built.
    pub(crate) fn new(upstream: &Upstream) -> Result<Self, rustls::Error> {
        let url = &upstream.url;
        let https = url.scheme() == Some(&Scheme::HTTPS);
        let host_name = url
            .host()
            .unwrap_or("invalid")
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = url.port_u16().unwrap_or(if https { 443 } else { 80 });
        let authority = url.authority().map_or("invalid", |a| a.as_str());
        let tls = if https {
            let name = ServerName::try_from(host_name.clone())
                .map_err(|_| rustls::Error::General(format!("invalid TLS name {host_name:?}")))?;
            Some((tls_config(&upstream.ca_certs)?, name))
        } else {
            None
        };
        Ok(Self {
            limit: ConnectionLimit::new(upstream.max_connections),
            config: upstream.clone(),
            host: HeaderValue::from_str(authority)
                .unwrap_or_else(|_| HeaderValue::from_static("invalid")),
            host_name,
            port,
            tls,
        })
    }

    /// Opens a connection: resolves the host, connects over TCP (trying each address in
    /// turn) and, for https, completes the TLS handshake, all within `connect_timeout`.
    ///
    /// # Errors
    /// Resolution, TCP or TLS failure, or the timeout.
    pub(crate) async fn connect(&self) -> Result<(UpstreamStream, Arc<TcpStream>), io::Error> {
        let timeout = self.config.connect_timeout;
        match tokio::time::timeout(timeout, self.connect_inner()).await {
            Ok(result) => result,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connect timed out after {timeout:?}"),
            )),
        }
    }

    async fn connect_inner(&self) -> Result<(UpstreamStream, Arc<TcpStream>), io::Error> {
        let mut last = None;
        for addr in self.addresses().await? {
            match TcpStream::connect(addr).await {
                Ok(stream) => {
                    stream.set_nodelay(true)?;
                    let stream = Arc::new(stream);
                    let io = SharedTcp(stream.clone());
                    let conn = match &self.tls {
                        None => UpstreamStream::Plain(io),
                        Some((config, name)) => {
                            let connector = tokio_rustls::TlsConnector::from(config.clone());
                            UpstreamStream::Tls(Box::new(
                                connector.connect(name.clone(), io).await?,
                            ))
                        }
                    };
                    return Ok((conn, stream));
                }
                Err(err) => last = Some(err),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, "host resolved to no address")
        }))
    }

    async fn addresses(&self) -> io::Result<Vec<SocketAddr>> {
        // `connect_to` replaces resolution only: the URL's host still gives SNI, the name
        // the certificate must carry, and `Host`.
        if let Some(addr) = self.config.connect_to {
            return Ok(vec![addr]);
        }
        // An IP literal needs no resolver (and no trip to the blocking pool).
        if let Ok(ip) = self.host_name.parse() {
            return Ok(vec![SocketAddr::new(ip, self.port)]);
        }
        Ok(
            tokio::net::lookup_host((self.host_name.as_str(), self.port))
                .await?
                .collect(),
        )
    }

    /// True for https upstreams.
    #[must_use]
    pub(crate) fn is_tls(&self) -> bool {
        self.tls.is_some()
    }
}

fn tls_config(
    ca_certs: &[rustls_pki_types::CertificateDer<'static>],
) -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    roots.add_parsable_certificates(ca_certs.iter().cloned());
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    // The pools speak HTTP/1.1 only: one request per connection at a time, never a retry.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// An upstream connection, plain or TLS.
#[derive(Debug)]
pub(crate) enum UpstreamStream {
    /// `http://`
    Plain(SharedTcp),
    /// `https://` (boxed: the TLS state is large and most upstreams are one or the other).
    Tls(Box<tokio_rustls::client::TlsStream<SharedTcp>>),
}

/// A TCP stream that the pool can still look at while hyper owns the connection: the pool
/// peeks at an idle connection's socket before reusing it, to see whether the upstream
/// closed it.
#[derive(Debug)]
pub(crate) struct SharedTcp(Arc<TcpStream>);

impl AsyncRead for SharedTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            ready!(self.0.poll_read_ready(cx))?;
            let room = buf.remaining();
            match self.0.try_read_buf(buf) {
                Ok(n) => {
                    if n > 0 && n < room {
                        // A short read drained the socket: forget the readiness now rather
                        // than learn it from an extra read that fails with EAGAIN (what
                        // tokio's own TcpStream does). A closure that reports WouldBlock
                        // makes `try_io` clear it, without a syscall.
                        let _ = self.0.try_io(Interest::READABLE, || {
                            Err::<(), _>(io::ErrorKind::WouldBlock.into())
                        });
                    }
                    return Poll::Ready(Ok(()));
                }
                // Readiness was stale; `try_read_buf` cleared it, so poll again.
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => return Poll::Ready(Err(err)),
            }
        }
    }
}

impl AsyncWrite for SharedTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.0.poll_write_ready(cx))?;
            match self.0.try_write(buf) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                other => return Poll::Ready(other),
            }
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.0.poll_write_ready(cx))?;
            match self.0.try_write_vectored(bufs) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                other => return Poll::Ready(other),
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(socket2::SockRef::from(&*self.0).shutdown(std::net::Shutdown::Write))
    }
}

impl AsyncRead for UpstreamStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(io) => Pin::new(io).poll_read(cx, buf),
            Self::Tls(io) => Pin::new(io.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for UpstreamStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(io) => Pin::new(io).poll_write(cx, buf),
            Self::Tls(io) => Pin::new(io.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            Self::Tls(io) => Pin::new(io.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(io) => io.is_write_vectored(),
            Self::Tls(io) => io.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(io) => Pin::new(io).poll_flush(cx),
            Self::Tls(io) => Pin::new(io.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(io) => Pin::new(io).poll_shutdown(cx),
            Self::Tls(io) => Pin::new(io.as_mut()).poll_shutdown(cx),
        }
    }
}

/// What a non-blocking peek at an idle connection's socket says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Probe {
    /// Nothing to read: the connection looks usable.
    Quiet,
    /// The upstream closed it (or the socket failed).
    Closed,
    /// Bytes are waiting although no request is outstanding.
    Unread,
}

/// Looks at an idle connection's socket without consuming anything. When tokio has seen no
/// event on it since it was last drained, nothing can have arrived and no syscall is made;
/// otherwise a non-blocking peek says what is there (the upstream's FIN, most likely).
#[must_use]
pub(crate) fn probe(stream: &TcpStream) -> Probe {
    let mut byte = [std::mem::MaybeUninit::<u8>::uninit()];
    let peeked = stream.try_io(Interest::READABLE, || {
        socket2::SockRef::from(stream).peek(&mut byte)
    });
    match peeked {
        Ok(0) => Probe::Closed,
        Ok(_) => Probe::Unread,
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => Probe::Quiet,
        Err(_) => Probe::Closed,
    }
}
