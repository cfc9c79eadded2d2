//! Picks the certificate for a TLS handshake by the name the client asks for (SNI), from a
//! map that renewal replaces whole (one atomic load per handshake, never a lock). A name
//! outside `[tls] hosts`, or no name at all, gets no certificate: the handshake fails, and
//! the log says why, at most once a second ([`super::throttle`]) with the count of the
//! failures not logged since.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::throttle::NAME_REFUSED;

/// Certificates by lowercase host name.
pub(crate) type Certs = HashMap<String, Arc<CertifiedKey>>;

/// The certificates in use.
#[derive(Debug)]
pub(crate) struct Resolver {
    certs: ArcSwap<Certs>,
}

impl Resolver {
    /// Serves `certs`.
    #[must_use]
    pub(crate) fn new(certs: Certs) -> Self {
        Self {
            certs: ArcSwap::from_pointee(certs),
        }
    }

    /// Replaces every certificate at once; handshakes already past the lookup keep theirs.
    pub(crate) fn store(&self, certs: Certs) {
        self.certs.store(Arc::new(certs));
    }

    /// The certificate for `name` (any case), if it is served.
    #[must_use]
    pub(crate) fn get(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        let certs = self.certs.load();
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            certs.get(&name.to_ascii_lowercase()).cloned()
        } else {
            certs.get(name).cloned()
        }
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let admitted = || NAME_REFUSED.admit(std::time::Instant::now());
        let Some(name) = hello.server_name() else {
            if let Some(suppressed) = admitted() {
                tracing::warn!(
                    suppressed,
                    "TLS handshake refused: the client sent no server name (SNI); connect by \
                     one of the host names in [tls] hosts, not by IP address."
                );
            }
            return None;
        };
        let found = self.get(name);
        if found.is_none()
            && let Some(suppressed) = admitted()
        {
            // rustls has checked that it is a DNS name: printable and at most 253 bytes.
            tracing::warn!(
                server_name = %name,
                suppressed,
                "TLS handshake refused: the client asked for a host name that [tls] hosts does \
                 not list."
            );
        }
        found
    }
}
