//! Cross-site rules of the admin API's mutating endpoints (`POST /reload`, `POST /drills`,
//! `DELETE /drills/{id}`), checked before the bearer token and whether or not one is
//! configured. They stop another site's page, open in an operator's browser, from opening
//! a drill or reloading through the operator's network position (SPEC §6).
//!
//! - **Same origin.** A request that carries `Origin` (every browser sends it on a
//!   cross-origin `POST` or `DELETE`) is refused with 403 unless the origin is in
//!   `[admin] allowed_origins`, or is the admin listener's own: the same host and port as
//!   the request's `Host` (HTTP/2: `:authority`). `Host` is what the browser connected to,
//!   so this holds on `0.0.0.0`, behind `kubectl port-forward` and behind a Kubernetes
//!   Service alike, with no address to configure. One exception: with no bearer token
//!   configured, a DNS name is not accepted as the admin's own, only an IP literal or
//!   `localhost`, because an attacker's name can be re-pointed at 127.0.0.1 (DNS rebinding)
//!   and its page would then be "same origin". A request without `Origin` (curl, the CLI)
//!   is not a browser's cross-site request and passes.
//! - **Host, on every request.** Reads need no token, so a rebound name would let another
//!   site's page *read* `/status`, `/drills` and `/report` even where it cannot write. Every
//!   admin request, reads included, is refused with 403 unless its `Host` (HTTP/2:
//!   `:authority`) names the admin by the same rule: an IP literal or `localhost`, the host
//!   of an `[admin] allowed_origins` entry. With a bearer token configured (a non-loopback
//!   admin always has one), any other name is accepted only from a request that carries the
//!   token, reads included: a Service or ingress name cannot be known in advance, and a
//!   rebound page cannot send a token it does not know. The console's page, `/healthz` and
//!   `/readyz` reveal nothing and answer any name (the console then asks for the token).
//!   A request without `Host` (HTTP/1.0: no browser) passes.
//! - **JSON only.** `POST /drills` needs `Content-Type: application/json`, else 415: a
//!   cross-site form or `text/plain` body cannot be sent with that type without a CORS
//!   preflight, which the admin listener never grants.

use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST, ORIGIN, WWW_AUTHENTICATE};
use http::{HeaderValue, Request, Response, StatusCode};
use serde_json::json;

use super::{json_response, text};
use crate::config::{Admin, Origin};
use crate::response::Body;

/// `None` when the request may go on; otherwise the 403 to send.
pub(super) fn same_origin<B>(admin: &Admin, req: &Request<B>) -> Option<Response<Body>> {
    let origin = req.headers().get(ORIGIN)?;
    let allowed = origin
        .to_str()
        .ok()
        .and_then(Origin::parse)
        .is_some_and(|origin| {
            admin.allowed_origins.contains(&origin) || is_own(admin, &origin, req)
        });
    if allowed {
        return None;
    }
    tracing::warn!(
        method = %req.method(),
        path = req.uri().path(),
        "Admin request refused: its Origin is not the admin listener's own."
    );
    Some(json_response(
        StatusCode::FORBIDDEN,
        &json!({"error": "cross-origin request refused: the Origin header must be the admin \
                 listener's own (same host and port as Host) or be listed in [admin] \
                 allowed_origins"}),
    ))
}

/// `None` when the request's `Host` may reach the admin (see the module doc); otherwise the
/// 401 or 403 to send.
pub(super) fn host<B>(admin: &Admin, req: &Request<B>) -> Option<Response<Body>> {
    let host = req
        .headers()
        .get(HOST)
        .map(|h| h.to_str().unwrap_or("\u{fffd}"))
        .or_else(|| req.uri().authority().map(http::uri::Authority::as_str))?;
    // The origin parser normalises the host (lowercase, IPv6 brackets) for the comparison.
    let names_the_admin = Origin::parse(&format!("http://{host}")).is_some_and(|named| {
        named.is_literal_or_localhost()
            || admin.allowed_origins.iter().any(|o| o.host == named.host)
    });
    if names_the_admin {
        return None;
    }
    if admin.token.is_some() {
        return if matches!(req.uri().path(), "/" | "/healthz" | "/readyz") {
            None
        } else {
            bearer(admin, req)
        };
    }
    tracing::warn!(
        method = %req.method(),
        path = req.uri().path(),
        "Admin request refused: its Host is not an IP literal, localhost or an allowed origin's host (DNS rebinding)."
    );
    Some(json_response(
        StatusCode::FORBIDDEN,
        &json!({"error": "Host refused: without [admin] token_env the admin answers only an IP \
                 literal, localhost or the host of an [admin] allowed_origins entry"}),
    ))
}

/// `None` when no token is configured or the request carries it; otherwise the 401.
pub(super) fn bearer<B>(admin: &Admin, req: &Request<B>) -> Option<Response<Body>> {
    let expected = admin.token.as_ref()?;
    let given = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if constant_time_eq(given.as_bytes(), expected.expose().as_bytes()) {
        return None;
    }
    tracing::warn!(
        method = %req.method(),
        path = req.uri().path(),
        "Admin request refused: bad or missing bearer token."
    );
    let mut res = text(
        StatusCode::UNAUTHORIZED,
        "a valid Authorization: Bearer token is required\n",
    );
    res.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"webcollect-shim\""),
    );
    Some(res)
}

/// Compares without an early exit on the first differing byte, so timing does not reveal
/// how much of a guess was right. (The length is not secret.)
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// True when `origin` is where the request was sent: the host and port of its `Host`.
fn is_own<B>(admin: &Admin, origin: &Origin, req: &Request<B>) -> bool {
    let host = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(http::uri::Authority::as_str));
    host.is_some_and(|host| origin.matches_host(host))
        && (admin.token.is_some() || origin.is_literal_or_localhost())
}

/// `None` when the body is declared JSON; otherwise the 415 to send.
pub(super) fn json_only<B>(req: &Request<B>) -> Option<Response<Body>> {
    let essence = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    if essence.is_some_and(|e| e.eq_ignore_ascii_case("application/json")) {
        return None;
    }
    Some(json_response(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        &json!({"error": "POST /drills takes a JSON body sent with Content-Type: application/json"}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn admin(token: bool, allowed: &[&str]) -> Admin {
        Admin {
            allowed_origins: allowed.iter().filter_map(|o| Origin::parse(o)).collect(),
            token: token.then(|| Secret::new("x".repeat(16))),
            ..Admin::default()
        }
    }

    fn request(origin: Option<&str>, host: &str) -> Request<()> {
        let mut req = Request::post("/drills").header(HOST, host);
        if let Some(origin) = origin {
            req = req.header(ORIGIN, origin);
        }
        req.body(()).unwrap()
    }

    fn refused(admin: &Admin, origin: Option<&str>, host: &str) -> bool {
        same_origin(admin, &request(origin, host)).is_some()
    }

    #[test]
    fn the_admin_listeners_own_origin_passes() {
        for token in [false, true] {
            let a = admin(token, &[]);
            assert!(!refused(&a, None, "127.0.0.1:9090"));
            assert!(!refused(
                &a,
                Some("http://127.0.0.1:9090"),
                "127.0.0.1:9090"
            ));
            assert!(!refused(
                &a,
                Some("http://localhost:9090"),
                "localhost:9090"
            ));
            assert!(!refused(&a, Some("http://[::1]:9090"), "[::1]:9090"));
            // The scheme is the browser's: a TLS-terminating proxy keeps host and port.
            assert!(!refused(
                &a,
                Some("https://127.0.0.1:9090"),
                "127.0.0.1:9090"
            ));
            for (origin, host) in [
                ("http://evil.example", "127.0.0.1:9090"),
                ("http://127.0.0.1:9091", "127.0.0.1:9090"),
                ("null", "127.0.0.1:9090"),
                ("http://localhost:9090", "127.0.0.1:9090"),
            ] {
                assert!(refused(&a, Some(origin), host), "{origin} → {host}");
            }
        }
    }

    #[test]
    fn names_need_a_token_or_the_allow_list() {
        // A name the browser resolved: fine with a token (a rebound page has none) …
        let with_token = admin(true, &[]);
        assert!(!refused(
            &with_token,
            Some("http://shim-admin.staging:9090"),
            "shim-admin.staging:9090"
        ));
        // … behind a TLS-terminating ingress too …
        assert!(!refused(
            &with_token,
            Some("https://shim-admin.example"),
            "shim-admin.example"
        ));
        // … but not without one: it could be an attacker's name pointed at 127.0.0.1.
        assert!(refused(
            &admin(false, &[]),
            Some("http://rebind.example:9090"),
            "rebind.example:9090"
        ));
        // The allow-list admits an origin whatever Host says (a proxy that rewrites Host).
        let listed = admin(false, &["https://shim-admin.example"]);
        assert!(!refused(
            &listed,
            Some("https://shim-admin.example"),
            "10.0.0.7:9090"
        ));
        assert!(refused(
            &listed,
            Some("https://other.example"),
            "10.0.0.7:9090"
        ));
    }

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"abcdefghijklmnop", b"abcdefghijklmnop"));
        assert!(!constant_time_eq(b"abcdefghijklmnop", b"abcdefghijklmnoq"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }

    #[test]
    fn reads_check_host_too() {
        let get = |host: Option<&str>| {
            let mut req = Request::get("/status");
            if let Some(host) = host {
                req = req.header(HOST, host);
            }
            req.body(()).unwrap()
        };
        let open = admin(false, &["https://shim-admin.example"]);
        for ok in [
            None,
            Some("127.0.0.1:9090"),
            Some("[::1]:9090"),
            Some("LOCALHOST:9090"),
            Some("shim-admin.example"),
            Some("shim-admin.example:9090"),
        ] {
            assert!(host(&open, &get(ok)).is_none(), "{ok:?}");
        }
        for bad in ["rebind.example:9090", "admin", "127.0.0.1.nip.io", "a b"] {
            assert!(host(&open, &get(Some(bad))).is_some(), "{bad}");
        }
        // With a token, a name needs the token, reads included; the console's page and the
        // probes reveal nothing and answer any name.
        let guarded = admin(true, &[]);
        let named = |path: &str, token: Option<&str>| {
            let mut req = Request::get(path).header(HOST, "shim-admin.staging:9090");
            if let Some(token) = token {
                req = req.header(AUTHORIZATION, format!("Bearer {token}"));
            }
            host(&guarded, &req.body(()).unwrap()).map(|res| res.status())
        };
        let token = "x".repeat(16);
        assert_eq!(named("/status", None), Some(StatusCode::UNAUTHORIZED));
        assert_eq!(
            named("/report", Some("wrong-token-16chars")),
            Some(StatusCode::UNAUTHORIZED)
        );
        assert_eq!(named("/status", Some(&token)), None);
        for open in ["/", "/healthz", "/readyz"] {
            assert_eq!(named(open, None), None, "{open}");
        }
        assert!(host(&guarded, &get(Some("10.0.0.7:9090"))).is_none());
    }

    #[test]
    fn only_json_bodies_open_drills() {
        let with = |ct: Option<&str>| {
            let mut req = Request::post("/drills");
            if let Some(ct) = ct {
                req = req.header(CONTENT_TYPE, ct);
            }
            json_only(&req.body(()).unwrap()).map(|r| r.status().as_u16())
        };
        assert_eq!(with(Some("application/json")), None);
        assert_eq!(with(Some("Application/JSON; charset=utf-8")), None);
        for ct in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            Some("application/jsonp"),
        ] {
            assert_eq!(with(ct), Some(415), "{ct:?}");
        }
    }
}
