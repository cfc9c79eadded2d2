//! An `--admin` value: where a replica's admin API is, as the fleet commands are given it.

use std::net::IpAddr;

/// An `--admin` value: `[http://]host[:port][/prefix]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AdminUrl {
    pub(super) given: String,
    pub(super) host: String,
    pub(super) port: u16,
    /// `Host` header: host and port as given.
    pub(super) authority: String,
    /// Path prefix without a trailing slash (an admin API behind a path-routing proxy).
    pub(super) prefix: String,
}

impl AdminUrl {
    /// Parses an `--admin` value; the scheme defaults to `http`, the port to 80.
    ///
    /// # Errors
    /// A message naming what is wrong.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let full = if text.contains("://") {
            text.to_string()
        } else {
            format!("http://{text}")
        };
        let uri: http::Uri = full
            .parse()
            .map_err(|e| format!("invalid admin URL {text:?}: {e}"))?;
        if uri.scheme_str() != Some("http") {
            return Err(format!(
                "admin URL {text:?}: only http:// is supported (the admin listener speaks plain HTTP)"
            ));
        }
        let authority = uri
            .authority()
            .ok_or_else(|| format!("admin URL {text:?} has no host"))?;
        if authority.as_str().contains('@') {
            return Err(format!(
                "admin URL {text:?}: credentials in the URL are not supported; the token comes from the environment (--token-env)"
            ));
        }
        if uri.query().is_some() {
            return Err(format!("admin URL {text:?} must not have a query"));
        }
        Ok(Self {
            given: text.to_string(),
            host: authority
                .host()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port: authority.port_u16().unwrap_or(80),
            authority: authority.as_str().to_string(),
            prefix: uri.path().trim_end_matches('/').to_string(),
        })
    }

    /// The host, when it is a name rather than an address.
    pub(super) fn host_name(&self) -> Option<&str> {
        self.host
            .parse::<IpAddr>()
            .is_err()
            .then_some(self.host.as_str())
    }
}
