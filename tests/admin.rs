//! The admin API: health, readiness, status, metrics, bearer auth, ad-hoc drills and
//! reloads, called through its service (`oneshot`, no socket).

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use serde_json::Value;
use tower::ServiceExt as _;
use webcollect_shim::admin::Admin;
use webcollect_shim::clock::ManualClock;
use webcollect_shim::{Listeners, Shim};

use crate::support::*;

const OK_XML: &str = "<return><returnCode>0</returnCode></return>";

async fn is_maintained(shim: &TestShim, path: &str) -> bool {
    let res = raw(shim.addr, &post(path, "a=1")).await;
    res.header("x-webcollect-shim") == Some("maintenance")
}

#[tokio::test]
async fn health_status_and_metrics() {
    let upstream = Upstream::fixed(OK_XML).await;
    let shim = TestShim::start(&config(&upstream.url()), t(DURING)).await;
    assert_eq!(admin_read(&shim, "/healthz").await.status, 200);
    assert_eq!(admin_read(&shim, "/readyz").await.status, 200);

    let status = json(&admin_read(&shim, "/status").await);
    assert_eq!(status["now"], "2020-04-20T02:30:00.000+09:00");
    assert_eq!(status["timezone"], "Asia/Tokyo");
    assert_eq!(status["mode"], "enforce");
    assert_eq!(status["config"]["version"], 1);
    assert_eq!(status["active_windows"][0]["id"], "2020-04-20");
    assert_eq!(status["active_windows"][0]["source"], "config");
    assert_eq!(status["next_transition"], "2020-04-20T06:00:00.000+09:00");

    assert!(is_maintained(&shim, "/api/creditToken").await);
    raw(shim.addr, &get("/nope")).await;
    shim.clock.set(t(AFTER));
    assert!(!is_maintained(&shim, "/api/creditToken").await);
    let metrics = admin_read(&shim, "/metrics").await;
    assert_eq!(
        metrics.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = metrics.text();
    for line in [
        "webcollect_shim_requests_total{route=\"api\",decision=\"maintenance\",status=\"2xx\"} 1",
        "webcollect_shim_requests_total{route=\"-\",decision=\"not_found\",status=\"4xx\"} 1",
        "webcollect_shim_requests_total{route=\"api\",decision=\"pass\",status=\"2xx\"} 1",
        "webcollect_shim_upstream_response_seconds_count{upstream=\"gw\"} 1",
        "webcollect_shim_active_windows 0",
        "webcollect_shim_config_version 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
}

#[tokio::test]
async fn mutations_need_the_bearer_token() {
    let upstream = Upstream::fixed(OK_XML).await;
    let shim = TestShim::start(&with_token(&config(&upstream.url())), t(BEFORE)).await;
    let body = r#"{"services": ["webcollect"], "duration": "10m"}"#;
    for token in [None, Some("wrong-token-0123456789abcdef"), Some("")] {
        let mut req = admin_req("POST", "/drills").header("content-type", "application/json");
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        let res = call_admin(&shim, req.body(body.to_string()).unwrap()).await;
        assert_eq!(res.status, 401, "token {token:?}");
        assert_eq!(
            res.header("www-authenticate"),
            Some("Bearer realm=\"webcollect-shim\"")
        );
    }
    for (method, path) in [("DELETE", "/drills/x"), ("POST", "/reload")] {
        let req = admin_req(method, path).body(String::new()).unwrap();
        assert_eq!(call_admin(&shim, req).await.status, 401, "{method} {path}");
    }
    assert!(
        !is_maintained(&shim, "/api/creditToken").await,
        "a refused drill must not open"
    );
    // Reads stay open.
    assert_eq!(admin_read(&shim, "/status").await.status, 200);
    assert_eq!(admin_read(&shim, "/drills").await.status, 200);
    // The right token works.
    assert_eq!(admin(&shim, "POST", "/drills", body).await.status, 201);
    assert!(is_maintained(&shim, "/api/creditToken").await);
}

#[tokio::test]
async fn ad_hoc_drill_opens_and_expires_by_itself() {
    let upstream = Upstream::fixed(OK_XML).await;
    let shim = TestShim::start(&config(&upstream.url()), t(BEFORE)).await;
    let res = admin(
        &shim,
        "POST",
        "/drills",
        r#"{"id": "qa-1", "services": ["webcollect.api"], "duration": "10m", "title": "QA drill"}"#,
    )
    .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let drill = json(&res);
    assert_eq!(drill["id"], "qa-1");
    assert_eq!(drill["source"], "drill");
    assert_eq!(drill["end"], "2020-04-19T16:10:00.000Z");

    assert!(is_maintained(&shim, "/api/creditToken").await);
    // Only the listed service: the link page is webcollect.link.
    let page = raw(shim.addr, &get("/webcollect/settleSelectAction.gw")).await;
    assert_eq!(page.status, 200);
    let listed = json(&admin(&shim, "GET", "/drills", "").await);
    assert_eq!(listed["drills"][0]["id"], "qa-1");
    let status = json(&admin_read(&shim, "/status").await);
    assert_eq!(status["active_windows"][0]["id"], "qa-1");

    assert_eq!(
        admin(
            &shim,
            "POST",
            "/drills",
            r#"{"id": "qa-1", "services": ["x"], "duration": "1m"}"#
        )
        .await
        .status,
        409
    );
    assert_eq!(
        admin(
            &shim,
            "POST",
            "/drills",
            r#"{"services": [], "duration": "1m"}"#
        )
        .await
        .status,
        400
    );
    assert_eq!(
        admin(
            &shim,
            "POST",
            "/drills",
            r#"{"services": ["a..b"], "duration": "1m"}"#
        )
        .await
        .status,
        400
    );
    assert_eq!(
        admin(
            &shim,
            "POST",
            "/drills",
            r#"{"services": ["a"], "duration": "soon"}"#
        )
        .await
        .status,
        400
    );
    assert_eq!(
        admin(&shim, "POST", "/drills", "not json").await.status,
        400
    );

    shim.clock.advance(TimeDelta::minutes(10));
    assert!(!is_maintained(&shim, "/api/creditToken").await);
    let listed = json(&admin(&shim, "GET", "/drills", "").await);
    assert_eq!(listed["drills"], Value::Array(vec![]));
}

#[tokio::test]
async fn ad_hoc_drill_can_be_closed() {
    let upstream = Upstream::fixed(OK_XML).await;
    let shim = TestShim::start(&config(&upstream.url()), t(BEFORE)).await;
    let drill = json(
        &admin(
            &shim,
            "POST",
            "/drills",
            r#"{"services": ["webcollect"], "duration": "1h"}"#,
        )
        .await,
    );
    let id = drill["id"].as_str().unwrap().to_string();
    assert!(is_maintained(&shim, "/api/creditToken").await);
    assert_eq!(
        admin(&shim, "DELETE", &format!("/drills/{id}"), "")
            .await
            .status,
        204
    );
    assert!(!is_maintained(&shim, "/api/creditToken").await);
    assert_eq!(
        admin(&shim, "DELETE", &format!("/drills/{id}"), "")
            .await
            .status,
        404
    );
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("webcollect-shim-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn reload_swaps_valid_configs_and_keeps_the_old_one_otherwise() {
    let upstream = Upstream::fixed(OK_XML).await;
    let path = temp_dir("reload").join("shim.toml");
    // No window covers 2020-05-01 at first.
    std::fs::write(&path, config(&upstream.url())).unwrap();
    let shim = TestShim::start_file(&path, t("2020-05-01T10:00:00+09:00")).await;
    let drill = admin(
        &shim,
        "POST",
        "/drills",
        r#"{"id": "survivor", "services": ["webcollect.link"], "duration": "1h"}"#,
    )
    .await;
    assert_eq!(drill.status, 201);
    assert!(!is_maintained(&shim, "/api/creditToken").await);

    // A valid change: a window covering now.
    let with_window = format!(
        "{}\n[[windows]]\nid = \"may\"\nstart = \"2020-05-01 09:00\"\nend = \"2020-05-01 11:00\"\nservices = [\"webcollect.api\"]\n",
        config(&upstream.url())
    );
    std::fs::write(&path, &with_window).unwrap();
    let res = admin(&shim, "POST", "/reload", "").await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(json(&res)["version"], 2);
    assert!(is_maintained(&shim, "/api/creditToken").await);
    assert_eq!(
        json(&admin_read(&shim, "/status").await)["config"]["version"],
        2
    );
    // The ad-hoc drill survived the reload.
    assert!(is_maintained(&shim, "/webcollect/settleSelectAction.gw").await);

    // An invalid change: every error with line and column; the old config keeps running.
    std::fs::write(&path, format!("{with_window}\n[bogus]\nx = 1\n")).unwrap();
    let res = admin(&shim, "POST", "/reload", "").await;
    assert_eq!(res.status, 422);
    let errors = json(&res)["errors"].clone();
    let first = errors[0].as_str().unwrap();
    let bogus_line = with_window.lines().count() + 2;
    assert!(
        first.starts_with(&format!(
            "{}:{bogus_line}:2: unknown section `bogus`",
            path.display()
        )),
        "{first}"
    );
    assert!(is_maintained(&shim, "/api/creditToken").await);
    assert_eq!(
        json(&admin_read(&shim, "/status").await)["config"]["version"],
        2
    );

    // A listen address change needs a restart.
    std::fs::write(
        &path,
        with_window.replace("proxy = \"127.0.0.1:0\"", "proxy = \"127.0.0.1:1\""),
    )
    .unwrap();
    let res = admin(&shim, "POST", "/reload", "").await;
    assert_eq!(res.status, 422);
    assert!(
        json(&res)["errors"][0]
            .as_str()
            .unwrap()
            .contains("restart the shim"),
        "{}",
        res.text()
    );

    let metrics = admin_read(&shim, "/metrics").await.text();
    assert!(
        metrics.contains("webcollect_shim_config_reloads_total{result=\"ok\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("webcollect_shim_config_reloads_total{result=\"error\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn reload_during_in_flight_requests_fails_none() {
    let upstream = Upstream::start(|req: http::Request<hyper::body::Incoming>| async move {
        let _ = http_body_util::BodyExt::collect(req.into_body()).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        http::Response::new(full(OK_XML))
    })
    .await;
    let path = temp_dir("reload-load").join("shim.toml");
    std::fs::write(&path, config(&upstream.url())).unwrap();
    let shim = TestShim::start_file(&path, t(BEFORE)).await;
    let addr = shim.addr;
    let requests: Vec<_> = (0..50)
        .map(|i| {
            tokio::spawn(
                async move { raw(addr, &post("/api/creditToken", &format!("i={i}"))).await },
            )
        })
        .collect();
    // Reload several times while those are in flight (upstream, answered after 200 ms).
    eventually(Duration::from_secs(5), "a request upstream", || async {
        !upstream.seen().is_empty()
    })
    .await;
    for _ in 0..5 {
        assert_eq!(admin(&shim, "POST", "/reload", "").await.status, 200);
    }
    for r in requests {
        let res = r.await.unwrap();
        assert_eq!(res.status, 200);
        assert_eq!(res.text(), OK_XML);
    }
    assert_eq!(upstream.seen().len(), 50);
    assert_eq!(
        json(&admin_read(&shim, "/status").await)["config"]["version"],
        6
    );
}

#[tokio::test]
async fn a_changed_config_file_is_reloaded_by_itself() {
    let upstream = Upstream::fixed(OK_XML).await;
    let path = temp_dir("watch").join("shim.toml");
    let watched = config(&upstream.url()).replace("watch_config = false", "watch_config = true");
    std::fs::write(&path, &watched).unwrap();
    let shim = TestShim::start_file(&path, t(BEFORE)).await;
    // The admin listener is served after the watch is installed: once it answers over the
    // socket (the service would answer before), the write below is one the watch sees.
    assert_eq!(raw(shim.admin, &admin_get("/healthz")).await.status, 200);
    std::fs::write(
        &path,
        watched.replace(
            "start = \"2020-04-20 02:00\"",
            "start = \"2020-04-20 00:00\"",
        ),
    )
    .unwrap();
    eventually(
        Duration::from_secs(10),
        "the edited file reloaded",
        || async { json(&admin_read(&shim, "/status").await)["config"]["version"] == 2 },
    )
    .await;
    assert!(is_maintained(&shim, "/api/creditToken").await);
}

#[tokio::test]
async fn unknown_admin_paths_and_methods() {
    let upstream = Upstream::fixed(OK_XML).await;
    let shim = TestShim::start(&config(&upstream.url()), t(BEFORE)).await;
    assert_eq!(admin_read(&shim, "/nope").await.status, 404);
    assert_eq!(admin(&shim, "POST", "/status", "").await.status, 405);
}

/// `GET path` through `admin`.
async fn ask(admin: &Admin, path: &str) -> RawResponse {
    let req = admin_req("GET", path).body(String::new()).unwrap();
    RawResponse::from_response(admin.clone().oneshot(req).await.unwrap()).await
}

/// `/readyz` of `admin`, after checking that `/healthz` says 200 whatever `/readyz` says.
async fn readyz(admin: &Admin) -> (u16, String) {
    assert_eq!(ask(admin, "/healthz").await.status, 200);
    let res = ask(admin, "/readyz").await;
    (res.status, res.text())
}

#[tokio::test]
async fn readyz_is_503_until_every_worker_serves_and_again_once_one_stops() {
    let upstream = Upstream::fixed(OK_XML).await;
    let config = webcollect_shim::config::Config::from_toml_with_env(
        std::path::Path::new("test.toml"),
        &config(&upstream.url()),
        &test_env,
    )
    .unwrap();
    let clock = ManualClock::new(t(BEFORE));
    let shim = Shim::with_env(config, Arc::new(clock), Arc::new(test_env)).unwrap();
    let admin = shim.admin();
    assert_eq!(
        readyz(&admin).await,
        (503, "the workers have not been started\n".into())
    );

    let proxy = bind(2);
    let addr = proxy[0].local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let listeners = Listeners {
        proxy,
        ..Listeners::default()
    };
    let running = tokio::spawn(shim.run(listeners, async {
        let _ = stopped.await;
    }));
    eventually(Duration::from_secs(10), "both workers serving", || async {
        readyz(&admin).await == (200, "ready\n".into())
    })
    .await;
    assert_eq!(
        raw(addr, &post("/api/creditToken", "a=1")).await.status,
        200
    );

    // From the moment the workers stop accepting (shutdown), not ready; health stays 200.
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
    assert_eq!(
        readyz(&admin).await,
        (503, "worker 0 stopped: shutting down\n".into())
    );
}

#[tokio::test]
async fn a_worker_that_cannot_start_keeps_readyz_at_503_with_the_reason() {
    use std::os::unix::fs::OpenOptionsExt as _;
    let upstream = Upstream::fixed(OK_XML).await;
    let config = webcollect_shim::config::Config::from_toml_with_env(
        std::path::Path::new("test.toml"),
        &config(&upstream.url()),
        &test_env,
    )
    .unwrap();
    // A "listener" the worker's runtime cannot register (epoll refuses /dev/null); non-
    // blocking, as the proxy listeners are.
    let null = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/null")
        .unwrap();
    let unusable = std::net::TcpListener::from(std::os::fd::OwnedFd::from(null));
    let mut proxy = bind(1);
    proxy.push(unusable);
    let shim = TestShim::spawn_on(config, t(BEFORE), proxy, Vec::new()).await;
    let admin = shim.admin_service();
    eventually(
        Duration::from_secs(10),
        "worker 1 reported stopped",
        || async { readyz(&admin).await.1.starts_with("worker 1 stopped") },
    )
    .await;
    let (status, reason) = readyz(&admin).await;
    assert_eq!(status, 503);
    assert!(
        reason.starts_with("worker 1 stopped: cannot use the proxy listener: "),
        "{reason}"
    );
    // The other worker serves merchant traffic meanwhile.
    assert_eq!(
        raw(shim.addr, &post("/api/creditToken", "a=1"))
            .await
            .status,
        200
    );
    assert_eq!(readyz(&admin).await.0, 503);
    shim.stop().await;
}
