//! The TLS server configuration (rustls on the ring provider).
//!
//! Client certificates are *requested*, not required, and not judged during the handshake:
//! like kube-apiserver (Go's `RequestClientCert` plus its x509 authenticator), a connection
//! with a missing, foreign or expired certificate still completes, and the request is then
//! refused with 401 by [`crate::authn::x509`], which verifies the chain against the client
//! CA. The handshake still checks the client's proof of possession (the CertificateVerify
//! signature), so a certificate alone — without its key — never reaches the authenticator.
//! The certificate request hints the client CA's subject, as Go servers do, so clients with
//! several certificates pick the right one.
//!
//! ALPN offers `h2` and `http/1.1`; kubectl speaks HTTP/2.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig};

/// A TLS configuration problem.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// rustls refused the certificate, key or a CA.
    #[error("cannot build the TLS configuration")]
    Rustls(#[from] rustls::Error),
}

/// The crypto provider everything TLS here uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Requests a client certificate, verifies only the handshake signature; the chain is
/// verified per request by the x509 authenticator (see the module doc).
#[derive(Debug)]
struct RequestClientCert {
    hints: Vec<DistinguishedName>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for RequestClientCert {
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The server configuration: serving chain and key, client CA subjects as hints, ALPN.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_cas: &RootCertStore,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider();
    let verifier = Arc::new(RequestClientCert {
        hints: client_cas.subjects(),
        algorithms: provider.signature_verification_algorithms,
    });
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
