//! Web origins (RFC 6454): `[admin] allowed_origins` and the admin API's same-origin rule
//! compare them as scheme, host and port, so `http://Localhost:80` equals
//! `http://localhost`.

use std::fmt;

/// A tuple origin: `http` or `https`, a lowercase host, a port (the scheme's default when
/// none was written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    /// `http` or `https`.
    scheme: &'static str,
    /// Lowercase host name or IP literal (IPv6 in brackets).
    pub(crate) host: String,
    /// Explicit or default port.
    port: u16,
}

impl Origin {
    /// Parses an `Origin` header value or a configured origin: `scheme://host[:port]`,
    /// nothing after it (a trailing `/` is tolerated in the config). `None` for anything
    /// else, including the opaque origin `null`.
    #[must_use]
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let (scheme, rest) = text.split_once("://")?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => "http",
            "https" => "https",
            _ => return None,
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#', '@']) {
            return None;
        }
        let (host, port) = split_authority(authority, default_port(scheme))?;
        Some(Self { scheme, host, port })
    }

    /// True when this origin names the host and port of a `Host` header (or HTTP/2
    /// `:authority`) value. A `Host` without a port means the default port of this
    /// origin's scheme: behind a TLS-terminating proxy the browser's origin is `https`
    /// while the admin listener itself speaks plain HTTP.
    #[must_use]
    pub(crate) fn matches_host(&self, host: &str) -> bool {
        split_authority(host, default_port(self.scheme))
            .is_some_and(|(name, port)| name == self.host && port == self.port)
    }

    /// True for an IP literal or `localhost`: names that DNS cannot point elsewhere.
    #[must_use]
    pub(crate) fn is_literal_or_localhost(&self) -> bool {
        self.host == "localhost"
            || self.host.parse::<std::net::Ipv4Addr>().is_ok()
            || self
                .host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .is_some_and(|h| h.parse::<std::net::Ipv6Addr>().is_ok())
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.port == default_port(self.scheme) {
            write!(f, "{}://{}", self.scheme, self.host)
        } else {
            write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
        }
    }
}

fn default_port(scheme: &str) -> u16 {
    if scheme == "https" { 443 } else { 80 }
}

/// `host[:port]` → lowercase host and port (`default` when absent); `None` when malformed.
fn split_authority(authority: &str, default: u16) -> Option<(String, u16)> {
    let (host, port) = if authority.starts_with('[') {
        // IPv6 literal: the port, if any, follows the closing bracket.
        let end = authority.find(']')? + 1;
        match &authority[end..] {
            "" => (&authority[..end], None),
            rest => (&authority[..end], Some(rest.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    // A colon in the host is only allowed inside an IPv6 literal's brackets.
    let bracketed = host.starts_with('[');
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || (c == ':' && !bracketed)) {
        return None;
    }
    let port = match port {
        None => default,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p.parse().ok()?,
        Some(_) => return None,
    };
    Some((host.to_ascii_lowercase(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        let o = Origin::parse("HTTP://LocalHost:80").unwrap();
        assert_eq!(
            (o.scheme, o.host.as_str(), o.port),
            ("http", "localhost", 80)
        );
        assert_eq!(o.to_string(), "http://localhost");
        assert_eq!(
            Origin::parse("https://admin.example/").unwrap().to_string(),
            "https://admin.example"
        );
        assert_eq!(
            Origin::parse("http://[::1]:9090").unwrap().to_string(),
            "http://[::1]:9090"
        );
        for bad in [
            "null",
            "",
            "admin.example",
            "ftp://admin.example",
            "http://",
            "http://a.example/path",
            "http://a.example?x",
            "http://user@a.example",
            "http://a.example:",
            "http://a.example:99999",
            "http://a.example:8x",
            "http://::1:9090",
            "http://[::1]9090",
        ] {
            assert_eq!(Origin::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn matches_the_host_header() {
        let local = Origin::parse("http://127.0.0.1:9090").unwrap();
        assert!(local.matches_host("127.0.0.1:9090"));
        assert!(!local.matches_host("127.0.0.1:9091"));
        assert!(!local.matches_host("127.0.0.1"));
        let proxied = Origin::parse("https://Admin.Example").unwrap();
        assert!(proxied.matches_host("admin.example"));
        assert!(proxied.matches_host("admin.example:443"));
        assert!(!proxied.matches_host("admin.example:80"));
        assert!(!proxied.matches_host("evil.example"));
        let v6 = Origin::parse("http://[::1]:9090").unwrap();
        assert!(v6.matches_host("[::1]:9090"));
        assert!(!v6.matches_host("[::1]"));
    }

    #[test]
    fn literals_and_localhost_cannot_be_rebound() {
        for (origin, literal) in [
            ("http://127.0.0.1:9090", true),
            ("http://localhost:9090", true),
            ("http://[::1]:9090", true),
            ("http://10.0.0.7:9090", true),
            ("http://shim-admin.internal:9090", false),
            ("http://127.0.0.1.nip.io:9090", false),
        ] {
            assert_eq!(
                Origin::parse(origin).unwrap().is_literal_or_localhost(),
                literal,
                "{origin}"
            );
        }
    }
}
