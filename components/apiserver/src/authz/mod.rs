//! Authorization: may this user do this?
//!
//! `server` builds the request's [`Attributes`] (Kubernetes' RequestInfo: verb as Kubernetes
//! maps HTTP — get/list/watch/create/update/patch/delete/deletecollection — group, resource,
//! subresource, namespace, name; or the path and lower-case method of a non-resource
//! request) and asks the [`Authorizer`]. The server's authorizer is [`Rbac`]:
//!
//! 1. members of `system:masters` are always allowed (kube's privileged-group authorizer,
//!    so deleting the `cluster-admin` binding never locks the administrators out);
//! 2. everyone else is judged by [`rbac::authorize`], a pure function of the request and a
//!    [`Policy`] snapshot, which [`cache::PolicyCache`] keeps current from store watches.
//!
//! No opinion → 403 with Kubernetes' message ([`forbidden`]). [`bootstrap`] creates the
//! default roles and bindings at start; [`escalation`] stops users from granting
//! permissions they do not hold.

pub mod bootstrap;
pub mod cache;
pub mod escalation;
pub mod policy;
pub mod rbac;

use std::sync::Arc;

use k8s_openapi::api::rbac::v1::PolicyRule;

use crate::authn::{MASTERS, User};
use crate::error::ApiError;

pub use policy::Policy;

/// What a request does (Kubernetes' authorizer attributes).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attributes {
    /// Whether this is a resource request (else a non-resource path).
    pub resource_request: bool,
    /// `get`, `list`, `watch`, `create`, ... or, for non-resource requests, the lower-case
    /// HTTP method.
    pub verb: String,
    /// API group (`""` for core).
    pub api_group: String,
    /// API version.
    pub api_version: String,
    /// Resource (plural).
    pub resource: String,
    /// Subresource.
    pub subresource: String,
    /// Namespace (`""` for cluster-scoped or all-namespace requests).
    pub namespace: String,
    /// Object name, if the request names one.
    pub name: String,
    /// URL path.
    pub path: String,
}

impl Attributes {
    /// A resource request.
    pub fn resource(verb: &str, group: &str, resource: &str, namespace: &str) -> Attributes {
        let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
        Attributes {
            resource_request: true,
            verb: verb.into(),
            api_group: group.into(),
            resource: resource.into(),
            subresource: subresource.into(),
            namespace: namespace.into(),
            ..Attributes::default()
        }
    }

    /// A non-resource request.
    pub fn non_resource(verb: &str, path: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            path: path.into(),
            ..Attributes::default()
        }
    }

    /// Sets the object name.
    pub fn named(mut self, name: &str) -> Attributes {
        self.name = name.into();
        self
    }

    /// `resource/subresource`, or the resource alone.
    pub fn full_resource(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }
}

/// An authorization outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed, with why (for access reviews).
    Allow(String),
    /// Explicitly denied (no authorizer here denies explicitly today).
    Deny(String),
    /// Not allowed by anything; the reason may explain (e.g. a binding to a missing role).
    NoOpinion(String),
}

impl Decision {
    /// Whether the request may go ahead.
    pub fn allowed(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }

    /// The reason text.
    pub fn reason(&self) -> &str {
        match self {
            Decision::Allow(r) | Decision::Deny(r) | Decision::NoOpinion(r) => r,
        }
    }
}

/// The rules a user has in a namespace (SelfSubjectRulesReview).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rules {
    /// Rules granting access (resource and non-resource rules mixed, as stored).
    pub rules: Vec<PolicyRule>,
    /// Problems met while collecting (bindings to missing roles).
    pub errors: Vec<String>,
}

/// Decides whether a user may do something.
pub trait Authorizer: Send + Sync {
    /// The decision for one request.
    fn authorize(&self, user: &User, attributes: &Attributes) -> Decision;
    /// Every rule that applies to `user` in `namespace` (`""`: cluster-wide only).
    fn rules_for(&self, user: &User, namespace: &str) -> Rules;
}

/// The server's authorizer: `system:masters`, then RBAC over the cached policy.
pub struct Rbac {
    cache: Arc<cache::PolicyCache>,
}

impl Rbac {
    /// RBAC over a policy cache.
    pub fn new(cache: Arc<cache::PolicyCache>) -> Rbac {
        Rbac { cache }
    }

    fn everything() -> Vec<PolicyRule> {
        let all = || Some(vec!["*".to_string()]);
        vec![
            PolicyRule {
                api_groups: all(),
                resources: all(),
                verbs: vec!["*".into()],
                ..PolicyRule::default()
            },
            PolicyRule {
                non_resource_urls: all(),
                verbs: vec!["*".into()],
                ..PolicyRule::default()
            },
        ]
    }
}

impl Authorizer for Rbac {
    fn authorize(&self, user: &User, attributes: &Attributes) -> Decision {
        if user.in_group(MASTERS) {
            return Decision::Allow(format!("member of {MASTERS}"));
        }
        rbac::authorize(&self.cache.policy(), user, attributes)
    }

    fn rules_for(&self, user: &User, namespace: &str) -> Rules {
        if user.in_group(MASTERS) {
            return Rules {
                rules: Rbac::everything(),
                errors: Vec::new(),
            };
        }
        rbac::rules_for(&self.cache.policy(), user, namespace)
    }
}

/// Kubernetes' 403 for a refused request, e.g. `pods is forbidden: User "alice" cannot list
/// resource "pods" in API group "" in the namespace "dev"`.
pub fn forbidden(user: &User, a: &Attributes, reason: &str) -> ApiError {
    let mut message = if !a.resource_request {
        format!("User {:?} cannot {} path {:?}", user.name, a.verb, a.path)
    } else if a.namespace.is_empty() {
        format!(
            "User {:?} cannot {} resource {:?} in API group {:?} at the cluster scope",
            user.name,
            a.verb,
            a.full_resource(),
            a.api_group
        )
    } else {
        format!(
            "User {:?} cannot {} resource {:?} in API group {:?} in the namespace {:?}",
            user.name,
            a.verb,
            a.full_resource(),
            a.api_group,
            a.namespace
        )
    };
    if !reason.is_empty() {
        message.push_str(": ");
        message.push_str(reason);
    }
    if a.resource_request {
        ApiError::Forbidden {
            group: a.api_group.clone(),
            resource: a.resource.clone(),
            name: a.name.clone(),
            message,
        }
    } else {
        ApiError::Forbidden {
            group: String::new(),
            resource: String::new(),
            name: String::new(),
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_messages_are_kubernetes_words() {
        let alice = User::new("alice", &[]);
        let e = forbidden(&alice, &Attributes::resource("list", "", "pods", "dev"), "");
        assert_eq!(
            e.to_string(),
            r#"pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "dev""#
        );
        let e = forbidden(
            &alice,
            &Attributes::resource("get", "apps", "deployments/scale", "").named("web"),
            "",
        );
        assert_eq!(
            e.to_string(),
            r#"deployments.apps "web" is forbidden: User "alice" cannot get resource "deployments/scale" in API group "apps" at the cluster scope"#
        );
        let e = forbidden(&alice, &Attributes::non_resource("get", "/metrics"), "");
        assert_eq!(
            e.to_string(),
            r#"forbidden: User "alice" cannot get path "/metrics""#
        );
        let status = e.to_status();
        assert_eq!(status["code"], 403);
        assert_eq!(status["reason"], "Forbidden");
    }
}
