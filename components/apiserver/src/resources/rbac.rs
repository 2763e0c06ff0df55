//! rbac.authorization.k8s.io/v1 Roles, ClusterRoles, RoleBindings, ClusterRoleBindings.
//! Stored and served; enforcement arrives with the security increment.

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding, Subject};
use serde_json::{Value, json};

use crate::error::Cause;
use crate::registry::Kind;
use crate::table::Column;

/// Roles.
pub struct Roles;
/// ClusterRoles.
pub struct ClusterRoles;
/// RoleBindings.
pub struct RoleBindings;
/// ClusterRoleBindings.
pub struct ClusterRoleBindings;

fn created_at(
    age: &str,
    created: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
) -> Vec<Value> {
    let _ = age;
    vec![json!(created.map(|t| t.0.to_string()).unwrap_or_default())]
}

fn created_column() -> Vec<Column> {
    vec![Column::new("Created At", "date", "CreationTimestamp")]
}

fn validate_rules(
    rules: Option<&Vec<k8s_openapi::api::rbac::v1::PolicyRule>>,
    causes: &mut Vec<Cause>,
) {
    for (i, r) in rules.into_iter().flatten().enumerate() {
        if r.verbs.is_empty() {
            causes.push(Cause::required(format!("rules[{i}].verbs")));
        }
        if r.non_resource_urls.as_ref().is_none_or(|u| u.is_empty())
            && r.api_groups.as_ref().is_none_or(|g| g.is_empty())
        {
            causes.push(Cause::required(format!("rules[{i}].apiGroups")));
        }
    }
}

fn subjects_cells(subjects: Option<&Vec<Subject>>) -> [String; 3] {
    let pick = |kind: &str| {
        subjects
            .into_iter()
            .flatten()
            .filter(|s| s.kind == kind)
            .map(|s| match &s.namespace {
                Some(ns) if kind == "ServiceAccount" => format!("{ns}/{}", s.name),
                _ => s.name.clone(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    [pick("User"), pick("Group"), pick("ServiceAccount")]
}

impl Kind for Roles {
    type Obj = Role;
    const SINGULAR: &'static str = "role";
    const NAMESPACED: bool = true;
    const HAS_SPEC: bool = false;
    fn validate(r: &Role, causes: &mut Vec<Cause>) {
        validate_rules(r.rules.as_ref(), causes);
    }
    fn columns() -> Vec<Column> {
        created_column()
    }
    fn cells(r: &Role, age: &str) -> Vec<Value> {
        created_at(age, r.metadata.creation_timestamp.as_ref())
    }
}

impl Kind for ClusterRoles {
    type Obj = ClusterRole;
    const SINGULAR: &'static str = "clusterrole";
    const NAMESPACED: bool = false;
    const HAS_SPEC: bool = false;
    fn validate(r: &ClusterRole, causes: &mut Vec<Cause>) {
        validate_rules(r.rules.as_ref(), causes);
    }
    fn columns() -> Vec<Column> {
        created_column()
    }
    fn cells(r: &ClusterRole, age: &str) -> Vec<Value> {
        created_at(age, r.metadata.creation_timestamp.as_ref())
    }
}

fn binding_columns() -> Vec<Column> {
    vec![
        Column::new("Role", "string", "The role referenced"),
        Column::new("Age", "date", "CreationTimestamp"),
        Column::wide("Users", "string", "Users bound"),
        Column::wide("Groups", "string", "Groups bound"),
        Column::wide("ServiceAccounts", "string", "Service accounts bound"),
    ]
}

fn validate_ref(kind: &str, name: &str, allowed: &[&str], causes: &mut Vec<Cause>) {
    if !allowed.contains(&kind) {
        causes.push(Cause::not_supported("roleRef.kind", kind, allowed));
    }
    if name.is_empty() {
        causes.push(Cause::required("roleRef.name"));
    }
}

impl Kind for RoleBindings {
    type Obj = RoleBinding;
    const SINGULAR: &'static str = "rolebinding";
    const NAMESPACED: bool = true;
    const HAS_SPEC: bool = false;
    fn validate(b: &RoleBinding, causes: &mut Vec<Cause>) {
        validate_ref(
            &b.role_ref.kind,
            &b.role_ref.name,
            &["ClusterRole", "Role"],
            causes,
        );
    }
    fn validate_update(new: &RoleBinding, old: &RoleBinding, causes: &mut Vec<Cause>) {
        if new.role_ref != old.role_ref {
            causes.push(Cause::immutable("roleRef"));
        }
    }
    fn columns() -> Vec<Column> {
        binding_columns()
    }
    fn cells(b: &RoleBinding, age: &str) -> Vec<Value> {
        let [u, g, s] = subjects_cells(b.subjects.as_ref());
        vec![
            json!(format!("{}/{}", b.role_ref.kind, b.role_ref.name)),
            json!(age),
            json!(u),
            json!(g),
            json!(s),
        ]
    }
}

impl Kind for ClusterRoleBindings {
    type Obj = ClusterRoleBinding;
    const SINGULAR: &'static str = "clusterrolebinding";
    const NAMESPACED: bool = false;
    const HAS_SPEC: bool = false;
    fn validate(b: &ClusterRoleBinding, causes: &mut Vec<Cause>) {
        validate_ref(&b.role_ref.kind, &b.role_ref.name, &["ClusterRole"], causes);
    }
    fn validate_update(
        new: &ClusterRoleBinding,
        old: &ClusterRoleBinding,
        causes: &mut Vec<Cause>,
    ) {
        if new.role_ref != old.role_ref {
            causes.push(Cause::immutable("roleRef"));
        }
    }
    fn columns() -> Vec<Column> {
        binding_columns()
    }
    fn cells(b: &ClusterRoleBinding, age: &str) -> Vec<Value> {
        let [u, g, s] = subjects_cells(b.subjects.as_ref());
        vec![
            json!(format!("{}/{}", b.role_ref.kind, b.role_ref.name)),
            json!(age),
            json!(u),
            json!(g),
            json!(s),
        ]
    }
}
