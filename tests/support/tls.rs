//! TLS on the test side: rustls clients that trust one CA (checking dates at a
//! [`ManualClock`]'s time when given one), HTTP/1.1 requests over them, and an https
//! upstream signed by a fresh private CA that records the name each client asked for (SNI)
//! and the `Host` it sent.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::time_provider::TimeProvider;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::client::TlsStream;

use webcollect_shim::clock::{Clock, ManualClock};

use super::full;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A manual clock as the time a TLS client checks certificate dates against.
#[derive(Debug)]
pub struct ClockTime(pub ManualClock);

impl TimeProvider for ClockTime {
    fn current_time(&self) -> Option<UnixTime> {
        let secs = u64::try_from(self.0.now().timestamp()).ok()?;
        Some(UnixTime::since_unix_epoch(Duration::from_secs(secs)))
    }
}

/// A client that trusts only the certificates in `ca_pem` and offers `alpn`. With `clock`,
/// certificate dates are checked at that clock's time instead of the machine's.
pub fn client(
    ca_pem: &str,
    clock: Option<&ManualClock>,
    alpn: &[&[u8]],
) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder = match clock {
        Some(clock) => rustls::ClientConfig::builder_with_details(
            provider(),
            Arc::new(ClockTime(clock.clone())),
        ),
        None => rustls::ClientConfig::builder_with_provider(provider()),
    };
    let mut config = builder
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// Connects to `addr` and completes a handshake asking for `name` (SNI, unless an IP).
pub async fn connect(
    connector: &tokio_rustls::TlsConnector,
    addr: SocketAddr,
    name: &str,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(name.to_string()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), connector.connect(name, tcp))
        .await
        .expect("TLS handshake timed out")
}

/// The leaf certificate the server presented.
pub fn peer_leaf(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    stream.get_ref().1.peer_certificates().unwrap()[0]
        .clone()
        .into_owned()
}

/// One HTTP/1.1 request on `stream`; the response head and its whole body.
pub async fn send_h1(
    stream: TlsStream<TcpStream>,
    req: Request<Full<Bytes>>,
) -> (http::response::Parts, Bytes) {
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let response = sender.send_request(req).await.unwrap();
    let (parts, body) = response.into_parts();
    (parts, body.collect().await.unwrap().to_bytes())
}

/// What an [`HttpsUpstream`] saw of one request: the SNI of its connection and its `Host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenTls {
    pub server_name: Option<String>,
    pub host: String,
}

/// An https upstream on 127.0.0.1 whose certificate, for `names`, is signed by a fresh
/// private CA (`ca_pem`). Answers `tls ok, host <Host>` to everything.
pub struct HttpsUpstream {
    pub addr: SocketAddr,
    pub ca_pem: String,
    seen: Arc<Mutex<Vec<SeenTls>>>,
    task: JoinHandle<()>,
}

impl HttpsUpstream {
    pub async fn start(names: &[&str]) -> Self {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| (*n).to_string()).collect();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let mut tls = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, seen) = (acceptor.clone(), seen2.clone());
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    let server_name = stream.get_ref().1.server_name().map(str::to_string);
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let host = req.headers()["host"].to_str().unwrap().to_string();
                        seen.lock().unwrap().push(SeenTls {
                            server_name: server_name.clone(),
                            host: host.clone(),
                        });
                        async move {
                            Ok::<_, Infallible>(Response::new(full(format!("tls ok, host {host}"))))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Self {
            addr,
            ca_pem: ca_cert.pem(),
            seen,
            task,
        }
    }

    pub fn seen(&self) -> Vec<SeenTls> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for HttpsUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}
