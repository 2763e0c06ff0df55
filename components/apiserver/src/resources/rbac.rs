//! rbac.authorization.k8s.io/v1 Roles, ClusterRoles, RoleBindings, ClusterRoleBindings.
//! Stored and served; enforcement arrives with the security increment.

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, Role, RoleBinding, RoleRef, Subject,
};
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

/// A binding's cells: Role, Age, and its Users, Groups and ServiceAccounts (`-o wide`).
fn binding_cells(role_ref: &RoleRef, subjects: Option<&Vec<Subject>>, age: &str) -> Vec<Value> {
    let [u, g, s] = subjects_cells(subjects);
    vec![
        json!(format!("{}/{}", role_ref.kind, role_ref.name)),
        json!(age),
        json!(u),
        json!(g),
        json!(s),
    ]
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

/// The API group of RBAC: the only one a roleRef may name, and User and Group subjects'.
const GROUP: &str = "rbac.authorization.k8s.io";

fn validate_ref(r: &RoleRef, allowed: &[&str], causes: &mut Vec<Cause>) {
    if r.api_group != GROUP {
        causes.push(Cause::not_supported(
            "roleRef.apiGroup",
            &r.api_group,
            &[GROUP],
        ));
    }
    if !allowed.contains(&r.kind.as_str()) {
        causes.push(Cause::not_supported("roleRef.kind", &r.kind, allowed));
    }
    if r.name.is_empty() {
        causes.push(Cause::required("roleRef.name"));
    }
}

/// Kubernetes' `SetDefaults_Subject`: User and Group subjects without an apiGroup are RBAC's.
fn default_subjects(subjects: Option<&mut Vec<Subject>>) {
    for s in subjects.into_iter().flatten() {
        if s.api_group.as_deref().unwrap_or_default().is_empty()
            && matches!(s.kind.as_str(), "User" | "Group")
        {
            s.api_group = Some(GROUP.into());
        }
    }
}

/// Kubernetes' `ValidateRoleBindingSubject`: a known kind with its apiGroup, a name, and for
/// a ServiceAccount a valid name and — in a ClusterRoleBinding, which has no namespace of
/// its own — a namespace.
fn validate_subjects(subjects: Option<&Vec<Subject>>, namespaced: bool, causes: &mut Vec<Cause>) {
    for (i, s) in subjects.into_iter().flatten().enumerate() {
        let field = |f: &str| format!("subjects[{i}].{f}");
        let group = s.api_group.as_deref().unwrap_or_default();
        if s.name.is_empty() {
            causes.push(Cause::required(field("name")));
        }
        match s.kind.as_str() {
            "ServiceAccount" => {
                if !s.name.is_empty() {
                    for e in kubelab_api::validation::dns1123_subdomain(&s.name) {
                        causes.push(Cause::invalid(field("name"), &s.name, &e));
                    }
                }
                if !group.is_empty() {
                    causes.push(Cause::not_supported(field("apiGroup"), group, &[""]));
                }
                if !namespaced && s.namespace.as_deref().unwrap_or_default().is_empty() {
                    causes.push(Cause::required(field("namespace")));
                }
            }
            "User" | "Group" => {
                if group != GROUP {
                    causes.push(Cause::not_supported(field("apiGroup"), group, &[GROUP]));
                }
            }
            other => causes.push(Cause::not_supported(
                field("kind"),
                other,
                &["ServiceAccount", "User", "Group"],
            )),
        }
    }
}

impl Kind for RoleBindings {
    type Obj = RoleBinding;
    const SINGULAR: &'static str = "rolebinding";
    const NAMESPACED: bool = true;
    const HAS_SPEC: bool = false;
    fn defaults(b: &mut RoleBinding) {
        default_subjects(b.subjects.as_mut());
    }
    fn validate(b: &RoleBinding, causes: &mut Vec<Cause>) {
        validate_ref(&b.role_ref, &["ClusterRole", "Role"], causes);
        validate_subjects(b.subjects.as_ref(), true, causes);
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
        binding_cells(&b.role_ref, b.subjects.as_ref(), age)
    }
}

impl Kind for ClusterRoleBindings {
    type Obj = ClusterRoleBinding;
    const SINGULAR: &'static str = "clusterrolebinding";
    const NAMESPACED: bool = false;
    const HAS_SPEC: bool = false;
    fn defaults(b: &mut ClusterRoleBinding) {
        default_subjects(b.subjects.as_mut());
    }
    fn validate(b: &ClusterRoleBinding, causes: &mut Vec<Cause>) {
        validate_ref(&b.role_ref, &["ClusterRole"], causes);
        validate_subjects(b.subjects.as_ref(), false, causes);
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
        binding_cells(&b.role_ref, b.subjects.as_ref(), age)
    }
}
