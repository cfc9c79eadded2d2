//! Fuzzes the canonical path (SPEC §4.5) on the shipped config: no request path is routed
//! differently from the way a lenient upstream would read it, unless the shim refuses it.
//! The lenient reading decodes every escape, takes `\` for `/`, drops `;` parameters and
//! trailing dots, and resolves dot segments: what the laxest server behind the shim might do.
#![no_main]

use std::sync::{Arc, LazyLock};

use libfuzzer_sys::fuzz_target;
use webcollect_shim::config::Config;
use webcollect_shim::decide::{Action, RequestInfo, action};
use webcollect_shim::decide::path::canonicalize;
use webcollect_shim::decide::snapshot::Snapshot;

static SNAPSHOT: LazyLock<Snapshot> = LazyLock::new(|| {
    let text = include_str!("../../config/webcollect-shim.toml");
    let config = Config::from_toml_with_env(std::path::Path::new("shipped.toml"), text, &|_| None)
        .expect("the shipped config is valid");
    Snapshot::new(Arc::new(config), &[], 1, chrono::DateTime::UNIX_EPOCH)
});

fn lenient(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                decoded.push(b);
                i += 3;
            }
            (b, _) => {
                decoded.push(b);
                i += 1;
            }
        }
    }
    let text = String::from_utf8_lossy(&decoded).replace('\\', "/");
    let mut kept: Vec<&str> = Vec::new();
    let segments: Vec<&str> = text.split('/').skip(1).collect();
    let mut trailing = false;
    for (n, segment) in segments.iter().enumerate() {
        let name = segment.split(';').next().unwrap_or("");
        let name = if name == "." || name == ".." { name } else { name.trim_end_matches('.') };
        let last = n + 1 == segments.len();
        match name {
            "" | "." => trailing = last,
            ".." => {
                kept.pop();
                trailing = last;
            }
            _ => {
                kept.push(name);
                trailing = false;
            }
        }
    }
    let mut out = String::new();
    for name in &kept {
        out.push('/');
        out.push_str(name);
    }
    if kept.is_empty() || trailing {
        out.push('/');
    }
    out
}

fuzz_target!(|raw: &str| {
    // What reaches the shim as a path: origin-form, without query or fragment.
    let path = raw.split(['?', '#']).next().unwrap_or("");
    let path = format!("/{}", path.trim_start_matches('/'));
    let headers = http::HeaderMap::new();
    let req = RequestInfo {
        method: &http::Method::POST,
        path: &path,
        headers: &headers,
        peer: std::net::Ipv4Addr::LOCALHOST.into(),
        host: None,
        mark: &webcollect_shim::decide::via::ViaMark::named("fuzz"),
    };
    let action = action(&SNAPSHOT, req, chrono::DateTime::UNIX_EPOCH);
    if let Action::Refuse(_) = action {
        return;
    }
    // The canonical form is a fixed point.
    let canonical = canonicalize(&path).expect("not refused, so canonical");
    let again = canonicalize(&canonical.path).expect("canonical paths are accepted");
    assert_eq!(again.path, canonical.path);
    assert!(!again.rewritten, "{path:?} → {:?} is not a fixed point", canonical.path);
    // A lenient upstream reads it as the same route.
    let lenient = lenient(&path);
    assert_eq!(
        SNAPSHOT.router.find(&http::Method::POST, None, &lenient),
        action.route(),
        "{path:?} is routed as {:?}, read leniently as {lenient:?}",
        canonical.path
    );
});
