//! TLS to https upstreams: a private CA via `ca_file`, and refusal without it.

use std::convert::Infallible;
use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;

use crate::support::*;

/// An https upstream on 127.0.0.1 whose certificate is signed by a fresh private CA.
/// Returns its address and the CA certificate's PEM.
async fn https_upstream() -> (std::net::SocketAddr, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();

    let mut tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
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
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(stream).await else {
                    return;
                };
                let svc = service_fn(|req: Request<Incoming>| async move {
                    let host = req.headers()["host"].to_str().unwrap().to_string();
                    Ok::<_, Infallible>(Response::new(full(format!("tls ok, host {host}"))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, ca_cert.pem())
}

#[tokio::test]
async fn https_upstream_with_private_ca_file() {
    let (addr, ca_pem) = https_upstream().await;
    let dir = std::env::temp_dir().join(format!("webcollect-shim-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_path = dir.join("ca.pem");
    std::fs::write(&ca_path, ca_pem).unwrap();
    let toml = config(&format!("https://{addr}")).replace(
        "response_timeout = \"2s\"",
        &format!(
            "response_timeout = \"2s\"\nca_file = {:?}",
            ca_path.display().to_string()
        ),
    );
    let shim = TestShim::start(&toml, t(BEFORE)).await;
    let res = raw(shim.addr, &post("/api/creditToken", "a=1")).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.text(), format!("tls ok, host {addr}"));
}

#[tokio::test]
async fn https_upstream_with_unknown_ca_is_502() {
    let (addr, _) = https_upstream().await;
    let shim = TestShim::start(&config(&format!("https://{addr}")), t(BEFORE)).await;
    let res = raw(shim.addr, &post("/api/creditToken", "a=1")).await;
    assert_eq!(res.status, 502);
    assert_eq!(res.header("x-webcollect-shim"), Some("bad-gateway"));
}
