//! The settleMethod 14 drill: E04/F04 responses, notification relay, synthetic notifications.

use std::io::{Read as _, Write as _};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::support::*;

const E04: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<return>\r\n  <returnCode>0</returnCode>\r\n  <errorCode></errorCode>\r\n  <returnDate>20200420013000</returnDate>\r\n  <resultCount>3</resultCount>\r\n  <resultData>\r\n    <orderNo>A-1</orderNo>\r\n    <settleMethodDiv>0</settleMethodDiv>\r\n    <settleMethod>3</settleMethod>\r\n    <statusInfo>4</statusInfo>\r\n  </resultData>\r\n  <resultData><orderNo>A-2</orderNo><settleMethod>9</settleMethod></resultData>\r\n  <resultData>\r\n    <orderNo>A-3</orderNo>\r\n    <settleMethod>23</settleMethod>\r\n    <settlePrice>1000</settlePrice>\r\n  </resultData>\r\n</return>\r\n";
const E04_ERROR: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<return>\n<returnCode>1</returnCode>\n<errorCode>E04000001</errorCode>\n<returnDate>20200420013000</returnDate>\n</return>\n";

fn e04_rewritten() -> String {
    E04.replace(
        "<settleMethod>3</settleMethod>",
        "<settleMethod>14</settleMethod>",
    )
    .replace(
        "<settleMethod>9</settleMethod>",
        "<settleMethod>14</settleMethod>",
    )
    .replace(
        "<settleMethod>23</settleMethod>",
        "<settleMethod>14</settleMethod>",
    )
}

fn drill(toml: &str, section: &str) -> String {
    format!("{toml}\n[settle_method_drill]\n{section}\n")
}

/// Serves `body` for every request, optionally gzip-encoded or in several chunks.
async fn upstream_serving(body: &'static str, gzip: bool, chunked: bool) -> Upstream {
    Upstream::start(move |req: Request<Incoming>| async move {
        let _ = req.into_body().collect().await;
        let mut res = Response::builder().header("content-type", "text/xml; charset=UTF-8");
        let bytes = if gzip {
            res = res.header("content-encoding", "gzip");
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(body.as_bytes()).unwrap();
            enc.finish().unwrap()
        } else {
            body.as_bytes().to_vec()
        };
        if chunked {
            let (a, b) = bytes.split_at(bytes.len() / 2);
            let frames = vec![Bytes::copy_from_slice(a), Bytes::copy_from_slice(b)];
            let stream = http_body_util::StreamBody::new(ChunkStream(frames.into_iter()));
            return res.body(stream.boxed()).unwrap();
        }
        res.body(full(bytes)).unwrap()
    })
    .await
}

struct ChunkStream(std::vec::IntoIter<Bytes>);

impl futures::Stream for ChunkStream {
    type Item = Result<hyper::body::Frame<Bytes>, Box<dyn std::error::Error + Send + Sync>>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        std::task::Poll::Ready(self.0.next().map(|b| Ok(hyper::body::Frame::data(b))))
    }
}

async fn metrics(shim: &TestShim) -> String {
    admin_read(shim, "/metrics").await.text()
}

#[tokio::test]
async fn e04_and_f04_result_data_become_14_and_nothing_else_changes() {
    let upstream = upstream_serving(E04, false, false).await;
    let shim = TestShim::start(
        &drill(&config(&upstream.url()), "when = \"always\""),
        t(BEFORE),
    )
    .await;
    for path in ["/api/tradeInfo", "/api/xp/tradeInfoXp"] {
        let res = raw(
            shim.addr,
            &post(path, "function_div=E04&trader_code=123456789&order_no=A-1"),
        )
        .await;
        assert_eq!(res.status, 200);
        assert_eq!(res.text(), e04_rewritten(), "{path}");
        assert_eq!(
            res.header("content-length"),
            Some(e04_rewritten().len().to_string().as_str())
        );
    }
    // The upstream was asked for a body the rewrite can read.
    assert_eq!(upstream.seen()[0].headers["accept-encoding"], "identity");
    // Other paths are untouched (and never buffered).
    let other = raw(shim.addr, &post("/api/creditToken", "a=1")).await;
    assert_eq!(other.text(), E04);
    assert!(metrics(&shim).await.contains(
        "webcollect_shim_settle_method_rewrites_total{route=\"api\",result=\"rewritten\"} 2"
    ));
}

#[tokio::test]
async fn error_answers_pass_byte_identical() {
    let upstream = upstream_serving(E04_ERROR, false, false).await;
    let shim = TestShim::start(
        &drill(&config(&upstream.url()), "when = \"always\""),
        t(BEFORE),
    )
    .await;
    for path in ["/api/tradeInfo", "/api/xp/tradeInfoXp"] {
        assert_eq!(raw(shim.addr, &post(path, "a=1")).await.text(), E04_ERROR);
    }
}

#[tokio::test]
async fn chunked_and_gzip_upstream_answers_are_rewritten() {
    let upstream = upstream_serving(E04, false, true).await;
    let shim = TestShim::start(
        &drill(&config(&upstream.url()), "when = \"always\""),
        t(BEFORE),
    )
    .await;
    let res = raw(shim.addr, &post("/api/tradeInfo", "a=1")).await;
    assert_eq!(res.text(), e04_rewritten());

    let upstream = upstream_serving(E04, true, true).await;
    let shim = TestShim::start(
        &drill(&config(&upstream.url()), "when = \"always\""),
        t(BEFORE),
    )
    .await;
    let res = raw(shim.addr, &post("/api/tradeInfo", "a=1")).await;
    assert_eq!(res.header("content-encoding"), Some("gzip"));
    assert_eq!(
        res.header("content-length"),
        Some(res.body.len().to_string().as_str())
    );
    let mut xml = String::new();
    flate2::read::GzDecoder::new(&res.body[..])
        .read_to_string(&mut xml)
        .unwrap();
    assert_eq!(xml, e04_rewritten());
}

#[tokio::test]
async fn oversize_and_malformed_bodies_pass_unmodified_with_a_metric() {
    let upstream = upstream_serving(E04, false, true).await;
    let toml = drill(
        &config(&upstream.url()),
        "when = \"always\"\nmax_body = 256",
    );
    let shim = TestShim::start(&toml, t(BEFORE)).await;
    assert_eq!(
        raw(shim.addr, &post("/api/tradeInfo", "a=1")).await.text(),
        E04
    );
    assert!(metrics(&shim).await.contains("result=\"oversize\"} 1"));

    const BROKEN: &str =
        "<?xml version=\"1.0\"?><return><resultData><settleMethod>3</settleMethod></return>";
    let upstream = upstream_serving(BROKEN, false, false).await;
    let shim = TestShim::start(
        &drill(&config(&upstream.url()), "when = \"always\""),
        t(BEFORE),
    )
    .await;
    assert_eq!(
        raw(shim.addr, &post("/api/tradeInfo", "a=1")).await.text(),
        BROKEN
    );
    assert!(metrics(&shim).await.contains("result=\"malformed\"} 1"));
}

#[tokio::test]
async fn drill_header_and_windows_switch_the_rewrite() {
    let upstream = upstream_serving(E04, false, false).await;
    let with_header = |v: &str| {
        format!("POST /api/tradeInfo HTTP/1.1\r\nHost: s\r\nx-webcollect-shim-drill: {v}\r\nContent-Length: 0\r\n\r\n").into_bytes()
    };
    // Off by default; the header switches it on for one request.
    let shim = TestShim::start(&config(&upstream.url()), t(BEFORE)).await;
    assert_eq!(
        raw(shim.addr, &post("/api/tradeInfo", "a=1")).await.text(),
        E04
    );
    assert_eq!(
        raw(shim.addr, &with_header("settle-method")).await.text(),
        e04_rewritten()
    );
    // The gateway never sees the drill header.
    assert!(
        upstream
            .seen()
            .iter()
            .all(|s| !s.headers.contains_key("x-webcollect-shim-drill"))
    );

    // Always on; the header switches it off.
    let shim = TestShim::start(
        &drill(&config(&upstream.url()), "when = \"always\""),
        t(BEFORE),
    )
    .await;
    assert_eq!(
        raw(shim.addr, &with_header("no-settle-method"))
            .await
            .text(),
        E04
    );

    // Only inside the listed window (a window covering a service no route has).
    let toml = drill(
        &format!(
            "{}\n[[windows]]\nid = \"settle-14\"\nstart = \"2020-05-01 00:00\"\nend = \"2020-05-02 00:00\"\nservices = [\"drill.settle_method\"]\n",
            config(&upstream.url())
        ),
        "when = \"in_windows\"\nwindows = [\"settle-14\"]",
    );
    let shim = TestShim::start(&toml, t("2020-04-30T23:59:59+09:00")).await;
    assert_eq!(
        raw(shim.addr, &post("/api/tradeInfo", "a=1")).await.text(),
        E04
    );
    shim.clock.set(t("2020-05-01T00:00:00+09:00"));
    assert_eq!(
        raw(shim.addr, &post("/api/tradeInfo", "a=1")).await.text(),
        e04_rewritten()
    );
    shim.clock.set(t("2020-05-02T00:00:00+09:00"));
    assert_eq!(
        raw(shim.addr, &post("/api/tradeInfo", "a=1")).await.text(),
        E04
    );
}

const NOTIFICATION: &str = "trader_code=123456789&order_no=%E6%B3%A8%E6%96%87-1&settle_price=1000&settle_date=20200420013000&settle_result=1&settle_detail=4&settle_method=3";

#[tokio::test]
async fn notification_relay_rewrites_settle_method_and_relays_the_answer() {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let recorded = bodies.clone();
    let receiver = Upstream::start(move |req: Request<Incoming>| {
        let recorded = recorded.clone();
        async move {
            let body = req.into_body().collect().await.unwrap().to_bytes();
            recorded.lock().unwrap().push(body);
            Response::builder()
                .status(500)
                .body(full("receiver busy"))
                .unwrap()
        }
    })
    .await;
    let toml = config(&receiver.url()).replace(
        "[[routes]]\nid = \"token-js\"",
        "[[routes]]\nid = \"notify\"\npath = \"/yamato/notify\"\nkind = \"notification\"\nservice = \"merchant.notification\"\nupstream = \"gw\"\n\n[[routes]]\nid = \"token-js\"",
    );
    let shim = TestShim::start(&drill(&toml, "when = \"always\""), t(DURING)).await;
    let res = raw(shim.addr, &post("/yamato/notify", NOTIFICATION)).await;
    // The merchant's answer goes back unchanged, so the gateway's retry policy still works.
    assert_eq!(res.status, 500);
    assert_eq!(res.text(), "receiver busy");
    let seen = bodies.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0],
        NOTIFICATION
            .replace("settle_method=3", "settle_method=14")
            .as_bytes()
    );
    assert_eq!(
        receiver.seen()[0].headers["content-length"],
        NOTIFICATION.replace("=3", "=14").len().to_string().as_str()
    );
}

/// A receiver that answers 500 `failures` times, then 200; counts attempts.
async fn flaky_receiver(failures: usize) -> (Upstream, Arc<AtomicUsize>, Arc<Mutex<Vec<Bytes>>>) {
    let attempts = Arc::new(AtomicUsize::new(0));
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let (a, b) = (attempts.clone(), bodies.clone());
    let upstream = Upstream::start(move |req: Request<Incoming>| {
        let (a, b) = (a.clone(), b.clone());
        async move {
            let body = req.into_body().collect().await.unwrap().to_bytes();
            b.lock().unwrap().push(body);
            let n = a.fetch_add(1, Ordering::SeqCst);
            let status = if n < failures { 500 } else { 200 };
            Response::builder().status(status).body(full("")).unwrap()
        }
    })
    .await;
    (upstream, attempts, bodies)
}

async fn run_notify(url: String) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_webcollect-shim"))
            .args([
                "notify",
                "--to",
                &url,
                "--trader-code",
                "123456789",
                "--order-no",
                "A-1",
                "--settle-date",
                "20200420013000",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn notify_retries_until_accepted() {
    let (receiver, attempts, bodies) = flaky_receiver(2).await;
    let out = run_notify(format!("{}/yamato/notify", receiver.url())).await;
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{stdout}");
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    assert!(
        stdout.contains("attempt 1: HTTP 500 (not accepted)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("attempt 3: HTTP 200 (accepted)"),
        "{stdout}"
    );
    assert_eq!(
        bodies.lock().unwrap()[0],
        "trader_code=123456789&order_no=A-1&settle_price=1000&settle_date=20200420013000&settle_result=1&settle_detail=4&settle_method=14"
    );
    assert_eq!(
        receiver.seen()[0].headers["content-type"],
        "application/x-www-form-urlencoded"
    );
}

#[tokio::test]
async fn notify_gives_up_after_five_attempts() {
    let (receiver, attempts, _) = flaky_receiver(usize::MAX).await;
    let out = run_notify(receiver.url()).await;
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(!out.status.success(), "{stdout}");
    assert_eq!(attempts.load(Ordering::SeqCst), 5);
    assert!(
        stdout.contains("not delivered: 5 attempt(s), none accepted"),
        "{stdout}"
    );
}
