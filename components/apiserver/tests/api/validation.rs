//! Validation of RBAC binding subjects and roleRef, CronJob schedules and time zones, and
//! finalizer names: 422 naming each offending field, as kube-apiserver answers.

use serde_json::{Value, json};

use crate::support::{self, Client, Server, namespace};

/// POSTs `body` and returns the code and the fields of the causes.
async fn create(c: &Client, path: &str, body: &Value) -> (u16, Vec<String>, Value) {
    let (code, st) = c.json("POST", path, body).await;
    let fields = st["details"]["causes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| c["field"].as_str().unwrap_or_default().to_string())
        .collect();
    (code, fields, st)
}

fn binding(kind: &str, subjects: Value, role_kind: &str) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind,
        "metadata": {"name": "b"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": "view"},
        "subjects": subjects})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binding_subjects_and_role_refs() {
    if support::missing(support::ETCD) {
        return;
    }
    let s = Server::start().await;
    let c = s.client();
    namespace(&c, "v").await;
    let rb = "/apis/rbac.authorization.k8s.io/v1/namespaces/v/rolebindings";
    let crb = "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings";

    let bad = json!([
        {"kind": "Robot", "name": "r2"},
        {"kind": "User", "apiGroup": "example.com", "name": "u"},
        {"kind": "ServiceAccount", "apiGroup": "rbac.authorization.k8s.io", "name": "Bad_Name"},
        {"kind": "Group", "name": ""},
    ]);
    let (code, fields, st) = create(&c, rb, &binding("RoleBinding", bad, "Role")).await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(
        fields,
        [
            "subjects[0].kind",
            "subjects[1].apiGroup",
            "subjects[2].name",
            "subjects[2].apiGroup",
            "subjects[3].name"
        ],
        "{st}"
    );
    // A ClusterRoleBinding's ServiceAccount needs a namespace; its roleRef a ClusterRole.
    let sa = json!([{"kind": "ServiceAccount", "name": "robot"}]);
    let (code, fields, st) = create(&c, crb, &binding("ClusterRoleBinding", sa, "Role")).await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(fields, ["roleRef.kind", "subjects[0].namespace"], "{st}");
    let mut other_group = binding("RoleBinding", json!([]), "Role");
    other_group["roleRef"]["apiGroup"] = json!("example.com");
    let (code, fields, st) = create(&c, rb, &other_group).await;
    assert_eq!(
        (code, fields),
        (422, vec!["roleRef.apiGroup".to_string()]),
        "{st}"
    );

    // Valid: a User without apiGroup is defaulted to RBAC's group; a namespaced
    // ServiceAccount subject of a RoleBinding needs no namespace.
    let good =
        json!([{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "robot"}]);
    let (code, _, made) = create(&c, rb, &binding("RoleBinding", good, "ClusterRole")).await;
    assert_eq!(code, 201, "{made}");
    assert_eq!(
        made["subjects"][0]["apiGroup"], "rbac.authorization.k8s.io",
        "{made}"
    );
    // roleRef cannot change.
    let mut changed = made.clone();
    changed["roleRef"]["name"] = json!("edit");
    let (code, st) = c.json("PUT", &format!("{rb}/b"), &changed).await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(st["details"]["causes"][0]["field"], "roleRef", "{st}");
}

fn cronjob(schedule: &str, tz: Option<&str>) -> Value {
    let mut cj = json!({"apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "cj"},
        "spec": {"schedule": schedule, "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "OnFailure",
            "containers": [{"name": "c", "image": "busybox"}]}}}}}});
    if let Some(tz) = tz {
        cj["spec"]["timeZone"] = json!(tz);
    }
    cj
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_schedules_time_zones_and_finalizers() {
    if support::missing(support::ETCD) {
        return;
    }
    let s = Server::start().await;
    let c = s.client();
    namespace(&c, "v").await;
    let cj = "/apis/batch/v1/namespaces/v/cronjobs";
    for (schedule, tz, field) in [
        ("61 * * * *", None, "spec.schedule"),
        ("* * * * * *", None, "spec.schedule"),
        ("@fortnightly", None, "spec.schedule"),
        ("0 0 31 FOO *", None, "spec.schedule"),
        ("@daily", Some("Local"), "spec.timeZone"),
        ("@daily", Some("No Such/Zone"), "spec.timeZone"),
    ] {
        let (code, fields, st) = create(&c, cj, &cronjob(schedule, tz)).await;
        assert_eq!(
            (code, fields),
            (422, vec![field.to_string()]),
            "{schedule} {tz:?}: {st}"
        );
    }
    let (code, _, st) = create(
        &c,
        cj,
        &cronjob("*/15 9-17 * * mon-fri", Some("Europe/Berlin")),
    )
    .await;
    assert_eq!(code, 201, "{st}");

    let cm = "/api/v1/namespaces/v/configmaps";
    let with = |name: &str, fins: Value| json!({"metadata": {"name": name, "finalizers": fins}});
    let (code, fields, st) = create(
        &c,
        cm,
        &with(
            "bad",
            json!(["example.com/ok", "unqualified", "a/b/c", "kubernetes"]),
        ),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(
        fields,
        ["metadata.finalizers[1]", "metadata.finalizers[2]"],
        "{st}"
    );
    let (code, _, st) = create(
        &c,
        cm,
        &with(
            "good",
            json!(["example.com/ok", "orphan", "foregroundDeletion"]),
        ),
    )
    .await;
    assert_eq!(code, 201, "{st}");
}
