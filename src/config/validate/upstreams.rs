//! `[upstreams.NAME]`: the URL (scheme and authority only), timeouts, CA files, the
//! connection cap and `connect_to`.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use http::Uri;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::Checker;
use crate::config::Upstream;
use crate::config::raw::{RawUpstream, Str};

impl Checker<'_> {
    pub(super) fn upstreams(
        &mut self,
        raw: BTreeMap<String, (Range<usize>, RawUpstream)>,
    ) -> (Vec<Upstream>, BTreeMap<String, usize>) {
        let mut out = Vec::new();
        let mut index = BTreeMap::new();
        for (name, (name_span, u)) in raw {
            let url = self.upstream_url(&u.url);
            let ca_certs = match &u.ca_file {
                None => Vec::new(),
                Some(file) => {
                    if url
                        .as_ref()
                        .is_some_and(|u| u.scheme_str() != Some("https"))
                    {
                        self.err(file.span(), "`ca_file` only applies to https upstreams");
                    }
                    self.certificates(file)
                }
            };
            let upstream = Upstream {
                name: name.clone(),
                url: url.unwrap_or_default(),
                connect_timeout: self.duration(u.connect_timeout.as_ref(), Duration::from_secs(5)),
                response_timeout: self
                    .duration(u.response_timeout.as_ref(), Duration::from_secs(30)),
                pool_idle_timeout: self
                    .duration(u.pool_idle_timeout.as_ref(), Duration::from_secs(60)),
                ca_certs,
                max_connections: self.count(u.max_connections.as_ref(), 256),
                connect_to: u.connect_to.as_ref().and_then(|to| {
                    to.get_ref().parse().map_err(|_| {
                        self.err(
                            to.span(),
                            format!(
                                "invalid `connect_to` {:?}: expected IP:PORT such as \"203.0.113.10:443\"",
                                to.get_ref()
                            ),
                        );
                    })
                    .ok()
                }),
            };
            if name.is_empty() {
                self.err(name_span, "upstream name must not be empty");
            }
            index.insert(name, out.len());
            out.push(upstream);
        }
        (out, index)
    }

    pub(super) fn upstream_url(&mut self, value: &Str) -> Option<Uri> {
        let text = value.get_ref();
        let problem = match text.parse::<Uri>() {
            Err(err) => format!("invalid upstream url {text:?}: {err}"),
            Ok(uri) => match (uri.scheme_str(), uri.authority()) {
                (Some("http" | "https"), Some(_))
                    if matches!(uri.path(), "" | "/") && uri.query().is_none() =>
                {
                    let authority = uri.authority().map(ToString::to_string).unwrap_or_default();
                    let scheme = uri.scheme_str().unwrap_or("http");
                    return Uri::builder()
                        .scheme(scheme)
                        .authority(authority)
                        .path_and_query("/")
                        .build()
                        .ok();
                }
                (Some("http" | "https"), Some(_)) => format!(
                    "upstream url {text:?} must not have a path or query: the request's own path \
                     is forwarded unchanged"
                ),
                _ => format!(
                    "upstream url {text:?} must be http:// or https:// with a host, such as \
                     \"https://api.kuronekoyamato.co.jp\""
                ),
            },
        };
        self.err(value.span(), problem);
        None
    }

    pub(super) fn certificates(&mut self, file: &Str) -> Vec<CertificateDer<'static>> {
        let path = self.base_dir.join(file.get_ref());
        // No FIFO, device or endless file (safe_file): a reload must always finish.
        let certs = crate::safe_file::read_config(&path, crate::safe_file::CONFIG_CAP)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                CertificateDer::pem_slice_iter(&bytes)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| e.to_string())
            });
        match certs {
            Ok(certs) if !certs.is_empty() => certs,
            Ok(_) => {
                self.err(
                    file.span(),
                    format!("no PEM certificate found in {}", path.display()),
                );
                Vec::new()
            }
            Err(err) => {
                self.err(
                    file.span(),
                    format!("cannot read CA certificates from {}: {err}", path.display()),
                );
                Vec::new()
            }
        }
    }
}
