//! Hardening's load test (issue 25, finding 3): the real binary under merchant load, with a
//! reload every half second and the admin API hammered in parallel (drills opened up to and
//! past `max_drills`, oversized titles, every read, reports with their records), keeps its
//! memory, its descriptors and its answers bounded, and gives the descriptors back when the
//! load ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::*;

const OK_XML: &str = "<return><returnCode>0</returnCode></return>";
const MAX_DRILLS: usize = 32;
const MERCHANTS: usize = 64;
/// Everything the console and the fleet CLI read, and the report with its records.
const READS: [&str; 6] = [
    "/status",
    "/drills",
    "/timeline",
    "/traffic",
    "/metrics",
    "/report?from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z&records=1",
];

/// Resident memory of `pid`, in KiB.
fn rss_kib(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// A drill request with `token`, as an operator's script would send it.
fn open_drill(id: &str, title: &str) -> Vec<u8> {
    let body =
        format!(r#"{{"id":"{id}","services":["webcollect"],"duration":"10m","title":"{title}"}}"#);
    admin_request("POST", "/drills", Some(ADMIN_TOKEN), &body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finding_3_admin_hammered_under_load_keeps_memory_and_descriptors_bounded() {
    let upstream = Upstream::fixed(OK_XML).await;
    let dir = fresh_dir("admin-load");
    let path = dir.join("shim.toml");
    let toml = with_token(&format!(
        "max_drills = {MAX_DRILLS}\n{}\n[report]\nalways = true\nmax_records = 5000\n",
        // Idle upstream connections are closed after a second, so the descriptors' return
        // to rest is seen within the test (the sweeper runs every 5 s).
        config(&upstream.url()).replace(
            "response_timeout = \"2s\"",
            "response_timeout = \"2s\"\npool_idle_timeout = \"1s\"",
        )
    ));
    std::fs::write(&path, toml).unwrap();
    let (running, proxy, admin) = ShimProcess::start_with_env(
        &path,
        false,
        // Info, as in production: a line per request.
        &[
            ("WEBCOLLECT_SHIM_ADMIN_TOKEN", ADMIN_TOKEN),
            ("RUST_LOG", "info"),
        ],
    );
    let pid = running.pid;
    // At rest: after one request of each kind, so what is opened once (the runtimes' and the
    // reload's descriptors) is in the baseline.
    let merchant = "POST /api/traderIp HTTP/1.1\r\nHost: s\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(raw(proxy, merchant.as_bytes()).await.status, 200);
    for path in READS {
        assert_eq!(raw(admin, &admin_get(path)).await.status, 200, "{path}");
    }
    let reload = admin_request("POST", "/reload", Some(ADMIN_TOKEN), "");
    assert_eq!(raw(admin, &reload).await.status, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fds_at_rest = running.open_fds();

    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    // Merchants: form POSTs on fresh connections, as fast as they are answered.
    for n in 0..MERCHANTS {
        let (stop, served) = (stop.clone(), served.clone());
        tasks.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let body = format!("function_div=A08&trader_code=888&order_no=L-{n}");
                let req = format!(
                    "POST /api/traderIp HTTP/1.1\r\nHost: s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                let res = raw(proxy, req.as_bytes()).await;
                assert_eq!(res.status, 200, "{}", res.text());
                served.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    // Writers: open drills past max_drills (409), titles far past the limit (400), close.
    for w in 0..4 {
        let stop = stop.clone();
        tasks.spawn(async move {
            let huge = "x".repeat(64 * 1024);
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let id = format!("load-{w}-{i}");
                let title = "避難訓練".repeat(50);
                let res = raw(admin, &open_drill(&id, &title)).await;
                assert!(matches!(res.status, 201 | 409), "{}", res.text());
                let res = raw(admin, &open_drill(&format!("huge-{w}-{i}"), &huge)).await;
                assert!(matches!(res.status, 400 | 413), "{}", res.status);
                if i % 3 == 0 {
                    let path = format!("/drills/load-{w}-{}", i - 1);
                    let res = raw(
                        admin,
                        &admin_request("DELETE", &path, Some(ADMIN_TOKEN), ""),
                    )
                    .await;
                    assert!(matches!(res.status, 200 | 204 | 404), "{}", res.text());
                }
            }
        });
    }
    // Readers.
    for r in 0..4 {
        let stop = stop.clone();
        tasks.spawn(async move {
            let mut i = r;
            while !stop.load(Ordering::Relaxed) {
                let path = READS[i % READS.len()];
                let res = raw(admin, &admin_get(path)).await;
                assert_eq!(res.status, 200, "{path}: {}", res.text());
                assert!(res.body.len() < 8 << 20, "{} bytes", res.body.len());
                i += 1;
            }
        });
    }
    // A reload every half second.
    {
        let stop = stop.clone();
        tasks.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let res = raw(
                    admin,
                    &admin_request("POST", "/reload", Some(ADMIN_TOKEN), ""),
                )
                .await;
                assert_eq!(res.status, 200, "{}", res.text());
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
    }

    // Warm-up: the pools, the journal's store and the allocator's arenas fill.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_warm = rss_kib(pid);
    let (mut rss_max, mut fds_max) = (rss_warm, running.open_fds());
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        rss_max = rss_max.max(rss_kib(pid));
        fds_max = fds_max.max(running.open_fds());
    }
    stop.store(true, Ordering::Relaxed);
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let served = served.load(Ordering::Relaxed);
    assert!(served > 500, "only {served} merchant requests were served");

    // Memory: what the warm-up reached, plus room for the journal's last records (capped at
    // 5,000) and allocator slack; 540 drills with 64 KB titles once took it to 379 MB.
    assert!(
        rss_max < rss_warm + 64 * 1024,
        "RSS grew from {rss_warm} KiB to {rss_max} KiB"
    );
    // Descriptors: per client (73 of them at once) its connection, the one it has just
    // closed that the shim has not yet seen close, and at most one upstream connection.
    let clients = MERCHANTS + 4 + 4 + 1;
    assert!(
        fds_max <= fds_at_rest + 3 * clients,
        "{fds_max} descriptors open (at rest: {fds_at_rest})"
    );
    // Drills: never more than max_drills open; /status stays small.
    let status = raw(admin, &admin_get("/status")).await;
    let open = json(&status)["drills"].as_array().unwrap().len();
    assert!(open <= MAX_DRILLS, "{open} drills open");
    assert!(
        status.body.len() < 256 * 1024,
        "{} bytes",
        status.body.len()
    );
    // The connections are given back once the load ends.
    eventually(
        Duration::from_secs(15),
        "descriptors back to rest",
        || async { running.open_fds() <= fds_at_rest + 4 },
    )
    .await;
    eprintln!(
        "{served} merchant requests; RSS {rss_warm} KiB warm, {rss_max} KiB at most; \
         {fds_at_rest} descriptors at rest, {fds_max} at most"
    );
    running.stop();
}
