//! TLS on the merchant side (`[listen] tls`), so an unmodified integration reaches the shim
//! under the gateway's own host names: certificates from a local CA ([`ca`]) or the user's
//! files (`crate::config::certs`), chosen by SNI (`resolver`), the handshake in each
//! connection's task (`listener`), and the renewal of the CA's short-lived leaves on the
//! control thread.

pub mod ca;

pub(crate) mod listener;
pub(crate) mod resolver;
pub(crate) mod throttle;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use rustls::time_provider::TimeProvider;
use rustls_pki_types::UnixTime;

use crate::clock::SharedClock;
use crate::config::{CertSource, Tls};
use ca::LocalCa;
use resolver::{Certs, Resolver};

/// How often the control thread checks whether the leaves are due for renewal. A check is
/// one clock read; checking often means a machine that slept past the renewal instant
/// serves fresh certificates a second after it wakes.
pub const RENEW_CHECK_EVERY: Duration = Duration::from_secs(1);

/// Why the TLS listener cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `[tls]` names no certificate source.
    #[error("[listen] tls is set but [tls] has neither ca_dir nor cert_file/key_file")]
    NoSource,
    /// The local CA could not be opened, created or used.
    #[error("local CA")]
    Ca(#[from] ca::Error),
    /// The certificate files are unusable.
    #[error("[tls] cert_file/key_file")]
    Files(#[from] crate::config::certs::CertProblem),
    /// rustls refused the server configuration.
    #[error("TLS server configuration")]
    Rustls(#[from] rustls::Error),
}

/// The TLS side of the shim: the certificates in use and the server configuration every
/// worker's acceptor shares.
#[derive(Debug)]
pub struct Frontend {
    resolver: Arc<Resolver>,
    config: Arc<rustls::ServerConfig>,
    issuing: Option<Issuing>,
}

/// Leaves the local CA issues, and when to issue them again.
#[derive(Debug)]
struct Issuing {
    ca: LocalCa,
    hosts: Vec<String>,
    validity: Duration,
    clock: SharedClock,
    /// `(issued at, renew at)` of the leaves in use.
    due: Mutex<(DateTime<Utc>, DateTime<Utc>)>,
}

impl Frontend {
    /// Loads (or creates) the certificates of `tls`. Leaf dates come from `real_clock`,
    /// never the drill clock: clients check them against their own, real, time.
    ///
    /// # Errors
    /// No source, an unusable CA directory or certificate files.
    pub(crate) fn new(tls: &Tls, real_clock: SharedClock) -> Result<Self, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (certs, issuing) = match tls.source.as_ref().ok_or(Error::NoSource)? {
            CertSource::Files { cert, key } => {
                let certified = crate::config::certs::load(cert, key, &tls.hosts)?;
                let certs = tls
                    .hosts
                    .iter()
                    .map(|h| (h.clone(), certified.clone()))
                    .collect();
                (certs, None)
            }
            CertSource::LocalCa(dir) => {
                let now = real_clock.now();
                let (ca, created) = LocalCa::open_or_create(dir, now, &tls.hosts)?;
                if created {
                    tracing::info!(
                        path = %ca.cert_path().display(),
                        spki_sha256 = %ca.spki_sha256(),
                        "Local CA created: make the merchant's clients trust it (`webcollect-shim ca install-hint`)."
                    );
                }
                let issuing = Issuing {
                    ca,
                    hosts: tls.hosts.clone(),
                    validity: tls.leaf_validity,
                    clock: real_clock.clone(),
                    due: Mutex::new((now, now)),
                };
                (issuing.issue(now)?, Some(issuing))
            }
        };
        let resolver = Arc::new(Resolver::new(certs));
        let mut config =
            rustls::ServerConfig::builder_with_details(provider, Arc::new(ClockTime(real_clock)))
                .with_safe_default_protocol_versions()?
                .with_no_client_auth()
                .with_cert_resolver(resolver.clone());
        // hyper's auto builder serves whichever the client picked.
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Self {
            resolver,
            config: Arc::new(config),
            issuing,
        })
    }

    /// An acceptor for the workers (cloned into each).
    #[must_use]
    pub(crate) fn acceptor(&self) -> listener::Acceptor {
        listener::Acceptor::new(self.config.clone())
    }

    /// The local CA, when certificates come from one.
    #[must_use]
    pub fn ca(&self) -> Option<&LocalCa> {
        self.issuing.as_ref().map(|i| &i.ca)
    }

    /// Reissues every leaf when two thirds of its validity have passed (or the clock went
    /// back past its issue). Returns whether it did. A failure is logged and the current
    /// leaves stay in use; the next check tries again.
    pub(crate) fn renew_if_due(&self) -> bool {
        let Some(issuing) = &self.issuing else {
            return false;
        };
        let now = issuing.clock.now();
        let (issued, renew_at) = *issuing.lock_due();
        if now < renew_at && now >= issued {
            return false;
        }
        match issuing.issue(now) {
            Ok(certs) => {
                self.resolver.store(certs);
                true
            }
            Err(err) => {
                tracing::error!(
                    error = %crate::error::Chain(&err),
                    "Cannot reissue the TLS certificates; the current ones stay in use."
                );
                false
            }
        }
    }

    /// Checks for renewal every [`RENEW_CHECK_EVERY`] on the current (control) runtime;
    /// `None` for the user's own certificate, which the shim never renews.
    pub(crate) fn spawn_renewal(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        self.issuing.as_ref()?;
        let this = Arc::downgrade(self);
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(RENEW_CHECK_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(this) = this.upgrade() else { return };
                this.renew_if_due();
            }
        }))
    }
}

impl Issuing {
    fn lock_due(&self) -> std::sync::MutexGuard<'_, (DateTime<Utc>, DateTime<Utc>)> {
        // Two plain instants, written in one assignment: never left half-updated.
        self.due.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A leaf for every host, valid from `now`; records when to renew them.
    fn issue(&self, now: DateTime<Utc>) -> Result<Certs, ca::Error> {
        let mut certs = Certs::with_capacity(self.hosts.len());
        let mut not_after = None;
        for host in &self.hosts {
            let leaf = self.ca.issue(host, now, self.validity)?;
            not_after = Some(leaf.not_after);
            certs.insert(host.clone(), leaf.certified);
        }
        let lifetime = TimeDelta::from_std(self.validity).unwrap_or(TimeDelta::days(1));
        *self.lock_due() = (now, now + lifetime * 2 / 3);
        tracing::info!(
            hosts = self.hosts.len(),
            valid_until = %not_after.unwrap_or(now),
            "TLS certificates issued by the local CA."
        );
        Ok(certs)
    }
}

/// The injected clock as rustls's time source (session ticket ages and the like).
#[derive(Debug)]
struct ClockTime(SharedClock);

impl TimeProvider for ClockTime {
    fn current_time(&self) -> Option<UnixTime> {
        let secs = u64::try_from(self.0.now().timestamp()).ok()?;
        Some(UnixTime::since_unix_epoch(Duration::from_secs(secs)))
    }
}
