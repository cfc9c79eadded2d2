//! Issue 13's probes, each with the safe behaviour: window bypasses by path forms, silent
//! and idle connections, connection caps, upstream caps, bounded bodies, methods, the drill
//! header's trust.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::Response;
use http_body_util::BodyExt as _;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

use crate::support::*;

/// The shipped config's shape: an exact route in the window, an un-windowed `/api/`
/// catch-all and a passthrough `/static/`, so that any path form that escapes the exact
/// route reaches an upstream unless the shim decides on the canonical path
/// (`tests/fixtures/probes.toml`, after the harness's base with `extra_server` in `[server]`).
fn probe_config(upstream: &str, extra_server: &str) -> String {
    let base = base_config(upstream).replacen(
        "watch_config = false\n",
        &format!("watch_config = false\n{extra_server}\n"),
        1,
    );
    format!("{base}\n{}", include_str!("fixtures/probes.toml"))
}

/// Every form of `/api/creditToken` an attacker (or a confused client) might send.
const PATH_FORMS: [&str; 37] = [
    "/api//creditToken",
    "/api/./creditToken",
    "/api/x/../creditToken",
    "/api/%2e/creditToken",
    "/api/%2E/creditToken",
    "/api/%63reditToken",
    "/api/%63%72editToken",
    "/api/credit%54oken",
    "/api/creditToken;jsessionid=ABC123",
    "/api;x=1/creditToken",
    "/static/../api/creditToken",
    "/static/%2e%2e/api/creditToken",
    "/static/%2E%2E/api/creditToken",
    "/static/.%2e/api/creditToken",
    "/static/..;/api/creditToken",
    "/static/..%3B/api/creditToken",
    "/api%2FcreditToken",
    "/api%2fcreditToken",
    "/static%2F..%2Fapi%2FcreditToken",
    "/api/%2FcreditToken",
    "/api%5CcreditToken",
    "/static/..%5Capi%5CcreditToken",
    "/api/%C0%AFcreditToken",
    "/static/%C0%AE%C0%AE/api/creditToken",
    "/static/%E0%80%AE%E0%80%AE/api/creditToken",
    "/api/creditToken.",
    "/api/creditToken..",
    "/api/creditToken%2e",
    "/api/creditToken/.",
    "//api/creditToken",
    "/./api/creditToken",
    "/../api/creditToken",
    "/api/creditToken?token=1",
    "/api/creditToken%3Fx",
    "/api/creditToken%23x",
    "/api/./x/../../api/creditToken",
    // Escapes in a path parameter: a server that decodes before splitting reads a path.
    "/static/x;%2F..%2F..%2Fapi%2FcreditToken",
];

/// The forms of [`PATH_FORMS`] whose canonical form is unambiguous (servers agree it is
/// `/api/creditToken`): by default they get what `/api/creditToken` gets.
/// `/api/creditToken/.` is not one of them: servers resolve it with or without a trailing
/// slash.
const UNAMBIGUOUS_FORMS: [&str; 23] = [
    "/api//creditToken",
    "/api/./creditToken",
    "/api/x/../creditToken",
    "/api/%2e/creditToken",
    "/api/%2E/creditToken",
    "/api/%63reditToken",
    "/api/%63%72editToken",
    "/api/credit%54oken",
    "/api;x=1/creditToken",
    "/static/../api/creditToken",
    "/static/%2e%2e/api/creditToken",
    "/static/%2E%2E/api/creditToken",
    "/static/.%2e/api/creditToken",
    "/static/..;/api/creditToken",
    "/api/creditToken.",
    "/api/creditToken..",
    "/api/creditToken%2e",
    "//api/creditToken",
    "/./api/creditToken",
    "/../api/creditToken",
    "/api/./x/../../api/creditToken",
    // Already canonical, or canonical but for path parameters and the query.
    "/api/creditToken;jsessionid=ABC123",
    "/api/creditToken?token=1",
];

/// The exact maintenance answer of `/api/creditToken` at 02:30 JST (SPEC §4.1).
const MAINTENANCE_XML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<return>\n<returnCode>1</returnCode>\n<errorCode>Z01000000</errorCode>\n<returnDate>20200420023000</returnDate>\n</return>\n";

#[tokio::test]
async fn no_path_form_reaches_an_upstream_of_a_route_in_maintenance() {
    // Under the default (forward_canonical) and under "refuse" alike.
    for setting in ["", "non_canonical_paths = \"refuse\""] {
        let upstream = Upstream::fixed("<return/>").await;
        let shim = TestShim::start(&probe_config(&upstream.url(), setting), t(DURING)).await;
        for form in PATH_FORMS {
            let res = raw(shim.addr, &post(form, "function_div=A08")).await;
            let marker = res.header("x-webcollect-shim");
            assert!(
                matches!(marker, Some("maintenance" | "bad-path" | "no-route")),
                "{setting:?} {form}: {} {marker:?}",
                res.status
            );
            if marker == Some("maintenance") {
                assert!(
                    res.text().contains("<errorCode>Z01000000</errorCode>"),
                    "{form}"
                );
            }
            // Escapes servers read differently are refused whatever the setting.
            if !UNAMBIGUOUS_FORMS.contains(&form) {
                assert_eq!(marker, Some("bad-path"), "{setting:?} {form}");
            }
        }
        // A raw backslash is refused; a raw '#' starts a fragment, which the request parser
        // drops: the path is decided (and would be forwarded) without it.
        let res = raw(shim.addr, &post("/api\\creditToken", "a=1")).await;
        assert_eq!(res.status, 400);
        let res = raw(shim.addr, &post("/api/creditToken#x", "a=1")).await;
        assert_eq!(res.header("x-webcollect-shim"), Some("maintenance"));
        let seen: Vec<String> = upstream.seen().iter().map(|s| s.target.clone()).collect();
        assert!(seen.is_empty(), "{setting:?} forwarded: {seen:?}");
        // The plain path and its parameter form are in maintenance, not refused.
        for form in ["/api/creditToken", "/api/creditToken;jsessionid=ABC123"] {
            let res = raw(shim.addr, &post(form, "a=1")).await;
            assert_eq!(
                res.header("x-webcollect-shim"),
                Some("maintenance"),
                "{form}"
            );
        }
    }
    let upstream = Upstream::fixed("<return/>").await;
    let refusing = TestShim::start(
        &probe_config(&upstream.url(), "non_canonical_paths = \"refuse\""),
        t(DURING),
    )
    .await;
    let refused = raw(refusing.addr, &post("/api/./creditToken", "a=1")).await;
    assert_eq!(refused.status, 400);
    assert_eq!(
        refused.text(),
        "webcollect-shim: the path is not in canonical form (dot segments, repeated slashes, escaped unreserved characters, lower-case escapes or trailing dots)\n"
    );
}

#[tokio::test]
async fn by_default_unambiguous_forms_get_what_their_canonical_path_gets() {
    let upstream = Upstream::fixed("<return/>").await;
    let shim = TestShim::start(&probe_config(&upstream.url(), ""), t(DURING)).await;
    // Inside the window: the maintenance answer, byte for byte, for every form (a base URL
    // with a trailing slash first among them), and nothing upstream.
    for form in UNAMBIGUOUS_FORMS {
        let res = raw(shim.addr, &post(form, "function_div=A08")).await;
        assert_eq!(res.status, 200, "{form}");
        assert_eq!(
            res.header("x-webcollect-shim"),
            Some("maintenance"),
            "{form}"
        );
        assert_eq!(
            res.header("content-type"),
            Some("text/xml; charset=UTF-8"),
            "{form}"
        );
        assert_eq!(res.text(), MAINTENANCE_XML, "{form}");
    }
    assert!(upstream.seen().is_empty());

    // Outside it: the canonical path upstream (path parameters and query as sent).
    shim.clock.set(t(BEFORE));
    for form in UNAMBIGUOUS_FORMS {
        let res = raw(shim.addr, &post(form, "function_div=A08")).await;
        assert_eq!(res.status, 200, "{form}");
        assert_eq!(res.text(), "<return/>", "{form}");
    }
    let seen: Vec<String> = upstream.seen().iter().map(|s| s.target.clone()).collect();
    let mut expected = vec!["/api/creditToken".to_string(); UNAMBIGUOUS_FORMS.len() - 2];
    expected.push("/api/creditToken;jsessionid=ABC123".into());
    expected.push("/api/creditToken?token=1".into());
    // `/api;x=1/creditToken`: the parameters of a segment that stays are kept.
    expected[8] = "/api;x=1/creditToken".into();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn path_parameters_are_forwarded_as_sent_and_canonical_forms_on_request() {
    let upstream = Upstream::fixed("<return/>").await;
    let shim = TestShim::start(&probe_config(&upstream.url(), ""), t(BEFORE)).await;
    let res = raw(
        shim.addr,
        &post("/api/creditToken;jsessionid=ABC123?x=1", "a=1"),
    )
    .await;
    assert_eq!(res.status, 200);
    assert_eq!(
        upstream.seen()[0].target,
        "/api/creditToken;jsessionid=ABC123?x=1"
    );
    // With forward_canonical, a dot-segment form goes upstream canonical.
    let upstream = Upstream::fixed("<return/>").await;
    let shim = TestShim::start(
        &probe_config(
            &upstream.url(),
            "non_canonical_paths = \"forward_canonical\"",
        ),
        t(BEFORE),
    )
    .await;
    let res = raw(shim.addr, &post("/api/x/../%63reditToken;s=1?q=2", "a=1")).await;
    assert_eq!(res.status, 200);
    assert_eq!(upstream.seen()[0].target, "/api/creditToken;s=1?q=2");
    // ... and is in maintenance during the window like the plain path.
    shim.clock.set(t(DURING));
    let res = raw(shim.addr, &post("/api//creditToken", "a=1")).await;
    assert_eq!(res.header("x-webcollect-shim"), Some("maintenance"));
    assert_eq!(upstream.seen().len(), 1);
}

#[tokio::test]
async fn connect_and_trace_are_405_and_never_forwarded() {
    let upstream = Upstream::fixed("<return/>").await;
    let shim = TestShim::start(&probe_config(&upstream.url(), ""), t(BEFORE)).await;
    let res = raw(
        shim.addr,
        b"CONNECT gw.example:443 HTTP/1.1\r\nHost: gw.example:443\r\n\r\n",
    )
    .await;
    assert_eq!(res.status, 405);
    assert_eq!(res.header("x-webcollect-shim"), Some("method-not-allowed"));
    let res = raw(
        shim.addr,
        b"TRACE /api/tradeInfo HTTP/1.1\r\nHost: s\r\n\r\n",
    )
    .await;
    assert_eq!(res.status, 405);
    assert!(upstream.seen().is_empty());
}

#[tokio::test]
async fn silent_and_half_preface_connections_are_closed_by_header_read_timeout() {
    let upstream = Upstream::fixed("<return/>").await;
    let shim = TestShim::start(
        &probe_config(&upstream.url(), "header_read_timeout = \"400ms\""),
        t(BEFORE),
    )
    .await;
    let mut silent = Vec::new();
    for i in 0..40 {
        let mut stream = TcpStream::connect(shim.addr).await.unwrap();
        match i % 3 {
            0 => {}
            1 => stream.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap(),
            _ => stream.write_all(b"GET /api/tra").await.unwrap(),
        }
        silent.push(stream);
    }
    // Others are served meanwhile.
    assert_eq!(raw(shim.addr, &get("/api/tradeInfo")).await.status, 200);
    for stream in &mut silent {
        let took = closed_within(stream, Duration::from_secs(5)).await;
        assert!(
            took.is_some(),
            "a silent connection is still open after 5 s"
        );
    }
}

#[tokio::test]
async fn a_kept_alive_connections_next_head_must_arrive_within_header_read_timeout() {
    let upstream = Upstream::fixed("<return/>").await;
    let shim = TestShim::start(
        &probe_config(
            &upstream.url(),
            "header_read_timeout = \"400ms\"\nkeepalive_timeout = \"30s\"",
        ),
        t(BEFORE),
    )
    .await;
    // Silent after its first answer, or sending the next head slowly: either way the
    // connection is closed about header_read_timeout after the last answer, long before
    // keepalive_timeout.
    for next in [&b""[..], b"GET /api/tra"] {
        let mut conn = RawConn::connect(shim.addr).await;
        conn.send(&get("/api/tradeInfo")).await;
        assert_eq!(conn.read_response().await.status, 200);
        let answered = Instant::now();
        conn.send(next).await;
        assert!(conn.is_closed().await, "still open (next head {next:?})");
        let took = answered.elapsed();
        assert!(
            took >= Duration::from_millis(350) && took < Duration::from_secs(5),
            "closed {took:?} after the answer (next head {next:?})"
        );
    }
    assert_eq!(upstream.seen().len(), 2);
}

#[tokio::test]
async fn an_idle_http2_connection_lasts_keepalive_timeout_not_header_read_timeout() {
    let upstream = Upstream::fixed("<return/>").await;
    let shim = TestShim::start(
        &probe_config(
            &upstream.url(),
            "header_read_timeout = \"300ms\"\nkeepalive_timeout = \"30s\"",
        ),
        t(BEFORE),
    )
    .await;
    let stream = TcpStream::connect(shim.addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(executor(), hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    // HTTP/2 has no "next head": idle past header_read_timeout, the same connection still
    // carries the next request (an HTTP/1.1 one would have been closed).
    for _ in 0..2 {
        let req = http::Request::get("http://shim.test/api/tradeInfo")
            .body(full(""))
            .unwrap();
        assert_eq!(sender.send_request(req).await.unwrap().status(), 200);
        tokio::time::sleep(Duration::from_millis(900)).await;
    }
    assert_eq!(upstream.seen().len(), 2);
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed_after_keepalive_timeout() {
    let upstream = Upstream::fixed("<return/>").await;
    let shim = TestShim::start(
        &probe_config(&upstream.url(), "keepalive_timeout = \"300ms\""),
        t(BEFORE),
    )
    .await;
    let mut conn = RawConn::connect(shim.addr).await;
    conn.send(&get("/api/tradeInfo")).await;
    assert_eq!(conn.read_response().await.status, 200);
    let started = Instant::now();
    assert!(conn.is_closed().await);
    let idle = started.elapsed();
    assert!(idle >= Duration::from_millis(250), "closed after {idle:?}");
}

#[tokio::test]
async fn past_max_connections_new_clients_wait_while_existing_ones_are_served() {
    let upstream = Upstream::fixed("<return/>").await;
    let shim = TestShim::start(
        &probe_config(
            &upstream.url(),
            "max_connections = 3\nheader_read_timeout = \"1s\"",
        ),
        t(BEFORE),
    )
    .await;
    // Two busy keep-alive connections and one silent one fill the limit.
    let mut busy = vec![
        RawConn::connect(shim.addr).await,
        RawConn::connect(shim.addr).await,
    ];
    for conn in &mut busy {
        conn.send(&get("/api/tradeInfo")).await;
        assert_eq!(conn.read_response().await.status, 200);
    }
    let silent = TcpStream::connect(shim.addr).await.unwrap();
    // The fourth is queued by the kernel: no answer while the limit holds...
    let mut waiting = RawConn::connect(shim.addr).await;
    waiting.send(&get("/api/tradeInfo")).await;
    let started = Instant::now();
    // ... while the existing connections keep being served.
    for conn in &mut busy {
        conn.send(&get("/api/tradeInfo")).await;
        assert_eq!(conn.read_response().await.status, 200);
    }
    // The silent one is dropped after header_read_timeout; then the fourth is accepted.
    assert_eq!(waiting.read_response().await.status, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "served after {:?}, before the silent connection was closed",
        started.elapsed()
    );
    drop(silent);
}

/// An upstream that takes `delay` to answer and counts connections and requests.
async fn slow_upstream(delay: Duration) -> (Upstream, Arc<AtomicUsize>) {
    let busy = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (b, p) = (busy.clone(), peak.clone());
    let upstream = Upstream::start(move |req: http::Request<hyper::body::Incoming>| {
        let (b, p) = (b.clone(), p.clone());
        async move {
            let now = b.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(now, Ordering::SeqCst);
            let _ = req.into_body().collect().await;
            tokio::time::sleep(delay).await;
            b.fetch_sub(1, Ordering::SeqCst);
            Response::new(full("ok"))
        }
    })
    .await;
    (upstream, peak)
}

#[tokio::test]
async fn upstream_max_connections_caps_connections_and_answers_503_when_busy() {
    let (upstream, peak) = slow_upstream(Duration::from_millis(600)).await;
    let toml = probe_config(&upstream.url(), "").replace(
        "connect_timeout = \"1s\"",
        "connect_timeout = \"200ms\"\nmax_connections = 2",
    );
    let shim = TestShim::start(&toml, t(BEFORE)).await;
    let requests: Vec<_> = (0..5)
        .map(|i| {
            let addr = shim.addr;
            tokio::spawn(async move { raw(addr, &post("/api/tradeInfo", &format!("n={i}"))).await })
        })
        .collect();
    let mut ok = 0;
    let mut busy = 0;
    for r in requests {
        let res = r.await.unwrap();
        match res.status {
            200 => ok += 1,
            503 => {
                assert_eq!(res.header("x-webcollect-shim"), Some("upstream-busy"));
                busy += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((ok, busy), (2, 3));
    // Each request that was answered 503 was never sent: the upstream saw exactly two.
    assert_eq!(upstream.seen().len(), 2);
    assert!(upstream.connections() <= 2);
    assert_eq!(peak.load(Ordering::SeqCst), 2);
}

/// An HTTP/2 (prior knowledge) client connection to `addr`.
async fn h2c(addr: std::net::SocketAddr) -> hyper::client::conn::http2::SendRequest<TestBody> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) =
        hyper::client::conn::http2::handshake(executor(), hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    sender
}

#[tokio::test]
async fn http2_streams_share_the_capped_upstream_connections() {
    let (upstream, peak) = slow_upstream(Duration::from_millis(50)).await;
    let toml = probe_config(&upstream.url(), "").replace(
        "connect_timeout = \"1s\"",
        "connect_timeout = \"5s\"\nmax_connections = 4",
    );
    let shim = TestShim::start(&toml, t(BEFORE)).await;
    let sender = h2c(shim.addr).await;
    let calls: Vec<_> = (0..40)
        .map(|_| {
            let mut sender = sender.clone();
            tokio::spawn(async move {
                let req = http::Request::post("http://shim.test/api/tradeInfo")
                    .body(full("a=1"))
                    .unwrap();
                sender.send_request(req).await.unwrap().status()
            })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap(), 200);
    }
    assert_eq!(upstream.seen().len(), 40);
    assert!(upstream.connections() <= 4, "{}", upstream.connections());
    // The streams really ran at once, up to the cap.
    assert_eq!(peak.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn the_notification_relay_and_every_route_keep_the_body_limits() {
    let upstream = Upstream::fixed("OK").await;
    let shim = TestShim::start(
        &probe_config(
            &upstream.url(),
            "max_request_body = 1000\nbody_read_timeout = \"300ms\"",
        ),
        t(BEFORE),
    )
    .await;
    // A chunked body that grows past the limit: 413, nothing relayed.
    let chunk = "x".repeat(1500);
    let chunked = format!(
        "POST /notify HTTP/1.1\r\nHost: s\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    let res = raw(shim.addr, chunked.as_bytes()).await;
    assert_eq!(res.status, 413);
    // A declared length past the limit: 413 before anything is read.
    let res = raw(
        shim.addr,
        b"POST /notify HTTP/1.1\r\nHost: s\r\nContent-Length: 3000\r\n\r\n",
    )
    .await;
    assert_eq!(res.status, 413);
    // A body that stalls: 408, connection closed, nothing relayed.
    let mut conn = RawConn::connect(shim.addr).await;
    conn.send(b"POST /notify HTTP/1.1\r\nHost: s\r\nContent-Length: 100\r\n\r\nsettle_method=3")
        .await;
    let res = conn.read_response().await;
    assert_eq!(res.status, 408);
    assert_eq!(res.header("x-webcollect-shim"), Some("body-timeout"));
    assert!(conn.is_closed().await);
    // A malformed chunked body is the client's error: 400.
    let res = raw(
        shim.addr,
        b"POST /notify HTTP/1.1\r\nHost: s\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nhello\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(res.status, 400);
    assert!(
        upstream.seen().is_empty(),
        "relayed: {:?}",
        upstream.seen().len()
    );
    // On a plain pass-through route, a stalled body is 408 too, and the upstream never
    // gets a complete request.
    let mut conn = RawConn::connect(shim.addr).await;
    conn.send(b"POST /api/tradeInfo HTTP/1.1\r\nHost: s\r\nContent-Length: 100\r\n\r\npart")
        .await;
    let res = conn.read_response().await;
    assert_eq!(res.status, 408);
    let metrics = admin_read(&shim, "/metrics").await.text();
    assert!(
        metrics.contains("route=\"relay\",decision=\"bad_request\",status=\"4xx\"} 4"),
        "{metrics}"
    );
}

#[tokio::test]
async fn expect_continue_on_a_short_circuited_request_gets_the_answer_at_once() {
    let upstream = Upstream::fixed("<return/>").await;
    let shim = TestShim::start(&probe_config(&upstream.url(), ""), t(DURING)).await;
    let mut conn = RawConn::connect(shim.addr).await;
    conn.send(
        b"POST /api/creditToken HTTP/1.1\r\nHost: s\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n",
    )
    .await;
    let res = conn.read_response().await;
    // Not `100 Continue`: the maintenance answer itself, and the connection closes.
    assert_eq!(res.status, 200);
    assert_eq!(res.header("x-webcollect-shim"), Some("maintenance"));
    assert_eq!(res.header("connection"), Some("close"));
    assert!(conn.is_closed().await);
    assert!(upstream.seen().is_empty());
}

#[tokio::test]
async fn the_drill_header_is_obeyed_only_from_header_clients() {
    let upstream = Upstream::fixed("<return/>").await;
    let toml =
        probe_config(&upstream.url(), "") + "\n[drill]\nheader_clients = [\"192.0.2.0/24\"]\n";
    let shim = TestShim::start(&toml, t(BEFORE)).await;
    let forced =
        b"POST /api/creditToken HTTP/1.1\r\nHost: s\r\nx-webcollect-shim-drill: maintenance\r\nContent-Length: 3\r\n\r\na=1";
    // 127.0.0.1 is not a header client: the header is ignored, and not forwarded.
    let res = raw(shim.addr, forced).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.header("x-webcollect-shim"), None);
    assert!(
        !upstream.seen()[0]
            .headers
            .contains_key("x-webcollect-shim-drill")
    );
    // From a header client it forces maintenance.
    let upstream = Upstream::fixed("<return/>").await;
    let toml =
        probe_config(&upstream.url(), "") + "\n[drill]\nheader_clients = [\"127.0.0.0/8\"]\n";
    let shim = TestShim::start(&toml, t(BEFORE)).await;
    let res = raw(shim.addr, forced).await;
    assert_eq!(res.header("x-webcollect-shim"), Some("maintenance"));
    assert!(upstream.seen().is_empty());
}

#[tokio::test]
async fn finding_1_a_client_dripping_its_form_holds_no_upstream_connection() {
    let (upstream, _) = slow_upstream(Duration::ZERO).await;
    let toml = probe_config(&upstream.url(), "body_read_timeout = \"5s\"").replace(
        "connect_timeout = \"1s\"",
        "connect_timeout = \"300ms\"\nmax_connections = 1",
    );
    let shim = TestShim::start(&toml, t(BEFORE)).await;
    // Three clients start their forms and drip. Each used to hold the one upstream
    // connection for as long as it liked.
    let mut drippers = Vec::new();
    for _ in 0..3 {
        let mut conn = RawConn::connect(shim.addr).await;
        conn.send(
            b"POST /api/tradeInfo HTTP/1.1\r\nHost: s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nfunction_div=E04",
        )
        .await;
        drippers.push(conn);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A well-behaved client is served at once, not refused as upstream-busy.
    let started = Instant::now();
    let res = raw(
        shim.addr,
        &post("/api/tradeInfo", "function_div=E04&order_no=1"),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(upstream.seen().len(), 1);
    // The drippers finish their forms and are served in turn.
    for mut conn in drippers {
        conn.send(&[b'x'; 84]).await;
        assert_eq!(conn.read_response().await.status, 200);
    }
    assert_eq!(upstream.seen().len(), 4);
}

/// Sends `head`, then `body_len` bytes one every 200 ms (never a stall of `body_read_timeout`
/// = 500 ms), and returns the first bytes of the answer and when they came.
async fn drip(addr: std::net::SocketAddr, head: &str, body_len: usize) -> (String, Duration) {
    use tokio::io::AsyncReadExt as _;
    let (mut rd, mut wr) = TcpStream::connect(addr).await.unwrap().into_split();
    wr.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        for _ in 0..body_len {
            if wr.write_all(b"x").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let mut buf = vec![0; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), rd.read(&mut buf))
        .await
        .expect("no answer within 5 s")
        .unwrap();
    writer.abort();
    (
        String::from_utf8_lossy(&buf[..n]).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn finding_2_dripped_bodies_are_cut_off_at_body_read_timeout_the_relay_included() {
    let upstream = Upstream::fixed("OK").await;
    let shim = TestShim::start(
        &probe_config(&upstream.url(), "body_read_timeout = \"500ms\""),
        t(BEFORE),
    )
    .await;
    // The notification relay, buffering for the settleMethod drill; then an API form.
    for head in [
        "POST /notify HTTP/1.1\r\nHost: s\r\nX-Webcollect-Shim-Drill: settle-method\r\nContent-Length: 40\r\n\r\n",
        "POST /api/tradeInfo HTTP/1.1\r\nHost: s\r\nContent-Length: 40\r\n\r\n",
    ] {
        let (answer, took) = drip(shim.addr, head, 40).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(
            answer.contains("x-webcollect-shim: body-timeout"),
            "{answer}"
        );
        // At body_read_timeout (500 ms), long before the 8 s the whole body would take.
        assert!(took < Duration::from_secs(4), "{took:?}");
    }
    assert!(
        upstream.seen().is_empty(),
        "a dripped body reached the upstream"
    );
}

#[tokio::test]
async fn finding_2_an_upstream_dripping_a_rewritten_answer_gets_504_at_response_timeout() {
    let upstream = Upstream::start(|_req| async {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        tokio::spawn(async move {
            for _ in 0..40 {
                if tx.send(bytes::Bytes::from_static(b" ")).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        let mut res = Response::new(ChannelBody(rx).boxed());
        res.headers_mut()
            .insert("content-type", "text/xml".parse().unwrap());
        res
    })
    .await;
    let toml = probe_config(&upstream.url(), "")
        .replace("response_timeout = \"2s\"", "response_timeout = \"600ms\"");
    let shim = TestShim::start(&toml, t(BEFORE)).await;
    let started = Instant::now();
    let res = raw(
        shim.addr,
        &post("/api/tradeInfo", "function_div=E04&order_no=1"),
    )
    .await;
    assert_eq!(res.status, 504, "{}", res.text());
    assert!(
        started.elapsed() < Duration::from_millis(2000),
        "{:?}",
        started.elapsed()
    );
}

/// The journal's records (the same outcome the log line and the metrics get, from one
/// writer), once `n` of them are there.
async fn records(shim: &TestShim, n: usize) -> Vec<serde_json::Value> {
    let mut records = Vec::new();
    for _ in 0..100 {
        let res = admin_read(
            shim,
            "/report?from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z&records=1",
        )
        .await;
        records = json(&res)["records"].as_array().unwrap().clone();
        if records.len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    records
}

#[tokio::test]
async fn finding_4_every_way_a_client_leaves_gets_its_record() {
    // An upstream that answers `/slow` after 2 s and streams `/stream` slowly.
    let upstream = Upstream::start(|req: http::Request<hyper::body::Incoming>| async move {
        if req.uri().path().ends_with("/slow") {
            tokio::time::sleep(Duration::from_secs(2)).await;
            return Response::new(full("late"));
        }
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        tokio::spawn(async move {
            for _ in 0..50 {
                if tx.send(bytes::Bytes::from_static(b"chunk")).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Response::new(ChannelBody(rx).boxed())
    })
    .await;
    let toml = format!(
        "{}\n[report]\nalways = true\n",
        probe_config(&upstream.url(), "")
            .replace("response_timeout = \"2s\"", "response_timeout = \"5s\"")
    );
    let shim = TestShim::start(&toml, t(BEFORE)).await;
    // 1. During the upload: half a form, then gone.
    let mut conn = RawConn::connect(shim.addr).await;
    conn.send(b"POST /api/upload HTTP/1.1\r\nHost: s\r\nX-Request-Id: gone-upload\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\norder_no=U-1&")
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(conn);
    // 2. While waiting for the upstream.
    let mut conn = RawConn::connect(shim.addr).await;
    conn.send(b"POST /api/slow HTTP/1.1\r\nHost: s\r\nX-Request-Id: gone-waiting\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 12\r\n\r\norder_no=W-1")
        .await;
    crate::support::eventually(Duration::from_secs(5), "the upstream saw it", || async {
        upstream.seen().iter().any(|s| s.target == "/api/slow")
    })
    .await;
    drop(conn);
    // 3. During the download: the head came, then the client left.
    let mut conn = RawConn::connect(shim.addr).await;
    conn.send(b"GET /static/stream HTTP/1.1\r\nHost: s\r\nX-Request-Id: gone-download\r\n\r\n")
        .await;
    let mut head = [0u8; 12];
    tokio::io::AsyncReadExt::read_exact(conn.stream_mut(), &mut head)
        .await
        .unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    drop(conn);

    let records = records(&shim, 2).await;
    let find = |id: &str| {
        records
            .iter()
            .find(|r| r["request_id"] == id)
            .unwrap_or_else(|| panic!("no record of {id}: {records:?}"))
            .clone()
    };
    let upload = find("gone-upload");
    assert_eq!(
        (upload["status"].as_u64(), upload["error"].as_str()),
        (Some(499), Some("client-gone"))
    );
    assert_eq!(upload["reached"], false, "{upload}");
    assert_eq!(upload["order_no"], "U-1");
    let waiting = find("gone-waiting");
    assert_eq!(
        (waiting["status"].as_u64(), waiting["error"].as_str()),
        (Some(499), Some("client-gone"))
    );
    assert_eq!(waiting["reached"], true, "{waiting}");
    // A passthrough route is not journalled, but its line and its count are written: the
    // metrics show the download's 200 and the two 499s.
    let metrics = admin_read(&shim, "/metrics").await.text();
    assert!(
        metrics.contains(
            "webcollect_shim_requests_total{route=\"static\",decision=\"pass\",status=\"2xx\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("webcollect_shim_requests_total{route=\"api\",decision=\"bad_request\",status=\"4xx\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "webcollect_shim_requests_total{route=\"api\",decision=\"pass\",status=\"4xx\"} 1"
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn finding_1_one_clients_http2_streams_take_at_most_max_upstream_per_client() {
    let (upstream, peak) = slow_upstream(Duration::from_millis(300)).await;
    let toml = probe_config(&upstream.url(), "max_upstream_per_client = 2").replace(
        "connect_timeout = \"1s\"",
        "connect_timeout = \"5s\"\nmax_connections = 4",
    );
    let shim = TestShim::start(&toml, t(BEFORE)).await;
    let sender = h2c(shim.addr).await;
    // Ten streams of one client on a streaming route (kind passthrough).
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let mut sender = sender.clone();
            tokio::spawn(async move {
                let req = http::Request::get("http://shim.test/static/a.css")
                    .body(full(""))
                    .unwrap();
                sender.send_request(req).await.unwrap().status()
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Another client is served at once: the first holds two of the upstream's four.
    let started = Instant::now();
    let res = raw(shim.addr, &get("/static/b.css")).await;
    assert_eq!(res.status, 200);
    assert!(
        started.elapsed() < Duration::from_millis(600),
        "{:?}",
        started.elapsed()
    );
    for call in calls {
        assert_eq!(
            call.await.unwrap(),
            200,
            "the streams wait their turn, none refused"
        );
    }
    assert_eq!(upstream.seen().len(), 11);
    // Two of the first client's streams, plus the other client: never more than three.
    assert!(
        peak.load(Ordering::SeqCst) <= 3,
        "{}",
        peak.load(Ordering::SeqCst)
    );
}

/// Durations have no upper bound in the config. A deadline past what the clock can hold
/// used to panic the request (`Instant + Duration`): the pool's connect wait and a streamed
/// body's stall bound now wait as long as the clock goes, as the response deadline and the
/// form's read already did.
#[tokio::test]
async fn timeouts_past_the_clocks_range_wait_instead_of_panicking() {
    let upstream = Upstream::fixed("OK").await;
    let forever = "\"18446744073709551615s\"";
    let toml = probe_config(&upstream.url(), &format!("body_read_timeout = {forever}"))
        .replace(
            "connect_timeout = \"1s\"",
            &format!("connect_timeout = {forever}"),
        )
        .replace(
            "response_timeout = \"2s\"",
            &format!("response_timeout = {forever}"),
        );
    assert!(toml.contains(&format!("response_timeout = {forever}")));
    let shim = TestShim::start(&toml, t(BEFORE)).await;
    // An API form, read whole; then a streamed body that stalls between its chunks.
    let res = raw(shim.addr, &post("/api/tradeInfo", "function_div=E04")).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let mut conn = RawConn::connect(shim.addr).await;
    conn.send(b"POST /static/up HTTP/1.1\r\nHost: s\r\nContent-Length: 8\r\n\r\nabcd")
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    conn.send(b"efgh").await;
    let res = conn.read_response().await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(upstream.seen().len(), 2);
}
