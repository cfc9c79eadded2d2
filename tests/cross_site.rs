//! The admin API resists cross-site requests (SPEC §6): a mutation whose `Origin` is not the
//! admin listener's own gets 403, a `POST /drills` body that is not `application/json` gets
//! 415, with or without a token configured; nothing changes either way. A `Host` that is not
//! the admin's (DNS rebinding) reads nothing. Called through the admin service: `Host` and
//! `Origin` are the headers a browser would send; one check goes over the admin socket.

use crate::support::*;

const OK_XML: &str = "<return><returnCode>0</returnCode></return>";
const DRILL: &str = r#"{"id": "x", "services": ["webcollect.api"], "duration": "10m"}"#;

/// A request with exactly these headers, for the admin service.
fn request(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> http::Request<String> {
    let mut req = http::Request::builder().method(method).uri(path);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.body(body.to_string()).unwrap()
}

async fn drills_open(shim: &TestShim) -> usize {
    json(&admin_read(shim, "/drills").await)["drills"]
        .as_array()
        .unwrap()
        .len()
}

#[tokio::test]
async fn another_origin_cannot_mutate_with_or_without_a_token() {
    let upstream = Upstream::fixed(OK_XML).await;
    for tokened in [false, true] {
        let toml = config(&upstream.url());
        let shim =
            TestShim::start(&if tokened { with_token(&toml) } else { toml }, t(BEFORE)).await;
        let host = shim.admin.to_string();
        let bearer = format!("Bearer {ADMIN_TOKEN}");
        let mut base = vec![("Host", host.as_str())];
        if tokened {
            base.push(("Authorization", bearer.as_str()));
        }
        // The probe from issue 13: a text/plain POST from another site, then JSON ones.
        for (origin, content_type) in [
            ("http://evil.example", "text/plain"),
            ("http://evil.example", "application/json"),
            ("null", "application/json"),
            // Same host, another port: another origin.
            (
                &format!("http://127.0.0.1:{}", shim.admin.port() + 1),
                "application/json",
            ),
        ] {
            let mut headers = base.clone();
            headers.extend([("Origin", origin), ("Content-Type", content_type)]);
            for (method, path, body) in [
                ("POST", "/drills", DRILL),
                ("POST", "/reload", ""),
                ("DELETE", "/drills/x", ""),
            ] {
                let res = call_admin(&shim, request(method, path, &headers, body)).await;
                assert_eq!(
                    res.status,
                    403,
                    "token {tokened}: {method} {path} from {origin}: {}",
                    res.text()
                );
                assert!(res.text().contains("allowed_origins"), "{}", res.text());
            }
        }
        assert_eq!(drills_open(&shim).await, 0, "a refused drill opened");

        // Same origin (or no Origin at all, like curl) but not JSON: 415.
        for origin in [Some(format!("http://{host}")), None] {
            for content_type in [
                Some("text/plain"),
                Some("application/x-www-form-urlencoded"),
                None,
            ] {
                let mut headers = base.clone();
                if let Some(origin) = &origin {
                    headers.push(("Origin", origin));
                }
                if let Some(ct) = content_type {
                    headers.push(("Content-Type", ct));
                }
                let res = call_admin(&shim, request("POST", "/drills", &headers, DRILL)).await;
                assert_eq!(
                    res.status,
                    415,
                    "token {tokened}, origin {origin:?}, {content_type:?}: {}",
                    res.text()
                );
            }
        }
        assert_eq!(drills_open(&shim).await, 0, "a refused drill opened");

        // The admin listener's own origin, and no Origin: allowed.
        let own = format!("http://{host}");
        for (id, origin) in [("own", Some(own.as_str())), ("curl", None)] {
            let mut headers = base.clone();
            headers.push(("Content-Type", "application/json; charset=utf-8"));
            if let Some(origin) = origin {
                headers.push(("Origin", origin));
            }
            let body = DRILL.replace("\"x\"", &format!("\"{id}\""));
            let res = call_admin(&shim, request("POST", "/drills", &headers, &body)).await;
            assert_eq!(res.status, 201, "{id}: {}", res.text());
            let res = call_admin(
                &shim,
                request("DELETE", &format!("/drills/{id}"), &headers, ""),
            )
            .await;
            assert_eq!(res.status, 204, "{id}: {}", res.text());
        }
        // Reads stay open to any origin.
        let res = call_admin(
            &shim,
            request(
                "GET",
                "/status",
                &[("Host", &host), ("Origin", "http://evil.example")],
                "",
            ),
        )
        .await;
        assert_eq!(res.status, 200);
    }
}

#[tokio::test]
async fn a_name_is_the_admins_own_only_with_a_token_or_when_listed() {
    let upstream = Upstream::fixed(OK_XML).await;
    let json = ("Content-Type", "application/json");
    // Behind a Service or an ingress the browser's Host is a name. Without a token that
    // could be an attacker's name pointed at 127.0.0.1 (DNS rebinding): refused.
    let open = TestShim::start(&config(&upstream.url()), t(BEFORE)).await;
    let headers = [
        ("Host", "shim-admin.staging:9090"),
        ("Origin", "http://shim-admin.staging:9090"),
        json,
    ];
    let res = call_admin(&open, request("POST", "/drills", &headers, DRILL)).await;
    assert_eq!(res.status, 403, "{}", res.text());

    // With a token, the name is fine: a rebound page has no token to send. Behind a
    // TLS-terminating ingress the origin is https and Host has no port.
    let tokened = TestShim::start(&with_token(&config(&upstream.url())), t(BEFORE)).await;
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    for (id, host, origin) in [
        (
            "a",
            "shim-admin.staging:9090",
            "http://shim-admin.staging:9090",
        ),
        ("b", "shim-admin.example", "https://shim-admin.example"),
    ] {
        let headers = [
            ("Host", host),
            ("Origin", origin),
            ("Authorization", bearer.as_str()),
            json,
        ];
        let body = DRILL.replace("\"x\"", &format!("\"{id}\""));
        let res = call_admin(&tokened, request("POST", "/drills", &headers, &body)).await;
        assert_eq!(res.status, 201, "{origin}: {}", res.text());
    }

    // A proxy that rewrites Host (nginx's default): the origin must be listed.
    let listed = TestShim::start(
        &format!(
            "[admin]\nallowed_origins = [\"https://shim-admin.example\"]\n{}",
            config(&upstream.url())
        ),
        t(BEFORE),
    )
    .await;
    let host = listed.admin.to_string();
    for (origin, status) in [
        ("https://shim-admin.example", 201),
        ("https://shim-admin.example:443", 409),
        ("https://other.example", 403),
    ] {
        let headers = [("Host", host.as_str()), ("Origin", origin), json];
        let res = call_admin(&listed, request("POST", "/drills", &headers, DRILL)).await;
        assert_eq!(res.status, status, "{origin}: {}", res.text());
    }
}

fn read_with_host(path: &str, host: &str) -> http::Request<String> {
    http::Request::get(path)
        .header("host", host)
        .body(String::new())
        .unwrap()
}

#[tokio::test]
async fn finding_13_dns_rebinding_cannot_read_the_admin() {
    let upstream = Upstream::fixed(OK_XML).await;
    let toml = format!(
        "[admin]\nallowed_origins = [\"https://shim-admin.example\"]\n{}",
        config(&upstream.url())
    );
    let shim = TestShim::start(&toml, t(BEFORE)).await;
    let port = shim.admin.port();
    // Over a real connection: the Host a rebound page's fetch sends is refused, the
    // admin's own address is not.
    let wire = |host: &str| format!("GET /status HTTP/1.1\r\nHost: {host}\r\n\r\n");
    let res = raw(
        shim.admin,
        wire(&format!("rebind.example:{port}")).as_bytes(),
    )
    .await;
    assert_eq!(res.status, 403, "{}", res.text());
    let res = raw(shim.admin, wire(&format!("127.0.0.1:{port}")).as_bytes()).await;
    assert_eq!(res.status, 200, "{}", res.text());
    // What a rebound page's fetch sends: the attacker's name, now pointing at 127.0.0.1.
    for path in [
        "/status",
        "/drills",
        "/report",
        "/timeline",
        "/traffic",
        "/metrics",
        "/",
    ] {
        for host in [format!("rebind.example:{port}"), "rebind.example".into()] {
            let res = call_admin(&shim, read_with_host(path, &host)).await;
            assert_eq!(res.status, 403, "{path} {host}: {}", res.text());
            assert!(!res.text().contains("drill_clock"), "{}", res.text());
        }
    }
    // The admin's own names: IP literals, localhost, an allowed origin's host.
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "shim-admin.example".to_string(),
    ] {
        let res = call_admin(&shim, read_with_host("/status", &host)).await;
        assert_eq!(res.status, 200, "{host}: {}", res.text());
    }
    // With a token, another name (a Service's, which cannot be known ahead) is accepted
    // only with the token, reads included: a rebound page does not know it.
    let tokened = TestShim::start(&with_token(&config(&upstream.url())), t(BEFORE)).await;
    let named = "shim-admin.staging:9090";
    for path in ["/status", "/drills", "/report", "/metrics"] {
        let res = call_admin(&tokened, read_with_host(path, named)).await;
        assert_eq!(res.status, 401, "{path}: {}", res.text());
        assert!(!res.text().contains("drill_clock"), "{}", res.text());
    }
    let mut with_bearer = read_with_host("/status", named);
    with_bearer.headers_mut().insert(
        "authorization",
        format!("Bearer {ADMIN_TOKEN}").parse().unwrap(),
    );
    let res = call_admin(&tokened, with_bearer).await;
    assert_eq!(res.status, 200, "{}", res.text());
    // The console's page and the probes reveal nothing: any name; so does an IP (kubelet,
    // Prometheus).
    for path in ["/", "/healthz", "/readyz"] {
        let res = call_admin(&tokened, read_with_host(path, named)).await;
        assert_eq!(res.status, 200, "{path}: {}", res.text());
    }
    let res = call_admin(&tokened, read_with_host("/status", "10.1.2.3:9090")).await;
    assert_eq!(res.status, 200, "{}", res.text());
}

#[tokio::test]
async fn allowed_origins_must_be_origins() {
    let upstream = Upstream::fixed(OK_XML).await;
    let toml = format!(
        "[admin]\nallowed_origins = [\"https://ok.example\", \"https://bad.example/console\"]\n{}",
        config(&upstream.url())
    );
    let err = webcollect_shim::config::Config::from_toml_with_env(
        std::path::Path::new("shim.toml"),
        &toml,
        &test_env,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("shim.toml:2:42: invalid origin \"https://bad.example/console\""),
        "{err}"
    );
}
