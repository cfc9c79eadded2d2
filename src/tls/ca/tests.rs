//! The local CA's tests: created once and owner-only, refused keys and modes, name constraints.

use super::*;

fn dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("webcollect-shim-ca-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

fn hosts() -> Vec<String> {
    vec!["api.kuronekoyamato.co.jp".to_string()]
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-10T00:00:00Z")
        .unwrap()
        .to_utc()
}

#[test]
fn created_once_owner_only_and_reopened() {
    let dir = dir("create");
    let (ca, created) = LocalCa::open_or_create(&dir.join("ca"), now(), &hosts()).unwrap();
    assert!(created);
    let meta = |f: &str| {
        fs::metadata(dir.join("ca").join(f))
            .unwrap()
            .permissions()
            .mode()
    };
    assert_eq!(meta(KEY_FILE) & 0o777, 0o600);
    assert_eq!(
        fs::metadata(dir.join("ca")).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let (again, created) = LocalCa::open_or_create(&dir.join("ca"), now(), &hosts()).unwrap();
    assert!(!created);
    assert_eq!(again.pem(), ca.pem());
    assert_eq!(again.spki_sha256(), ca.spki_sha256());
    assert_eq!(ca.spki_sha256().len(), 44);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn names_outside_the_hosts_are_not_permitted_and_lax_modes_are_refused() {
    let dir = dir("constraints");
    let ca = LocalCa::create(&dir.join("ca"), now(), &hosts()).unwrap();
    assert!(ca.check_hosts(&hosts(), now()).is_ok());
    assert!(
        ca.verify_probe("sub.api.kuronekoyamato.co.jp", now(), now())
            .is_ok()
    );
    for other in ["www.google.com", "kuronekoyamato.co.jp", "example.com"] {
        assert!(ca.verify_probe(other, now(), now()).is_err(), "{other}");
    }
    let err = ca
        .check_hosts(&["ptwebcollect.jp".to_string()], now())
        .unwrap_err()
        .to_string();
    assert!(err.contains("\"ptwebcollect.jp\""), "{err}");
    // Two years, then it is refused.
    assert_eq!(ca.not_after().unwrap(), now() + CA_VALIDITY);
    assert!(ca.check(now() + CA_VALIDITY - TimeDelta::days(1)).is_ok());
    let err = ca.check(now() + CA_VALIDITY).unwrap_err().to_string();
    assert!(err.contains("expired"), "{err}");
    let ca_dir = dir.join("ca");
    fs::set_permissions(ca_dir.join(KEY_FILE), fs::Permissions::from_mode(0o644)).unwrap();
    let err = LocalCa::open(&ca_dir, now()).unwrap_err().to_string();
    assert!(err.contains("readable by group or others"), "{err}");
    fs::set_permissions(ca_dir.join(KEY_FILE), fs::Permissions::from_mode(0o600)).unwrap();
    fs::set_permissions(&ca_dir, fs::Permissions::from_mode(0o777)).unwrap();
    let err = LocalCa::open(&ca_dir, now()).unwrap_err().to_string();
    assert!(err.contains("may write to it"), "{err}");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_key_from_another_ca_is_refused() {
    let dir = dir("mismatch");
    LocalCa::create(&dir.join("a"), now(), &hosts()).unwrap();
    LocalCa::create(&dir.join("b"), now(), &hosts()).unwrap();
    fs::copy(dir.join("b").join(KEY_FILE), dir.join("a").join(KEY_FILE)).unwrap();
    let err = LocalCa::open(&dir.join("a"), now())
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not belong to ca-key.pem"), "{err}");
    fs::remove_file(dir.join("b").join(CERT_FILE)).unwrap();
    let err = LocalCa::open(&dir.join("b"), now())
        .unwrap_err()
        .to_string();
    assert!(err.contains("holds ca-key.pem but not ca.pem"), "{err}");
    let _ = fs::remove_dir_all(&dir);
}
