//! `GET /`: the admin console. One self-contained page (HTML, CSS and JS from `assets/admin/`,
//! embedded in the binary, no build step) that reads `/status`, `/timeline`, `/traffic` and
//! `/report` every few seconds and calls the mutating endpoints with the operator's bearer
//! token.
//!
//! The page may load nothing from anywhere and may not be framed: its Content-Security-Policy
//! allows only its own inline script and style (by sha256) and fetches to the admin origin.

use std::sync::LazyLock;

use base64::Engine as _;
use bytes::Bytes;
use http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use http::{HeaderValue, Response};
use sha2::Digest as _;

use crate::response::{Body, full};

const TEMPLATE: &str = include_str!("../../assets/admin/console.html");
const STYLE: &str = include_str!("../../assets/admin/console.css");
const SCRIPT: &str = include_str!("../../assets/admin/console.js");

/// The page and its policy, assembled on first use.
struct Page {
    html: Bytes,
    csp: HeaderValue,
}

static PAGE: LazyLock<Page> = LazyLock::new(|| {
    let html = TEMPLATE
        .replacen("{{style}}", STYLE, 1)
        .replacen("{{script}}", SCRIPT, 1);
    Page {
        html: Bytes::from(html),
        csp: HeaderValue::from_str(&policy())
            .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'")),
    }
});

/// The Content-Security-Policy of the page.
#[must_use]
pub(crate) fn policy() -> String {
    format!(
        "default-src 'none'; script-src '{}'; style-src '{}'; connect-src 'self'; \
         img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        hash(SCRIPT),
        hash(STYLE)
    )
}

/// A CSP hash source for an inline element's exact text.
fn hash(text: &str) -> String {
    let digest = sha2::Sha256::digest(text.as_bytes());
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// The console page.
pub(super) fn page() -> Response<Body> {
    let page = &*PAGE;
    let mut res = Response::new(full(page.html.clone()));
    let headers = res.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=UTF-8"),
    );
    headers.insert(CONTENT_SECURITY_POLICY, page.csp.clone());
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_holds_exactly_the_hashed_script_and_style() {
        let html = std::str::from_utf8(&PAGE.html).unwrap();
        assert!(!html.contains("{{"), "a placeholder was left in the page");
        // One inline script and one inline style, each exactly the hashed text.
        assert_eq!(html.matches("<script").count(), 1);
        assert_eq!(html.matches("<style").count(), 1);
        assert!(html.contains(&format!("<script>{SCRIPT}</script>")));
        assert!(html.contains(&format!("<style>{STYLE}</style>")));
        // No inline handlers, no resource from elsewhere.
        for forbidden in [
            " onclick=",
            " onload=",
            " onsubmit=",
            "src=\"http",
            "href=\"http",
        ] {
            assert!(!html.contains(forbidden), "{forbidden}");
        }
        let csp = PAGE.csp.to_str().unwrap();
        assert!(csp.starts_with("default-src 'none'; script-src 'sha256-"));
        assert!(!csp.contains("unsafe"));
    }
}
