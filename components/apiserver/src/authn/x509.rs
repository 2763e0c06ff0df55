//! Client certificate authentication, as Kubernetes does it: the chain the client presented
//! on its TLS connection must verify against the client CA (the cluster CA, or
//! `--client-ca-file`), be valid now and allow client auth; the user is the subject's common
//! name and the groups are its organizations.
//!
//! The chain check is rustls' own WebPKI client verifier (the TLS layer only checked proof
//! of key possession; see `tls`). Its ECDSA signature check dominated the server's CPU per
//! request on keep-alive connections, so a verified chain's user is remembered, keyed by the
//! SHA-256 of the whole chain as presented, until the earliest `notAfter` in the chain (the
//! client CA is fixed for the server's lifetime, and Kubernetes has no revocation). The
//! memo is bounded ([`MEMO_CAPACITY`]; emptied when full); failures are never remembered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;

use super::{Authenticator, AuthnError, Credentials, User};
use crate::pki::inspect::inspect;

/// How many verified chains are remembered.
pub const MEMO_CAPACITY: usize = 4096;

/// Verifies client certificates against a set of CAs.
pub struct X509 {
    verifier: Arc<dyn ClientCertVerifier>,
    /// SHA-256 of the chain → (user, valid until, Unix seconds).
    memo: Mutex<HashMap<[u8; 32], (User, i64)>>,
}

fn chain_digest(chain: &[CertificateDer<'static>]) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for cert in chain {
        ctx.update(&(cert.len() as u64).to_be_bytes());
        ctx.update(cert);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A client CA set that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("cannot build a client certificate verifier from the client CA")]
pub struct BadClientCa(#[source] rustls::server::VerifierBuilderError);

impl X509 {
    /// An authenticator trusting `roots`.
    pub fn new(roots: RootCertStore) -> Result<X509, BadClientCa> {
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), crate::tls::provider())
                .allow_unauthenticated()
                .build()
                .map_err(BadClientCa)?;
        Ok(X509 {
            verifier,
            memo: Mutex::new(HashMap::new()),
        })
    }

    /// The user a verified chain names (remembered until the chain expires).
    pub fn verify(&self, chain: &[CertificateDer<'static>]) -> Result<User, AuthnError> {
        let key = chain_digest(chain);
        let now = now_unix();
        let memo = |m: &mut HashMap<[u8; 32], (User, i64)>| match m.get(&key) {
            Some((user, until)) if now < *until => Some(user.clone()),
            _ => None,
        };
        if let Some(user) = memo(&mut self.memo.lock().expect("memo lock")) {
            return Ok(user);
        }
        let (user, until) = self.verify_uncached(chain)?;
        let mut m = self.memo.lock().expect("memo lock");
        if m.len() >= MEMO_CAPACITY {
            m.clear();
        }
        m.insert(key, (user.clone(), until));
        Ok(user)
    }

    /// Full verification; also returns the earliest `notAfter` of the chain.
    fn verify_uncached(
        &self,
        chain: &[CertificateDer<'static>],
    ) -> Result<(User, i64), AuthnError> {
        let (leaf, intermediates) = chain
            .split_first()
            .ok_or_else(|| AuthnError::Certificate("empty chain".into()))?;
        self.verifier
            .verify_client_cert(leaf, intermediates, UnixTime::now())
            .map_err(|e| AuthnError::Certificate(e.to_string()))?;
        let info = inspect(leaf).map_err(AuthnError::Certificate)?;
        let until = intermediates
            .iter()
            .filter_map(|c| inspect(c).ok().map(|i| i.not_after))
            .fold(info.not_after, i64::min);
        let name = info
            .common_name
            .filter(|n| !n.is_empty())
            .ok_or_else(|| AuthnError::Certificate("the subject has no common name".into()))?;
        Ok((
            User {
                name,
                groups: info.organizations,
                ..User::default()
            },
            until,
        ))
    }
}

impl Authenticator for X509 {
    fn authenticate(&self, credentials: &Credentials<'_>) -> Result<Option<User>, AuthnError> {
        match credentials.peer_certificates {
            Some(chain) if !chain.is_empty() => self.verify(chain).map(Some),
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::pki::{Ca, Validity};

    fn roots(ca: &Ca) -> RootCertStore {
        let mut r = RootCertStore::empty();
        r.add(ca.cert_der().clone()).unwrap();
        r
    }

    #[test]
    fn names_the_user_from_a_valid_chain_only() {
        let (ca, _) = Ca::generate("kubernetes").unwrap();
        let auth = X509::new(roots(&ca)).unwrap();
        let year = Validity::from_now(Duration::from_secs(365 * 86400));
        let alice = ca.issue_client("alice", &["dev".into()], year).unwrap();
        let u = auth.verify(&[alice.cert_der]).unwrap();
        assert_eq!(
            (u.name.as_str(), u.groups.as_slice()),
            ("alice", &["dev".to_string()][..])
        );

        // Expired.
        let now = SystemTime::now();
        let day = Duration::from_secs(86400);
        let old = ca
            .issue_client(
                "alice",
                &[],
                Validity {
                    not_before: now - 3 * day,
                    not_after: now - day,
                },
            )
            .unwrap();
        let e = auth.verify(&[old.cert_der]).unwrap_err();
        assert!(e.to_string().contains("xpired"), "{e}");

        // Signed by another CA.
        let (other, _) = Ca::generate("kubernetes").unwrap();
        let mallory = other
            .issue_client("admin", &["system:masters".into()], year)
            .unwrap();
        assert!(auth.verify(&[mallory.cert_der]).is_err());

        // A serving certificate is not a client certificate.
        let serving = ca
            .issue_serving(&crate::pki::ServingNames::default())
            .unwrap();
        assert!(auth.verify(&[serving.cert_der]).is_err());

        // No common name.
        let nameless = ca.issue_client("", &[], year).unwrap();
        assert!(auth.verify(&[nameless.cert_der]).is_err());
    }

    #[test]
    fn remembers_verified_chains_until_they_expire_and_never_failures() {
        let (ca, _) = Ca::generate("kubernetes").unwrap();
        let auth = X509::new(roots(&ca)).unwrap();
        let hour = Validity::from_now(Duration::from_secs(3600));
        let bob = ca.issue_client("bob", &["qa".into()], hour).unwrap();
        let first = auth.verify(std::slice::from_ref(&bob.cert_der)).unwrap();
        let second = auth.verify(std::slice::from_ref(&bob.cert_der)).unwrap();
        assert_eq!(first, second);
        let memo = auth.memo.lock().unwrap();
        assert_eq!(memo.len(), 1);
        let (_, until) = memo.values().next().unwrap();
        let expected = hour
            .not_after
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!((until - expected).abs() <= 1, "{until} vs {expected}");
        drop(memo);
        let (other, _) = Ca::generate("kubernetes").unwrap();
        let mallory = other.issue_client("bob", &[], hour).unwrap();
        for _ in 0..2 {
            assert!(
                auth.verify(std::slice::from_ref(&mallory.cert_der))
                    .is_err()
            );
        }
        assert_eq!(auth.memo.lock().unwrap().len(), 1);
    }
}
