//! `ca init|export|install-hint`: the local CA of `[tls] ca_dir`, and how clients come to
//! trust it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use webcollect_shim::clock::{Clock as _, SystemClock};
use webcollect_shim::config::{CertSource, Config};
use webcollect_shim::tls::ca::{CA_NAME, CERT_FILE, KEY_FILE, LocalCa};

use super::args::CaAction;

pub(crate) fn ca(config: &Config, action: CaAction) -> anyhow::Result<()> {
    let dir = match &config.tls.source {
        Some(CertSource::LocalCa(dir)) => dir,
        Some(CertSource::Files { cert, .. }) => anyhow::bail!(
            "{}: [tls] uses cert_file ({}), not a local CA: make the clients trust that \
             certificate's issuer",
            config.path.display(),
            cert.display()
        ),
        None => anyhow::bail!(
            "{}: [tls] ca_dir is not set: add it to say where the local CA lives",
            config.path.display()
        ),
    };
    let now = SystemClock.now();
    match action {
        CaAction::Init => {
            let (ca, created) = LocalCa::open_or_create(dir, now, &config.tls.hosts)
                .with_context(|| format!("cannot create the CA in {}", dir.display()))?;
            let path = absolute(&ca.cert_path());
            if created {
                println!(
                    "created {} (key: {KEY_FILE} beside it, mode 0600)",
                    path.display()
                );
            } else {
                println!("exists: {} (left as it is)", path.display());
            }
            println!("spki sha256: {}", ca.spki_sha256());
            println!("next: webcollect-shim ca install-hint");
        }
        CaAction::Export => print!("{}", existing(dir, now)?.pem()),
        CaAction::InstallHint => print!("{}", install_hint(&existing(dir, now)?, config)?),
    }
    Ok(())
}

fn existing(dir: &Path, now: chrono::DateTime<chrono::Utc>) -> anyhow::Result<LocalCa> {
    LocalCa::open(dir, now)
        .with_context(|| format!("cannot read the CA in {}", dir.display()))?
        .with_context(|| {
            format!(
                "no CA in {} yet: run `webcollect-shim ca init` (or start the shim with [listen] tls)",
                dir.display()
            )
        })
}

fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

/// `text` as one POSIX shell word: in single quotes, each `'` written as `'\''`. Every
/// path the hint prints goes through it, so a directory named `a b` or `$(…)` stays a path
/// in the root commands the operator pastes.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The commands, with this CA's path (shell-quoted) and key hash filled in.
///
/// # Errors
/// A path with a line break or another control character, which no quoting makes safe to
/// paste (it would end the comment line it appears in).
fn install_hint(ca: &LocalCa, config: &Config) -> anyhow::Result<String> {
    let path = absolute(&ca.cert_path());
    let path = path.to_string_lossy();
    anyhow::ensure!(
        !path.chars().any(char::is_control),
        "the CA's path {path:?} holds control characters: move [tls] ca_dir"
    );
    let pem = shell_quote(&path);
    let spki = ca.spki_sha256();
    let hosts = config.tls.hosts.join(" ");
    let tls = config
        .listen
        .tls
        .map_or_else(|| "SHIM_IP:8443".to_string(), |a| a.to_string());
    // Where a browser on the shim's machine reaches the listener.
    let local = config.listen.tls.map_or_else(
        || "127.0.0.1:8443".to_string(),
        |mut a| {
            if a.ip().is_unspecified() {
                a.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            a.to_string()
        },
    );
    let rules = config
        .tls
        .hosts
        .iter()
        .map(|h| format!("MAP {h} {local}"))
        .collect::<Vec<_>>()
        .join(", ");
    let first = config.tls.hosts.first().map_or("HOST", String::as_str);
    let mut out = String::new();
    let _ = write!(
        out,
        r#"# {CA_NAME}: {pem}
# SHA-256 of its public key (SPKI): {spki}
# It signs the certificates the shim's TLS listener ({tls}) shows for:
#   {hosts}
# Only {CERT_FILE} leaves this machine; {KEY_FILE} stays with the shim.
#
# 1. Send those names to the shim on the merchant's machine or container (DNS override), e.g.
#    /etc/hosts:            SHIM_IP  {hosts}
#    docker compose:        extra_hosts: ["{first}:SHIM_IP", ...]
#    The shim must answer on 443 there: publish its TLS port as 443 (ports: "443:8443").
#
# 2. Trust the CA where the integration runs (as root), then restart the integration.

## Debian / Ubuntu (PHP, curl, wget, Ruby, Go, Python's ssl module)
cp {pem} /usr/local/share/ca-certificates/webcollect-shim.crt
update-ca-certificates

## Alpine
apk add --no-cache ca-certificates
cp {pem} /usr/local/share/ca-certificates/webcollect-shim.crt
update-ca-certificates

## RHEL / CentOS / Rocky / Alma / Fedora / Amazon Linux
cp {pem} /etc/pki/ca-trust/source/anchors/webcollect-shim.pem
update-ca-trust extract

## Java (its own truststore, not the system's; Java 9+; default password changeit)
keytool -importcert -noprompt -cacerts -storepass changeit -alias webcollect-shim -file {pem}

## Node.js (read at start, on top of Node's bundled roots)
export NODE_EXTRA_CA_CERTS={pem}

## Python requests / pip (certifi's bundle, not the system's): after the system step above,
## point them at the system bundle (RHEL: /etc/pki/tls/certs/ca-bundle.crt)
export REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

## Chromium / Chrome on Linux (the NSS database of the user who runs it; package libnss3-tools)
certutil -d sql:$HOME/.pki/nssdb -A -t "C,," -n "{CA_NAME}" -i {pem}

## Headless Chromium in checkout tests: no trust store, no DNS override needed
chromium --headless --user-data-dir=/tmp/checkout-profile \
  --ignore-certificate-errors-spki-list={spki} \
  --host-resolver-rules="{rules}" \
  https://merchant.example/checkout
"#
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_one_shell_word() {
        assert_eq!(shell_quote("/etc/ca.pem"), "'/etc/ca.pem'");
        assert_eq!(shell_quote("/a b/$(id)/ca.pem"), "'/a b/$(id)/ca.pem'");
        assert_eq!(shell_quote("/it's/ca.pem"), r"'/it'\''s/ca.pem'");
    }
}
