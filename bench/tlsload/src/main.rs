//! `tls-handshakes`, a TLS handshake load for `bench/run.sh` (scenario 8): CONNS clients, each opening a new
//! connection per request for SECONDS: TCP connect, a full TLS 1.3 handshake with SNI and
//! ALPN `http/1.1`, `GET PATH` with `Connection: close`, the answer read to the end, close.
//!
//! Why not oha `--disable-keepalive` or h2load: oha's rustls client keeps a session cache, so
//! after the first connection it resumes (a server that issues tickets, nginx and the shim
//! alike, then never signs again), and h2load opens one connection per client for the whole
//! run; `openssl s_time -new` sends no SNI, which the shim requires. This client never resumes
//! (`Resumption::disabled`), so the server does a full handshake every time; it skips the
//! certificate chain (it still checks the handshake's signature), so its own share of the
//! CPU stays small. One thread, like `wrk -t1`.
//!
//! ```text
//! tls-handshakes ADDR SNI PATH SECONDS CONNS
//! ```
//!
//! Prints one line: `ok failed seconds p50_us p99_us` (requests answered 200, the others,
//! the run's length, and the percentiles of connect-to-last-byte over the answered ones).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::Resumption;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, sni, path, seconds, conns] = args.as_slice() else {
        eprintln!("usage: tls-handshakes ADDR SNI PATH SECONDS CONNS");
        std::process::exit(2);
    };
    let addr: SocketAddr = addr.parse().expect("ADDR: IP:PORT");
    let name = ServerName::try_from(sni.clone()).expect("SNI: a DNS name");
    let seconds: f64 = seconds.parse().expect("SECONDS: a number");
    let conns: usize = conns.parse().expect("CONNS: a count");
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {sni}\r\nConnection: close\r\n\r\n").into_bytes();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    config.resumption = Resumption::disabled();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let (ok, failed, elapsed, mut times) = runtime.block_on(async move {
        let start = Instant::now();
        let deadline = start + Duration::from_secs_f64(seconds);
        let request: Arc<[u8]> = request.into();
        let clients: Vec<_> = (0..conns)
            .map(|_| {
                let (connector, name, request) = (connector.clone(), name.clone(), request.clone());
                tokio::spawn(async move {
                    let (mut ok, mut failed, mut times) = (0u64, 0u64, Vec::new());
                    while Instant::now() < deadline {
                        let began = Instant::now();
                        match one(&connector, addr, name.clone(), &request).await {
                            Ok(true) => {
                                ok += 1;
                                times.push(began.elapsed().as_micros() as u64);
                            }
                            Ok(false) | Err(_) => failed += 1,
                        }
                    }
                    (ok, failed, times)
                })
            })
            .collect();
        let (mut ok, mut failed, mut times) = (0, 0, Vec::new());
        for client in clients {
            let (o, f, t) = client.await.expect("a client task");
            ok += o;
            failed += f;
            times.extend(t);
        }
        (ok, failed, start.elapsed().as_secs_f64(), times)
    });
    times.sort_unstable();
    let pct = |p: f64| {
        times
            .get(((times.len() as f64 * p) as usize).min(times.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    println!("{ok} {failed} {elapsed:.3} {} {}", pct(0.50), pct(0.99));
}

/// One connection, one request. `Ok(true)` when the answer was a 200 read to its end.
async fn one(
    connector: &tokio_rustls::TlsConnector,
    addr: SocketAddr,
    name: ServerName<'static>,
    request: &[u8],
) -> std::io::Result<bool> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let mut tls = connector.connect(name, tcp).await?;
    tls.write_all(request).await?;
    let mut answer = Vec::with_capacity(2048);
    // A server may close without close_notify once the answer is out; what was read counts.
    let _ = tls.read_to_end(&mut answer).await;
    Ok(answer.starts_with(b"HTTP/1.1 200 ") && answer.windows(4).any(|w| w == b"\r\n\r\n"))
}

/// Accepts any certificate: the load measures the server's handshake, not the client's
/// verification. Signatures are still checked, so the server really signs.
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
