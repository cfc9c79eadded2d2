//! Issue 25 beyond the request path: bounded admin state (finding 3), a truthful and safe
//! fleet CLI (5, 6), safe files (7, 9), a linear restore (8), the local CA (10), throttled
//! handshake logs (11). `Host` checked on every admin request (13) is in `cross_site.rs`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

const OK_XML: &str = "<return><returnCode>0</returnCode></return>";

fn drill(body: &Value) -> String {
    body.to_string()
}

fn limited(upstream: &str, state: Option<&std::path::Path>) -> String {
    let state = state.map_or(String::new(), |d| {
        format!("state_dir = \"{}\"\n", d.display())
    });
    format!(
        "[admin]\nmax_drills = 3\nmax_drill_duration = \"1h\"\n{state}{}",
        config(upstream)
    )
}

#[tokio::test]
async fn finding_3_titles_ids_services_durations_and_the_number_of_drills_are_bounded() {
    let upstream = Upstream::fixed(OK_XML).await;
    let shim = TestShim::start(&limited(&upstream.url(), None), t(BEFORE)).await;
    let open = |body: Value| {
        let shim = &shim;
        async move { admin(shim, "POST", "/drills", &drill(&body)).await }
    };
    let refused = [
        // 201 characters of title.
        json!({"services": ["webcollect.api"], "duration": "10m", "title": "訓".repeat(201)}),
        // Control characters in a title (a clear-screen for the operator's terminal).
        json!({"services": ["webcollect.api"], "duration": "10m", "title": "a\u{1b}[2Jb"}),
        // 65 characters of id, and an id outside the alphabet.
        json!({"id": "a".repeat(65), "services": ["webcollect.api"], "duration": "10m"}),
        json!({"id": "a\u{1b}]0;x", "services": ["webcollect.api"], "duration": "10m"}),
        json!({"id": "a b", "services": ["webcollect.api"], "duration": "10m"}),
        // A service the config does not have, neither above nor below a route's.
        json!({"services": ["webcollect.nope"], "duration": "10m"}),
        json!({"services": ["merchant"], "duration": "10m"}),
        // Longer than max_drill_duration (1h), and than the 7-day ceiling.
        json!({"services": ["webcollect.api"], "duration": "61m"}),
        json!({"services": ["webcollect.api"], "duration": "8d"}),
    ];
    for body in refused {
        let res = open(body.clone()).await;
        assert_eq!(res.status, 400, "{body}: {}", res.text());
    }
    // At the limits: 200 characters, a 64-character id, an ancestor of routes' services
    // and a descendant of one, an hour.
    let at_limits = [
        json!({"id": "a".repeat(64), "services": ["webcollect"], "duration": "1h", "title": "訓".repeat(200)}),
        json!({"services": ["webcollect.api.settle"], "duration": "10m"}),
        json!({"services": ["atobarai.api"], "duration": "10m"}),
    ];
    for body in at_limits {
        let res = open(body.clone()).await;
        assert_eq!(res.status, 201, "{body}: {}", res.text());
    }
    // max_drills = 3 are open: the next one is 409 until one closes.
    let res = open(json!({"services": ["webcollect.api"], "duration": "10m"})).await;
    assert_eq!(res.status, 409, "{}", res.text());
    assert!(res.text().contains("max_drills"), "{}", res.text());
    let closed = admin(&shim, "DELETE", &format!("/drills/{}", "a".repeat(64)), "").await;
    assert_eq!(closed.status, 204);
    let res = open(json!({"services": ["webcollect.api"], "duration": "10m"})).await;
    assert_eq!(res.status, 201, "{}", res.text());
    let status = json(&admin_read(&shim, "/status").await);
    assert_eq!(status["drills"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn finding_3_restore_applies_the_same_limits() {
    let upstream = Upstream::fixed(OK_XML).await;
    let dir = fresh_dir("restore-limits").join("state");
    std::fs::create_dir_all(&dir).unwrap();
    let stored = |id: &str, title: &str, services: &[&str], end: &str| json!({"id": id, "title": title, "start": "2020-04-19T15:50:00Z", "end": end, "services": services});
    // A 64 KB title: never written by the shim, so the file is set aside.
    let file = dir.join("drills.json");
    let doc = json!({"format": 1, "drills": [stored("big", &"x".repeat(64 * 1024), &["webcollect.api"], "2020-04-19T16:30:00Z")]});
    std::fs::write(&file, doc.to_string()).unwrap();
    let shim = TestShim::start(&limited(&upstream.url(), Some(&dir)), t(BEFORE)).await;
    let status = json(&admin_read(&shim, "/status").await);
    assert_eq!(status["drills"], json!([]));
    assert!(dir.join("drills.json.corrupt").exists());
    shim.stop().await;

    // Valid drills the config does not admit are dropped one by one: an unknown service, a
    // drill longer than max_drill_duration, and the ones past max_drills.
    let doc = json!({"format": 1, "drills": [
        stored("gone", "t", &["merchant.gone"], "2020-04-19T16:30:00Z"),
        stored("long", "t", &["webcollect.api"], "2020-04-19T18:00:00Z"),
        stored("a", "t", &["webcollect.api"], "2020-04-19T16:30:00Z"),
        stored("b", "t", &["webcollect.link"], "2020-04-19T16:30:00Z"),
        stored("c", "t", &["webcollect"], "2020-04-19T16:30:00Z"),
        stored("d", "t", &["atobarai.api"], "2020-04-19T16:30:00Z"),
    ]});
    std::fs::write(&file, doc.to_string()).unwrap();
    let shim = TestShim::start(&limited(&upstream.url(), Some(&dir)), t(BEFORE)).await;
    let status = json(&admin_read(&shim, "/status").await);
    let ids: Vec<&str> = status["drills"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "b", "c"]);
    shim.stop().await;
}

#[tokio::test]
async fn finding_8_restoring_60000_drills_is_linear() {
    let upstream = Upstream::fixed(OK_XML).await;
    let dir = fresh_dir("restore-linear").join("state");
    std::fs::create_dir_all(&dir).unwrap();
    let drills: Vec<Value> = (0..60_000)
        .map(|i| {
            json!({"id": format!("drill-{i}"), "title": "t", "start": "2020-04-19T15:50:00Z",
                   "end": "2020-04-19T16:30:00Z", "services": ["webcollect.api"]})
        })
        .collect();
    std::fs::write(
        dir.join("drills.json"),
        json!({"format": 1, "drills": drills}).to_string(),
    )
    .unwrap();
    let toml = format!(
        "[admin]\nmax_drills = 60000\nstate_dir = \"{}\"\n{}",
        dir.display(),
        config(&upstream.url())
    );
    let started = Instant::now();
    let shim = TestShim::start(&toml, t(BEFORE)).await;
    let took = started.elapsed();
    eprintln!("..restored 60,000 drills in {took:?}");
    // It took 35 s when each drill was compared with every earlier one.
    assert!(took < Duration::from_secs(10), "{took:?}");
    let next = admin(
        &shim,
        "POST",
        "/drills",
        r#"{"services": ["webcollect.api"], "duration": "1m"}"#,
    )
    .await;
    // 60,000 of 60,000 are open.
    assert_eq!(next.status, 409, "{}", next.text());
    shim.stop().await;
}

/// A replica that closes drills, then answers `/status` with `status` (as a hostile or
/// overloaded replica could).
async fn replica(status: String) -> Upstream {
    let status = std::sync::Arc::new(status);
    Upstream::start(move |req: http::Request<hyper::body::Incoming>| {
        let status = status.clone();
        async move {
            let res = http::Response::builder();
            if req.method() == http::Method::DELETE {
                res.status(204).body(full("")).unwrap()
            } else {
                res.header("content-type", "application/json")
                    .body(full(status.as_bytes().to_vec()))
                    .unwrap()
            }
        }
    })
    .await
}

async fn run_cli(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_webcollect-shim"))
            .args(args)
            .env_remove("WEBCOLLECT_SHIM_ADMIN_TOKEN")
            .env_remove("WEBCOLLECT_SHIM_CONFIG")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn status_doc(drills: &[Value]) -> String {
    json!({
        "now": "2020-04-20T02:30:00.000+09:00\u{1b}[2J",
        "active_windows": [{"id": "w\u{1b}]0;pwned\u{7}"}],
        "drills": drills,
        "config": {"version": 1, "sha256": "0123456789abcdef"},
    })
    .to_string()
}

#[tokio::test]
async fn finding_5_a_close_that_worked_is_reported_as_done_and_big_answers_are_read() {
    // Nine drills with 60 KB titles made /status too big for the CLI's 1 MiB; 2 MiB now.
    let big: Vec<Value> = (0..32)
        .map(|i| json!({"id": format!("d{i}"), "title": "x".repeat(64 * 1024), "end": "e", "services": ["webcollect"]}))
        .collect();
    let fine = replica(status_doc(&big)).await;
    let out = run_cli(vec![
        "drills".into(),
        "close".into(),
        "--admin".into(),
        fine.url(),
        "qa".into(),
    ])
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("closed qa  config v1"), "{stdout}");

    // Past 16 MiB the status is not read, but the close happened and is reported as done.
    let huge = replica("x".repeat(17 << 20)).await;
    let out = run_cli(vec![
        "drills".into(),
        "close".into(),
        "--admin".into(),
        huge.url(),
        "qa".into(),
    ])
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("closed qa  (status unreadable:"),
        "{stdout}"
    );
}

#[tokio::test]
async fn finding_6_what_a_replica_sends_reaches_the_terminal_escaped() {
    let drills =
        vec![json!({"id": "qa\u{1b}[31m", "end": "e\r\u{9b}2J", "services": ["a\u{202e}b"]})];
    let hostile = replica(status_doc(&drills)).await;
    for command in [&["status"][..], &["drills", "list"]] {
        let mut args: Vec<String> = command.iter().map(ToString::to_string).collect();
        args.extend(["--admin".to_string(), hostile.url()]);
        let out = run_cli(args).await;
        assert!(out.status.success(), "{command:?}");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        for raw in ['\u{1b}', '\r', '\u{7}', '\u{9b}', '\u{202e}'] {
            assert!(!stdout.contains(raw), "{command:?}: {raw:?} in {stdout:?}");
        }
        assert!(stdout.contains("w\\u{1b}]0;pwned\\u{7}"), "{stdout}");
    }
    // Ids and titles typed on the CLI follow the API's rules before any replica is asked.
    let out = run_cli(vec![
        "drills".into(),
        "open".into(),
        "--admin".into(),
        hostile.url(),
        "--service".into(),
        "webcollect".into(),
        "--duration".into(),
        "10m".into(),
        "--title".into(),
        "x".repeat(201),
    ])
    .await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("at most 200 characters"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn mkfifo(path: &std::path::Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn finding_7_state_files_follow_no_link_and_a_fifo_blocks_nothing() {
    let upstream = Upstream::fixed(OK_XML).await;
    let root = fresh_dir("safe-state");
    let dir = root.join("state");
    std::fs::create_dir_all(&dir).unwrap();
    let toml = format!(
        "[admin]\nstate_dir = \"{}\"\n{}",
        dir.display(),
        config(&upstream.url())
    );
    // Links planted under the old fixed temporary name and the stand-in's: never written
    // through.
    let victim = root.join("victim");
    std::fs::write(&victim, "keep").unwrap();
    for planted in ["drills.json.tmp", ".drills.json.tmp"] {
        std::os::unix::fs::symlink(&victim, dir.join(planted)).unwrap();
    }
    let shim = TestShim::start(&toml, t(BEFORE)).await;
    let res = admin(
        &shim,
        "POST",
        "/drills",
        r#"{"services": ["webcollect.api"], "duration": "10m"}"#,
    )
    .await;
    assert_eq!(res.status, 201, "{}", res.text());
    shim.stop().await;
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
    let meta = std::fs::symlink_metadata(dir.join("drills.json")).unwrap();
    assert!(meta.file_type().is_file());

    // A link as drills.json is not read through; a FIFO does not keep the shim from serving.
    std::fs::remove_file(dir.join("drills.json")).unwrap();
    std::os::unix::fs::symlink(&victim, dir.join("drills.json")).unwrap();
    let shim = TestShim::start(&toml, t(BEFORE)).await;
    assert_eq!(
        json(&admin_read(&shim, "/status").await)["drills"],
        json!([])
    );
    shim.stop().await;
    std::fs::remove_file(dir.join("drills.json")).unwrap();
    mkfifo(&dir.join("drills.json"));
    let started = Instant::now();
    let shim = tokio::time::timeout(Duration::from_secs(10), TestShim::start(&toml, t(BEFORE)))
        .await
        .expect("a FIFO as drills.json kept the shim from starting");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(admin_read(&shim, "/readyz").await.status, 200);
    shim.stop().await;

    // The stand-in refuses a FIFO as its state file at once, with a clear error.
    let fifo = root.join("stand-in.json");
    mkfifo(&fifo);
    let out = tokio::time::timeout(
        Duration::from_secs(10),
        run_cli(vec![
            "mock-gateway".into(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--state-file".into(),
            fifo.display().to_string(),
        ]),
    )
    .await
    .expect("the stand-in hung on a FIFO");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("a FIFO"), "{stderr}");
}

#[tokio::test]
async fn finding_9_a_reload_refuses_devices_and_fifos_at_once() {
    let upstream = Upstream::fixed(OK_XML).await;
    let root = fresh_dir("reload-devices");
    let path = root.join("shim.toml");
    std::fs::write(&path, config(&upstream.url())).unwrap();
    let shim = TestShim::start_file(&path, t(BEFORE)).await;
    let fifo = root.join("page.fifo");
    mkfifo(&fifo);
    for (template, what) in [
        ("/dev/zero", "a device"),
        (fifo.to_str().unwrap(), "a FIFO"),
    ] {
        std::fs::write(
            &path,
            format!(
                "[maintenance]\npage_template = {template:?}\n{}",
                config(&upstream.url())
            ),
        )
        .unwrap();
        let started = Instant::now();
        let res = admin(&shim, "POST", "/reload", "").await;
        assert_eq!(res.status, 422, "{}", res.text());
        assert!(res.text().contains(what), "{}", res.text());
        assert!(started.elapsed() < Duration::from_secs(2));
    }
    // The config file itself swapped for a FIFO: refused, and the shim keeps its config.
    std::fs::remove_file(&path).unwrap();
    mkfifo(&path);
    let res = admin(&shim, "POST", "/reload", "").await;
    assert_eq!(res.status, 422, "{}", res.text());
    assert!(res.text().contains("a FIFO"), "{}", res.text());
    assert_eq!(admin_read(&shim, "/readyz").await.status, 200);
}

fn tls_toml(upstream: &str, ca_dir: &std::path::Path) -> String {
    tls_config(upstream, ca_dir, "hosts = [\"api.kuronekoyamato.co.jp\"]")
}

fn shim_cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_webcollect-shim"))
        .args(args)
        .env_remove("WEBCOLLECT_SHIM_CONFIG")
        .output()
        .unwrap()
}

/// Verifies a leaf `ca` issues for `name` at `now`, as a client that trusts `ca` would at `at`.
fn trusted(
    ca: &webcollect_shim::tls::ca::LocalCa,
    name: &str,
    now: chrono::DateTime<chrono::Utc>,
    at: chrono::DateTime<chrono::Utc>,
) -> bool {
    use rustls::client::danger::ServerCertVerifier as _;
    let leaf = ca
        .issue(name, now, Duration::from_secs(800 * 86_400))
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert().clone()).unwrap();
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        std::sync::Arc::new(roots),
        std::sync::Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .unwrap();
    let at = rustls_pki_types::UnixTime::since_unix_epoch(Duration::from_secs(
        u64::try_from(at.timestamp()).unwrap(),
    ));
    let name = rustls_pki_types::ServerName::try_from(name.to_string()).unwrap();
    verifier
        .verify_server_cert(&leaf.certified.cert[0], &[], &name, &[], at)
        .is_ok()
}

#[test]
fn finding_10_the_local_ca_is_constrained_short_lived_owner_only_and_quoted() {
    use std::os::unix::fs::PermissionsExt as _;
    use webcollect_shim::clock::{Clock as _, SystemClock};
    let root = fresh_dir("ca-hardening");
    // A directory name a shell would expand.
    let ca_dir = root.join("a b $(touch pwned)");
    std::fs::create_dir_all(&ca_dir).unwrap();
    let path = root.join("shim.toml");
    std::fs::write(&path, tls_toml("http://127.0.0.1:1", &ca_dir)).unwrap();
    let config = path.to_str().unwrap();

    // A directory others may write to is refused, by `ca init` and at start.
    std::fs::set_permissions(&ca_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = shim_cli(&["ca", "init", "--config", config]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("may write to it"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::set_permissions(&ca_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = shim_cli(&["ca", "init", "--config", config]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // install-hint: every path one shell word.
    let out = shim_cli(&["ca", "install-hint", "--config", config]);
    let hint = String::from_utf8_lossy(&out.stdout).into_owned();
    let pem = ca_dir.join("ca.pem").canonicalize().unwrap();
    let quoted = format!("'{}'", pem.display());
    assert!(
        hint.contains(&format!("cp {quoted} /usr/local/share/")),
        "{hint}"
    );
    assert!(
        hint.contains(&format!("export NODE_EXTRA_CA_CERTS={quoted}")),
        "{hint}"
    );
    assert!(!hint.contains(&format!(" {} ", pem.display())), "{hint}");

    // Name constraints: [tls] hosts (and their subdomains) only. Two years at most.
    let now = SystemClock.now();
    let ca = webcollect_shim::tls::ca::LocalCa::open(&ca_dir, now)
        .unwrap()
        .unwrap();
    assert!(trusted(&ca, "api.kuronekoyamato.co.jp", now, now));
    for other in ["www.google.com", "bank.example", "kuronekoyamato.co.jp"] {
        assert!(!trusted(&ca, other, now, now), "{other}");
    }
    let two_years = chrono::TimeDelta::days(730);
    let left = ca.not_after().unwrap() - now;
    assert!(
        left <= two_years && left > two_years - chrono::TimeDelta::hours(1),
        "{left}"
    );

    // A key others may read is refused at start and by every ca command.
    std::fs::set_permissions(
        ca_dir.join("ca-key.pem"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    for args in [&["ca", "export"][..], &["run"]] {
        let mut args = args.to_vec();
        args.extend(["--config", config]);
        let out = shim_cli(&args);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("readable by group or others"),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(!root.join("pwned").exists() && !std::path::Path::new("pwned").exists());
}

#[test]
fn finding_11_refused_handshakes_are_logged_once_a_second_with_a_count() {
    let root = fresh_dir("tls-log-flood");
    let path = root.join("shim.toml");
    std::fs::write(&path, tls_toml("http://127.0.0.1:1", &root.join("ca"))).unwrap();
    let (mut process, _proxy, _admin) = ShimProcess::start(&path, false);
    let serving = process
        .seen()
        .iter()
        .find(|l| l.contains("Serving merchant traffic."))
        .unwrap()
        .clone();
    let tls_addr: std::net::SocketAddr = serving
        .split_whitespace()
        .find_map(|w| w.strip_prefix("tls="))
        .unwrap()
        .parse()
        .unwrap();
    let pem = std::fs::read_to_string(root.join("ca").join("ca.pem")).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    runtime.block_on(async {
        let connector = crate::support::tls::client(&pem, None, &[b"http/1.1"]);
        for _ in 0..300 {
            let refused =
                crate::support::tls::connect(&connector, tls_addr, "bad-sni.example").await;
            assert!(refused.is_err());
        }
        // A second later, the next refusal is logged with the count held back.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let refused = crate::support::tls::connect(&connector, tls_addr, "bad-sni.example").await;
        assert!(refused.is_err());
    });
    let elapsed = started.elapsed();
    let line = process.wait_for("suppressed=");
    let lines = process.stop();
    let refused: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("TLS handshake refused"))
        .collect();
    // One line a second at most (plus the first), instead of one per handshake.
    let most = usize::try_from(elapsed.as_secs()).unwrap() + 2;
    assert!(
        refused.len() <= most,
        "{} lines in {elapsed:?}",
        refused.len()
    );
    let total: usize = refused
        .iter()
        .map(|l| {
            1 + l
                .split_whitespace()
                .find_map(|w| w.strip_prefix("suppressed="))
                .map_or(0, |n| n.parse::<usize>().unwrap())
        })
        .sum();
    assert_eq!(total, 301, "{line}");
}

#[tokio::test]
async fn finding_12_the_stand_in_is_bounded_by_bytes_oldest_orders_first() {
    use webcollect_shim::qa::gateway::GatewayOptions;
    let dir = fresh_dir("stand-in-bytes");
    let state = dir.join("state.json");
    let max = 4_000;
    let options = GatewayOptions {
        state_file: Some(state.clone()),
        max_state_bytes: std::num::NonZeroUsize::new(max).unwrap(),
        ..GatewayOptions::default()
    };
    let mock =
        crate::support::gateway::StandIn::with_options("2020-04-20T01:23:45+09:00", options).await;
    let order = |i: usize| {
        post(
            "/api/creditToken",
            &format!(
                "function_div=A08&trader_code=123456789&device_div=2&order_no=B-{i}&settle_price=1500&buyer_name_kanji=%E5%B1%B1%E7%94%B0&pay_way=1&token=bytesbytesbyt{i:03}"
            ),
        )
    };
    let e04 = |i: usize| {
        post(
            "/api/tradeInfo",
            &format!("function_div=E04&trader_code=123456789&order_no=B-{i}"),
        )
    };
    for i in 0..60 {
        let res = raw(mock.addr, &order(i)).await;
        assert_eq!(res.status, 200);
        assert!(
            res.text().contains("<returnCode>0</returnCode>"),
            "{}",
            res.text()
        );
    }
    // The file is what is held: within the budget (plus its small envelope).
    let saved = std::fs::read(&state).unwrap();
    assert!(saved.len() <= max + 200, "{} bytes", saved.len());
    let newest = raw(mock.addr, &e04(59)).await.text();
    let oldest = raw(mock.addr, &e04(0)).await.text();
    assert!(newest.contains("B-59"), "{newest}");
    assert!(!oldest.contains("B-0<"), "{oldest}");
    assert_ne!(oldest, newest);
    mock.stop().await;
}
