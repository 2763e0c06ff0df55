//! Client certificate authentication, as Kubernetes does it: the chain the client presented
//! on its TLS connection must verify against the client CA (the cluster CA, or
//! `--client-ca-file`), be valid now and allow client auth; the user is the subject's common
//! name and the groups are its organizations.
//!
//! The chain check is rustls' own WebPKI client verifier, called per request (the TLS layer
//! only checked proof of key possession; see `tls`).

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;

use super::{Authenticator, AuthnError, Credentials, User};
use crate::pki::inspect::inspect;

/// Verifies client certificates against a set of CAs.
pub struct X509 {
    verifier: Arc<dyn ClientCertVerifier>,
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
        Ok(X509 { verifier })
    }

    /// The user a verified chain names.
    pub fn verify(&self, chain: &[CertificateDer<'static>]) -> Result<User, AuthnError> {
        let (leaf, intermediates) = chain
            .split_first()
            .ok_or_else(|| AuthnError::Certificate("empty chain".into()))?;
        self.verifier
            .verify_client_cert(leaf, intermediates, UnixTime::now())
            .map_err(|e| AuthnError::Certificate(e.to_string()))?;
        let info = inspect(leaf).map_err(AuthnError::Certificate)?;
        let name = info
            .common_name
            .filter(|n| !n.is_empty())
            .ok_or_else(|| AuthnError::Certificate("the subject has no common name".into()))?;
        Ok(User {
            name,
            groups: info.organizations,
            ..User::default()
        })
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
}
