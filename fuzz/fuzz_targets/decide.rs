//! Fuzzes routing and the maintenance decision on the shipped config: any method, path,
//! host, drill header, `Via`, client address and instant yields a decision, never a panic.
#![no_main]

use std::sync::{Arc, LazyLock};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use webcollect_shim::config::Config;
use webcollect_shim::decide::{Action, RequestInfo, action, settle_rewrite};
use webcollect_shim::decide::snapshot::Snapshot;
use webcollect_shim::decide::via::ViaMark;

static SNAPSHOT: LazyLock<Snapshot> = LazyLock::new(|| {
    let text = include_str!("../../config/webcollect-shim.toml");
    let config = Config::from_toml_with_env(std::path::Path::new("shipped.toml"), text, &|_| None)
        .expect("the shipped config is valid");
    Snapshot::new(Arc::new(config), &[], 1, chrono::DateTime::UNIX_EPOCH)
});

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    method: &'a [u8],
    path: &'a str,
    drill: &'a [u8],
    forwarded_for: &'a [u8],
    peer: [u8; 4],
    millis: i64,
    host: &'a str,
    via: &'a [u8],
}

fuzz_target!(|input: Input<'_>| {
    let Ok(method) = http::Method::from_bytes(input.method) else {
        return;
    };
    let mut headers = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_bytes(input.drill) {
        headers.insert("x-webcollect-shim-drill", v);
    }
    if let Ok(v) = http::HeaderValue::from_bytes(input.forwarded_for) {
        headers.insert("x-forwarded-for", v);
    }
    if let Ok(v) = http::HeaderValue::from_bytes(input.via) {
        headers.insert(http::header::VIA, v);
    }
    let Some(now) = chrono::DateTime::from_timestamp_millis(input.millis) else {
        return;
    };
    let mark = ViaMark::named("fuzz");
    let req = RequestInfo {
        method: &method,
        path: input.path,
        headers: &headers,
        peer: std::net::IpAddr::from(input.peer),
        host: Some(input.host),
        mark: &mark,
    };
    let action = action(&SNAPSHOT, req, now);
    if let Action::Forward { route, .. } | Action::Maintain { route, .. } = action {
        assert!(route < SNAPSHOT.config.routes.len());
        let drill = webcollect_shim::decide::drill_header(&headers, &SNAPSHOT.config.drill.header);
        let _ = settle_rewrite(&SNAPSHOT, route, input.path, drill, now);
    }
});
