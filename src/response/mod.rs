//! Every answer the shim makes itself: the maintenance XML, page and token stand-in, and the
//! 404/508/502/504 answers. Also the one response body type used by the proxy.

pub(crate) mod page;

use bytes::Bytes;
use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use http_body_util::combinators::BoxBody;

use crate::schedule::Window;
pub(crate) use page::window_text;
use page::{Contact, PAGE_TITLE, PageValues, Template};

/// Error type of streamed bodies.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The one body type of the proxy: a streamed upstream body or a canned one.
pub(crate) type Body = BoxBody<Bytes, BoxError>;

/// A complete in-memory body.
#[must_use]
pub(crate) fn full(body: impl Into<Bytes>) -> Body {
    use http_body_util::BodyExt as _;
    http_body_util::Full::new(body.into())
        .map_err(|never| match never {})
        .boxed()
}

/// `X-Webcollect-Shim`: set on every answer the shim makes itself (and on report-mode passes).
pub(crate) const X_WEBCOLLECT_SHIM: HeaderName = HeaderName::from_static("x-webcollect-shim");

const TEXT_XML: &str = "text/xml; charset=UTF-8";
const TEXT_HTML: &str = "text/html; charset=UTF-8";
const TEXT_PLAIN: &str = "text/plain; charset=UTF-8";
const APPLICATION_JS: &str = "application/javascript; charset=UTF-8";
const NO_STORE: &str = "no-store";

/// A complete answer made by the shim, before it becomes an HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Canned {
    /// Status code.
    pub(crate) status: StatusCode,
    /// Headers (Content-Length is added by the server).
    pub(crate) headers: HeaderMap,
    /// Body.
    pub(crate) body: Bytes,
    /// The connection closes after it (a request body is left unread): rendered as
    /// `Connection: close` on HTTP/1.x by the stack's `enter` step, the one place.
    pub(crate) close: bool,
}

impl Canned {
    fn new(
        status: StatusCode,
        reason: &'static str,
        content_type: &'static str,
        body: impl Into<Bytes>,
    ) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static(NO_STORE));
        headers.insert(X_WEBCOLLECT_SHIM, HeaderValue::from_static(reason));
        Self {
            status,
            headers,
            body: body.into(),
            close: false,
        }
    }
}

/// SPEC §4.1: the API answer during maintenance. `returnDate` is `now` in `tz`.
#[must_use]
pub(crate) fn api_maintenance(
    error_code: &str,
    status: StatusCode,
    tz: Tz,
    now: DateTime<Utc>,
) -> Canned {
    // Plain integer formatting: chrono's strftime re-parses its pattern on every call.
    let t = now.with_timezone(&tz);
    let date = format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<return>\n<returnCode>1</returnCode>\n<errorCode>{error_code}</errorCode>\n<returnDate>{date}</returnDate>\n</return>\n"
    );
    Canned::new(status, "maintenance", TEXT_XML, body)
}

/// The maintenance page's HTML for `window` (or for no known window: 「未定」).
#[must_use]
pub(crate) fn page_body(
    template: &Template,
    contact: &Contact,
    tz: Tz,
    window: Option<&Window>,
) -> Bytes {
    let window_text =
        window.map_or_else(|| "未定".to_string(), |w| window_text(w.start, w.end, tz));
    template
        .render(&PageValues {
            title: PAGE_TITLE,
            window: &window_text,
            contact,
        })
        .into()
}

/// SPEC §4.2: the maintenance page answer (`status`, `page_status` in the config) around an
/// already rendered `body`. `until` drives Retry-After, counted in real seconds (`speed` is
/// the drill clock's speed).
#[must_use]
pub(crate) fn page_answer(
    status: StatusCode,
    body: Bytes,
    until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    speed: f64,
) -> Canned {
    let mut canned = Canned::new(status, "maintenance", TEXT_HTML, body);
    if let Some(until) = until {
        let secs = (until - now).num_milliseconds().max(0) as f64 / 1000.0 / speed;
        let secs = secs.ceil().max(1.0) as u64;
        canned.headers.insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    canned
}

/// SPEC §4.3: the token library stand-in.
#[must_use]
pub(crate) fn token_js(body: Bytes) -> Canned {
    Canned::new(StatusCode::OK, "maintenance", APPLICATION_JS, body)
}

/// Renders the token library stand-in's source for this configuration.
#[must_use]
pub(crate) fn token_js_body(error_code: &str, message: &str, modal: bool) -> Bytes {
    include_str!("../../assets/tokenlib.js")
        .replace("__ERROR_CODE__", &js_string(error_code))
        .replace("__ERROR_MSG__", &js_string(message))
        .replace("__MODAL__", if modal { "true" } else { "false" })
        // The card form, shared with the stand-in gateway's library; pasted last so that its
        // text is never searched for placeholders.
        .replace(
            "/*__TOKEN_FORM__*/",
            include_str!("../../assets/token-form.js"),
        )
        .into()
}

/// 404 for paths no route takes: the shim is not an open proxy.
#[must_use]
pub(crate) fn no_route() -> Canned {
    Canned::new(
        StatusCode::NOT_FOUND,
        "no-route",
        TEXT_PLAIN,
        "webcollect-shim: no route for this path\n",
    )
}

/// 508: the request carries this shim's own `Via` mark, so forwarding it would send it
/// around again (see [`crate::decide::via`]).
#[must_use]
pub(crate) fn loop_detected() -> Canned {
    Canned::new(
        StatusCode::LOOP_DETECTED,
        "loop",
        TEXT_PLAIN,
        "webcollect-shim: this request has already passed through this shim (its Via mark): \
         an upstream leads back here. Give the upstream `connect_to` the real gateway's address.\n",
    )
}

/// 502: the upstream could not be reached or broke the exchange.
#[must_use]
pub(crate) fn bad_gateway(detail: &'static str) -> Canned {
    Canned::new(
        StatusCode::BAD_GATEWAY,
        "bad-gateway",
        TEXT_PLAIN,
        format!("webcollect-shim: {detail}\n"),
    )
}

/// 504: the upstream did not answer within `response_timeout`.
#[must_use]
pub(crate) fn gateway_timeout() -> Canned {
    Canned::new(
        StatusCode::GATEWAY_TIMEOUT,
        "gateway-timeout",
        TEXT_PLAIN,
        "webcollect-shim: upstream did not answer in time\n",
    )
}

/// 413: the request body is larger than `server.max_request_body`.
#[must_use]
pub(crate) fn payload_too_large() -> Canned {
    let mut canned = Canned::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload-too-large",
        TEXT_PLAIN,
        "webcollect-shim: request body too large\n",
    );
    // The rest of the body is not read: the connection cannot carry another request.
    canned.close = true;
    canned
}

/// 400: a path the shim cannot decide on safely (SPEC §4.5); `reason` says why.
#[must_use]
pub(crate) fn bad_path(reason: &str) -> Canned {
    let mut canned = Canned::new(
        StatusCode::BAD_REQUEST,
        "bad-path",
        TEXT_PLAIN,
        format!("webcollect-shim: {reason}\n"),
    );
    // The path was not understood; its body (if any) is not read.
    canned.close = true;
    canned
}

/// 405: CONNECT and TRACE are never forwarded (SPEC §4.6).
#[must_use]
pub(crate) fn method_not_allowed() -> Canned {
    let mut canned = Canned::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        TEXT_PLAIN,
        "webcollect-shim: CONNECT and TRACE are not forwarded\n",
    );
    canned.headers.insert(
        http::header::ALLOW,
        HeaderValue::from_static("GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH"),
    );
    canned
}

/// 408: the request body stalled past `server.body_read_timeout`.
#[must_use]
pub(crate) fn request_timeout() -> Canned {
    let mut canned = Canned::new(
        StatusCode::REQUEST_TIMEOUT,
        "body-timeout",
        TEXT_PLAIN,
        "webcollect-shim: request body stalled\n",
    );
    canned.close = true;
    canned
}

/// 503: the upstream's `max_connections` are all busy.
#[must_use]
pub(crate) fn upstream_busy() -> Canned {
    Canned::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "upstream-busy",
        TEXT_PLAIN,
        "webcollect-shim: upstream connection limit reached\n",
    )
}

/// 500: the shim itself failed (a bug); logged, and the connection survives.
#[must_use]
pub(crate) fn internal_error() -> Canned {
    Canned::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal-error",
        TEXT_PLAIN,
        "webcollect-shim: internal error\n",
    )
}

/// `499` (nginx's "client closed request"): the answer to a request whose client closed
/// the connection mid-body. Nobody reads it; it exists so the log and the metrics say so.
#[must_use]
pub(crate) fn client_gone() -> Canned {
    let status = StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST);
    let mut canned = Canned::new(
        status,
        "client-gone",
        TEXT_PLAIN,
        "webcollect-shim: the client closed the connection\n".to_string(),
    );
    canned.close = true;
    canned
}

/// 400: a request the shim cannot forward. The connection is closed after it: a request
/// that could not be read cannot be trusted to end where the next one starts.
#[must_use]
pub(crate) fn bad_request(detail: &'static str) -> Canned {
    let mut canned = Canned::new(
        StatusCode::BAD_REQUEST,
        "bad-request",
        TEXT_PLAIN,
        format!("webcollect-shim: {detail}\n"),
    );
    canned.close = true;
    canned
}

/// A JavaScript string literal safe to embed anywhere in a script (no `</script>` breakout).
fn js_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn js_strings_cannot_break_out() {
        assert_eq!(
            js_string("a\"b</script>\n"),
            "\"a\\\"b\\u003c/script\\u003e\\u000a\""
        );
    }
}
