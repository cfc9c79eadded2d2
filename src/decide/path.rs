//! The path the gateway will act on (SPEC §4.5). Routing and windows are decided on the
//! canonical form of the request path, so that `/api/./creditToken`, `/api//creditToken`
//! or `/api/%63reditToken` cannot slip past a window that covers `/api/creditToken`.
//!
//! The canonical form: percent-encoded unreserved characters decoded, other escapes in
//! upper case, `.` and `..` segments resolved, repeated slashes merged, trailing dots of a
//! segment dropped (as some servers do), and `;` path parameters removed. Escapes that
//! servers disagree on (an encoded delimiter `/ \ ; ? #`, `%` or control character, an
//! escape that is not UTF-8, such as the overlong `%C0%AF`), a last segment of dots (`/x/.`:
//! `/x/` to some servers, `/x` to others) and a raw `\` or `#` are refused outright.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Why a path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// The path differs from its canonical form (other than by path parameters).
    NotCanonical,
    /// An escape decodes to a delimiter (`/ \ ; ? #`), `%` or a control character.
    EncodedSeparator,
    /// A `%` not followed by two hex digits.
    BadEscape,
    /// Escaped bytes that are not UTF-8 (overlong forms included).
    NotUtf8,
    /// A raw `\`, which some servers read as `/`.
    Backslash,
    /// A raw `#`: a fragment has no business in a request.
    Fragment,
    /// The last segment is `.`, `..` (escaped or not) or only dots: RFC 3986 and nginx
    /// resolve `/api/creditToken/.` to `/api/creditToken/`, Go's `path.Clean` and others to
    /// `/api/creditToken`, so which resource it names depends on the server.
    DotEnd,
}

impl Problem {
    /// What is wrong, for `explain`, the log and the answer.
    #[must_use]
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Self::NotCanonical => {
                "the path is not in canonical form (dot segments, repeated slashes, escaped unreserved characters, lower-case escapes or trailing dots)"
            }
            Self::EncodedSeparator => {
                "the path escapes a delimiter (/ \\ ; ? #), a percent sign or a control character"
            }
            Self::BadEscape => "the path has a malformed percent escape",
            Self::NotUtf8 => "the path's escapes are not UTF-8",
            Self::Backslash => "the path contains a backslash",
            Self::Fragment => "the path contains '#'",
            Self::DotEnd => {
                "the path ends in a dot segment, which servers resolve with or without a trailing slash"
            }
        }
    }
}

/// A request path and its canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canonical<'a> {
    /// The canonical path without path parameters: what routes and windows see.
    pub path: Cow<'a, str>,
    /// The canonical path with each remaining segment's parameters, as forwarded when
    /// `server.non_canonical_paths = "forward_canonical"`.
    pub(crate) with_params: Cow<'a, str>,
    /// The raw path differs from the canonical one other than by path parameters.
    pub rewritten: bool,
}

/// The canonical form of `raw` (a request path, without the query).
///
/// # Errors
/// A path with escapes or characters that servers read in different ways.
pub fn canonicalize(raw: &str) -> Result<Canonical<'_>, Problem> {
    if is_plain(raw.as_bytes()) {
        return Ok(Canonical {
            path: Cow::Borrowed(raw),
            with_params: Cow::Borrowed(raw),
            rewritten: false,
        });
    }
    slow(raw)
}

/// The path as the shim decided on it (for logs and route-kind details): the canonical path,
/// or for a refused one the raw path without its `;` parameters (they can carry session
/// ids).
#[must_use]
pub(crate) fn as_decided(raw: &str) -> Cow<'_, str> {
    match canonicalize(raw) {
        Ok(c) => c.path,
        Err(_) if !raw.contains(';') => Cow::Borrowed(raw),
        Err(_) => Cow::Owned(
            raw.split('/')
                .map(|segment| segment.split(';').next().unwrap_or(""))
                .collect::<Vec<_>>()
                .join("/"),
        ),
    }
}

/// True when `raw` is canonical as it stands: the common case costs one pass, no allocation.
fn is_plain(raw: &[u8]) -> bool {
    if raw.first() != Some(&b'/') {
        // `*` (OPTIONS) and other odd targets: no route takes them anyway.
        return !raw.iter().any(|b| matches!(b, b'%' | b';' | b'\\' | b'#'));
    }
    let mut previous = b'/';
    for &b in &raw[1..] {
        match b {
            b'%' | b';' | b'\\' | b'#' => return false,
            // `//`, and a segment that is `.`, `..` or ends in a dot.
            b'/' if previous == b'/' || previous == b'.' => return false,
            _ => {}
        }
        previous = b;
    }
    // A last segment of `.`, `..` or ending in a dot.
    previous != b'.'
}

fn slow(raw: &str) -> Result<Canonical<'_>, Problem> {
    if raw.contains('\\') {
        return Err(Problem::Backslash);
    }
    if raw.contains('#') {
        return Err(Problem::Fragment);
    }
    let Some(rest) = raw.strip_prefix('/') else {
        return Ok(Canonical {
            path: Cow::Borrowed(raw),
            with_params: Cow::Borrowed(raw),
            rewritten: false,
        });
    };
    let mut without_params = String::with_capacity(raw.len());
    // Each kept segment: its canonical name and its parameters (with the leading `;`).
    let mut kept: Vec<(String, &str)> = Vec::new();
    let mut trailing_slash = false;
    let segments: Vec<&str> = rest.split('/').collect();
    let last = segments.len() - 1;
    for (i, segment) in segments.iter().enumerate() {
        let (name, params) = segment.split_at(segment.find(';').unwrap_or(segment.len()));
        // Parameters never decide a route, but a server that decodes before it splits them
        // off reads `x;%2F..%2F..%2Fapi` as a path: their escapes obey the segment's rules.
        decode(params)?;
        without_params.push('/');
        without_params.push_str(name);
        let mut name = decode(name)?;
        if i > 0 && i == last && !name.is_empty() && name.bytes().all(|b| b == b'.') {
            // `/.` and `/..` resolve to `/` either way: only a deeper path is ambiguous.
            return Err(Problem::DotEnd);
        }
        if name != "." && name != ".." {
            let trimmed = name.trim_end_matches('.').len();
            name.truncate(trimmed);
        }
        match name.as_str() {
            "" | "." => trailing_slash = i == last,
            ".." => {
                kept.pop();
                trailing_slash = i == last;
            }
            _ => {
                kept.push((name, params));
                trailing_slash = false;
            }
        }
    }
    let mut path = String::with_capacity(raw.len());
    let mut with_params = String::with_capacity(raw.len());
    for (name, params) in &kept {
        path.push('/');
        path.push_str(name);
        with_params.push('/');
        with_params.push_str(name);
        with_params.push_str(params);
    }
    if kept.is_empty() || trailing_slash {
        path.push('/');
        with_params.push('/');
    }
    let rewritten = without_params != path;
    Ok(Canonical {
        path: Cow::Owned(path),
        with_params: Cow::Owned(with_params),
        rewritten,
    })
}

/// Decodes escaped unreserved characters and writes every other escape in upper case.
fn decode(segment: &str) -> Result<String, Problem> {
    let bytes = segment.as_bytes();
    let mut out = String::with_capacity(segment.len());
    // The bytes the segment stands for once fully decoded: they must be UTF-8.
    let mut decoded = Vec::with_capacity(segment.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            let ch = segment[i..].chars().next().unwrap_or('\u{fffd}');
            out.push(ch);
            decoded.extend_from_slice(&bytes[i..i + ch.len_utf8()]);
            i += ch.len_utf8();
            continue;
        }
        let hex = bytes.get(i + 1..i + 3).ok_or(Problem::BadEscape)?;
        let byte = std::str::from_utf8(hex)
            .ok()
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .ok_or(Problem::BadEscape)?;
        // Delimiters (`/`, `\`, `;` as a path parameter, `?`, `#`), `%` (double encoding)
        // and control characters: what a server makes of them once decoded varies, so
        // they are refused.
        if matches!(byte, b'/' | b'\\' | b';' | b'?' | b'#' | b'%') || byte < 0x20 || byte == 0x7f {
            return Err(Problem::EncodedSeparator);
        }
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
        decoded.push(byte);
        i += 3;
    }
    if std::str::from_utf8(&decoded).is_err() {
        return Err(Problem::NotUtf8);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(raw: &str) -> Result<(String, bool), Problem> {
        canonicalize(raw).map(|c| (c.path.into_owned(), c.rewritten))
    }

    #[test]
    fn plain_paths_are_borrowed_as_they_are() {
        for raw in [
            "/",
            "/api/creditToken",
            "/api/",
            "/a.b/c-d_e~f",
            "/api/token/js/tokenlib.js",
        ] {
            let c = canonicalize(raw).unwrap();
            assert!(matches!(c.path, Cow::Borrowed(_)), "{raw}");
            assert_eq!(c.path, raw);
            assert!(!c.rewritten);
        }
    }

    #[test]
    fn every_bypass_form_canonicalizes_to_the_real_path_and_is_flagged() {
        for raw in [
            "/api//creditToken",
            "/api/./creditToken",
            "/api/x/../creditToken",
            "/api/%2e/creditToken",
            "/api/%63reditToken",
            "/static/../api/creditToken",
            "/static/%2e%2e/api/creditToken",
            "/static/%2E%2E/api/creditToken",
            "/api/creditToken.",
            "/api/creditToken..",
            "/api/creditToken./",
            "//api/creditToken",
            "/../api/creditToken",
            "/static/..;/api/creditToken",
            "/api/%7ecredit/../creditToken",
        ] {
            let (path, rewritten) = canon(raw).unwrap();
            assert!(path.starts_with("/api/creditToken"), "{raw} → {path}");
            assert!(rewritten, "{raw}");
        }
    }

    #[test]
    fn path_parameters_are_not_a_rewrite() {
        let c = canonicalize("/api/creditToken;jsessionid=ABC").unwrap();
        assert_eq!(c.path, "/api/creditToken");
        assert_eq!(c.with_params, "/api/creditToken;jsessionid=ABC");
        assert!(!c.rewritten);
        let c = canonicalize("/api;x=1/creditToken").unwrap();
        assert_eq!(c.path, "/api/creditToken");
        assert!(!c.rewritten);
    }

    #[test]
    fn escapes_servers_disagree_on_are_refused() {
        assert_eq!(canon("/api%2FcreditToken"), Err(Problem::EncodedSeparator));
        assert_eq!(canon("/api/%2f"), Err(Problem::EncodedSeparator));
        assert_eq!(canon("/api%5CcreditToken"), Err(Problem::EncodedSeparator));
        assert_eq!(canon("/api/%00"), Err(Problem::EncodedSeparator));
        for delimiter in ["%3B", "%3b", "%3F", "%23", "%25", "%252e"] {
            assert_eq!(
                canon(&format!("/api/x{delimiter}y")),
                Err(Problem::EncodedSeparator),
                "{delimiter}"
            );
        }
        assert_eq!(canon("/api/%C0%AFcreditToken"), Err(Problem::NotUtf8));
        // In path parameters too (found by the path fuzz target).
        assert_eq!(
            canon("/static/x;%2F..%2F..%2Fapi%2FcreditToken"),
            Err(Problem::EncodedSeparator)
        );
        assert_eq!(canon("/;p%2Fx/api/y"), Err(Problem::EncodedSeparator));
        assert_eq!(canon("/api/x;s=%C0%AF"), Err(Problem::NotUtf8));
        assert_eq!(canon("/api/x;s=%zz"), Err(Problem::BadEscape));
        assert_eq!(
            canon("/api/creditToken;jsessionid=A%20B").map(|(p, _)| p),
            Ok("/api/creditToken".into())
        );
        assert_eq!(canon("/api/%zz"), Err(Problem::BadEscape));
        assert_eq!(canon("/api/%4"), Err(Problem::BadEscape));
        assert_eq!(canon("/api\\creditToken"), Err(Problem::Backslash));
        assert_eq!(canon("/api/creditToken#x"), Err(Problem::Fragment));
    }

    #[test]
    fn other_escapes_stay_escaped_in_upper_case() {
        assert_eq!(canon("/a%20b"), Ok(("/a%20b".into(), false)));
        assert_eq!(canon("/a%2cb"), Ok(("/a%2Cb".into(), true)));
        assert_eq!(canon("/%E3%81%82"), Ok(("/%E3%81%82".into(), false)));
        assert_eq!(canon("/あ"), Ok(("/あ".into(), false)));
    }

    #[test]
    fn trailing_slashes_and_root() {
        assert_eq!(canon("/api/"), Ok(("/api/".into(), false)));
        assert_eq!(canon("/api/./"), Ok(("/api/".into(), true)));
        assert_eq!(canon("/api/x/../"), Ok(("/api/".into(), true)));
        assert_eq!(canon("/.."), Ok(("/".into(), true)));
        assert_eq!(canon("/."), Ok(("/".into(), true)));
        // With or without a trailing slash, depending on the server.
        for raw in [
            "/api/.",
            "/api/x/..",
            "/api/creditToken/.",
            "/api/creditToken/%2e",
            "/api/creditToken/%2E%2e",
            "/api/creditToken/...",
            "/api/creditToken/.;x=1",
        ] {
            assert_eq!(canon(raw), Err(Problem::DotEnd), "{raw}");
        }
        assert_eq!(canon("*"), Ok(("*".into(), false)));
    }
}
