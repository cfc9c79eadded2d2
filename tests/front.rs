//! Fronting the gateway's own host names (issue 16): the TLS listener with its local CA
//! (exact answers over HTTP/1.1 and h2, unknown names refused, leaves reissued by the
//! injected clock), routes by host, `connect_to`, loop protection, the `ca` commands and
//! `check`'s loop warning, and an unmodified checkout page in headless Chromium that loads
//! the token library from `https://api.kuronekoyamato.co.jp`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use chrono::TimeDelta;
use http::{Request, Version};
use http_body_util::Full;

use webcollect_shim::clock::{Clock as _, SystemClock};
use webcollect_shim::config::Config;
use webcollect_shim::state::ReloadError;
use webcollect_shim::tls::ca::LocalCa;

use crate::support::browser::{Chromium, EmbeddedOutcome, LaunchOptions, QUIET, merchant};
use crate::support::tls::{HttpsUpstream, SeenTls, client, connect, peer_leaf, send_h1};
use crate::support::*;

const GATEWAY: &str = "api.kuronekoyamato.co.jp";
const UPSTREAM_XML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<return>\n<returnCode>0</returnCode>\n<errorCode></errorCode>\n</return>\n";
/// SPEC §4.1 at 2020-04-20 02:30:00 JST.
const MAINTENANCE_XML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<return>\n<returnCode>1</returnCode>\n<errorCode>Z01000000</errorCode>\n<returnDate>20200420023000</returnDate>\n</return>\n";

fn ca_pem(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("ca.pem")).unwrap()
}

fn form(uri: &str) -> Request<Full<Bytes>> {
    Request::post(uri)
        .header("host", GATEWAY)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from_static(
            b"function_div=A08&trader_code=123456789",
        )))
        .unwrap()
}

#[tokio::test]
async fn maintenance_xml_over_tls_in_a_window_and_the_upstream_outside() {
    let upstream = Upstream::fixed(UPSTREAM_XML).await;
    let dir = fresh_dir("front-window");
    let shim = TestShim::start(&tls_config(&upstream.url(), &dir, ""), t(DURING)).await;
    let tls_addr = shim.tls_addr.unwrap();
    // The CA the shim created on start, checked at the shim's (manual) time.
    let connector = client(&ca_pem(&dir), Some(&shim.clock), &[b"http/1.1"]);

    let stream = connect(&connector, tls_addr, GATEWAY).await.unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (head, body) = send_h1(stream, form("/api/creditToken")).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.version, Version::HTTP_11);
    assert_eq!(head.headers["content-type"], "text/xml; charset=UTF-8");
    assert_eq!(head.headers["x-webcollect-shim"], "maintenance");
    assert_eq!(body, MAINTENANCE_XML);
    assert!(upstream.seen().is_empty(), "the upstream was contacted");

    shim.clock.set(t(AFTER));
    let stream = connect(&connector, tls_addr, GATEWAY).await.unwrap();
    let (head, body) = send_h1(stream, form("/api/creditToken")).await;
    assert_eq!(head.status, 200);
    assert!(head.headers.get("x-webcollect-shim").is_none());
    assert_eq!(body, UPSTREAM_XML);
    let seen = &upstream.seen()[0];
    assert_eq!(seen.target, "/api/creditToken");
    assert_eq!(seen.headers["host"], upstream.addr.to_string());
    assert_forwarded_from_tls(seen, &shim, "1.1");
}

/// What the upstream sees of a request that came in on the TLS listener for the gateway's
/// name as HTTP `version`: the scheme, the name, and this shim's `Via` entry.
fn assert_forwarded_from_tls(seen: &Seen, shim: &TestShim, version: &str) {
    assert_eq!(seen.headers["x-forwarded-proto"], "https");
    assert_eq!(seen.headers["x-forwarded-host"], GATEWAY);
    assert_eq!(
        seen.headers["via"],
        format!("{version} {}", shim.shared.via.pseudonym())
    );
}

#[tokio::test]
async fn h2_by_alpn_on_one_connection_across_the_window_edge() {
    let upstream = Upstream::fixed(UPSTREAM_XML).await;
    let dir = fresh_dir("front-h2");
    let shim = TestShim::start(&tls_config(&upstream.url(), &dir, ""), t(DURING)).await;
    let connector = client(&ca_pem(&dir), Some(&shim.clock), &[b"h2", b"http/1.1"]);
    let stream = connect(&connector, shim.tls_addr.unwrap(), GATEWAY)
        .await
        .unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(executor(), hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let uri = format!("https://{GATEWAY}/api/token/js/embeddedTokenLib.js");
    let res = sender
        .send_request(Request::get(&uri).body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap();
    assert_eq!(res.version(), Version::HTTP_2);
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"],
        "application/javascript; charset=UTF-8"
    );
    assert_eq!(res.headers()["x-webcollect-shim"], "maintenance");
    let js = http_body_util::BodyExt::collect(res.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert!(String::from_utf8_lossy(&js).contains("Z01000000"));

    shim.clock.set(t(AFTER));
    let res = sender
        .send_request(form(&format!("https://{GATEWAY}/api/creditToken")))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body = http_body_util::BodyExt::collect(res.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(body, UPSTREAM_XML);
    assert_forwarded_from_tls(&upstream.seen()[0], &shim, "2");
}

#[tokio::test]
async fn names_outside_hosts_and_clients_without_sni_are_refused() {
    let upstream = Upstream::fixed(UPSTREAM_XML).await;
    let dir = fresh_dir("front-sni");
    let toml = tls_config(
        &upstream.url(),
        &dir,
        &format!("hosts = [\"{GATEWAY}\", \"ptwebcollect.jp\"]"),
    );
    let shim = TestShim::start(&toml, t(AFTER)).await;
    let addr = shim.tls_addr.unwrap();
    let connector = client(&ca_pem(&dir), Some(&shim.clock), &[b"http/1.1"]);
    for refused in ["www.example.com", "apixp.kuronekoyamato.co.jp", "127.0.0.1"] {
        let err = connect(&connector, addr, refused)
            .await
            .expect_err(refused)
            .to_string();
        // The server gave up (an alert), not the client over a certificate it disliked.
        assert!(err.contains("received fatal alert"), "{refused}: {err}");
    }
    for served in [GATEWAY, "PTWEBCOLLECT.JP"] {
        let stream = connect(&connector, addr, served).await.unwrap();
        let (head, _) = send_h1(stream, form("/api/creditToken")).await;
        assert_eq!(head.status, 200, "{served}");
    }
}

/// The plain listener's time limits hold on the TLS one: a client that never says hello,
/// and one that completes the handshake but sends no request, are both closed at
/// `header_read_timeout` after the accept, while others are served.
#[tokio::test]
async fn silent_tls_clients_are_closed_by_header_read_timeout() {
    let upstream = Upstream::fixed(UPSTREAM_XML).await;
    let dir = fresh_dir("front-silent");
    let toml = tls_config(&upstream.url(), &dir, "")
        .replace("[server]\n", "[server]\nheader_read_timeout = \"400ms\"\n");
    let shim = TestShim::start(&toml, t(AFTER)).await;
    let addr = shim.tls_addr.unwrap();
    let connector = client(&ca_pem(&dir), Some(&shim.clock), &[b"http/1.1"]);
    let mut no_hello = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut no_request = connect(&connector, addr, GATEWAY).await.unwrap();
    let served = connect(&connector, addr, GATEWAY).await.unwrap();
    assert_eq!(
        send_h1(served, form("/api/creditToken")).await.0.status,
        200
    );
    let limit = Duration::from_secs(5);
    assert!(
        closed_within(&mut no_hello, limit).await.is_some(),
        "no hello: still open"
    );
    assert!(
        closed_within(&mut no_request, limit).await.is_some(),
        "no request: still open"
    );
}

/// `max_connections` counts both listeners: with room for one, a plain-HTTP client waits
/// while a TLS client holds it, and is served once that one is closed (here by
/// `header_read_timeout`).
#[tokio::test]
async fn tls_connections_count_against_max_connections() {
    let upstream = Upstream::fixed(UPSTREAM_XML).await;
    let dir = fresh_dir("front-slots");
    let toml = tls_config(&upstream.url(), &dir, "").replace(
        "[server]\n",
        "[server]\nheader_read_timeout = \"500ms\"\nmax_connections = 1\n",
    );
    let shim = TestShim::start(&toml, t(AFTER)).await;
    let connector = client(&ca_pem(&dir), Some(&shim.clock), &[b"http/1.1"]);
    let holder = connect(&connector, shim.tls_addr.unwrap(), GATEWAY)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    assert_eq!(
        raw(shim.addr, &post("/api/creditToken", "a=1"))
            .await
            .status,
        200
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(400),
        "served after {waited:?}"
    );
    drop(holder);
}

#[tokio::test]
async fn leaves_are_reissued_by_the_injected_clock_before_they_expire() {
    let upstream = Upstream::fixed(UPSTREAM_XML).await;
    let dir = fresh_dir("front-renew");
    let toml = tls_config(&upstream.url(), &dir, "leaf_validity = \"1h\"");
    let shim = TestShim::start(&toml, t(AFTER)).await;
    let addr = shim.tls_addr.unwrap();
    let connector = client(&ca_pem(&dir), Some(&shim.clock), &[b"http/1.1"]);
    let leaf = || async { peer_leaf(&connect(&connector, addr, GATEWAY).await.unwrap()) };
    let first = leaf().await;

    // Before two thirds of the hour, the same leaf. (An absence: the sleep gives the
    // renewal task, ticking every second, two chances to get it wrong.)
    shim.clock.advance(TimeDelta::minutes(30));
    tokio::time::sleep(webcollect_shim::tls::RENEW_CHECK_EVERY * 2).await;
    assert_eq!(leaf().await, first);

    // Past two thirds, the renewal task (on the control runtime) issues new ones.
    shim.clock.advance(TimeDelta::minutes(11));
    let renewed = std::cell::RefCell::new(None);
    eventually(
        Duration::from_secs(10),
        "a new leaf 41 minutes into a 1-hour validity",
        || async {
            let now = leaf().await;
            let new = now != first;
            *renewed.borrow_mut() = Some(now);
            new
        },
    )
    .await;
    let second = renewed.into_inner().unwrap();

    // Past the first leaf's end, a client (checking at the clock's time) still connects:
    // it gets the new one, which the CA in ca_dir signed.
    shim.clock.advance(TimeDelta::minutes(25));
    let stream = connect(&connector, addr, GATEWAY).await.unwrap();
    assert_eq!(peer_leaf(&stream), second);
    let (head, body) = send_h1(stream, form("/api/creditToken")).await;
    assert_eq!(head.status, 200);
    assert_eq!(body, UPSTREAM_XML);
}

/// `[tls]` is read at start: a reload that changes it is refused and the listener keeps its
/// names; routes (a `host` among them) reload as before.
#[tokio::test]
async fn a_reload_that_changes_tls_is_refused_and_host_routes_reload() {
    let upstream = Upstream::fixed(UPSTREAM_XML).await;
    let dir = fresh_dir("front-reload");
    let path = dir.join("shim.toml");
    let text = tls_config(&upstream.url(), &dir.join("ca"), "");
    std::fs::write(&path, &text).unwrap();
    let shim = TestShim::start_file(&path, t(AFTER)).await;
    let addr = shim.tls_addr.unwrap();

    std::fs::write(&path, format!("{text}hosts = [\"www.example.com\"]\n")).unwrap();
    let err = shim.shared.reload().unwrap_err();
    assert!(
        matches!(&err, ReloadError::NeedsRestart { changed, .. } if changed == &["[tls] changed"]),
        "{err}"
    );
    let connector = client(&ca_pem(&dir.join("ca")), Some(&shim.clock), &[b"http/1.1"]);
    assert!(connect(&connector, addr, "www.example.com").await.is_err());
    assert!(connect(&connector, addr, GATEWAY).await.is_ok());

    // Only the admin screen's host now takes /api/ paths; the others get 404.
    let routed = text.replace(
        "[[routes]]\nid = \"api\"\n",
        "[[routes]]\nid = \"api\"\nhost = \"admin.example.jp\"\n",
    );
    std::fs::write(&path, &routed).unwrap();
    assert_eq!(shim.shared.reload().unwrap(), 2);
    let stream = connect(&connector, addr, GATEWAY).await.unwrap();
    assert_eq!(
        send_h1(stream, form("/api/creditToken")).await.0.status,
        404
    );
}

#[tokio::test]
async fn connect_to_reaches_another_address_with_the_gateway_name_for_sni_and_host() {
    let upstream = HttpsUpstream::start(&[GATEWAY]).await;
    let dir = fresh_dir("front-connect-to");
    let ca_file = dir.join("upstream-ca.pem");
    std::fs::write(&ca_file, &upstream.ca_pem).unwrap();
    let toml = with_upstream_keys(
        &config(&format!("https://{GATEWAY}")),
        &format!(
            "connect_to = \"{}\"\nca_file = {:?}",
            upstream.addr,
            ca_file.display().to_string()
        ),
    );
    let shim = TestShim::start(&toml, t(BEFORE)).await;
    let res = raw(shim.addr, &post("/api/creditToken", "a=1")).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.text(), format!("tls ok, host {GATEWAY}"));
    assert_eq!(
        upstream.seen(),
        [SeenTls {
            server_name: Some(GATEWAY.to_string()),
            host: GATEWAY.to_string(),
        }]
    );
}

/// The DNS override applied to the shim's machine as well: its upstream for the gateway's
/// name leads to its own TLS listener. The request comes back once, is answered 508 there,
/// and that answer goes back to the client: two passes, not a storm.
#[tokio::test]
async fn a_loop_back_to_the_shim_itself_is_answered_508_at_once() {
    let dir = fresh_dir("front-loop");
    // Real time: the upstream side checks the shim's leaf with the machine's clock.
    let now = SystemClock.now();
    let hosts: Vec<String> = webcollect_shim::config::GATEWAY_HOSTS
        .iter()
        .map(ToString::to_string)
        .collect();
    LocalCa::create(&dir, now, &hosts).unwrap();
    let (proxy, tls) = (bind(1), bind(1));
    let tls_addr = tls[0].local_addr().unwrap();
    let toml = with_upstream_keys(
        &tls_config(&format!("https://{GATEWAY}"), &dir, ""),
        &format!(
            "connect_to = \"{tls_addr}\"\nca_file = {:?}",
            dir.join("ca.pem").display().to_string()
        ),
    );
    let config = Config::from_toml_with_env(Path::new("loop.toml"), &toml, &test_env).unwrap();
    let shim = TestShim::start_on(config, now, proxy, tls).await;

    let res = raw(shim.addr, &post("/api/creditToken", "a=1")).await;
    assert_eq!(res.status, 508);
    assert_eq!(res.header("x-webcollect-shim"), Some("loop"));
    assert!(res.text().contains("already passed through this shim"));

    let metrics = admin_read(&shim, "/metrics").await.text();
    for line in [
        "webcollect_shim_requests_total{route=\"-\",decision=\"loop\",status=\"5xx\"} 1",
        "webcollect_shim_requests_total{route=\"api\",decision=\"pass\",status=\"5xx\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing:\n{metrics}");
    }
    let total: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("webcollect_shim_requests_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, 2, "{metrics}");
}

#[tokio::test]
async fn a_route_with_a_host_takes_only_that_hosts_requests() {
    let upstream = Upstream::fixed(UPSTREAM_XML).await;
    // The merchant admin screen and the link method share a path; only the admin screen's
    // host is in maintenance.
    let toml = format!(
        "{}\n[[windows]]\nid = \"admin\"\nstart = \"2020-04-21 02:00\"\nend = \"2020-04-21 06:00\"\nservices = [\"admin_screen\"]\n",
        config(&upstream.url()).replace(
            "[[routes]]\nid = \"link\"",
            "[[routes]]\nid = \"admin-screen\"\nhost = \"Admin.Example.JP\"\npath_prefix = \"/webcollect/\"\nkind = \"page\"\nservice = \"admin_screen\"\nupstream = \"gw\"\n\n[[routes]]\nid = \"link\"",
        )
    );
    let shim = TestShim::start(&toml, t("2020-04-21T03:00:00+09:00")).await;
    let request = |host: &str| {
        format!("GET /webcollect/top.gw HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes()
    };
    let res = raw(shim.addr, &request("admin.example.jp:443")).await;
    assert_eq!(res.status, 503);
    assert_eq!(res.header("x-webcollect-shim"), Some("maintenance"));
    let res = raw(shim.addr, &request("payment.kuronekoyamato.co.jp")).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.text(), UPSTREAM_XML);
    // Absolute form: the target's authority decides, as RFC 9112 says.
    let res = raw(
        shim.addr,
        b"GET http://admin.example.jp/webcollect/top.gw HTTP/1.1\r\nHost: other.example\r\n\r\n",
    )
    .await;
    assert_eq!(res.status, 503);
}

#[test]
fn tls_settings_are_checked_with_line_and_column() {
    let dir = fresh_dir("front-errors");
    let cert = HttpsCert::new(&["api.kuronekoyamato.co.jp"], &dir);
    let cases = [
        (
            "[listen]\ntls = \"0.0.0.0:8443\"\n".to_string(),
            "2:7: `[listen] tls` needs certificates".to_string(),
        ),
        (
            "[tls]\nca_dir = \"ca\"\nhosts = [\"api.kuronekoyamato.co.jp:443\"]\n".to_string(),
            "3:10: invalid TLS host \"api.kuronekoyamato.co.jp:443\"".to_string(),
        ),
        (
            "[tls]\nca_dir = \"ca\"\nleaf_validity = \"1m\"\n".to_string(),
            "3:17: `leaf_validity` must be between 10m and 397d".to_string(),
        ),
        (
            "[tls]\nca_dir = \"ca\"\ncert_file = \"c.pem\"\n".to_string(),
            "2:10: `ca_dir` and `cert_file`/`key_file` are two certificate sources".to_string(),
        ),
        (
            format!(
                "[tls]\ncert_file = {:?}\nkey_file = {:?}\nhosts = [\"api.kuronekoyamato.co.jp\", \"ptwebcollect.jp\"]\n",
                cert.cert.display().to_string(),
                cert.key.display().to_string()
            ),
            format!(
                "2:13: the certificate in {} does not cover \"ptwebcollect.jp\"",
                cert.cert.display()
            ),
        ),
        (
            "[upstreams.gw]\nurl = \"https://api.kuronekoyamato.co.jp\"\nconnect_to = \"gateway:443\"\n"
                .to_string(),
            "3:14: invalid `connect_to` \"gateway:443\"".to_string(),
        ),
        (
            "[[routes]]\nid = \"r\"\nhost = \"https://admin.example.jp/\"\npath = \"/a\"\nkind = \"page\"\nservice = \"s\"\nupstream = \"gw\"\n".to_string(),
            "3:8: invalid route host \"https://admin.example.jp/\"".to_string(),
        ),
    ];
    for (text, want) in cases {
        let path = dir.join("bad.toml");
        let err = Config::from_toml_with_env(&path, &text, &test_env).unwrap_err();
        let want = format!("{}:{want}", path.display());
        assert!(
            err.lines().any(|l| l.starts_with(&want)),
            "want {want:?} in:\n{err}"
        );
    }
    // The user's own certificate, covering every listed host, is accepted and served.
    let text = format!(
        "[tls]\ncert_file = {:?}\nkey_file = {:?}\nhosts = [\"api.kuronekoyamato.co.jp\"]\n",
        cert.cert.display().to_string(),
        cert.key.display().to_string()
    );
    let config = format!("{text}\n{}", config("http://127.0.0.1:1"));
    Config::from_toml_with_env(&dir.join("ok.toml"), &config, &test_env).unwrap();
}

/// A certificate and key for `names` written to `dir` (self-signed).
struct HttpsCert {
    cert: PathBuf,
    key: PathBuf,
}

impl HttpsCert {
    fn new(names: &[&str], dir: &Path) -> Self {
        let names: Vec<String> = names.iter().map(|n| (*n).to_string()).collect();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(names)
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let this = Self {
            cert: dir.join("own.pem"),
            key: dir.join("own-key.pem"),
        };
        std::fs::write(&this.cert, cert.pem()).unwrap();
        std::fs::write(&this.key, key.serialize_pem()).unwrap();
        this
    }
}

#[tokio::test]
async fn own_certificate_files_are_served_for_the_listed_hosts() {
    let upstream = Upstream::fixed(UPSTREAM_XML).await;
    let dir = fresh_dir("front-own-cert");
    let cert = HttpsCert::new(&[GATEWAY], &dir);
    let toml = format!(
        "{}\n[tls]\ncert_file = {:?}\nkey_file = {:?}\nhosts = [\"{GATEWAY}\"]\n",
        with_tls_listener(&config(&upstream.url())),
        cert.cert.display().to_string(),
        cert.key.display().to_string()
    );
    let shim = TestShim::start(&toml, SystemClock.now()).await;
    let own = std::fs::read_to_string(&cert.cert).unwrap();
    let connector = client(&own, None, &[b"http/1.1"]);
    let stream = connect(&connector, shim.tls_addr.unwrap(), GATEWAY)
        .await
        .unwrap();
    let (head, body) = send_h1(stream, form("/api/creditToken")).await;
    assert_eq!(head.status, 200);
    assert_eq!(body, UPSTREAM_XML);
    assert!(shim.tls.as_ref().unwrap().ca().is_none());
}

// === The binary ===

fn shim_command(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_webcollect-shim"))
        .args(args)
        .env_remove("WEBCOLLECT_SHIM_CONFIG")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn ca_init_export_and_install_hint() {
    let dir = fresh_dir("front-ca-cli");
    let path = dir.join("shim.toml");
    let hosts = format!("hosts = [\"{GATEWAY}\", \"ptwebcollect.jp\"]");
    std::fs::write(
        &path,
        tls_config("http://127.0.0.1:1", Path::new("ca"), &hosts)
            .replace("tls = \"127.0.0.1:0\"", "tls = \"0.0.0.0:8443\""),
    )
    .unwrap();
    let config_arg = path.to_str().unwrap();

    let out = shim_command(&["ca", "export", "--config", config_arg]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("run `webcollect-shim ca init`"),
        "{}",
        text(&out.stderr)
    );

    // Relative to the config file's directory.
    let out = shim_command(&["ca", "init", "--config", config_arg]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ca_dir = dir.join("ca");
    let pem = std::fs::read_to_string(ca_dir.join("ca.pem")).unwrap();
    let ca = LocalCa::open(&ca_dir, SystemClock.now()).unwrap().unwrap();
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("created "), "{stdout}");
    assert!(
        stdout.contains(&format!("spki sha256: {}", ca.spki_sha256())),
        "{stdout}"
    );

    let out = shim_command(&["ca", "init", "--config", config_arg]);
    assert!(
        text(&out.stdout).starts_with("exists: "),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(std::fs::read_to_string(ca_dir.join("ca.pem")).unwrap(), pem);

    let out = shim_command(&["ca", "export", "--config", config_arg]);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), pem);

    let out = shim_command(&["ca", "install-hint", "--config", config_arg]);
    assert!(out.status.success());
    let hint = text(&out.stdout);
    // Every path is one shell word: single-quoted.
    let pem_path = format!(
        "'{}'",
        ca_dir.join("ca.pem").canonicalize().unwrap().display()
    );
    for want in [
        format!("cp {pem_path} /usr/local/share/ca-certificates/webcollect-shim.crt"),
        "update-ca-certificates".to_string(),
        "apk add --no-cache ca-certificates".to_string(),
        format!("cp {pem_path} /etc/pki/ca-trust/source/anchors/webcollect-shim.pem"),
        "update-ca-trust extract".to_string(),
        format!(
            "keytool -importcert -noprompt -cacerts -storepass changeit -alias webcollect-shim -file {pem_path}"
        ),
        format!("export NODE_EXTRA_CA_CERTS={pem_path}"),
        "certutil -d sql:$HOME/.pki/nssdb -A -t \"C,,\"".to_string(),
        format!("--ignore-certificate-errors-spki-list={}", ca.spki_sha256()),
        format!("MAP {GATEWAY} 127.0.0.1:8443, MAP ptwebcollect.jp 127.0.0.1:8443"),
    ] {
        assert!(hint.contains(&want), "{want:?} missing:\n{hint}");
    }
}

#[test]
fn the_binary_serves_tls_and_says_why_it_refused_a_name() {
    let dir = fresh_dir("front-run");
    let path = dir.join("shim.toml");
    let upstream_stub = "http://127.0.0.1:1";
    std::fs::write(
        &path,
        tls_config(upstream_stub, &dir.join("ca"), "")
            .replace("[server]\n", "[server]\nworker_threads = 2\n"),
    )
    .unwrap();
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
    assert!(
        process
            .seen()
            .iter()
            .any(|l| l.contains("Local CA created"))
    );
    let pem = ca_pem(&dir.join("ca"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let connector = client(&pem, None, &[b"http/1.1"]);
        assert!(
            connect(&connector, tls_addr, "www.example.com")
                .await
                .is_err()
        );
        let stream = connect(&connector, tls_addr, GATEWAY).await.unwrap();
        // No route for /: the shim's own 404, over TLS.
        let (head, _) = send_h1(
            stream,
            Request::get("/")
                .header("host", GATEWAY)
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await;
        assert_eq!(head.status, 404);
    });
    let refused = process.wait_for("TLS handshake refused");
    assert!(refused.contains("server_name=www.example.com"), "{refused}");
    assert!(refused.contains("[tls] hosts does not list"), "{refused}");
    process.stop();
}

#[test]
fn check_warns_when_an_upstream_leads_back_to_the_shim() {
    let dir = fresh_dir("front-check");
    let path = dir.join("shim.toml");
    let looping = tls_config("https://localhost:8443", &dir.join("ca"), "")
        .replace("tls = \"127.0.0.1:0\"", "tls = \"0.0.0.0:8443\"");
    std::fs::write(&path, &looping).unwrap();
    let out = shim_command(&["check", "--config", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("tls: 0.0.0.0:8443 (HTTP/1.1 and h2 by ALPN)"),
        "{stdout}"
    );
    assert!(stdout.contains("(created on first start)"), "{stdout}");
    assert!(
        stdout.contains(
            "upstream gw (https://localhost:8443) connects to 127.0.0.1:8443, this shim's own tls listener"
        ),
        "{stdout}"
    );
    // `check` created nothing.
    assert!(!dir.join("ca").exists());

    // connect_to sends it elsewhere: no warning.
    std::fs::write(
        &path,
        with_upstream_keys(&looping, "connect_to = \"203.0.113.10:443\""),
    )
    .unwrap();
    let out = shim_command(&["check", "--config", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !text(&out.stdout).contains("warnings:"),
        "{}",
        text(&out.stdout)
    );
}

// === A shopper's browser ===

/// An unmodified checkout page: its `<script src>` is the gateway's real URL. Chromium maps
/// the gateway's name to the shim's TLS listener (as a DNS override would) and trusts the
/// shim's CA by its key hash (as a test browser would be told to); it gets the stand-in, and
/// `createToken` fails with the maintenance code.
#[tokio::test]
async fn an_unmodified_checkout_page_gets_the_stand_in_over_https() {
    let upstream = Upstream::fixed(UPSTREAM_XML).await;
    let dir = fresh_dir("front-browser");
    // Real time for the certificates (Chromium checks them against the machine's clock); the
    // drill clock puts the shim inside the window.
    let toml = tls_config(&upstream.url(), &dir, "").replace(
        "[server]\n",
        "[clock]\nstart_at = \"2020-04-20T02:30:00+09:00\"\n\n[server]\n",
    );
    let shim = TestShim::start(&toml, SystemClock.now()).await;
    let spki = shim.tls.as_ref().unwrap().ca().unwrap().spki_sha256();
    let Some(chromium) = Chromium::launch_with(LaunchOptions {
        map: vec![(GATEWAY.to_string(), shim.tls_addr.unwrap())],
        trust_spki: vec![spki],
    })
    .await
    else {
        return;
    };
    let merchant = merchant(format!("https://{GATEWAY}")).await;
    let mut tab = chromium.tab(1280, 800, false).await;
    let lib = "/api/token/js/embeddedTokenLib.js";
    let page = format!("{}/embedded?lib={lib}", merchant.url());
    tab.goto(&page).await;
    tab.wait_for("the failure callback", "shimTest.failure.length > 0")
        .await;
    tokio::time::sleep(QUIET).await;
    let outcome: EmbeddedOutcome = tab.eval("window.shimTest").await;
    assert!(outcome.success.is_empty(), "{outcome:?}");
    assert_eq!(outcome.failure.len(), 1, "{outcome:?}");
    assert_eq!(outcome.failure[0].error_info[0].error_code, "Z01000000");

    let lib_url = format!("https://{GATEWAY}{lib}");
    assert_eq!(tab.request_urls().await, [page, lib_url.clone()]);
    let res = tab.response(&lib_url);
    assert_eq!(res.response.status, 200);
    assert_eq!(
        crate::support::browser::header(&res.response.headers, "x-webcollect-shim").as_deref(),
        Some("maintenance")
    );
    assert!(upstream.seen().is_empty(), "the upstream was contacted");
    chromium.close().await;
}
