//! Cert dir behaviour: created once, reused, and every broken state refused by name.

use std::os::unix::fs::PermissionsExt as _;

use super::*;

fn names() -> ServingNames {
    ServingNames::required(
        "127.0.0.1".parse().unwrap(),
        None,
        "10.96.0.0/12".parse().unwrap(),
        &[],
    )
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn first_start_creates_then_reuses() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CertDir::new(tmp.path().join("pki"));
    let pki = load_or_create(&dir, &names()).unwrap();
    ensure_service_account_key(&dir).unwrap();
    assert_eq!(mode(dir.path()), 0o700);
    for key in [dir.ca_key(), dir.serving_key(), dir.sa_key()] {
        assert_eq!(mode(&key), 0o600, "{}", key.display());
    }
    assert_eq!(mode(&dir.ca_crt()), 0o644);
    // The serving file holds leaf + CA.
    assert_eq!(pki.serving_chain.len(), 2);
    let before: Vec<Vec<u8>> = [dir.ca_crt(), dir.serving_crt(), dir.sa_key()]
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    let again = load_or_create(&dir, &names()).unwrap();
    ensure_service_account_key(&dir).unwrap();
    let after: Vec<Vec<u8>> = [dir.ca_crt(), dir.serving_crt(), dir.sa_key()]
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    assert_eq!(before, after, "a restart must reuse the cert dir");
    assert_eq!(again.ca.cert_der(), pki.ca.cert_der());
    // The reloaded CA still issues certificates that chain to the same ca.crt.
    let c = again
        .ca
        .issue_client("bob", &[], Validity::from_now(issue::LEAF_VALIDITY))
        .unwrap();
    assert!(inspect::signed_by(&c.cert_der, pki.ca.cert_der()));
}

#[test]
fn broken_cert_dirs_are_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CertDir::new(tmp.path());
    load_or_create(&dir, &names()).unwrap();
    let ca_key = std::fs::read(dir.ca_key()).unwrap();

    // Half a pair.
    std::fs::remove_file(dir.ca_key()).unwrap();
    let e = load_or_create(&dir, &names()).unwrap_err();
    assert!(matches!(e, PkiError::HalfPair { .. }), "{e}");
    assert!(e.to_string().contains("ca.key"), "{e}");

    // A key of another pair.
    let other = KeyPair::generate().unwrap();
    std::fs::write(dir.ca_key(), other.serialize_pem()).unwrap();
    let e = load_or_create(&dir, &names()).unwrap_err();
    assert!(matches!(e, PkiError::KeyMismatch { .. }), "{e}");

    // Garbage.
    std::fs::write(dir.ca_key(), &ca_key).unwrap();
    std::fs::write(dir.ca_crt(), "not a certificate").unwrap();
    let e = load_or_create(&dir, &names()).unwrap_err();
    assert!(matches!(e, PkiError::Parse { .. }), "{e}");
    assert!(e.to_string().contains("ca.crt"), "{e}");
}

#[test]
fn serving_certificate_must_match_ca_names_and_time() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CertDir::new(tmp.path());
    load_or_create(&dir, &names()).unwrap();

    // A new address that the existing certificate does not name.
    let wider = ServingNames::required(
        "127.0.0.1".parse().unwrap(),
        Some("192.0.2.7".parse().unwrap()),
        "10.96.0.0/12".parse().unwrap(),
        &["api.example.org".into()],
    );
    match load_or_create(&dir, &wider).unwrap_err() {
        PkiError::MissingNames { missing, .. } => {
            assert_eq!(missing, ["api.example.org", "192.0.2.7"])
        }
        e => panic!("{e}"),
    }

    // Issued by a foreign CA.
    let (foreign, _) = Ca::generate("foreign").unwrap();
    let f = foreign.issue_serving(&names()).unwrap();
    std::fs::write(dir.serving_crt(), &f.cert_pem).unwrap();
    std::fs::write(dir.serving_key(), &f.key_pem).unwrap();
    let e = load_or_create(&dir, &names()).unwrap_err();
    assert!(matches!(e, PkiError::NotIssuedByCa { .. }), "{e}");

    // Expired (issued by the right CA).
    let ca = load_ca(&dir).unwrap();
    let now = std::time::SystemTime::now();
    let day = std::time::Duration::from_secs(86400);
    let old = ca
        .issue_client(
            "kube-apiserver",
            &[],
            Validity {
                not_before: now - 3 * day,
                not_after: now - day,
            },
        )
        .unwrap();
    std::fs::write(dir.serving_crt(), &old.cert_pem).unwrap();
    std::fs::write(dir.serving_key(), &old.key_pem).unwrap();
    let e = load_or_create(&dir, &names()).unwrap_err();
    assert!(matches!(e, PkiError::NotValidNow { .. }), "{e}");

    // Removing the pair has it re-issued by the same CA.
    std::fs::remove_file(dir.serving_crt()).unwrap();
    std::fs::remove_file(dir.serving_key()).unwrap();
    let pki = load_or_create(&dir, &wider).unwrap();
    assert!(inspect::signed_by(&pki.serving_chain[0], ca.cert_der()));
}

#[test]
fn service_account_key_must_be_p256() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CertDir::new(tmp.path());
    let ed = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    std::fs::write(dir.sa_key(), ed.serialize_pem()).unwrap();
    let e = ensure_service_account_key(&dir).unwrap_err();
    assert!(e.to_string().contains("P-256"), "{e}");
}
