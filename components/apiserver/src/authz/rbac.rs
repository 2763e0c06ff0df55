//! The RBAC evaluator: pure functions of a [`Policy`], a [`User`] and request
//! [`Attributes`], with Kubernetes' matching rules (`plugin/pkg/auth/authorizer/rbac`).
//!
//! Walk: every ClusterRoleBinding whose subjects include the user, then — for requests in a
//! namespace — every RoleBinding of that namespace; each binding's role rules are tried in
//! order and the first rule that allows the request decides. A binding whose role does not
//! exist grants nothing and is reported in the reason (`RBAC: clusterrole... not found`).
//!
//! A rule allows a resource request when its verbs, apiGroups, resources and resourceNames
//! all match: `*` matches anything; `resources` matches `resource` or `resource/subresource`
//! exactly, or `*/subresource`; an empty resourceNames matches any name, otherwise the
//! request must name one of them. A non-resource request matches verbs and
//! nonResourceURLs (exact, `*`, or a prefix ending in `*`).

use k8s_openapi::api::rbac::v1::{PolicyRule, Subject};

use super::policy::{Binding, Policy, RoleRef};
use super::{Attributes, Decision, Rules};
use crate::authn::User;

/// The `*` of every rule field.
pub const ALL: &str = "*";

fn has(list: &[String], want: &str) -> bool {
    list.iter().any(|v| v == ALL || v == want)
}

/// Whether the rule's verbs allow `verb`.
pub fn verb_matches(rule: &PolicyRule, verb: &str) -> bool {
    has(&rule.verbs, verb)
}

/// Whether the rule's apiGroups include `group`.
pub fn group_matches(rule: &PolicyRule, group: &str) -> bool {
    rule.api_groups.as_deref().is_some_and(|g| has(g, group))
}

/// Whether the rule's resources include `combined` (`resource[/subresource]`).
pub fn resource_matches(rule: &PolicyRule, combined: &str, subresource: &str) -> bool {
    rule.resources
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|r| {
            r == ALL
                || r == combined
                || (!subresource.is_empty() && r.strip_prefix("*/") == Some(subresource))
        })
}

/// Whether the rule's resourceNames allow `name`.
pub fn name_matches(rule: &PolicyRule, name: &str) -> bool {
    match rule.resource_names.as_deref() {
        None | Some([]) => true,
        Some(names) => names.iter().any(|n| n == name),
    }
}

/// Whether the rule's nonResourceURLs include `path`.
pub fn url_matches(rule: &PolicyRule, path: &str) -> bool {
    rule.non_resource_urls
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|u| {
            u == ALL
                || u == path
                || u.strip_suffix('*')
                    .is_some_and(|prefix| path.starts_with(prefix))
        })
}

/// Whether one rule allows the request.
pub fn rule_allows(rule: &PolicyRule, a: &Attributes) -> bool {
    if a.resource_request {
        verb_matches(rule, &a.verb)
            && group_matches(rule, &a.api_group)
            && resource_matches(rule, &a.full_resource(), &a.subresource)
            && name_matches(rule, &a.name)
    } else {
        verb_matches(rule, &a.verb) && url_matches(rule, &a.path)
    }
}

/// Prefix of every ServiceAccount user name.
pub const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";

/// The user name of a ServiceAccount.
pub fn service_account_user(namespace: &str, name: &str) -> String {
    format!("{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}")
}

/// Whether a binding subject names the user. A ServiceAccount subject without a namespace
/// means the binding's own namespace.
pub fn subject_matches(s: &Subject, user: &User, binding_namespace: &str) -> bool {
    match s.kind.as_str() {
        "User" => s.name == user.name,
        "Group" => user.in_group(&s.name),
        "ServiceAccount" => {
            let ns = s
                .namespace
                .as_deref()
                .filter(|n| !n.is_empty())
                .unwrap_or(binding_namespace);
            !ns.is_empty() && user.name == service_account_user(ns, &s.name)
        }
        _ => false,
    }
}

fn applies<'p>(b: &'p Binding, user: &User) -> Option<&'p Subject> {
    let ns = b.namespace.as_deref().unwrap_or_default();
    b.subjects.iter().find(|s| subject_matches(s, user, ns))
}

/// Visits every rule granted to `user` in `namespace` (cluster bindings first), until
/// `visit` returns true; returns the errors met (bindings to missing roles).
fn walk<'p>(
    policy: &'p Policy,
    user: &User,
    namespace: &str,
    mut visit: impl FnMut(&'p Binding, &'p Subject, &'p PolicyRule) -> bool,
) -> Vec<String> {
    let mut errors = Vec::new();
    let namespaced = policy
        .bindings
        .get(namespace)
        .filter(|_| !namespace.is_empty());
    let bindings = policy
        .cluster_bindings
        .iter()
        .chain(namespaced.into_iter().flatten());
    for b in bindings {
        let Some(subject) = applies(b, user) else {
            continue;
        };
        match policy.rules_of(b) {
            Ok(rules) => {
                for r in rules.iter() {
                    if visit(b, subject, r) {
                        return errors;
                    }
                }
            }
            Err(e) => errors.push(e),
        }
    }
    errors
}

/// The RBAC decision for one request.
pub fn authorize(policy: &Policy, user: &User, a: &Attributes) -> Decision {
    let mut allowed_by = None;
    let errors = walk(policy, user, &a.namespace, |b, s, r| {
        if rule_allows(r, a) {
            allowed_by = Some((b, s));
            true
        } else {
            false
        }
    });
    if let Some((b, s)) = allowed_by {
        let role = match &b.role {
            RoleRef::ClusterRole(n) => format!("ClusterRole {n:?}"),
            RoleRef::Role(n) => format!("Role {n:?}"),
        };
        return Decision::Allow(format!(
            "RBAC: allowed by {} of {role} to {} {:?}",
            b.describe(),
            s.kind,
            s.name
        ));
    }
    if errors.is_empty() {
        Decision::NoOpinion(String::new())
    } else {
        Decision::NoOpinion(format!("RBAC: [{}]", errors.join(", ")))
    }
}

/// Every rule granted to the user in `namespace`.
pub fn rules_for(policy: &Policy, user: &User, namespace: &str) -> Rules {
    let mut rules = Vec::new();
    let errors = walk(policy, user, namespace, |_, _, r| {
        rules.push(r.clone());
        false
    });
    Rules { rules, errors }
}

#[cfg(test)]
mod tests;
