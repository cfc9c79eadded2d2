//! The runtime and the request path's plumbing: worker threads sharing the proxy port,
//! request ids, and the per-worker upstream pools.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::Response;
use http_body_util::BodyExt as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use crate::support::*;
use webcollect_shim::config::Config;

fn config_of(toml: &str) -> Config {
    Config::from_toml_with_env(std::path::Path::new("test.toml"), toml, &test_env).unwrap()
}

#[tokio::test]
async fn two_workers_share_the_proxy_port_and_both_serve() {
    let upstream = Upstream::fixed("<return/>").await;
    let listeners =
        webcollect_shim::runtime::bind_proxy("127.0.0.1:0".parse().unwrap(), 2).unwrap();
    assert_eq!(listeners.len(), 2);
    assert_eq!(
        listeners[0].local_addr().unwrap(),
        listeners[1].local_addr().unwrap()
    );
    drop(listeners);
    let shim = TestShim::start_workers(config_of(&config(&upstream.url())), t(BEFORE), 2).await;
    // Each worker draws request ids from its own sequence, whose first 16 hex digits are
    // the worker's: the kernel spreads 64 connections over both listeners (all 64 on one
    // socket has a probability of 2^-63).
    let mut workers = HashSet::new();
    for _ in 0..64 {
        let res = raw(shim.addr, &get("/api/tradeInfo")).await;
        assert_eq!(res.status, 200);
        let id = res.header("x-request-id").unwrap();
        assert_eq!(id.len(), 32);
        workers.insert(id[..16].to_string());
    }
    assert_eq!(workers.len(), 2, "both workers served: {workers:?}");
    assert_eq!(upstream.seen().len(), 64);
    shim.stop().await;
}

#[tokio::test]
async fn request_ids_are_kept_or_made_then_forwarded_and_echoed() {
    let upstream = Upstream::fixed("<return/>").await;
    let shim = TestShim::start(&config(&upstream.url()), t(BEFORE)).await;
    // The client's id is kept, forwarded and echoed.
    let kept = raw(
        shim.addr,
        b"GET /api/tradeInfo HTTP/1.1\r\nHost: s\r\nX-Request-Id: merchant-42\r\n\r\n",
    )
    .await;
    assert_eq!(kept.header("x-request-id"), Some("merchant-42"));
    assert_eq!(upstream.seen()[0].headers["x-request-id"], "merchant-42");
    // Without one, an id is made; the upstream gets the one the client is told.
    let made = raw(shim.addr, &get("/api/tradeInfo")).await;
    let id = made.header("x-request-id").unwrap().to_string();
    assert_eq!(upstream.seen()[1].headers["x-request-id"], id.as_str());
    let again = raw(shim.addr, &get("/api/tradeInfo")).await;
    assert_ne!(again.header("x-request-id"), Some(id.as_str()));
    // Answers the shim makes itself carry one too: 404, maintenance, 502.
    assert!(
        raw(shim.addr, &get("/nowhere"))
            .await
            .header("x-request-id")
            .is_some()
    );
    shim.clock.set(t(DURING));
    let maintained = raw(shim.addr, &post("/api/creditToken", "a=1")).await;
    assert_eq!(maintained.header("x-webcollect-shim"), Some("maintenance"));
    let made = maintained.header("x-request-id").unwrap();
    assert_eq!(made.len(), 32, "{made:?}");
    // The same second's answer again (from the worker's cache): one id, the client's.
    let cached = raw(
        shim.addr,
        b"POST /api/creditToken HTTP/1.1\r\nHost: s\r\nX-Request-Id: merchant-43\r\nContent-Length: 3\r\n\r\na=1",
    )
    .await;
    assert_eq!(cached.header("x-webcollect-shim"), Some("maintenance"));
    let ids: Vec<_> = cached
        .headers
        .iter()
        .filter(|(n, _)| n == "x-request-id")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(ids, ["merchant-43"]);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = closed.local_addr().unwrap();
    drop(closed);
    let shim_down = TestShim::start(&config(&format!("http://{down}")), t(BEFORE)).await;
    let failed = raw(shim_down.addr, &get("/api/tradeInfo")).await;
    assert_eq!(failed.status, 502);
    assert!(failed.header("x-request-id").is_some());
}

/// An upstream that answers one request per connection with keep-alive, then closes the
/// connection while it is idle (as an upstream's keep-alive timeout does), and says so.
struct ClosesWhenIdle {
    addr: std::net::SocketAddr,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    closed: tokio::sync::mpsc::UnboundedReceiver<()>,
}

impl ClosesWhenIdle {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let (tx, closed) = tokio::sync::mpsc::unbounded_channel();
        let (c, r) = (connections.clone(), requests.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                let (r, tx) = (r.clone(), tx.clone());
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut seen = Vec::new();
                    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        let n = stream.read(&mut buf).await.unwrap();
                        seen.extend_from_slice(&buf[..n]);
                    }
                    r.fetch_add(1, Ordering::SeqCst);
                    stream
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                        .await
                        .unwrap();
                    drop(stream);
                    let _ = tx.send(());
                });
            }
        });
        Self {
            addr,
            connections,
            requests,
            closed,
        }
    }
}

#[tokio::test]
async fn a_pooled_connection_the_upstream_closed_while_idle_is_not_used() {
    let mut upstream = ClosesWhenIdle::start().await;
    let shim = TestShim::start(&config(&format!("http://{}", upstream.addr)), t(BEFORE)).await;
    for n in 1..=3 {
        let res = raw(shim.addr, &post("/api/creditToken", "a=1")).await;
        assert_eq!(res.status, 200, "request {n}: {}", res.text());
        assert_eq!(res.text(), "ok");
        // The upstream has hung up on the now idle pooled connection.
        upstream.closed.recv().await.unwrap();
    }
    // Each request was sent once, each on a fresh connection: none went to a closed one
    // (that would be a 502) and none was sent twice.
    assert_eq!(upstream.requests.load(Ordering::SeqCst), 3);
    assert_eq!(upstream.connections.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn idle_pooled_connections_are_reused_per_worker() {
    let upstream = Upstream::start(|req: http::Request<hyper::body::Incoming>| async move {
        let _ = req.into_body().collect().await;
        Response::new(full("ok"))
    })
    .await;
    let shim = TestShim::start(&config(&upstream.url()), t(BEFORE)).await;
    let mut conn = RawConn::connect(shim.addr).await;
    for _ in 0..5 {
        conn.send(&get("/api/tradeInfo")).await;
        assert_eq!(conn.read_response().await.status, 200);
    }
    assert_eq!(upstream.connections(), 1);
}
