//! The authentication and authorization stages of the request pipeline.
//!
//! `server` calls [`Authenticator::authenticate`] on every request (no user → 401), parses the
//! request, then [`Authorizer::authorize`] with the request's attributes (deny → 403), and
//! only then dispatches. This increment serves plain HTTP on loopback with
//! [`LoopbackAdmin`] and [`AllowAll`]; the security increment replaces them with TLS client
//! certificates / bearer tokens and RBAC over the stored roles and bindings.

use http::HeaderMap;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// User name.
    pub name: String,
    /// Groups.
    pub groups: Vec<String>,
}

/// What a request does, for authorization (Kubernetes' request attributes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributes {
    /// `get`, `list`, `create`... or the HTTP method for non-resource paths.
    pub verb: String,
    /// API group.
    pub group: String,
    /// Resource (empty for non-resource paths).
    pub resource: String,
    /// Subresource.
    pub subresource: String,
    /// Namespace.
    pub namespace: String,
    /// Object name.
    pub name: String,
    /// URL path (non-resource requests).
    pub path: String,
}

/// Authorization outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Allow,
    /// Refuse, with the reason shown to the client.
    Deny(String),
}

/// Finds who is calling.
pub trait Authenticator: Send + Sync {
    /// `None` when the request carries no acceptable credentials.
    fn authenticate(&self, headers: &HeaderMap) -> Option<User>;
}

/// Decides whether a user may do something.
pub trait Authorizer: Send + Sync {
    /// The decision for one request.
    fn authorize(&self, user: &User, attributes: &Attributes) -> Decision;
}

/// Every caller is the cluster admin: the server listens on loopback only in this increment.
pub struct LoopbackAdmin;

impl Authenticator for LoopbackAdmin {
    fn authenticate(&self, _headers: &HeaderMap) -> Option<User> {
        Some(User {
            name: "system:admin".into(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
        })
    }
}

/// Allows everything (until RBAC enforcement lands).
pub struct AllowAll;

impl Authorizer for AllowAll {
    fn authorize(&self, _user: &User, _attributes: &Attributes) -> Decision {
        Decision::Allow
    }
}
