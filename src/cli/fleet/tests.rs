//! The fleet commands' tests: admin URLs, expanding names into replicas, one line per
//! replica, ids in URL paths.

use std::io;
use std::net::SocketAddr;

use serde_json::json;

use super::ask::{expand, summarize};
use super::*;

fn url(text: &str) -> AdminUrl {
    AdminUrl::parse(text).unwrap()
}

#[test]
fn admin_urls() {
    let u = url("http://webcollect-shim-admin:9090");
    assert_eq!(
        (
            u.host.as_str(),
            u.port,
            u.authority.as_str(),
            u.prefix.as_str()
        ),
        (
            "webcollect-shim-admin",
            9090,
            "webcollect-shim-admin:9090",
            ""
        )
    );
    assert_eq!(url("10.0.0.5:9090").host_name(), None);
    assert_eq!(url("10.0.0.5:9090").port, 9090);
    let v6 = url("http://[::1]:9090/");
    assert_eq!((v6.host.as_str(), v6.port), ("::1", 9090));
    assert_eq!(url("http://gw/shim/admin/").prefix, "/shim/admin");
    assert_eq!(url("http://gw").port, 80);
    for bad in [
        "https://gw:9090",
        "http://user:pw@gw:9090",
        "http://gw:9090/?x=1",
        "http://",
    ] {
        assert!(AdminUrl::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_name_means_every_address_each_once() {
    let a: SocketAddr = "10.0.0.5:9090".parse().unwrap();
    let b: SocketAddr = "10.0.0.6:9090".parse().unwrap();
    let urls = [
        url("http://webcollect-shim-admin:9090"),
        url("10.0.0.5:9090"),
        url("http://gone:9090"),
    ];
    let resolved = vec![
        Ok(vec![a, b]),
        Ok(vec![a]),
        Err(io::Error::new(io::ErrorKind::NotFound, "no such host")),
    ];
    let got: Vec<String> = expand(&urls, resolved)
        .into_iter()
        .map(|t| match t {
            Ok(r) => r.name,
            Err(report) => report.line(),
        })
        .collect();
    assert_eq!(
        got,
        [
            "10.0.0.5:9090 (webcollect-shim-admin)",
            "10.0.0.6:9090 (webcollect-shim-admin)",
            "http://gone:9090  FAILED: cannot resolve gone: no such host",
        ]
    );
}

#[test]
fn one_line_per_status() {
    let status = json!({
        "now": "2020-04-20T02:30:00.000+09:00",
        "active_windows": [{"id": "2020-04-20"}, {"id": "qa-1"}],
        "drills": [{"id": "qa-1", "end": "2020-04-19T17:40:00.000Z", "services": ["webcollect.api", "webcollect.link"]}],
        "config": {"version": 3, "sha256": "0123456789abcdef0123"},
    });
    assert_eq!(
        summarize(&status, false),
        "config v3 sha256:0123456789ab  now 2020-04-20T02:30:00.000+09:00  active: 2020-04-20, qa-1"
    );
    assert!(summarize(&status, true).ends_with(
        "  drills: qa-1 until 2020-04-19T17:40:00.000Z [webcollect.api webcollect.link]"
    ));
    let idle = json!({"now": "n", "active_windows": [], "drills": [], "config": {"version": 1, "sha256": "ab"}});
    assert_eq!(
        summarize(&idle, true),
        "config v1 sha256:ab  now n  active: none  drills: none"
    );
}

#[test]
fn ids_must_survive_a_url_path() {
    assert!(parse_id("fleet-drill_1.a:b").is_ok());
    for bad in ["", "a/b", "a b", "a%2F", "a?b"] {
        assert!(parse_id(bad).is_err(), "{bad}");
    }
}

#[test]
fn drills_open_sends_what_the_admin_parses() {
    let args = |services: Vec<String>| OpenArgs {
        fleet: FleetArgs {
            admin: vec![url("127.0.0.1:9090")],
            token_env: TOKEN_ENV.into(),
            timeout: std::time::Duration::from_secs(5),
        },
        services,
        duration: "15m".into(),
        title: Some("rehearsal".into()),
        id: None,
    };
    let (id, body) = open_body(&args(vec!["webcollect.api".into()])).unwrap();
    assert!(id.starts_with("drill-"), "{id}");
    let parsed = DrillRequest::parse(&body).unwrap();
    assert_eq!(parsed.id.as_deref(), Some(id.as_str()));
    assert_eq!(parsed.title.as_deref(), Some("rehearsal"));
    // Each `--service` passed its own check; the whole is refused by the admin's parse.
    assert_eq!(
        open_body(&args(vec!["webcollect.api".into(); 33])).unwrap_err(),
        InputError::ServiceCount
    );
}
