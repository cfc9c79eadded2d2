//! Robustness under load, faults and bad input. Bounded in time; set
//! `WEBCOLLECT_SHIM_HEAVY=1` for the heavier variants (longer runs, more clients).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::*;

const OK_XML: &str = "<return><returnCode>0</returnCode></return>";

fn heavy() -> bool {
    std::env::var_os("WEBCOLLECT_SHIM_HEAVY").is_some()
}

fn is_maintenance(res: &RawResponse) -> bool {
    res.status == 200
        && res.header("x-webcollect-shim") == Some("maintenance")
        && res.text().contains("<errorCode>Z01000000</errorCode>")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_under_load_fails_no_request() {
    let upstream = Upstream::fixed(OK_XML).await;
    let dir = std::env::temp_dir().join(format!("webcollect-shim-robust-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("shim.toml");
    // Two configs: one with a window covering now (maintenance), one without (pass).
    let passing = config(&upstream.url());
    let maintaining = passing.replace(
        "start = \"2020-04-20 02:00\"",
        "start = \"2020-04-20 00:00\"",
    );
    std::fs::write(&path, &passing).unwrap();
    let shim = TestShim::start_file(&path, t("2020-04-20T01:00:00+09:00")).await;
    let (clients, run_for, reloads) = if heavy() {
        (200, Duration::from_secs(10), 50)
    } else {
        (200, Duration::from_secs(3), 50)
    };
    let addr = shim.addr;
    let deadline = Instant::now() + run_for;
    let failures = Arc::new(Mutex::new(Vec::new()));
    let counts = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let (failures, counts) = (failures.clone(), counts.clone());
            tokio::spawn(async move {
                let mut conn = RawConn::connect(addr).await;
                while Instant::now() < deadline {
                    conn.send(&post("/api/creditToken", &format!("client={i}")))
                        .await;
                    let res = conn.read_response().await;
                    if is_maintenance(&res) {
                        counts.0.fetch_add(1, Ordering::Relaxed);
                    } else if res.status == 200 && res.text() == OK_XML {
                        counts.1.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("{} {}", res.status, res.text()));
                    }
                }
            })
        })
        .collect();
    let pause = run_for / (reloads + 1);
    for n in 0..reloads {
        tokio::time::sleep(pause).await;
        std::fs::write(&path, if n % 2 == 0 { &maintaining } else { &passing }).unwrap();
        let shared = shim.shared.clone();
        tokio::task::spawn_blocking(move || shared.reload())
            .await
            .unwrap()
            .unwrap();
    }
    for task in tasks {
        task.await.unwrap();
    }
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} failed requests, e.g. {:?}",
        failures.len(),
        failures.first()
    );
    let (maintained, passed) = (
        counts.0.load(Ordering::Relaxed),
        counts.1.load(Ordering::Relaxed),
    );
    assert!(
        maintained > 0 && passed > 0,
        "maintained {maintained}, passed {passed}"
    );
    eprintln!(
        "reload under load: {maintained} maintenance + {passed} pass responses, {reloads} reloads, 0 failures"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_boundary_under_load() {
    let upstream = Upstream::fixed(OK_XML).await;
    let shim = TestShim::start(&config(&upstream.url()), t("2020-04-20T01:59:59.999+09:00")).await;
    let addr = shim.addr;
    let burst = |n: usize| async move {
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                tokio::spawn(async move {
                    raw(addr, &post("/api/creditToken", &format!("i={i}"))).await
                })
            })
            .collect();
        let mut out = Vec::new();
        for task in tasks {
            out.push(task.await.unwrap());
        }
        out
    };
    let n = if heavy() { 2000 } else { 300 };
    for (at, maintained) in [
        ("2020-04-20T01:59:59.999+09:00", false),
        ("2020-04-20T02:00:00+09:00", true),
        ("2020-04-20T05:59:59.999+09:00", true),
        ("2020-04-20T06:00:00+09:00", false),
    ] {
        shim.clock.set(t(at));
        let before = upstream.seen().len();
        for res in burst(n).await {
            if maintained {
                assert!(
                    is_maintenance(&res),
                    "at {at}: {} {}",
                    res.status,
                    res.text()
                );
            } else {
                assert_eq!(
                    (res.status, res.text()),
                    (200, OK_XML.to_string()),
                    "at {at}"
                );
            }
        }
        let forwarded = upstream.seen().len() - before;
        assert_eq!(forwarded, if maintained { 0 } else { n }, "at {at}");
    }
}

/// Counts an exchange as over when dropped.
struct Done(Arc<AtomicUsize>);

impl Drop for Done {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_duplicates_no_losses_with_client_aborts() {
    // The upstream counts every id it sees; it answers after a short random delay so some
    // client aborts land while the request is upstream.
    let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::new(Mutex::new(HashMap::new()));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let (recorder, busy) = (seen.clone(), in_flight.clone());
    let upstream = Upstream::start(move |req: Request<Incoming>| {
        let (recorder, busy) = (recorder.clone(), busy.clone());
        async move {
            // Counted down even when the exchange is dropped midway.
            busy.fetch_add(1, Ordering::SeqCst);
            let _busy = Done(busy);
            let mut id = String::new();
            if let Ok(body) = req.into_body().collect().await {
                id = String::from_utf8_lossy(&body.to_bytes()).to_string();
                *recorder.lock().unwrap().entry(id.clone()).or_default() += 1;
                let delay = id.bytes().map(u64::from).sum::<u64>() % 3;
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            Response::new(full(id))
        }
    })
    .await;
    let shim = TestShim::start(&config(&upstream.url()), t(BEFORE)).await;
    let addr = shim.addr;
    let total = if heavy() { 50_000 } else { 10_000 };
    let concurrency = 50;
    let next = Arc::new(AtomicUsize::new(0));
    let outcomes = Arc::new(Mutex::new((Vec::new(), Vec::new(), Vec::new(), Vec::new())));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (next, outcomes) = (next.clone(), outcomes.clone());
            tokio::spawn(async move {
                let mut conn: Option<RawConn> = None;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return;
                    }
                    let id = format!("id-{i:06}");
                    // Every 10th request is refused by the shim (forced maintenance); every
                    // 7th is abandoned by the client after 1 ms.
                    let refused = i % 10 == 0;
                    let abort = i % 7 == 0;
                    let drill = if refused { "x-webcollect-shim-drill: maintenance\r\n" } else { "" };
                    let request = format!(
                        "POST /api/creditToken HTTP/1.1\r\nHost: s\r\n{drill}Content-Length: {}\r\n\r\n{id}",
                        id.len()
                    );
                    let c = match conn.as_mut() {
                        Some(c) => c,
                        None => conn.insert(RawConn::connect(addr).await),
                    };
                    c.send(request.as_bytes()).await;
                    if abort {
                        let done = tokio::time::timeout(Duration::from_millis(1), c.read_response()).await;
                        if done.is_err() {
                            conn = None; // drop the connection mid-request
                            outcomes.lock().unwrap().2.push(id);
                            continue;
                        }
                        let res = done.unwrap();
                        let mut o = outcomes.lock().unwrap();
                        if refused { o.1.push(id) } else { assert_eq!(res.text(), id); o.0.push(id) }
                        continue;
                    }
                    let res = c.read_response().await;
                    let mut o = outcomes.lock().unwrap();
                    if refused {
                        assert!(is_maintenance(&res));
                        o.1.push(id);
                    } else if res.status == 200 {
                        assert_eq!(res.text(), id, "a response for another request");
                        o.0.push(id);
                    } else {
                        // A 502/504 (e.g. the upstream dropped a pooled connection just as it
                        // was reused) is never retried: the id reached the upstream at most
                        // once. The shim may close this connection after it.
                        assert!(matches!(res.status, 502 | 504), "{} {}", res.status, res.text());
                        o.3.push(id);
                        conn = None;
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    // Requests the clients gave up on may still be upstream: let them finish there.
    eventually(Duration::from_secs(5), "the upstream idle", || async {
        in_flight.load(Ordering::SeqCst) == 0
    })
    .await;
    let (completed, refused, aborted, failed) = outcomes.lock().unwrap().clone();
    let seen = seen.lock().unwrap();
    assert_eq!(
        completed.len() + refused.len() + aborted.len() + failed.len(),
        total
    );
    for id in &completed {
        assert_eq!(
            seen.get(id),
            Some(&1),
            "completed {id} seen {:?} times upstream",
            seen.get(id)
        );
    }
    for id in &refused {
        assert_eq!(seen.get(id), None, "refused {id} reached the upstream");
    }
    for id in &aborted {
        assert!(
            seen.get(id).copied().unwrap_or(0) <= 1,
            "aborted {id} duplicated upstream"
        );
    }
    assert!(
        seen.values().all(|&n| n == 1),
        "an id was sent upstream twice"
    );
    eprintln!(
        "no duplicates: {} completed, {} refused, {} aborted, {} failed (502); upstream saw {} distinct ids",
        completed.len(),
        refused.len(),
        aborted.len(),
        failed.len(),
        seen.len()
    );
}

#[tokio::test]
async fn upstream_reset_mid_response_aborts_the_client_and_the_shim_survives() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\npartial")
                    .await;
                // Reset instead of a clean close (zero linger does not block on drop).
                #[allow(deprecated)]
                let _ = stream.set_linger(Some(Duration::ZERO));
                drop(stream);
            });
        }
    });
    let shim = TestShim::start(&config(&format!("http://{addr}")), t(BEFORE)).await;
    let mut conn = RawConn::connect(shim.addr).await;
    conn.send(&post("/api/creditToken", "a=1")).await;
    // The head arrives; the body is cut short and the connection closes (no hang: the
    // harness read times out after 10 s and would fail the test).
    let mut head = Vec::new();
    let mut closed = false;
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match tokio::time::timeout(
            Duration::from_secs(10),
            conn_stream(&mut conn).read(&mut buf),
        )
        .await
        {
            Ok(Ok(0) | Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(n)) => head.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    assert!(closed, "the client hangs on a reset upstream");
    assert!(
        head.starts_with(b"HTTP/1.1 200 OK"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    assert!(head.len() < 100_000);
    // The shim is still serving.
    assert_eq!(raw(shim.addr, &get("/nope")).await.status, 404);
}

fn conn_stream(conn: &mut RawConn) -> &mut TcpStream {
    conn.stream_mut()
}

#[tokio::test]
async fn oversized_heads_and_bodies_are_refused() {
    let upstream = Upstream::fixed(OK_XML).await;
    let toml = config(&upstream.url()).replace(
        "watch_config = false",
        "watch_config = false\nmax_header_bytes = 16384\nmax_request_body = 1024",
    );
    let shim = TestShim::start(&toml, t(BEFORE)).await;
    // A 32 KiB header: 431.
    let big = format!(
        "GET /api/x HTTP/1.1\r\nHost: s\r\nX-Big: {}\r\n\r\n",
        "a".repeat(32 * 1024)
    );
    assert_eq!(raw(shim.addr, big.as_bytes()).await.status, 431);
    // A declared body over the limit: 413 before anything is forwarded.
    let res = raw(shim.addr, &post("/api/creditToken", &"x".repeat(2048))).await;
    assert_eq!(res.status, 413);
    assert_eq!(res.header("x-webcollect-shim"), Some("payload-too-large"));
    // A chunked body that grows past the limit: 413, and the upstream never gets a whole one.
    let mut chunked =
        b"POST /api/creditToken HTTP/1.1\r\nHost: s\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..4 {
        chunked.extend_from_slice(format!("400\r\n{}\r\n", "y".repeat(1024)).as_bytes());
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let res = raw(shim.addr, &chunked).await;
    assert_eq!(res.status, 413, "{}", res.text());
    assert!(upstream.seen().len() <= 1);
    // The shim is fine afterwards.
    assert_eq!(
        raw(shim.addr, &post("/api/creditToken", "a=1"))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn conflicting_framing_is_400_and_nothing_is_forwarded() {
    let upstream = Upstream::fixed(OK_XML).await;
    let shim = TestShim::start(&config(&upstream.url()), t(BEFORE)).await;
    for request in [
        &b"POST /api/creditToken HTTP/1.1\r\nHost: s\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"[..],
        &b"POST /api/creditToken HTTP/1.1\r\nHost: s\r\nTransfer-Encoding: gzip, chunked, identity\r\n\r\n0\r\n\r\n"[..],
        &b"POST /api/creditToken HTTP/1.1\r\nHost: s\r\nContent-Length: -1\r\n\r\n"[..],
    ] {
        let res = raw(shim.addr, request).await;
        assert_eq!(res.status, 400, "{}", String::from_utf8_lossy(request));
    }
    // CL together with TE: hyper follows RFC 9112 §6.3 (TE wins) only for chunked; the
    // shim must never forward a body whose length two headers disagree on.
    let both = b"POST /api/creditToken HTTP/1.1\r\nHost: s\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    let res = raw(shim.addr, both).await;
    assert!(res.status == 400 || res.status == 200, "{}", res.status);
    if res.status == 200 {
        // Forwarded as one body of 5 bytes (read whole, as every API form is), never as 3
        // bytes plus a smuggled request.
        assert_eq!(upstream.seen().len(), 1);
        let headers = &upstream.seen()[0].headers;
        assert_eq!(
            headers.get("content-length").map(|v| v.as_bytes()),
            Some(&b"5"[..])
        );
        assert!(!headers.contains_key("transfer-encoding"));
    } else {
        assert!(upstream.seen().is_empty());
    }
}

#[tokio::test]
async fn odd_paths_are_answered_not_crashed_on() {
    let upstream = Upstream::fixed(OK_XML).await;
    let shim = TestShim::start(&config(&upstream.url()), t(BEFORE)).await;
    for path in [
        &b"/api/\xff\xfe"[..],
        b"/%00%ff",
        b"/api/../../etc/passwd",
        b"/\x01\x7f",
        b"*",
        b"//",
        b"/api/%",
    ] {
        let mut request = b"GET ".to_vec();
        request.extend_from_slice(path);
        request.extend_from_slice(b" HTTP/1.1\r\nHost: s\r\n\r\n");
        let res = raw(shim.addr, &request).await;
        assert!(
            (200..500).contains(&res.status),
            "{:?}: {}",
            String::from_utf8_lossy(path),
            res.status
        );
    }
    assert_eq!(
        raw(shim.addr, &post("/api/creditToken", "a=1"))
            .await
            .status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_header_clients_do_not_delay_others_and_are_closed() {
    let upstream = Upstream::fixed(OK_XML).await;
    let toml = config(&upstream.url()).replace(
        "watch_config = false",
        "watch_config = false\nheader_read_timeout = \"1s\"",
    );
    let shim = TestShim::start(&toml, t(BEFORE)).await;
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let sample = |addr| async move {
        let mut times = Vec::new();
        for _ in 0..9 {
            let started = Instant::now();
            assert_eq!(
                raw(addr, &post("/api/creditToken", "a=1")).await.status,
                200
            );
            times.push(started.elapsed());
        }
        median(times)
    };
    let baseline = sample(shim.addr).await;
    // Each slow connection costs two descriptors in this process (client and server side):
    // stay within the soft limit on machines where it is low.
    let wanted = if heavy() { 5000 } else { 1000 };
    let slow = wanted.min(open_file_limit().saturating_sub(300) / 2);
    assert!(
        slow >= 200,
        "RLIMIT_NOFILE too low for this test; raise `ulimit -n`"
    );
    if slow < wanted {
        eprintln!("slow-header test: {slow} connections instead of {wanted} (ulimit -n)");
    }
    let mut loris = Vec::new();
    for _ in 0..slow {
        let mut s = TcpStream::connect(shim.addr).await.unwrap();
        s.write_all(b"POST /api/creditToken HTTP/1.1\r\nHost: s\r\nX-Slow: ")
            .await
            .unwrap();
        loris.push(s);
    }
    let loaded = sample(shim.addr).await;
    assert!(
        loaded.saturating_sub(baseline) < Duration::from_millis(100),
        "median latency {baseline:?} → {loaded:?} with {slow} slow-header connections"
    );
    // After the header timeout, the shim closes them: each read ends (EOF, a 408 or a
    // reset) before the deadline; only running into it means a connection was left open.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut closed = 0;
    for s in &mut loris {
        let mut buf = [0u8; 256];
        if tokio::time::timeout_at(deadline, s.read(&mut buf))
            .await
            .is_ok()
        {
            closed += 1;
        }
    }
    assert_eq!(
        closed, slow,
        "slow-header connections left open past the header timeout"
    );
}

/// The soft `RLIMIT_NOFILE` of this process.
fn open_file_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            let line = limits
                .lines()
                .find(|l| l.starts_with("Max open files"))?
                .to_string();
            line.split_whitespace().nth(3)?.parse().ok()
        })
        .unwrap_or(1024)
}

#[tokio::test]
async fn client_abort_mid_upload_cancels_upstream_and_frees_descriptors() {
    // The upstream reads the body slowly and records how the body ended.
    let ended = Arc::new(Mutex::new(Vec::<&'static str>::new()));
    let record = ended.clone();
    let upstream = Upstream::start(move |req: Request<Incoming>| {
        let record = record.clone();
        async move {
            let mut body = req.into_body();
            let how = loop {
                match body.frame().await {
                    None => break "complete",
                    Some(Err(_)) => break "cancelled",
                    Some(Ok(_)) => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            };
            record.lock().unwrap().push(how);
            Response::new(full(OK_XML))
        }
    })
    .await;
    let dir = std::env::temp_dir().join(format!("webcollect-shim-fds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("shim.toml");
    std::fs::write(&path, config(&upstream.url())).unwrap();
    let (process, proxy, _admin) = ShimProcess::start(&path, false);
    // Warm up: one complete request opens the pooled upstream connection.
    assert_eq!(
        raw(proxy, &post("/api/creditToken", "a=1")).await.status,
        200
    );
    let baseline = process.open_fds();
    for n in 0..20 {
        let mut s = TcpStream::connect(proxy).await.unwrap();
        // A streaming route: an `api` form would be read whole before it is forwarded.
        s.write_all(
            b"POST /webcollect/upload HTTP/1.1\r\nHost: s\r\nContent-Length: 1048576\r\n\r\n",
        )
        .await
        .unwrap();
        s.write_all(&[b'x'; 64 * 1024]).await.unwrap();
        // Abort once the upload has reached the upstream (the warm-up was the first).
        eventually(Duration::from_secs(5), "the upload upstream", || async {
            upstream.seen().len() > n + 1
        })
        .await;
        drop(s);
    }
    eventually(
        Duration::from_secs(5),
        "every upload ended, fds back",
        || async { process.open_fds() <= baseline && ended.lock().unwrap().len() >= 21 },
    )
    .await;
    let fds = process.open_fds();
    let endings = ended.lock().unwrap().clone();
    assert_eq!(
        endings.iter().filter(|e| **e == "cancelled").count(),
        20,
        "{endings:?}"
    );
    assert!(
        fds <= baseline,
        "open fds {baseline} → {fds} after 20 aborted uploads"
    );
    process.stop();
}
