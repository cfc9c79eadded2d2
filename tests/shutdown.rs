//! Graceful shutdown: in-flight streams finish, new connections are refused.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use tokio::io::AsyncReadExt as _;

use crate::support::*;

#[tokio::test]
async fn in_flight_stream_completes_and_new_connections_are_refused() {
    let (feed_tx, feed_rx) = oneshot::channel::<mpsc::Sender<Bytes>>();
    let feed_tx = Arc::new(Mutex::new(Some(feed_tx)));
    let upstream = Upstream::start(move |_req: Request<Incoming>| {
        let feed_tx = feed_tx.lock().unwrap().take().unwrap();
        async move {
            let (tx, rx) = mpsc::channel(1);
            let _ = feed_tx.send(tx);
            Response::new(ChannelBody(rx).boxed())
        }
    })
    .await;
    let mut shim = TestShim::start(&config(&upstream.url()), t(BEFORE)).await;
    let addr = shim.addr;
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake::<_, TestBody>(TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let res = sender
        .send_request(
            Request::get("/webcollect/stream")
                .header("host", "s")
                .body(full(""))
                .unwrap(),
        )
        .await
        .unwrap();
    let feed = feed_rx.await.unwrap();
    feed.send(Bytes::from_static(b"first;")).await.unwrap();
    let mut body = res.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(first, "first;");

    shim.signal_shutdown();
    // The listener closes: new connections are refused.
    eventually(
        Duration::from_secs(1),
        "new connections refused",
        || async { TcpStream::connect(addr).await.is_err() },
    )
    .await;

    // The stream that was in flight still completes.
    feed.send(Bytes::from_static(b"second;")).await.unwrap();
    feed.send(Bytes::from_static(b"last")).await.unwrap();
    drop(feed);
    let mut rest = Vec::new();
    while let Some(frame) = body.frame().await {
        rest.extend_from_slice(&frame.unwrap().into_data().unwrap());
    }
    assert_eq!(rest, b"second;last");
    tokio::time::timeout(Duration::from_secs(10), shim.join())
        .await
        .expect("shim did not stop after its last request");
}

#[tokio::test]
async fn shutdown_grace_bounds_the_wait() {
    // An upstream that never finishes its body; the shim must still stop after the grace.
    let upstream = Upstream::start(|_req: Request<Incoming>| async move {
        let (tx, rx) = mpsc::channel::<Bytes>(1);
        tokio::spawn(async move {
            let _ = tx.send(Bytes::from_static(b"never ends")).await;
            tokio::time::sleep(Duration::from_secs(3600)).await;
            drop(tx);
        });
        Response::new(ChannelBody(rx).boxed())
    })
    .await;
    let toml = config(&upstream.url()).replace(
        "watch_config = false",
        "watch_config = false\nshutdown_grace = \"300ms\"",
    );
    let mut shim = TestShim::start(&toml, t(BEFORE)).await;
    let mut conn = RawConn::connect(shim.addr).await;
    conn.send(&get("/webcollect/endless")).await;
    // The endless response has started: the request is in flight when shutdown begins.
    let mut first = [0u8; 12];
    conn.stream_mut().read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    shim.signal_shutdown();
    tokio::time::timeout(Duration::from_secs(5), shim.join())
        .await
        .expect("grace period not enforced");
}
