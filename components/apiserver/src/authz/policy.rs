//! A [`Policy`]: every Role, ClusterRole, RoleBinding and ClusterRoleBinding at one moment,
//! indexed the way the evaluator walks them (cluster bindings; bindings per namespace; roles
//! by name). Immutable once built: the cache builds a new one on every change and swaps it
//! in, so a request evaluates against one consistent snapshot.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, Subject,
};

/// What a binding refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleRef {
    /// A ClusterRole (from a ClusterRoleBinding, or a RoleBinding granting it in one namespace).
    ClusterRole(String),
    /// A Role in the binding's namespace.
    Role(String),
}

/// One binding.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// Binding name.
    pub name: String,
    /// Namespace (None: a ClusterRoleBinding).
    pub namespace: Option<String>,
    /// The role granted.
    pub role: RoleRef,
    /// To whom.
    pub subjects: Vec<Subject>,
}

impl Binding {
    /// `RoleBinding "x"` / `ClusterRoleBinding "x"`, for reasons.
    pub fn describe(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("RoleBinding \"{}/{}\"", ns, self.name),
            None => format!("ClusterRoleBinding \"{}\"", self.name),
        }
    }
}

/// Every RBAC object, indexed.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// ClusterRoles by name.
    pub cluster_roles: HashMap<String, Arc<Vec<PolicyRule>>>,
    /// Roles by (namespace, name).
    pub roles: HashMap<(String, String), Arc<Vec<PolicyRule>>>,
    /// ClusterRoleBindings.
    pub cluster_bindings: Vec<Binding>,
    /// RoleBindings by namespace.
    pub bindings: HashMap<String, Vec<Binding>>,
}

fn ns_name(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> (String, String) {
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

impl Policy {
    /// Indexes a set of objects.
    pub fn build<'a>(
        roles: impl IntoIterator<Item = &'a Role>,
        cluster_roles: impl IntoIterator<Item = &'a ClusterRole>,
        bindings: impl IntoIterator<Item = &'a RoleBinding>,
        cluster_bindings: impl IntoIterator<Item = &'a ClusterRoleBinding>,
    ) -> Policy {
        let mut p = Policy::default();
        for r in roles {
            p.roles.insert(
                ns_name(&r.metadata),
                Arc::new(r.rules.clone().unwrap_or_default()),
            );
        }
        for r in cluster_roles {
            p.cluster_roles.insert(
                r.metadata.name.clone().unwrap_or_default(),
                Arc::new(r.rules.clone().unwrap_or_default()),
            );
        }
        for b in bindings {
            let (ns, name) = ns_name(&b.metadata);
            let role = match b.role_ref.kind.as_str() {
                "ClusterRole" => RoleRef::ClusterRole(b.role_ref.name.clone()),
                _ => RoleRef::Role(b.role_ref.name.clone()),
            };
            p.bindings.entry(ns.clone()).or_default().push(Binding {
                name,
                namespace: Some(ns),
                role,
                subjects: b.subjects.clone().unwrap_or_default(),
            });
        }
        for b in cluster_bindings {
            p.cluster_bindings.push(Binding {
                name: b.metadata.name.clone().unwrap_or_default(),
                namespace: None,
                role: RoleRef::ClusterRole(b.role_ref.name.clone()),
                subjects: b.subjects.clone().unwrap_or_default(),
            });
        }
        // Deterministic walk order (reasons name the first match).
        p.cluster_bindings.sort_by(|a, b| a.name.cmp(&b.name));
        for v in p.bindings.values_mut() {
            v.sort_by(|a, b| a.name.cmp(&b.name));
        }
        p
    }

    /// The rules a binding grants, or why it grants nothing (the role does not exist),
    /// worded as Kubernetes words a NotFound.
    pub fn rules_of(&self, b: &Binding) -> Result<&Arc<Vec<PolicyRule>>, String> {
        match &b.role {
            RoleRef::ClusterRole(n) => self
                .cluster_roles
                .get(n)
                .ok_or_else(|| format!("clusterrole.rbac.authorization.k8s.io {n:?} not found")),
            RoleRef::Role(n) => {
                let ns = b.namespace.clone().unwrap_or_default();
                self.roles
                    .get(&(ns, n.clone()))
                    .ok_or_else(|| format!("role.rbac.authorization.k8s.io {n:?} not found"))
            }
        }
    }
}
