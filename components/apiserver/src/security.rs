//! Wiring of the security stages from the configuration, before anything is served:
//!
//! 1. the cert dir ([`crate::pki`]): CA, serving certificate (SANs from the listener,
//!    `--advertise-address`, the Service range and `--tls-sans`), ServiceAccount key;
//! 2. the client CA (cluster CA, or `--client-ca-file`) and the TLS configuration (unless
//!    plain HTTP on loopback was asked for);
//! 3. the authenticators ([`crate::authn`]): client certificates, the token file,
//!    ServiceAccount tokens;
//! 4. the authorizer ([`crate::authz::Rbac`]) over the policy cache, which `lib::app`
//!    starts once the bootstrap policy is in the store.
//!
//! Every failure is a [`SecurityError`] naming the file or flag, and happens before the
//! server accepts a connection.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::RootCertStore;

use crate::authn::serviceaccount::{ServiceAccountTokens, Tokens};
use crate::authn::tokenfile::{TokenFile, TokenFileError};
use crate::authn::x509::{BadClientCa, X509};
use crate::authn::{self, Chain};
use crate::authz::cache::PolicyCache;
use crate::authz::{Authorizer, Rbac};
use crate::config::SecurityConfig;
use crate::pki::{self, CertDir, Pki, PkiError, ServingNames};
use crate::tls::TlsError;

/// A security setup failure.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    /// Plain HTTP was asked for on a non-loopback address.
    #[error(
        "plain HTTP is only allowed on a loopback address, not {0}: drop --insecure-plain-http-loopback or bind 127.0.0.1"
    )]
    PlainHttpNotLoopback(SocketAddr),
    /// The cert dir or a key file.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// The client CA file holds no usable CA.
    #[error("{path}: {what}")]
    ClientCa {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// The client CA cannot verify certificates.
    #[error(transparent)]
    Verifier(#[from] BadClientCa),
    /// The TLS configuration.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The token file.
    #[error(transparent)]
    TokenFile(#[from] TokenFileError),
}

/// What the request pipeline uses to identify and judge callers.
pub struct Security {
    /// Authentication.
    pub authn: Chain,
    /// Authorization.
    pub authz: Arc<dyn Authorizer>,
    /// The watch-fed RBAC/ServiceAccount cache behind both.
    pub policy: Arc<PolicyCache>,
    /// ServiceAccount token issuing and verification.
    pub tokens: Arc<Tokens>,
}

/// Everything [`setup`] produces.
pub struct Setup {
    /// The stages.
    pub security: Security,
    /// The cert dir's content.
    pub pki: Pki,
    /// TLS configuration; `None` for plain HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

fn client_roots(config: &SecurityConfig, pki: &Pki) -> Result<RootCertStore, SecurityError> {
    let mut roots = RootCertStore::empty();
    match &config.client_ca_file {
        None => {
            roots
                .add(pki.ca.cert_der().clone())
                .map_err(TlsError::from)?;
        }
        Some(path) => {
            let text = pki::files::read(path)?;
            for cert in pki::files::certificates(path, &text)? {
                roots.add(cert).map_err(|e| SecurityError::ClientCa {
                    path: path.clone(),
                    what: format!("not a usable CA certificate: {e}"),
                })?;
            }
        }
    }
    Ok(roots)
}

/// Builds the security stages for a server listening on `address`.
pub fn setup(
    config: &SecurityConfig,
    address: SocketAddr,
    service_range: ipnetwork::Ipv4Network,
) -> Result<Setup, SecurityError> {
    if config.plain_http && !address.ip().is_loopback() {
        return Err(SecurityError::PlainHttpNotLoopback(address));
    }
    let dir = CertDir::new(&config.cert_dir);
    let names = ServingNames::required(
        address.ip(),
        config.advertise_address,
        service_range,
        &config.tls_sans,
    );
    let pki = pki::load_or_create(&dir, &names)?;
    let roots = client_roots(config, &pki)?;
    let tls = if config.plain_http {
        tracing::warn!(%address, "serving plain HTTP on loopback (--insecure-plain-http-loopback): no TLS, no client certificates");
        None
    } else {
        Some(crate::tls::server_config(
            pki.serving_chain.clone(),
            pki.serving_key.clone_key(),
            &roots,
        )?)
    };
    let key_path = match &config.service_account_key_file {
        Some(p) => p.clone(),
        None => pki::ensure_service_account_key(&dir)?,
    };
    let tokens = Arc::new(Tokens::load(
        &key_path,
        &config.service_account_issuer,
        &[],
    )?);
    let policy = PolicyCache::new();
    let mut chain = Chain::default().with_certificates(X509::new(roots)?);
    if let Some(path) = &config.token_auth_file {
        let file = TokenFile::load(path)?;
        tracing::info!(path = %path.display(), tokens = file.len(), "loaded the token file");
        chain = chain.with_tokens(file);
    }
    chain = chain.with_tokens(ServiceAccountTokens::new(tokens.clone(), policy.clone()));
    let authz: Arc<dyn Authorizer> = Arc::new(Rbac::new(policy.clone()));
    Ok(Setup {
        security: Security {
            authn: chain,
            authz,
            policy,
            tokens,
        },
        pki,
        tls,
    })
}

/// The identity of the server's own requests (bootstrap): a member of `system:masters`.
pub fn server_user() -> authn::User {
    authn::User::new("system:apiserver", &[authn::MASTERS, authn::AUTHENTICATED])
}
