//! The local CA of `[tls] ca_dir` (Caddy's `tls internal` is the model): `ca.pem` and its key
//! `ca-key.pem` beside it, created once (owner-only permissions) and kept; leaf
//! certificates for the served host names are issued from it, short-lived.
//!
//! rcgen cannot read a CA certificate back without x509 parsing, so the CA's subject and
//! key identifier method are fixed here and rebuilt from the stored key on every start; a
//! probe leaf, verified against the stored `ca.pem`, proves that they still match. Probes
//! also answer what would otherwise need parsing: whether the CA expires within 30 days, and
//! whether its name constraints permit every `[tls] hosts` name.
//!
//! What a security reviewer asks of a CA that merchants install in a trust store:
//! - **Name constraints**: the CA can only vouch for the `[tls] hosts` names it was made
//!   for (and the never-resolving `webcollect-shim.invalid` its self-check uses), so a
//!   stolen key cannot impersonate any other site to a client that trusts it.
//! - **Two years at most** (`CA_VALIDITY`), with a warning from 30 days before the end.
//! - **Owner-only files**: a `ca_dir` that group or others may write to, or a key others may
//!   read, is refused (by `ca init` and at start), not just warned about.

use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, TimeDelta, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
    GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose, NameConstraints, PublicKeyData as _,
    SanType, SerialNumber,
};
use rustls::client::danger::ServerCertVerifier as _;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use sha2::Digest as _;

/// The CA certificate's file name in `ca_dir`.
pub const CERT_FILE: &str = "ca.pem";
/// The CA key's file name in `ca_dir` (mode 0600).
pub const KEY_FILE: &str = "ca-key.pem";
/// The CA's common name (also the nickname the install hints give it).
pub const CA_NAME: &str = "webcollect-shim local CA";

/// How long the CA itself is valid (its leaves are short-lived): two years.
pub(crate) const CA_VALIDITY: TimeDelta = TimeDelta::days(730);
/// From this long before the CA's end, every start and `ca init` warn.
pub(crate) const EXPIRY_WARNING: TimeDelta = TimeDelta::days(30);
/// The name the self-check's probe leaf is issued for: under `.invalid` (RFC 2606), so it
/// never resolves, and permitted by every CA's name constraints.
const PROBE_DOMAIN: &str = "webcollect-shim.invalid";
/// Leaves start this far in the past, so a client whose clock is a little behind the
/// shim's still accepts a certificate issued a moment ago.
const LEAF_BACKDATE: TimeDelta = TimeDelta::minutes(5);

/// Why the CA could not be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or the directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// One of the two files is missing.
    #[error(
        "{dir} holds {present} but not {missing}: restore it, or remove both to create a new CA \
         (every client must then trust the new one)"
    )]
    Incomplete {
        /// The directory.
        dir: PathBuf,
        /// The file found.
        present: &'static str,
        /// The file missing.
        missing: &'static str,
    },
    /// A file is not what the shim wrote there.
    #[error("{path}: {what}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// Group or others may write to the directory, or read the key.
    #[error("{path}: {what}")]
    Permissions {
        /// The directory or key.
        path: PathBuf,
        /// What is wrong and how to fix it.
        what: String,
    },
    /// The CA's name constraints do not permit a `[tls] hosts` name (the hosts changed
    /// after the CA was made).
    #[error(
        "{path}: the CA's name constraints do not permit {host:?} ([tls] hosts changed since it \
         was made): remove ca.pem and ca-key.pem to make a new CA, and have clients trust it"
    )]
    NotPermitted {
        /// `ca.pem`.
        path: PathBuf,
        /// The host.
        host: String,
    },
    /// rcgen could not make a key or certificate.
    #[error("cannot make a certificate")]
    Rcgen(#[from] rcgen::Error),
    /// rustls refused the key.
    #[error("cannot use the key")]
    Rustls(#[from] rustls::Error),
}

/// A CA loaded from (or just written to) its directory.
#[derive(Debug)]
pub struct LocalCa {
    dir: PathBuf,
    cert: CertificateDer<'static>,
    pem: String,
    key: KeyPair,
}

/// A leaf certificate and its key, ready for rustls, and when it stops being valid.
#[derive(Debug)]
pub struct Leaf {
    /// Leaf then CA certificate, and the leaf's key.
    pub certified: Arc<CertifiedKey>,
    /// Its `notAfter`.
    pub(crate) not_after: DateTime<Utc>,
}

impl LocalCa {
    /// The CA in `dir`, or `None` when the directory holds neither file.
    ///
    /// # Errors
    /// Unreadable or mismatched files, or only one of the two.
    pub fn open(dir: &Path, now: DateTime<Utc>) -> Result<Option<Self>, Error> {
        let cert_path = dir.join(CERT_FILE);
        let key_path = dir.join(KEY_FILE);
        match (cert_path.exists(), key_path.exists()) {
            (false, false) => return Ok(None),
            (true, false) => {
                return Err(Error::Incomplete {
                    dir: dir.to_owned(),
                    present: CERT_FILE,
                    missing: KEY_FILE,
                });
            }
            (false, true) => {
                return Err(Error::Incomplete {
                    dir: dir.to_owned(),
                    present: KEY_FILE,
                    missing: CERT_FILE,
                });
            }
            (true, true) => {}
        }
        check_permissions(dir, &key_path)?;
        let pem = read(&cert_path)?;
        let cert = CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| Error::Invalid {
            path: cert_path.clone(),
            what: format!("no PEM certificate: {e}"),
        })?;
        let key = KeyPair::from_pem(&read(&key_path)?).map_err(|e| Error::Invalid {
            path: key_path.clone(),
            what: format!("no PEM private key: {e}"),
        })?;
        let ca = Self {
            dir: dir.to_owned(),
            cert,
            pem,
            key,
        };
        ca.check(now)?;
        Ok(Some(ca))
    }

    /// Creates a new CA in `dir` (made owner-only if it does not exist) whose name
    /// constraints permit `hosts` only. Refuses to overwrite either file.
    ///
    /// # Errors
    /// The directory or files cannot be written, a file exists already, or the directory is
    /// writable by group or others.
    pub fn create(dir: &Path, now: DateTime<Utc>, hosts: &[String]) -> Result<Self, Error> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| Error::Io { path, source }
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io(dir))?;
        // An existing directory keeps its mode: it must not let others swap the files.
        check_dir(dir)?;
        let key = KeyPair::generate()?;
        let mut params = ca_params();
        let mut permitted: Vec<GeneralSubtree> = hosts
            .iter()
            .map(|h| GeneralSubtree::DnsName(h.clone()))
            .collect();
        permitted.push(GeneralSubtree::DnsName(PROBE_DOMAIN.to_string()));
        params.name_constraints = Some(NameConstraints {
            permitted_subtrees: permitted,
            excluded_subtrees: Vec::new(),
        });
        params.not_before = to_time(now - TimeDelta::days(1));
        params.not_after = to_time(now + CA_VALIDITY);
        params.serial_number = Some(random_serial());
        let cert = params.self_signed(&key)?;
        let pem = cert.pem();
        // The key first: a CA certificate must never exist without its key.
        let key_path = dir.join(KEY_FILE);
        write_new(&key_path, key.serialize_pem().as_bytes(), 0o600).map_err(io(&key_path))?;
        let cert_path = dir.join(CERT_FILE);
        write_new(&cert_path, pem.as_bytes(), 0o644).map_err(io(&cert_path))?;
        Ok(Self {
            dir: dir.to_owned(),
            cert: cert.der().clone(),
            pem,
            key,
        })
    }

    /// The CA in `dir`, created if absent (for `hosts`); `true` when it was created now.
    /// An existing CA must permit every one of `hosts`.
    ///
    /// # Errors
    /// See [`LocalCa::open`], [`LocalCa::create`] and `LocalCa::check_hosts`.
    pub fn open_or_create(
        dir: &Path,
        now: DateTime<Utc>,
        hosts: &[String],
    ) -> Result<(Self, bool), Error> {
        if dir.exists() {
            check_dir(dir)?;
        }
        match Self::open(dir, now)? {
            Some(ca) => {
                ca.check_hosts(hosts, now)?;
                Ok((ca, false))
            }
            None => Self::create(dir, now, hosts).map(|ca| (ca, true)),
        }
    }

    /// Checks that the CA's name constraints permit each of `hosts`, by verifying a leaf
    /// for it (a CA made before name constraints permits everything).
    ///
    /// # Errors
    /// [`Error::NotPermitted`] naming the first host that is not.
    pub(crate) fn check_hosts(&self, hosts: &[String], now: DateTime<Utc>) -> Result<(), Error> {
        for host in hosts {
            if self.verify_probe(host, now, now).is_err() {
                return Err(Error::NotPermitted {
                    path: self.cert_path(),
                    host: host.clone(),
                });
            }
        }
        Ok(())
    }

    /// `ca.pem`'s path.
    #[must_use]
    pub fn cert_path(&self) -> PathBuf {
        self.dir.join(CERT_FILE)
    }

    /// `ca.pem`'s contents.
    #[must_use]
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// The CA certificate.
    #[must_use]
    pub fn cert(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// Base64 of the SHA-256 of the CA's SubjectPublicKeyInfo: what Chromium's
    /// `--ignore-certificate-errors-spki-list` takes (the chain the shim sends includes the CA).
    #[must_use]
    pub fn spki_sha256(&self) -> String {
        let digest = sha2::Sha256::digest(self.key.subject_public_key_info());
        base64::engine::general_purpose::STANDARD.encode(digest)
    }

    /// Issues a leaf for `host`, valid from a moment before `now` for `validity`. The chain
    /// handed to clients is the leaf then the CA, so a client that trusts the CA by its key
    /// (Chromium's SPKI list) finds it in what it receives.
    ///
    /// # Errors
    /// rcgen or rustls failed (not expected with a valid CA).
    pub fn issue(&self, host: &str, now: DateTime<Utc>, validity: Duration) -> Result<Leaf, Error> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, host);
        params.subject_alt_names = vec![SanType::DnsName(host.try_into()?)];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial());
        let not_after = now + TimeDelta::from_std(validity).unwrap_or(TimeDelta::days(1));
        params.not_before = to_time(now - LEAF_BACKDATE);
        params.not_after = to_time(not_after);
        let issuer = Issuer::new(ca_params(), &self.key);
        let cert = params.signed_by(&key, &issuer)?;
        let signing = rustls::crypto::ring::sign::any_supported_type(&PrivateKeyDer::Pkcs8(
            PrivatePkcs8KeyDer::from(key.serialize_der()),
        ))?;
        Ok(Leaf {
            certified: Arc::new(CertifiedKey::new(
                vec![cert.der().clone(), self.cert.clone()],
                signing,
            )),
            not_after,
        })
    }

    /// A probe leaf must verify against the stored certificate: proves the key is the
    /// certificate's and the subject is the one this code issues under. Then the CA's own
    /// dates (webpki never checks a trust anchor's): an error once it has ended, a warning
    /// from [`EXPIRY_WARNING`] before, and one for a CA valid for longer than
    /// [`CA_VALIDITY`] (made by an older version, without name constraints).
    fn check(&self, now: DateTime<Utc>) -> Result<(), Error> {
        let invalid = |what: String| Error::Invalid {
            path: self.cert_path(),
            what,
        };
        let probe = format!("probe.{PROBE_DOMAIN}");
        self.verify_probe(&probe, now, now).map_err(|e| {
            invalid(format!(
                "does not belong to {KEY_FILE} or was not made by webcollect-shim ({e}); \
                 remove both files to create a new CA"
            ))
        })?;
        let not_after = self.not_after()?;
        if not_after <= now {
            return Err(invalid(format!(
                "the CA expired at {not_after}: remove ca.pem and ca-key.pem to make a new one, \
                 and have the clients trust it"
            )));
        }
        if not_after - now <= EXPIRY_WARNING {
            tracing::warn!(
                path = %self.cert_path().display(),
                %not_after,
                "The local CA expires within 30 days: remove ca.pem and ca-key.pem to make a \
                 new one, and have the clients trust it."
            );
        } else if not_after - now > CA_VALIDITY + TimeDelta::days(1) {
            tracing::warn!(
                path = %self.cert_path().display(),
                %not_after,
                "The local CA is valid for more than two years (made by an older version, \
                 without name constraints): consider making a new one."
            );
        }
        Ok(())
    }

    /// The CA certificate's `notAfter`.
    ///
    /// # Errors
    /// [`Error::Invalid`] when the certificate does not parse.
    pub fn not_after(&self) -> Result<DateTime<Utc>, Error> {
        let (_, cert) =
            x509_parser::parse_x509_certificate(&self.cert).map_err(|e| Error::Invalid {
                path: self.cert_path(),
                what: format!("not an X.509 certificate: {e}"),
            })?;
        DateTime::from_timestamp(cert.validity().not_after.timestamp(), 0).ok_or_else(|| {
            Error::Invalid {
                path: self.cert_path(),
                what: "its notAfter is out of range".into(),
            }
        })
    }

    /// Issues a leaf for `name` at `now`, valid long enough to be checked `at`, and verifies
    /// it against the stored certificate at `at` (validity and name constraints included).
    fn verify_probe(
        &self,
        name: &str,
        now: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<(), String> {
        let span = (at - now + TimeDelta::hours(1))
            .to_std()
            .unwrap_or(Duration::from_secs(3600));
        let leaf = self.issue(name, now, span).map_err(|e| e.to_string())?;
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(self.cert.clone())
            .map_err(|e| format!("not a usable CA certificate: {e}"))?;
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .map_err(|e| format!("not a usable CA certificate: {e}"))?;
        let server_name = ServerName::try_from(name.to_string()).map_err(|e| e.to_string())?;
        let at = UnixTime::since_unix_epoch(Duration::from_secs(
            u64::try_from(at.timestamp()).unwrap_or(0),
        ));
        verifier
            .verify_server_cert(&leaf.certified.cert[0], &[], &server_name, &[], at)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// Refuses a `ca_dir` that group or others may write to: whoever can write there can swap
/// `ca.pem` and `ca-key.pem` for their own.
fn check_dir(dir: &Path) -> Result<(), Error> {
    let meta = fs::metadata(dir).map_err(|source| Error::Io {
        path: dir.to_owned(),
        source,
    })?;
    if meta.permissions().mode() & 0o022 != 0 {
        return Err(Error::Permissions {
            path: dir.to_owned(),
            what: format!(
                "group or others may write to it (mode {:o}): chmod 700 it",
                meta.permissions().mode() & 0o777
            ),
        });
    }
    Ok(())
}

/// [`check_dir`], and a key that only its owner may read.
fn check_permissions(dir: &Path, key: &Path) -> Result<(), Error> {
    check_dir(dir)?;
    let meta = fs::metadata(key).map_err(|source| Error::Io {
        path: key.to_owned(),
        source,
    })?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(Error::Permissions {
            path: key.to_owned(),
            what: format!(
                "the CA key is readable by group or others (mode {:o}): chmod 600 it",
                meta.permissions().mode() & 0o777
            ),
        });
    }
    Ok(())
}

/// The CA's fixed parameters: subject, constraints, usages (validity is set at creation).
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, CA_NAME);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "webcollect-shim");
    // It signs leaves only, never another CA.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// 16 random bytes, positive: unique serials even across CAs with the same subject (NSS
/// refuses two certificates with one issuer name and serial).
fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    // The OS generator does not fail on Linux; a zero serial would still be valid DER.
    let _ = getrandom::fill(&mut bytes);
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}

fn to_time(t: DateTime<Utc>) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(t.timestamp())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

fn read(path: &Path) -> Result<String, Error> {
    crate::safe_file::read_config_string(path, crate::safe_file::CONFIG_CAP).map_err(|source| {
        Error::Io {
            path: path.to_owned(),
            source,
        }
    })
}

/// Writes a file that must not exist yet, with `mode` from the start (never briefly
/// readable by others).
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests;
