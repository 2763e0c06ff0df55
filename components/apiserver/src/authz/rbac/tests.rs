//! Table-driven tests of the evaluator: one policy, many (user, request, expected) rows.

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

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

fn named(mut r: PolicyRule, names: &[&str]) -> PolicyRule {
    r.resource_names = Some(names.iter().map(|x| x.to_string()).collect());
    r
}

fn urls(urls: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        non_resource_urls: Some(urls.iter().map(|x| x.to_string()).collect()),
        verbs: verbs.iter().map(|x| x.to_string()).collect(),
        ..PolicyRule::default()
    }
}

fn meta(ns: Option<&str>, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: ns.map(str::to_string),
        ..ObjectMeta::default()
    }
}

fn subject(kind: &str, name: &str, ns: Option<&str>) -> Subject {
    Subject {
        kind: kind.into(),
        name: name.into(),
        namespace: ns.map(str::to_string),
        api_group: None,
    }
}

fn role_ref(kind: &str, name: &str) -> RoleRef {
    RoleRef {
        api_group: "rbac.authorization.k8s.io".into(),
        kind: kind.into(),
        name: name.into(),
    }
}

fn policy() -> Policy {
    let roles = vec![
        Role {
            metadata: meta(Some("dev"), "reader"),
            rules: Some(vec![rule(
                &[""],
                &["pods", "configmaps"],
                &["get", "list", "watch"],
            )]),
        },
        Role {
            metadata: meta(Some("dev"), "one-config"),
            rules: Some(vec![named(
                rule(&[""], &["configmaps"], &["get", "update"]),
                &["app"],
            )]),
        },
    ];
    let cluster_roles = vec![
        ClusterRole {
            metadata: meta(None, "logs"),
            rules: Some(vec![rule(&[""], &["pods/log"], &["get"])]),
            ..ClusterRole::default()
        },
        ClusterRole {
            metadata: meta(None, "scaler"),
            rules: Some(vec![rule(&["apps"], &["*/scale"], &["update", "patch"])]),
            ..ClusterRole::default()
        },
        ClusterRole {
            metadata: meta(None, "apps-all"),
            rules: Some(vec![rule(&["apps"], &["*"], &["*"])]),
            ..ClusterRole::default()
        },
        ClusterRole {
            metadata: meta(None, "metrics"),
            rules: Some(vec![urls(&["/metrics", "/logs/*"], &["get"])]),
            ..ClusterRole::default()
        },
    ];
    let bindings = vec![
        RoleBinding {
            metadata: meta(Some("dev"), "alice-reads"),
            role_ref: role_ref("Role", "reader"),
            subjects: Some(vec![subject("User", "alice", None)]),
        },
        RoleBinding {
            metadata: meta(Some("dev"), "bob-one-config"),
            role_ref: role_ref("Role", "one-config"),
            subjects: Some(vec![subject("User", "bob", None)]),
        },
        RoleBinding {
            // A ClusterRole granted in one namespace only.
            metadata: meta(Some("dev"), "ops-apps"),
            role_ref: role_ref("ClusterRole", "apps-all"),
            subjects: Some(vec![subject("Group", "ops", None)]),
        },
        RoleBinding {
            // ServiceAccount subject without namespace: the binding's namespace.
            metadata: meta(Some("dev"), "robot-reads"),
            role_ref: role_ref("Role", "reader"),
            subjects: Some(vec![subject("ServiceAccount", "robot", None)]),
        },
        RoleBinding {
            metadata: meta(Some("dev"), "dangling"),
            role_ref: role_ref("Role", "missing"),
            subjects: Some(vec![subject("User", "carol", None)]),
        },
    ];
    let cluster_bindings = vec![
        ClusterRoleBinding {
            metadata: meta(None, "everyone-logs"),
            role_ref: role_ref("ClusterRole", "logs"),
            subjects: Some(vec![subject("Group", "system:authenticated", None)]),
        },
        ClusterRoleBinding {
            metadata: meta(None, "scalers"),
            role_ref: role_ref("ClusterRole", "scaler"),
            subjects: Some(vec![subject("ServiceAccount", "hpa", Some("kube-system"))]),
        },
        ClusterRoleBinding {
            metadata: meta(None, "monitoring"),
            role_ref: role_ref("ClusterRole", "metrics"),
            subjects: Some(vec![subject("Group", "monitoring", None)]),
        },
    ];
    Policy::build(&roles, &cluster_roles, &bindings, &cluster_bindings)
}

fn user(name: &str, groups: &[&str]) -> User {
    let mut u = User::new(name, groups);
    u.groups.push("system:authenticated".into());
    u
}

fn res(verb: &str, group: &str, resource: &str, ns: &str, name: &str) -> Attributes {
    Attributes::resource(verb, group, resource, ns).named(name)
}

#[test]
fn decision_table() {
    let p = policy();
    let alice = user("alice", &[]);
    let bob = user("bob", &[]);
    let carol = user("carol", &[]);
    let ops = user("dave", &["ops"]);
    let robot = user("system:serviceaccount:dev:robot", &[]);
    let other_robot = user("system:serviceaccount:prod:robot", &[]);
    let hpa = user("system:serviceaccount:kube-system:hpa", &[]);
    let mon = user("erin", &["monitoring"]);
    let rows: Vec<(&User, Attributes, bool)> = vec![
        // Namespaced read-only role.
        (&alice, res("list", "", "pods", "dev", ""), true),
        (&alice, res("get", "", "pods", "dev", "web"), true),
        (&alice, res("watch", "", "configmaps", "dev", ""), true),
        (&alice, res("create", "", "pods", "dev", ""), false),
        (&alice, res("delete", "", "pods", "dev", "web"), false),
        (&alice, res("list", "", "pods", "prod", ""), false),
        (&alice, res("list", "", "pods", "", ""), false), // all namespaces
        (&alice, res("list", "", "secrets", "dev", ""), false),
        (&alice, res("get", "", "pods/status", "dev", "web"), false), // subresource not granted
        (&alice, res("list", "apps", "pods", "dev", ""), false),      // wrong group
        // Cluster-wide grant to system:authenticated, subresource by exact name.
        (&alice, res("get", "", "pods/log", "prod", "web"), true),
        (&alice, res("get", "", "pods/log", "", "web"), true),
        // resourceNames.
        (&bob, res("get", "", "configmaps", "dev", "app"), true),
        (&bob, res("update", "", "configmaps", "dev", "app"), true),
        (&bob, res("get", "", "configmaps", "dev", "other"), false),
        (&bob, res("list", "", "configmaps", "dev", ""), false), // no name: resourceNames never match
        // ClusterRole through a RoleBinding: that namespace only; `*` resources and verbs.
        (
            &ops,
            res("delete", "apps", "deployments", "dev", "web"),
            true,
        ),
        (
            &ops,
            res("update", "apps", "deployments/scale", "dev", "web"),
            true,
        ),
        (
            &ops,
            res("get", "apps", "deployments", "prod", "web"),
            false,
        ),
        (&ops, res("get", "", "pods", "dev", "web"), false),
        // ServiceAccount subjects.
        (&robot, res("list", "", "pods", "dev", ""), true),
        (&other_robot, res("list", "", "pods", "dev", ""), false),
        (
            &hpa,
            res("patch", "apps", "deployments/scale", "prod", "x"),
            true,
        ),
        (
            &hpa,
            res("patch", "apps", "statefulsets/scale", "", "x"),
            true,
        ),
        (
            &hpa,
            res("patch", "apps", "deployments", "prod", "x"),
            false,
        ),
        // Binding to a missing role grants nothing.
        (&carol, res("get", "", "pods", "dev", "web"), false),
        // Non-resource URLs: exact and prefix*; resource rules never match paths.
        (&mon, Attributes::non_resource("get", "/metrics"), true),
        (
            &mon,
            Attributes::non_resource("get", "/logs/kubelet/x"),
            true,
        ),
        (&mon, Attributes::non_resource("get", "/logsx"), false),
        (&mon, Attributes::non_resource("post", "/metrics"), false),
        (&alice, Attributes::non_resource("get", "/metrics"), false),
    ];
    for (u, a, want) in rows {
        let d = authorize(&p, u, &a);
        assert_eq!(d.allowed(), want, "{} {a:?} -> {d:?}", u.name);
    }
}

#[test]
fn reasons() {
    let p = policy();
    let d = authorize(&p, &user("alice", &[]), &res("get", "", "pods", "dev", "x"));
    assert_eq!(
        d.reason(),
        r#"RBAC: allowed by RoleBinding "dev/alice-reads" of Role "reader" to User "alice""#
    );
    let d = authorize(&p, &user("carol", &[]), &res("get", "", "pods", "dev", "x"));
    assert_eq!(
        d,
        Decision::NoOpinion(r#"RBAC: [role.rbac.authorization.k8s.io "missing" not found]"#.into())
    );
    let d = authorize(
        &p,
        &user("nobody", &[]),
        &res("get", "", "pods", "dev", "x"),
    );
    assert_eq!(d, Decision::NoOpinion(String::new()));
}

#[test]
fn rules_in_a_namespace() {
    let p = policy();
    let alice = user("alice", &[]);
    let dev = rules_for(&p, &alice, "dev");
    // The cluster-wide pods/log rule, then the namespaced reader rule.
    assert_eq!(dev.rules.len(), 2);
    assert_eq!(
        dev.rules[0].resources.as_deref(),
        Some(&["pods/log".to_string()][..])
    );
    let prod = rules_for(&p, &alice, "prod");
    assert_eq!(prod.rules.len(), 1);
    let carol = rules_for(&p, &user("carol", &[]), "dev");
    assert_eq!(carol.errors.len(), 1);
}

#[test]
fn matching_primitives() {
    let r = rule(&["*"], &["*/scale", "pods"], &["get"]);
    assert!(resource_matches(&r, "deployments/scale", "scale"));
    assert!(!resource_matches(&r, "deployments", ""));
    assert!(!resource_matches(&r, "pods/log", "log"));
    assert!(group_matches(&r, "anything"));
    let none = PolicyRule::default();
    assert!(!group_matches(&none, ""));
    assert!(!resource_matches(&none, "pods", ""));
    assert!(url_matches(&urls(&["*"], &["get"]), "/anything"));
}
