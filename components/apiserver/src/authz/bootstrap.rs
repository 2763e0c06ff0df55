//! The bootstrap RBAC policy, created at start when missing (existing objects are left as
//! they are, so an administrator's edits survive restarts; kube additionally reconciles
//! roles annotated `autoupdate`, which this server does not).
//!
//! | ClusterRole | grants | bound (ClusterRoleBinding of the same name) to |
//! |---|---|---|
//! | `cluster-admin` | everything | group `system:masters` |
//! | `system:discovery` | GET `/api*`, `/apis*`, `/openapi*`, `/version`, health | group `system:authenticated` |
//! | `system:basic-user` | create self-subject access/rules reviews, selfsubjectreviews | group `system:authenticated` |
//! | `system:public-info-viewer` | GET `/healthz`, `/livez`, `/readyz`, `/version` | groups `system:authenticated`, `system:unauthenticated` |
//! | `admin`, `edit`, `view` | kube's user-facing roles, for RoleBindings (flat rules, not aggregated) | — |
//!
//! kubectl needs discovery, OpenAPI and `/version` to start: `system:discovery` covers them
//! for every authenticated user.

use serde_json::{Value, json};

const LABELS: &str = "kubernetes.io/bootstrapping";
const AUTOUPDATE: &str = "rbac.authorization.kubernetes.io/autoupdate";

fn metadata(name: &str) -> Value {
    json!({"name": name, "labels": {LABELS: "rbac-defaults"}, "annotations": {AUTOUPDATE: "true"}})
}

fn cluster_role(name: &str, rules: Value) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
           "metadata": metadata(name), "rules": rules})
}

fn binding(name: &str, groups: &[&str]) -> Value {
    let subjects: Vec<Value> = groups
        .iter()
        .map(|g| json!({"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": g}))
        .collect();
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
           "metadata": metadata(name),
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
           "subjects": subjects})
}

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> Value {
    json!({"apiGroups": groups, "resources": resources, "verbs": verbs})
}

fn view_rules() -> Vec<Value> {
    vec![
        rule(
            &[""],
            &[
                "configmaps",
                "endpoints",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "pods",
                "pods/log",
                "pods/status",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "replicationcontrollers/status",
                "serviceaccounts",
                "services",
                "services/status",
                "bindings",
                "events",
                "limitranges",
                "resourcequotas",
                "resourcequotas/status",
                "namespaces",
                "namespaces/status",
            ],
            READ,
        ),
        rule(
            &["apps"],
            &[
                "controllerrevisions",
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "statefulsets",
                "statefulsets/scale",
                "statefulsets/status",
            ],
            READ,
        ),
        rule(
            &["autoscaling"],
            &[
                "horizontalpodautoscalers",
                "horizontalpodautoscalers/status",
            ],
            READ,
        ),
        rule(
            &["batch"],
            &["cronjobs", "cronjobs/status", "jobs", "jobs/status"],
            READ,
        ),
        rule(&["discovery.k8s.io"], &["endpointslices"], READ),
        rule(
            &["policy"],
            &["poddisruptionbudgets", "poddisruptionbudgets/status"],
            READ,
        ),
        rule(
            &["networking.k8s.io"],
            &["ingresses", "ingresses/status", "networkpolicies"],
            READ,
        ),
    ]
}

fn edit_rules() -> Vec<Value> {
    let mut rules = view_rules();
    rules.extend([
        rule(
            &[""],
            &[
                "pods",
                "pods/attach",
                "pods/exec",
                "pods/portforward",
                "pods/proxy",
                "configmaps",
                "endpoints",
                "persistentvolumeclaims",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "secrets",
                "serviceaccounts",
                "services",
                "services/proxy",
            ],
            WRITE,
        ),
        rule(&[""], &["secrets"], READ),
        rule(
            &[""],
            &["pods/eviction", "serviceaccounts/token"],
            &["create"],
        ),
        rule(&[""], &["serviceaccounts"], &["impersonate"]),
        rule(
            &["apps"],
            &[
                "daemonsets",
                "deployments",
                "deployments/rollback",
                "deployments/scale",
                "replicasets",
                "replicasets/scale",
                "statefulsets",
                "statefulsets/scale",
            ],
            WRITE,
        ),
        rule(&["autoscaling"], &["horizontalpodautoscalers"], WRITE),
        rule(&["batch"], &["cronjobs", "jobs"], WRITE),
        rule(&["discovery.k8s.io"], &["endpointslices"], WRITE),
        rule(&["coordination.k8s.io"], &["leases"], READ),
        rule(&["policy"], &["poddisruptionbudgets"], WRITE),
        rule(
            &["networking.k8s.io"],
            &["ingresses", "networkpolicies"],
            WRITE,
        ),
    ]);
    rules
}

fn admin_rules() -> Vec<Value> {
    let mut rules = edit_rules();
    let all: Vec<&str> = READ.iter().chain(WRITE).copied().collect();
    rules.extend([
        rule(
            &["rbac.authorization.k8s.io"],
            &["roles", "rolebindings"],
            &all,
        ),
        rule(
            &["authorization.k8s.io"],
            &["localsubjectaccessreviews"],
            &["create"],
        ),
    ]);
    rules
}

/// The bootstrap objects as `(plural, object)`, in creation order (roles before bindings).
pub fn objects() -> Vec<(&'static str, Value)> {
    let discovery_urls = [
        "/api",
        "/api/*",
        "/apis",
        "/apis/*",
        "/healthz",
        "/livez",
        "/openapi",
        "/openapi/*",
        "/readyz",
        "/version",
        "/version/",
    ];
    let public_urls = ["/healthz", "/livez", "/readyz", "/version", "/version/"];
    vec![
        (
            "clusterroles",
            cluster_role(
                "cluster-admin",
                json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                       {"nonResourceURLs": ["*"], "verbs": ["*"]}]),
            ),
        ),
        (
            "clusterroles",
            cluster_role(
                "system:discovery",
                json!([{"nonResourceURLs": discovery_urls, "verbs": ["get"]}]),
            ),
        ),
        (
            "clusterroles",
            cluster_role(
                "system:basic-user",
                json!([
                    rule(
                        &["authorization.k8s.io"],
                        &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                        &["create"]
                    ),
                    rule(
                        &["authentication.k8s.io"],
                        &["selfsubjectreviews"],
                        &["create"]
                    ),
                ]),
            ),
        ),
        (
            "clusterroles",
            cluster_role(
                "system:public-info-viewer",
                json!([{"nonResourceURLs": public_urls, "verbs": ["get"]}]),
            ),
        ),
        ("clusterroles", cluster_role("admin", json!(admin_rules()))),
        ("clusterroles", cluster_role("edit", json!(edit_rules()))),
        ("clusterroles", cluster_role("view", json!(view_rules()))),
        (
            "clusterrolebindings",
            binding("cluster-admin", &["system:masters"]),
        ),
        (
            "clusterrolebindings",
            binding("system:discovery", &["system:authenticated"]),
        ),
        (
            "clusterrolebindings",
            binding("system:basic-user", &["system:authenticated"]),
        ),
        (
            "clusterrolebindings",
            binding(
                "system:public-info-viewer",
                &["system:authenticated", "system:unauthenticated"],
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};

    use super::*;
    use crate::authn::User;
    use crate::authz::{Attributes, Policy, rbac};

    fn policy() -> Policy {
        let mut roles = Vec::new();
        let mut bindings = Vec::new();
        for (plural, v) in objects() {
            match plural {
                "clusterroles" => roles.push(serde_json::from_value::<ClusterRole>(v).unwrap()),
                _ => bindings.push(serde_json::from_value::<ClusterRoleBinding>(v).unwrap()),
            }
        }
        Policy::build(&[], &roles, &[], &bindings)
    }

    #[test]
    fn what_kubectl_needs_to_start_and_nothing_more() {
        let p = policy();
        let user = User::new("alice", &["system:authenticated"]);
        for path in [
            "/api",
            "/apis",
            "/apis/apps/v1",
            "/openapi/v2",
            "/openapi/v3/api/v1",
            "/version",
        ] {
            let d = rbac::authorize(&p, &user, &Attributes::non_resource("get", path));
            assert!(d.allowed(), "{path}");
        }
        let ssar = Attributes::resource(
            "create",
            "authorization.k8s.io",
            "selfsubjectaccessreviews",
            "",
        );
        assert!(rbac::authorize(&p, &user, &ssar).allowed());
        let pods = Attributes::resource("list", "", "pods", "default");
        assert!(!rbac::authorize(&p, &user, &pods).allowed());
        assert!(
            !rbac::authorize(&p, &user, &Attributes::non_resource("get", "/metrics")).allowed()
        );
        // Anonymous health checks; no discovery for anonymous.
        let anon = User::anonymous();
        assert!(rbac::authorize(&p, &anon, &Attributes::non_resource("get", "/readyz")).allowed());
        assert!(!rbac::authorize(&p, &anon, &Attributes::non_resource("get", "/api")).allowed());
        // cluster-admin through system:masters.
        let admin = User::new("root", &["system:masters"]);
        assert!(rbac::authorize(&p, &admin, &pods).allowed());
        assert!(
            rbac::authorize(&p, &admin, &Attributes::non_resource("get", "/metrics")).allowed()
        );
    }

    #[test]
    fn user_facing_roles_nest() {
        let p = policy();
        let rules = |name: &str| p.cluster_roles[name].clone();
        let (view, edit, admin) = (rules("view"), rules("edit"), rules("admin"));
        assert!(view.len() < edit.len() && edit.len() < admin.len());
        let can = |rules: &[k8s_openapi::api::rbac::v1::PolicyRule], a: &Attributes| {
            rules.iter().any(|r| rbac::rule_allows(r, a))
        };
        let secrets = Attributes::resource("get", "", "secrets", "dev");
        assert!(!can(&view, &secrets) && can(&edit, &secrets));
        let rb = Attributes::resource("create", "rbac.authorization.k8s.io", "rolebindings", "dev");
        assert!(!can(&edit, &rb) && can(&admin, &rb));
    }
}
