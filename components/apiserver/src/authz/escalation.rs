//! RBAC escalation prevention, as Kubernetes' RBAC registry does it: a user may create or
//! change a Role/ClusterRole only with rules they already hold (or with the `escalate` verb
//! on it), and a RoleBinding/ClusterRoleBinding only to a role whose rules they hold (or with
//! the `bind` verb on that role). Members of `system:masters` are exempt.
//!
//! The handlers call [`check`] on the final object of every RBAC create and update (also
//! patch and apply) just before the write. On update, the check runs only when the
//! permission-bearing fields changed (`rules`; `roleRef`/`subjects`) — kube also skips
//! garbage-collector-only changes; this server skips any change that grants nothing new.

use k8s_openapi::api::rbac::v1::PolicyRule;
use serde_json::Value;

use super::policy::{Binding, Policy, RoleRef};
use super::{Attributes, Authorizer};
use crate::authn::{MASTERS, User};
use crate::error::{ApiError, ObjectRef};

/// The RBAC API group.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

fn has_all(owner: &[String], wanted: &[String]) -> bool {
    wanted.iter().all(|w| owner.contains(w))
}

fn star(list: &[String]) -> bool {
    list.iter().any(|v| v == "*")
}

fn resources_cover(owner: &[String], wanted: &[String]) -> bool {
    star(owner)
        || wanted.iter().all(|w| {
            owner.contains(w)
                || w.split_once('/')
                    .is_some_and(|(_, sub)| owner.iter().any(|o| o.strip_prefix("*/") == Some(sub)))
        })
}

fn url_covers(owner: &str, wanted: &str) -> bool {
    owner == wanted
        || owner
            .strip_suffix('*')
            .is_some_and(|prefix| wanted.starts_with(prefix))
}

/// Whether `owner` covers the single-verb, single-resource `sub` rule (kube's `ruleCovers`).
fn rule_covers(owner: &PolicyRule, sub: &PolicyRule) -> bool {
    let v = |o: &Option<Vec<String>>| o.clone().unwrap_or_default();
    let (og, sg) = (v(&owner.api_groups), v(&sub.api_groups));
    let (or, sr) = (v(&owner.resources), v(&sub.resources));
    let (on, sn) = (v(&owner.resource_names), v(&sub.resource_names));
    let (ou, su) = (v(&owner.non_resource_urls), v(&sub.non_resource_urls));
    let verbs = star(&owner.verbs) || has_all(&owner.verbs, &sub.verbs);
    let groups = star(&og) || has_all(&og, &sg);
    let resources = resources_cover(&or, &sr);
    let urls = su.iter().all(|u| ou.iter().any(|o| url_covers(o, u)));
    let names = if sn.is_empty() {
        on.is_empty()
    } else {
        on.is_empty() || has_all(&on, &sn)
    };
    verbs && groups && resources && names && urls
}

/// Splits a rule into one rule per (group, resource, verb[, name]) and per (url, verb).
pub fn breakdown(rule: &PolicyRule) -> Vec<PolicyRule> {
    let one = |s: &String| Some(vec![s.clone()]);
    let mut out = Vec::new();
    for g in rule.api_groups.iter().flatten() {
        for r in rule.resources.iter().flatten() {
            for verb in &rule.verbs {
                let base = PolicyRule {
                    api_groups: one(g),
                    resources: one(r),
                    verbs: vec![verb.clone()],
                    ..PolicyRule::default()
                };
                match rule.resource_names.as_deref() {
                    Some(names) if !names.is_empty() => {
                        for n in names {
                            out.push(PolicyRule {
                                resource_names: one(n),
                                ..base.clone()
                            });
                        }
                    }
                    _ => out.push(base),
                }
            }
        }
    }
    for u in rule.non_resource_urls.iter().flatten() {
        for verb in &rule.verbs {
            out.push(PolicyRule {
                non_resource_urls: one(u),
                verbs: vec![verb.clone()],
                ..PolicyRule::default()
            });
        }
    }
    out
}

/// The parts of `wanted` that `owner` does not cover (empty: covered).
pub fn uncovered(owner: &[PolicyRule], wanted: &[PolicyRule]) -> Vec<PolicyRule> {
    wanted
        .iter()
        .flat_map(breakdown)
        .filter(|sub| !owner.iter().any(|o| rule_covers(o, sub)))
        .collect()
}

/// A compact rule text like kube's: `{APIGroups:[""], Resources:["pods"], Verbs:["get"]}`.
pub fn show(rule: &PolicyRule) -> String {
    let q = |v: &[String]| {
        v.iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut parts = Vec::new();
    if let Some(u) = rule.non_resource_urls.as_deref().filter(|u| !u.is_empty()) {
        parts.push(format!("NonResourceURLs:[{}]", q(u)));
    } else {
        parts.push(format!(
            "APIGroups:[{}]",
            q(rule.api_groups.as_deref().unwrap_or_default())
        ));
        parts.push(format!(
            "Resources:[{}]",
            q(rule.resources.as_deref().unwrap_or_default())
        ));
        if let Some(n) = rule.resource_names.as_deref().filter(|n| !n.is_empty()) {
            parts.push(format!("ResourceNames:[{}]", q(n)));
        }
    }
    parts.push(format!("Verbs:[{}]", q(&rule.verbs)));
    format!("{{{}}}", parts.join(", "))
}

fn rules_of(object: &Value) -> Vec<PolicyRule> {
    serde_json::from_value(object.get("rules").cloned().unwrap_or(Value::Null)).unwrap_or_default()
}

fn meta(object: &Value, field: &str) -> String {
    object["metadata"][field]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Whether the permission-bearing fields differ between two versions.
fn grants_changed(plural: &str, new: &Value, old: &Value) -> bool {
    match plural {
        "roles" | "clusterroles" => new.get("rules") != old.get("rules"),
        _ => new.get("roleRef") != old.get("roleRef") || new.get("subjects") != old.get("subjects"),
    }
}

/// Refuses an RBAC write that would grant `user` more than they hold; see the module doc.
/// `old` is the stored version for updates.
pub fn check(
    authz: &dyn Authorizer,
    policy: &Policy,
    user: &User,
    plural: &str,
    object: &Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    if !matches!(
        plural,
        "roles" | "clusterroles" | "rolebindings" | "clusterrolebindings"
    ) || user.in_group(MASTERS)
    {
        return Ok(());
    }
    if old.is_some_and(|o| !grants_changed(plural, object, o)) {
        return Ok(());
    }
    let (ns, name) = (meta(object, "namespace"), meta(object, "name"));
    let allowed = |verb: &str, resource: &str, object_name: &str| {
        authz
            .authorize(
                user,
                &Attributes::resource(verb, RBAC_GROUP, resource, &ns).named(object_name),
            )
            .allowed()
    };
    let wanted = match plural {
        "roles" | "clusterroles" => {
            if allowed("escalate", plural, &name) {
                return Ok(());
            }
            rules_of(object)
        }
        _ => {
            let kind = object["roleRef"]["kind"].as_str().unwrap_or_default();
            let role_name = object["roleRef"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let (role, role_plural) = match kind {
                "ClusterRole" => (RoleRef::ClusterRole(role_name.clone()), "clusterroles"),
                _ => (RoleRef::Role(role_name.clone()), "roles"),
            };
            if allowed("bind", role_plural, &role_name) {
                return Ok(());
            }
            let binding = Binding {
                name: name.clone(),
                namespace: (!ns.is_empty()).then(|| ns.clone()),
                role,
                subjects: Vec::new(),
            };
            match policy.rules_of(&binding) {
                Ok(rules) => rules.as_ref().clone(),
                Err(_) => {
                    return Err(ApiError::NotFound(ObjectRef {
                        group: RBAC_GROUP.into(),
                        resource: role_plural.into(),
                        kind: if role_plural == "roles" {
                            "Role"
                        } else {
                            "ClusterRole"
                        }
                        .into(),
                        name: role_name,
                    }));
                }
            }
        }
    };
    let held = authz.rules_for(user, &ns);
    let missing = uncovered(&held.rules, &wanted);
    if missing.is_empty() {
        return Ok(());
    }
    let mut message = format!(
        "user {:?} (groups=[{}]) is attempting to grant RBAC permissions not currently held:\n{}",
        user.name,
        user.groups
            .iter()
            .map(|g| format!("{g:?}"))
            .collect::<Vec<_>>()
            .join(" "),
        missing.iter().map(show).collect::<Vec<_>>().join("\n")
    );
    if !held.errors.is_empty() {
        message.push_str(&format!(
            "; resolution errors: [{}]",
            held.errors.join(", ")
        ));
    }
    Err(ApiError::Forbidden {
        group: RBAC_GROUP.into(),
        resource: plural.into(),
        name,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
        let v = |s: &[&str]| Some(s.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        PolicyRule {
            api_groups: v(groups),
            resources: v(resources),
            verbs: verbs.iter().map(|x| x.to_string()).collect(),
            ..PolicyRule::default()
        }
    }

    #[test]
    fn coverage_table() {
        let owner = vec![
            rule(&[""], &["pods", "configmaps"], &["get", "list"]),
            rule(&["apps"], &["*"], &["*"]),
            rule(&["batch"], &["*/status"], &["update"]),
            PolicyRule {
                resource_names: Some(vec!["one".into()]),
                ..rule(&[""], &["secrets"], &["get"])
            },
            PolicyRule {
                non_resource_urls: Some(vec!["/logs/*".into()]),
                verbs: vec!["get".into()],
                ..PolicyRule::default()
            },
        ];
        let rows: Vec<(PolicyRule, usize)> = vec![
            (rule(&[""], &["pods"], &["get"]), 0),
            (rule(&[""], &["pods", "configmaps"], &["get", "list"]), 0),
            (rule(&[""], &["pods"], &["get", "delete"]), 1),
            (rule(&[""], &["pods", "secrets"], &["list"]), 1),
            (
                rule(
                    &["apps"],
                    &["deployments", "statefulsets/scale"],
                    &["create", "patch"],
                ),
                0,
            ),
            (rule(&["batch"], &["jobs/status"], &["update"]), 0),
            (rule(&["batch"], &["jobs"], &["update"]), 1),
            (rule(&["*"], &["pods"], &["get"]), 1),
            (
                PolicyRule {
                    resource_names: Some(vec!["one".into()]),
                    ..rule(&[""], &["secrets"], &["get"])
                },
                0,
            ),
            (rule(&[""], &["secrets"], &["get"]), 1),
            (
                PolicyRule {
                    non_resource_urls: Some(vec!["/logs/x".into(), "/metrics".into()]),
                    verbs: vec!["get".into()],
                    ..PolicyRule::default()
                },
                1,
            ),
        ];
        for (wanted, missing) in rows {
            let got = uncovered(&owner, std::slice::from_ref(&wanted));
            assert_eq!(
                got.len(),
                missing,
                "{} -> {:?}",
                show(&wanted),
                got.iter().map(show).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn shows_like_kube() {
        assert_eq!(
            show(&rule(&[""], &["pods"], &["get"])),
            r#"{APIGroups:[""], Resources:["pods"], Verbs:["get"]}"#
        );
    }
}
