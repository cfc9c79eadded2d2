//! `[tls]` and `[listen] tls`: where the TLS listener's certificates come from, which host
//! names it serves, and (for a certificate of the user's own) that it covers them.

use std::time::Duration;

use rustls_pki_types::ServerName;
use toml::Spanned;

use super::raw::{RawTls, Str};
use super::validate::Checker;
use super::{CertSource, GATEWAY_HOSTS, Listen, Tls};

/// Default `leaf_validity`: short, like Caddy's `tls internal`; the shim reissues at two
/// thirds of it, so a client never sees a certificate older than that.
const DEFAULT_LEAF_VALIDITY: Duration = Duration::from_secs(24 * 3600);
/// Shortest `leaf_validity`: renewal is checked every second, but a clock skew of minutes
/// between shim and client must not make a fresh certificate look expired.
const MIN_LEAF_VALIDITY: Duration = Duration::from_secs(10 * 60);
/// Longest: the CA/Browser Forum's 398-day ceiling, which some clients also apply to
/// locally trusted roots.
const MAX_LEAF_VALIDITY: Duration = Duration::from_secs(397 * 24 * 3600);

/// True for a DNS name a certificate can carry (not an IP address, no port, no wildcard).
#[must_use]
pub(crate) fn is_dns_name(name: &str) -> bool {
    matches!(ServerName::try_from(name), Ok(ServerName::DnsName(_)))
        && !name.contains('*')
        && !name.is_empty()
}

impl Checker<'_> {
    pub(super) fn tls(&mut self, raw: &RawTls, listen_tls: Option<&Str>, listen: &Listen) -> Tls {
        let hosts = self.tls_hosts(raw.hosts.as_ref());
        let source = match (&raw.ca_dir, &raw.cert_file, &raw.key_file) {
            (None, None, None) => None,
            (Some(dir), None, None) => Some(CertSource::LocalCa(self.base_dir.join(dir.get_ref()))),
            (None, Some(cert), Some(key)) => {
                let cert_path = self.base_dir.join(cert.get_ref());
                let key_path = self.base_dir.join(key.get_ref());
                if let Err(problem) = super::certs::load(&cert_path, &key_path, &hosts) {
                    let span = match problem.file {
                        super::certs::Which::Cert => cert.span(),
                        super::certs::Which::Key => key.span(),
                    };
                    self.err(span, problem.message);
                }
                Some(CertSource::Files {
                    cert: cert_path,
                    key: key_path,
                })
            }
            (Some(dir), _, _) => {
                self.err(
                    dir.span(),
                    "`ca_dir` and `cert_file`/`key_file` are two certificate sources: give one",
                );
                None
            }
            (None, Some(given), None) | (None, None, Some(given)) => {
                self.err(
                    given.span(),
                    "`cert_file` and `key_file` go together: give both (or `ca_dir` instead)",
                );
                None
            }
        };
        let leaf_validity = match &raw.leaf_validity {
            None => DEFAULT_LEAF_VALIDITY,
            Some(v) => {
                let d = self.duration(Some(v), DEFAULT_LEAF_VALIDITY);
                if raw.ca_dir.is_none() {
                    self.err(
                        v.span(),
                        "`leaf_validity` applies to certificates the local CA issues (`ca_dir`)",
                    );
                }
                if !(MIN_LEAF_VALIDITY..=MAX_LEAF_VALIDITY).contains(&d) {
                    self.err(v.span(), "`leaf_validity` must be between 10m and 397d");
                }
                d
            }
        };
        if let (Some(span), Some(addr)) = (listen_tls.map(Spanned::span), listen.tls) {
            if source.is_none() && raw.ca_dir.is_none() && raw.cert_file.is_none() {
                self.err(
                    span.clone(),
                    "`[listen] tls` needs certificates: set `[tls] ca_dir` (a local CA the shim \
                     creates) or `[tls] cert_file` and `key_file`",
                );
            }
            // Port 0 (tests) picks a free port for each: no clash.
            if addr.port() != 0 && (addr == listen.proxy || addr == listen.admin) {
                self.err(
                    span,
                    format!("`[listen] tls` ({addr}) must differ from `proxy` and `admin`"),
                );
            }
        }
        Tls {
            source,
            hosts,
            leaf_validity,
        }
    }

    fn tls_hosts(&mut self, raw: Option<&Spanned<Vec<Str>>>) -> Vec<String> {
        let Some(raw) = raw else {
            return GATEWAY_HOSTS.iter().map(|h| (*h).to_string()).collect();
        };
        if raw.get_ref().is_empty() {
            self.err(raw.span(), "`hosts` must list at least one host name");
        }
        let mut hosts: Vec<String> = Vec::new();
        for host in raw.get_ref() {
            let name = host.get_ref().to_ascii_lowercase();
            if !is_dns_name(&name) || name.ends_with('.') {
                self.err(
                    host.span(),
                    format!(
                        "invalid TLS host {:?}: a DNS name such as \"api.kuronekoyamato.co.jp\" \
                         (no IP address, port, wildcard or trailing dot)",
                        host.get_ref()
                    ),
                );
            } else if hosts.contains(&name) {
                self.err(host.span(), format!("host {name:?} is listed twice"));
            } else {
                hosts.push(name);
            }
        }
        hosts
    }
}
