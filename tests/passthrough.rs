//! Outside windows the upstream's answer arrives unchanged, streamed, and never retried.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

use crate::support::*;

#[tokio::test]
async fn request_and_response_pass_unchanged_minus_hop_by_hop() {
    let body_seen = Arc::new(Mutex::new(Vec::new()));
    let recorded = body_seen.clone();
    let upstream = Upstream::start(move |req: Request<Incoming>| {
        let recorded = recorded.clone();
        async move {
            let body = req.into_body().collect().await.unwrap().to_bytes();
            recorded.lock().unwrap().extend_from_slice(&body);
            Response::builder()
                .status(201)
                .header("set-cookie", "a=1")
                .header("set-cookie", "b=2")
                .header("connection", "x-upstream-hop")
                .header("x-upstream-hop", "secret")
                .header("keep-alive", "timeout=5")
                .header("proxy-authenticate", "Basic")
                .header("x-upstream", "kept")
                .body(full("<return/>"))
                .unwrap()
        }
    })
    .await;
    let shim = TestShim::start(&config(&upstream.url()), t(BEFORE)).await;

    // Raw bytes: percent-encoding and raw UTF-8 in the query must arrive byte-for-byte.
    let target = "/api/creditToken?order_no=%E6%B3%A8%E6%96%87+1&name=山田&a=%2F%3F&a=2";
    let mut request = format!(
        "POST {target} HTTP/1.1\r\nHost: merchant.example:8080\r\nConnection: keep-alive, X-Client-Hop\r\n\
         X-Client-Hop: drop-me\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Authorization: Basic eA==\r\n\
         Upgrade: h2c\r\nX-Multi: one\r\nX-Multi: two\r\nX-Forwarded-For: 192.0.2.7\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 17\r\n\r\n"
    )
    .into_bytes();
    request.extend_from_slice(b"function_div=A08&");
    let res = raw(shim.addr, &request).await;

    assert_eq!(res.status, 201);
    assert_eq!(res.text(), "<return/>");
    assert_eq!(res.all("set-cookie"), ["a=1", "b=2"]);
    assert_eq!(res.header("x-upstream"), Some("kept"));
    for hop in ["x-upstream-hop", "keep-alive", "proxy-authenticate"] {
        assert_eq!(res.header(hop), None, "{hop} leaked to the client");
    }
    assert_eq!(
        res.header("x-webcollect-shim"),
        None,
        "pass-through must not be marked"
    );

    let seen = upstream.seen();
    assert_eq!(seen.len(), 1);
    let s = &seen[0];
    assert_eq!(s.method, "POST");
    assert_eq!(s.target.as_bytes(), target.as_bytes());
    assert_eq!(s.version, http::Version::HTTP_11);
    assert_eq!(s.headers["host"], upstream.addr.to_string().as_str());
    let multi: Vec<_> = s.headers.get_all("x-multi").iter().collect();
    assert_eq!(multi, ["one", "two"]);
    assert_eq!(s.headers["x-forwarded-for"], "192.0.2.7, 127.0.0.1");
    assert_eq!(s.headers["x-forwarded-proto"], "http");
    assert_eq!(s.headers["x-forwarded-host"], "merchant.example:8080");
    assert_eq!(
        s.headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    for hop in [
        "x-client-hop",
        "keep-alive",
        "te",
        "proxy-authorization",
        "upgrade",
    ] {
        assert!(!s.headers.contains_key(hop), "{hop} leaked upstream");
    }
    // `Connection` itself is the upstream connection's own business (hyper may add keep-alive).
    assert!(
        s.headers
            .get("connection")
            .is_none_or(|v| !v.to_str().unwrap().contains("X-Client-Hop"))
    );
    assert_eq!(&*body_seen.lock().unwrap(), b"function_div=A08&");
}

const MIB: usize = 1024 * 1024;
const TOTAL: usize = 20 * MIB;

fn channel_body() -> (mpsc::Sender<Bytes>, TestBody) {
    let (tx, rx) = mpsc::channel(2);
    (tx, ChannelBody(rx).boxed())
}

/// Deterministic content: byte i of the stream is i % 251.
fn chunk(offset: usize, len: usize) -> Bytes {
    (offset..offset + len)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into()
}

async fn http1_client(
    addr: std::net::SocketAddr,
) -> hyper::client::conn::http1::SendRequest<TestBody> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

const PATIENCE: Duration = Duration::from_secs(20);

#[tokio::test]
async fn twenty_mib_response_streams_before_the_upstream_finishes() {
    let (go_tx, go_rx) = oneshot::channel::<()>();
    let go_rx = Arc::new(Mutex::new(Some(go_rx)));
    let upstream = Upstream::start(move |_req: Request<Incoming>| {
        let go = go_rx.lock().unwrap().take().expect("one request only");
        async move {
            let (tx, body) = channel_body();
            tokio::spawn(async move {
                tx.send(chunk(0, MIB)).await.unwrap();
                // The rest is only produced once the client has seen the first chunk.
                go.await.unwrap();
                let mut offset = MIB;
                while offset < TOTAL {
                    tx.send(chunk(offset, MIB)).await.unwrap();
                    offset += MIB;
                }
            });
            Response::builder()
                .header("content-type", "application/octet-stream")
                .body(body)
                .unwrap()
        }
    })
    .await;
    let shim = TestShim::start(&config(&upstream.url()), t(BEFORE)).await;
    let mut client = http1_client(shim.addr).await;
    let req = Request::get("/webcollect/download")
        .header("host", "shim")
        .body(full(""))
        .unwrap();
    let res = client.send_request(req).await.unwrap();
    assert_eq!(res.status(), 200);
    let mut body = res.into_body();
    let mut received = 0;
    while received < MIB {
        let frame = tokio::time::timeout(PATIENCE, body.frame())
            .await
            .expect("first chunk did not arrive before the upstream finished: the shim buffers")
            .unwrap()
            .unwrap();
        let data = frame.into_data().unwrap();
        assert_eq!(data, chunk(received, data.len()));
        received += data.len();
    }
    go_tx.send(()).unwrap();
    let rest = tokio::time::timeout(PATIENCE, check_pattern_from(body, received))
        .await
        .unwrap();
    assert_eq!(rest, TOTAL);
}

/// Reads a body to the end from `offset`, checking the pattern; returns the end offset.
async fn check_pattern_from(mut body: Incoming, mut offset: usize) -> usize {
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            assert_eq!(data, chunk(offset, data.len()), "corrupted at {offset}");
            offset += data.len();
        }
    }
    offset
}

#[tokio::test]
async fn twenty_mib_request_streams_to_the_upstream() {
    let (first_tx, first_rx) = oneshot::channel::<()>();
    let first_tx = Arc::new(Mutex::new(Some(first_tx)));
    let upstream = Upstream::start(move |req: Request<Incoming>| {
        let first = first_tx.lock().unwrap().take().expect("one request only");
        async move {
            let mut body = req.into_body();
            let mut offset = 0;
            let mut first = Some(first);
            while let Some(frame) = body.frame().await {
                if let Ok(data) = frame.unwrap().into_data() {
                    assert_eq!(data, chunk(offset, data.len()));
                    offset += data.len();
                    if offset >= MIB
                        && let Some(first) = first.take()
                    {
                        let _ = first.send(());
                    }
                }
            }
            Response::new(full(offset.to_string()))
        }
    })
    .await;
    // `response_timeout` runs from the request's start, upload included: 2 s is too short
    // for 20 MiB through a loaded 2-core CI machine (the upstream saw the body cut off).
    let toml =
        config(&upstream.url()).replace("response_timeout = \"2s\"", "response_timeout = \"60s\"");
    let shim = TestShim::start(&toml, t(BEFORE)).await;
    let mut client = http1_client(shim.addr).await;
    let (tx, body) = channel_body();
    // A streaming route (kind page); `api` and `notification` forms are read whole first.
    let req = Request::post("/webcollect/upload")
        .header("host", "shim")
        .body(body)
        .unwrap();
    let response = tokio::spawn(async move { client.send_request(req).await.unwrap() });
    tx.send(chunk(0, MIB)).await.unwrap();
    tokio::time::timeout(PATIENCE, first_rx)
        .await
        .expect("upstream did not see the first chunk before the client sent the rest: the shim buffers")
        .unwrap();
    let mut offset = MIB;
    while offset < TOTAL {
        tx.send(chunk(offset, MIB)).await.unwrap();
        offset += MIB;
    }
    drop(tx);
    let res = tokio::time::timeout(PATIENCE, response)
        .await
        .unwrap()
        .unwrap();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, TOTAL.to_string().as_bytes());
    let seen = upstream.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].headers.get("transfer-encoding").unwrap(), "chunked");
}

#[tokio::test]
async fn http2_client_reaches_an_http1_upstream() {
    let upstream = Upstream::fixed("<return/>").await;
    let shim = TestShim::start(&config(&upstream.url()), t(BEFORE)).await;
    let stream = TcpStream::connect(shim.addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(executor(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    for i in 0..3 {
        let req = Request::post(format!("http://merchant.example/api/creditToken?i={i}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(full("function_div=A08"))
            .unwrap();
        let res = sender.send_request(req).await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.version(), http::Version::HTTP_2);
        assert_eq!(
            res.into_body().collect().await.unwrap().to_bytes(),
            "<return/>"
        );
    }
    let seen = upstream.seen();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|s| s.version == http::Version::HTTP_11));
    assert_eq!(seen[2].target, "/api/creditToken?i=2");
    assert_eq!(seen[0].headers["x-forwarded-host"], "merchant.example");
    assert_eq!(seen[0].headers["host"], upstream.addr.to_string().as_str());
    // Three requests over the shim's pooled keep-alive connection.
    assert_eq!(upstream.connections(), 1);
}

#[tokio::test]
async fn upstream_connections_are_pooled() {
    let upstream = Upstream::fixed("<return/>").await;
    let shim = TestShim::start(&config(&upstream.url()), t(BEFORE)).await;
    for _ in 0..5 {
        let res = raw(shim.addr, &post("/api/creditToken", "a=1")).await;
        assert_eq!(res.status, 200);
    }
    assert_eq!(upstream.seen().len(), 5);
    assert_eq!(upstream.connections(), 1);
}

#[tokio::test]
async fn unreachable_upstream_is_502() {
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let shim = TestShim::start(&config(&format!("http://{addr}")), t(BEFORE)).await;
    let res = raw(shim.addr, &post("/api/creditToken", "a=1")).await;
    assert_eq!(res.status, 502);
    assert_eq!(res.header("x-webcollect-shim"), Some("bad-gateway"));
    assert_eq!(res.text(), "webcollect-shim: upstream unreachable\n");
}

/// A TCP upstream that reads one request per connection and then runs `then`.
struct ScriptedUpstream {
    addr: std::net::SocketAddr,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
}

impl ScriptedUpstream {
    /// `answer_first`: whether the first request on each connection gets a keep-alive 200;
    /// every later request is read and then the connection is either held (`hold`) or closed.
    async fn start(answer_first: bool, hold: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let (c, r) = (connections.clone(), requests.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                c.fetch_add(1, Ordering::SeqCst);
                let r = r.clone();
                tokio::spawn(async move {
                    let mut answered = !answer_first;
                    loop {
                        if !read_request(&mut stream).await {
                            return;
                        }
                        r.fetch_add(1, Ordering::SeqCst);
                        if !answered {
                            answered = true;
                            let _ = stream
                                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                                .await;
                            continue;
                        }
                        if hold {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                        }
                        return;
                    }
                });
            }
        });
        Self {
            addr,
            connections,
            requests,
        }
    }
}

/// Reads one request with a Content-Length body; false on EOF.
async fn read_request(stream: &mut TcpStream) -> bool {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => buf.push(byte[0]),
            _ => return false,
        }
    }
    let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await.is_ok()
}

#[tokio::test]
async fn silent_upstream_is_504_without_retry() {
    let upstream = ScriptedUpstream::start(false, true).await;
    let toml = config(&format!("http://{}", upstream.addr))
        .replace("response_timeout = \"2s\"", "response_timeout = \"300ms\"");
    let shim = TestShim::start(&toml, t(BEFORE)).await;
    let res = raw(shim.addr, &post("/api/creditToken", "a=1")).await;
    assert_eq!(res.status, 504);
    assert_eq!(res.header("x-webcollect-shim"), Some("gateway-timeout"));
    assert_eq!(
        res.text(),
        "webcollect-shim: upstream did not answer in time\n"
    );
    assert_eq!(upstream.requests.load(Ordering::SeqCst), 1);
    assert_eq!(upstream.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn upstream_closing_a_pooled_connection_is_502_without_retry() {
    // First request answered on a keep-alive connection; the second is read, then the
    // upstream hangs up. A retrying proxy would send it again on a new connection.
    let upstream = ScriptedUpstream::start(true, false).await;
    let shim = TestShim::start(&config(&format!("http://{}", upstream.addr)), t(BEFORE)).await;
    let first = raw(shim.addr, &post("/api/creditToken", "a=1")).await;
    assert_eq!(first.status, 200);
    let second = raw(shim.addr, &post("/api/creditToken", "a=2")).await;
    assert_eq!(second.status, 502);
    assert_eq!(second.header("x-webcollect-shim"), Some("bad-gateway"));
    assert_eq!(upstream.requests.load(Ordering::SeqCst), 2);
    assert_eq!(upstream.connections.load(Ordering::SeqCst), 1);
}
