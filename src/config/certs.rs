//! `[tls] cert_file` / `key_file`: a certificate of the user's own, checked when the config
//! loads: the key is the certificate's, and the certificate covers every name in `hosts`.

use std::path::Path;
use std::sync::Arc;

use rustls::server::ParsedCertificate;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// Which file a [`CertProblem`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Which {
    /// `cert_file`.
    Cert,
    /// `key_file`.
    Key,
}

/// Why the files cannot serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CertProblem {
    /// The file at fault.
    pub(crate) file: Which,
    /// What is wrong, naming the file.
    pub(crate) message: String,
}

/// Loads the chain (leaf first) and key, and checks them against `hosts`.
///
/// # Errors
/// Unreadable or non-PEM files, a key that is not the certificate's, or a host the
/// certificate does not cover.
pub(crate) fn load(
    cert: &Path,
    key: &Path,
    hosts: &[String],
) -> Result<Arc<CertifiedKey>, CertProblem> {
    let problem = |file, message: String| CertProblem { file, message };
    // No FIFO, device or endless file (safe_file): a reload must always finish.
    let read = |path: &Path| crate::safe_file::read_config(path, crate::safe_file::CONFIG_CAP);
    let chain = read(cert)
        .map_err(|e| e.to_string())
        .and_then(|bytes| {
            CertificateDer::pem_slice_iter(&bytes)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())
        })
        .map_err(|e| problem(Which::Cert, format!("cannot read {}: {e}", cert.display())))?;
    if chain.is_empty() {
        return Err(problem(
            Which::Cert,
            format!("no PEM certificate in {}", cert.display()),
        ));
    }
    let private = read(key)
        .map_err(|e| e.to_string())
        .and_then(|bytes| PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| e.to_string()))
        .map_err(|e| {
            problem(
                Which::Key,
                format!("cannot read a PEM private key from {}: {e}", key.display()),
            )
        })?;
    let provider = rustls::crypto::ring::default_provider();
    let certified = CertifiedKey::from_der(chain, private, &provider).map_err(|e| {
        problem(
            Which::Key,
            format!(
                "{} does not fit the certificate in {}: {e}",
                key.display(),
                cert.display()
            ),
        )
    })?;
    let leaf = ParsedCertificate::try_from(&certified.cert[0]).map_err(|e| {
        problem(
            Which::Cert,
            format!("{}: unusable certificate: {e}", cert.display()),
        )
    })?;
    for host in hosts {
        let covered = ServerName::try_from(host.as_str())
            .ok()
            .is_some_and(|name| rustls::client::verify_server_name(&leaf, &name).is_ok());
        if !covered {
            return Err(problem(
                Which::Cert,
                format!(
                    "the certificate in {} does not cover {host:?}, which `hosts` lists: add the \
                     name to the certificate or remove it from `hosts`",
                    cert.display()
                ),
            ));
        }
    }
    Ok(Arc::new(certified))
}
