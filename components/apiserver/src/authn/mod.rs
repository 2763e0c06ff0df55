//! Authentication: who is calling.
//!
//! Every request goes through [`Chain::authenticate`] first, with its [`Credentials`] (the
//! headers and the TLS client certificate chain of its connection). The chain asks, in
//! order: the [`x509`] client certificate authenticator, then the bearer-token
//! authenticators ([`tokenfile`], [`serviceaccount`]). Kubernetes' union semantics:
//!
//! - the first authenticator that recognises the credentials names the user;
//! - credentials that are presented but invalid (a certificate that does not verify, a bearer
//!   token nobody knows, an expired ServiceAccount token) are an error → 401, never anonymous;
//! - no credentials at all: anonymous (`system:anonymous` in `system:unauthenticated`) only
//!   on the paths of [`ANONYMOUS_PATHS`] (kube's AuthenticationConfiguration
//!   `anonymous.conditions` for the health endpoints); anywhere else → 401.
//!
//! Every authenticated user also gets the group `system:authenticated`.

pub mod serviceaccount;
pub mod tokenfile;
pub mod x509;

use std::collections::BTreeMap;

use http::HeaderMap;
use rustls::pki_types::CertificateDer;

/// Group of every authenticated user.
pub const AUTHENTICATED: &str = "system:authenticated";
/// Group of anonymous requests.
pub const UNAUTHENTICATED: &str = "system:unauthenticated";
/// User name of anonymous requests.
pub const ANONYMOUS: &str = "system:anonymous";
/// The group every request of which is allowed (kube's `system:masters`).
pub const MASTERS: &str = "system:masters";

/// Paths anonymous requests may reach (each also with sub-paths: `/readyz/etcd`). Like
/// kube-apiserver configured with `anonymous.conditions` for the health checks, so load
/// balancers and probes need no credentials while everything else answers 401.
pub const ANONYMOUS_PATHS: &[&str] = &["/healthz", "/livez", "/readyz"];

/// An authenticated caller (Kubernetes' `user.Info`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct User {
    /// User name.
    pub name: String,
    /// Unique id, if the authenticator knows one.
    pub uid: String,
    /// Groups.
    pub groups: Vec<String>,
    /// Extra attributes (`authentication.kubernetes.io/credential-id`, ...).
    pub extra: BTreeMap<String, Vec<String>>,
}

impl User {
    /// A user in some groups.
    pub fn new(name: impl Into<String>, groups: &[&str]) -> User {
        User {
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..User::default()
        }
    }

    /// The anonymous user.
    pub fn anonymous() -> User {
        User::new(ANONYMOUS, &[UNAUTHENTICATED])
    }

    /// Whether the user is in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    fn with_authenticated(mut self) -> User {
        if !self.in_group(AUTHENTICATED) {
            self.groups.push(AUTHENTICATED.to_string());
        }
        self
    }
}

/// What a request presents.
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a> {
    /// Request headers (`Authorization: Bearer ...`).
    pub headers: &'a HeaderMap,
    /// The TLS client certificate chain of the connection, leaf first.
    pub peer_certificates: Option<&'a [CertificateDer<'static>]>,
}

impl Credentials<'_> {
    /// The bearer token of the `Authorization` header, if there is one.
    pub fn bearer_token(&self) -> Option<&str> {
        let value = self
            .headers
            .get(http::header::AUTHORIZATION)?
            .to_str()
            .ok()?;
        let (scheme, token) = value.trim().split_once(' ')?;
        let token = token.trim();
        (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
    }
}

/// Presented credentials that are not valid (→ 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthnError {
    /// The client certificate does not verify or names no user.
    #[error("invalid client certificate: {0}")]
    Certificate(String),
    /// No token authenticator knows the bearer token.
    #[error("invalid bearer token")]
    UnknownToken,
    /// A token that looks like ours but is not valid.
    #[error("invalid bearer token: {0}")]
    Token(String),
}

/// One way of authenticating.
pub trait Authenticator: Send + Sync {
    /// `Ok(None)`: no credentials of this kind; `Err`: credentials of this kind, invalid.
    fn authenticate(&self, credentials: &Credentials<'_>) -> Result<Option<User>, AuthnError>;
}

/// Why a request has no user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unauthenticated {
    /// Credentials were presented and refused.
    #[error(transparent)]
    Invalid(#[from] AuthnError),
    /// No credentials, and the path is not open to anonymous requests.
    #[error("no credentials")]
    Anonymous,
}

/// The authenticators of the server, in order (see the module doc).
#[derive(Default)]
pub struct Chain {
    certificate: Option<Box<dyn Authenticator>>,
    tokens: Vec<Box<dyn Authenticator>>,
}

impl Chain {
    /// Adds the client certificate authenticator.
    pub fn with_certificates(mut self, a: impl Authenticator + 'static) -> Chain {
        self.certificate = Some(Box::new(a));
        self
    }

    /// Adds a bearer-token authenticator (asked in the order added).
    pub fn with_tokens(mut self, a: impl Authenticator + 'static) -> Chain {
        self.tokens.push(Box::new(a));
        self
    }

    /// The user of a request to `path`.
    pub fn authenticate(
        &self,
        credentials: &Credentials<'_>,
        path: &str,
    ) -> Result<User, Unauthenticated> {
        let mut error = None;
        if let Some(a) = &self.certificate {
            match a.authenticate(credentials) {
                Ok(Some(u)) => return Ok(u.with_authenticated()),
                Ok(None) => {}
                Err(e) => error = Some(e),
            }
        }
        if credentials.bearer_token().is_some() {
            let mut token_error = None;
            for a in &self.tokens {
                match a.authenticate(credentials) {
                    Ok(Some(u)) => return Ok(u.with_authenticated()),
                    Ok(None) => {}
                    Err(e) => {
                        token_error.get_or_insert(e);
                    }
                }
            }
            // A bearer token nobody recognised is an error, not "no credentials".
            error = Some(token_error.unwrap_or(AuthnError::UnknownToken));
        }
        if let Some(e) = error {
            return Err(e.into());
        }
        if anonymous_allowed(path) {
            return Ok(User::anonymous());
        }
        Err(Unauthenticated::Anonymous)
    }
}

/// Whether `path` is open to anonymous requests.
pub fn anonymous_allowed(path: &str) -> bool {
    ANONYMOUS_PATHS.iter().any(|p| {
        path == *p
            || path
                .strip_prefix(p)
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(Result<Option<User>, AuthnError>);
    impl Authenticator for Fixed {
        fn authenticate(&self, _: &Credentials<'_>) -> Result<Option<User>, AuthnError> {
            self.0.clone()
        }
    }

    fn creds(headers: &HeaderMap) -> Credentials<'_> {
        Credentials {
            headers,
            peer_certificates: None,
        }
    }

    fn bearer(t: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            format!("Bearer {t}").parse().unwrap(),
        );
        h
    }

    #[test]
    fn union_semantics() {
        let none = HeaderMap::new();
        let alice = User::new("alice", &["dev"]);
        let chain = Chain::default()
            .with_certificates(Fixed(Ok(None)))
            .with_tokens(Fixed(Ok(None)))
            .with_tokens(Fixed(Ok(Some(alice.clone()))));
        let u = chain.authenticate(&creds(&bearer("t")), "/api").unwrap();
        assert_eq!(u.groups, ["dev", AUTHENTICATED]);
        // No credentials: 401 except on the health paths.
        assert_eq!(
            chain.authenticate(&creds(&none), "/api"),
            Err(Unauthenticated::Anonymous)
        );
        assert_eq!(
            chain.authenticate(&creds(&none), "/readyz/etcd"),
            Ok(User::anonymous())
        );
        assert!(chain.authenticate(&creds(&none), "/readyzz").is_err());
        // An unknown token is refused even where anonymous would be allowed.
        let nobody = Chain::default().with_tokens(Fixed(Ok(None)));
        assert_eq!(
            nobody.authenticate(&creds(&bearer("x")), "/healthz"),
            Err(Unauthenticated::Invalid(AuthnError::UnknownToken))
        );
        // A refused certificate is an error unless a later authenticator names the user
        // (kube's union tries them all).
        let bad_cert = Chain::default()
            .with_certificates(Fixed(Err(AuthnError::Certificate("expired".into()))))
            .with_tokens(Fixed(Ok(Some(alice))));
        assert_eq!(
            bad_cert
                .authenticate(&creds(&bearer("t")), "/api")
                .unwrap()
                .name,
            "alice"
        );
        assert!(matches!(
            bad_cert.authenticate(&creds(&none), "/healthz"),
            Err(Unauthenticated::Invalid(AuthnError::Certificate(_)))
        ));
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(creds(&bearer("abc")).bearer_token(), Some("abc"));
        let mut h = HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(creds(&h).bearer_token(), None);
        h.insert(http::header::AUTHORIZATION, "bearer   ".parse().unwrap());
        assert_eq!(creds(&h).bearer_token(), None);
    }
}
