//! TLS to https upstreams: a private CA via `ca_file`, and refusal without it.

use crate::support::tls::HttpsUpstream;
use crate::support::*;

#[tokio::test]
async fn https_upstream_with_private_ca_file() {
    let upstream = HttpsUpstream::start(&["127.0.0.1"]).await;
    let addr = upstream.addr;
    let dir = std::env::temp_dir().join(format!("webcollect-shim-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_path = dir.join("ca.pem");
    std::fs::write(&ca_path, &upstream.ca_pem).unwrap();
    let toml = with_upstream_keys(
        &config(&format!("https://{addr}")),
        &format!("ca_file = {:?}", ca_path.display().to_string()),
    );
    let shim = TestShim::start(&toml, t(BEFORE)).await;
    let res = raw(shim.addr, &post("/api/creditToken", "a=1")).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.text(), format!("tls ok, host {addr}"));
}

#[tokio::test]
async fn https_upstream_with_unknown_ca_is_502() {
    let upstream = HttpsUpstream::start(&["127.0.0.1"]).await;
    let shim = TestShim::start(&config(&format!("https://{}", upstream.addr)), t(BEFORE)).await;
    let res = raw(shim.addr, &post("/api/creditToken", "a=1")).await;
    assert_eq!(res.status, 502);
    assert_eq!(res.header("x-webcollect-shim"), Some("bad-gateway"));
}
