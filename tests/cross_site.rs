//! The admin API resists cross-site requests (SPEC §6): a mutation whose `Origin` is not the
//! admin listener's own gets 403, a `POST /drills` body that is not `application/json` gets
//! 415, with or without a token configured; nothing changes either way.

use crate::support::*;

const OK_XML: &str = "<return><returnCode>0</returnCode></return>";
const DRILL: &str = r#"{"id": "x", "services": ["webcollect.api"], "duration": "10m"}"#;

/// A request with exactly these headers (plus `Content-Length`).
fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    out.into_bytes()
}

async fn drills_open(shim: &TestShim) -> usize {
    json(&raw(shim.admin, &admin_get("/drills")).await)["drills"]
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
                let res = raw(shim.admin, &request(method, path, &headers, body)).await;
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
                let res = raw(shim.admin, &request("POST", "/drills", &headers, DRILL)).await;
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
            let res = raw(shim.admin, &request("POST", "/drills", &headers, &body)).await;
            assert_eq!(res.status, 201, "{id}: {}", res.text());
            let res = raw(
                shim.admin,
                &request("DELETE", &format!("/drills/{id}"), &headers, ""),
            )
            .await;
            assert_eq!(res.status, 204, "{id}: {}", res.text());
        }
        // Reads stay open to any origin.
        let res = raw(
            shim.admin,
            &request(
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
    let res = raw(open.admin, &request("POST", "/drills", &headers, DRILL)).await;
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
        let res = raw(tokened.admin, &request("POST", "/drills", &headers, &body)).await;
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
        let res = raw(listed.admin, &request("POST", "/drills", &headers, DRILL)).await;
        assert_eq!(res.status, status, "{origin}: {}", res.text());
    }
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
