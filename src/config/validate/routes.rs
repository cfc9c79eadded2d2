//! `[[routes]]`: paths (exact, list or prefix), methods, `host`, service and upstream.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

use http::Method;

use super::Checker;
use crate::config::raw::{RawRoute, Str};
use crate::config::{PathMatch, Route};

impl Checker<'_> {
    pub(super) fn routes(
        &mut self,
        raw: &[RawRoute],
        upstreams: &BTreeMap<String, usize>,
    ) -> Vec<Route> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for r in raw {
            if !seen.insert(r.id.get_ref().as_str()) {
                self.err(
                    r.id.span(),
                    format!("duplicate route id {:?}", r.id.get_ref()),
                );
            }
            let given = [r.path.is_some(), r.paths.is_some(), r.path_prefix.is_some()];
            let path = match (&r.path, &r.paths, &r.path_prefix) {
                (Some(p), None, None) => {
                    self.route_path(p);
                    PathMatch::Exact(vec![p.get_ref().clone()])
                }
                (None, Some(ps), None) => {
                    if ps.get_ref().is_empty() {
                        self.err(ps.span(), "`paths` must list at least one path");
                    }
                    ps.get_ref().iter().for_each(|p| self.route_path(p));
                    PathMatch::Exact(ps.get_ref().iter().map(|p| p.get_ref().clone()).collect())
                }
                (None, None, Some(p)) => {
                    self.route_path(p);
                    PathMatch::Prefix(p.get_ref().clone())
                }
                _ => {
                    let n = given.iter().filter(|g| **g).count();
                    let what = if n == 0 {
                        "needs"
                    } else {
                        "must have only one of"
                    };
                    self.err(
                        r.id.span(),
                        format!(
                            "route {:?} {what} `path`, `paths` or `path_prefix`",
                            r.id.get_ref()
                        ),
                    );
                    PathMatch::Exact(Vec::new())
                }
            };
            let methods = r.methods.as_ref().map(|ms| {
                ms.iter()
                    .filter_map(|m| {
                        let text = m.get_ref();
                        let valid = !text.is_empty() && text.chars().all(|c| c.is_ascii_uppercase());
                        match Method::from_bytes(text.as_bytes()) {
                            Ok(method) if valid => Some(method),
                            _ => {
                                self.err(m.span(), format!("invalid method {text:?}: use upper-case names such as \"POST\""));
                                None
                            }
                        }
                    })
                    .collect()
            });
            self.service_name(&r.service);
            let host = r.host.as_ref().map(|h| self.route_host(h));
            let upstream = upstreams
                .get(r.upstream.get_ref())
                .copied()
                .unwrap_or_else(|| {
                    let known: Vec<&str> = upstreams.keys().map(String::as_str).collect();
                    self.err(
                        r.upstream.span(),
                        format!(
                            "unknown upstream {:?} (defined: {})",
                            r.upstream.get_ref(),
                            if known.is_empty() {
                                "none".to_string()
                            } else {
                                known.join(", ")
                            }
                        ),
                    );
                    0
                });
            out.push(Route {
                id: r.id.get_ref().clone(),
                path,
                methods,
                host,
                kind: r.kind,
                service: r.service.get_ref().clone(),
                upstream,
            });
        }
        out
    }

    /// A route's `host`: a DNS name or an IP address, without a port; kept lowercase.
    pub(super) fn route_host(&mut self, host: &Str) -> String {
        let text = host.get_ref().trim_end_matches('.').to_ascii_lowercase();
        match text
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            // As a Host header writes it.
            Ok(IpAddr::V6(ip)) => return format!("[{ip}]"),
            Ok(IpAddr::V4(ip)) => return ip.to_string(),
            Err(_) => {}
        }
        if !crate::config::tls::is_dns_name(&text) {
            self.err(
                host.span(),
                format!(
                    "invalid route host {:?}: a host name such as \"api.kuronekoyamato.co.jp\" (no scheme, port or path)",
                    host.get_ref()
                ),
            );
        }
        text
    }

    pub(super) fn route_path(&mut self, path: &Str) {
        let p = path.get_ref();
        if !p.starts_with('/') || p.contains(['?', '#']) || p.chars().any(char::is_whitespace) {
            self.err(path.span(), format!("invalid route path {p:?}: must start with '/' and hold no query, fragment or spaces"));
        }
    }
}
