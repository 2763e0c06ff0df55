//! Regressions for the defects an acceptance audit found with the real kubectl (issue 4):
//! server-side apply removing list items, NodePort allocation within one Service, system
//! namespaces, impersonation and the client-side to server-side apply migration.

use crate::support::{Backend, Server};
use crate::util::Kubectl;

/// A Deployment whose one pod template holds `containers` (YAML, indented for the list).
fn deployment(containers: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: lists
  namespace: default
spec:
  replicas: 1
  selector:
    matchLabels: {{app: lists}}
  template:
    metadata:
      labels: {{app: lists}}
    spec:
      containers:
{containers}"#
    )
}

per_backend!(server_side_apply_removes_list_items);
async fn server_side_apply_removes_list_items(backend: Backend) {
    let s = Server::start_on(backend).await;
    let k = Kubectl::new(&s);
    let a = k.file(
        "a.yaml",
        &deployment(
            r#"      - name: c
        image: c:1
        env: [{name: A, value: "1"}, {name: B, value: "2"}]
        ports: [{containerPort: 80}, {containerPort: 443}]
      - name: d
        image: d:1
"#,
        ),
    );
    k.run(&["apply", "--server-side", "-f", &a])
        .ok(&["deployment.apps/lists serverside-applied"]);
    let b = k.file(
        "b.yaml",
        &deployment(
            r#"      - name: c
        image: c:1
        env: [{name: A, value: "1"}]
        ports: [{containerPort: 80}]
"#,
        ),
    );
    k.run(&["apply", "--server-side", "-f", &b])
        .ok(&["deployment.apps/lists serverside-applied"]);
    k.run(&[
        "get",
        "deploy",
        "lists",
        "-o",
        "jsonpath={.spec.template.spec.containers[*].name}|{.spec.template.spec.containers[0].env[*].name}|{.spec.template.spec.containers[0].ports[*].containerPort}",
    ])
    .ok(&["c|A|80"]);
}

per_backend!(system_namespaces_cannot_be_deleted);
async fn system_namespaces_cannot_be_deleted(backend: Backend) {
    let s = Server::start_on(backend).await;
    let k = Kubectl::new(&s);
    for ns in ["default", "kube-public", "kube-system"] {
        k.run(&["delete", "namespace", ns, "--wait=false"]).fails(&[
            "Forbidden",
            &format!("namespaces \"{ns}\" is forbidden: this namespace may not be deleted"),
        ]);
    }
    k.run(&[
        "get",
        "namespace",
        "default",
        "-o",
        "jsonpath={.status.phase}",
    ])
    .ok(&["Active"]);
    k.run(&["create", "namespace", "scratch"])
        .ok(&["namespace/scratch created"]);
    k.run(&["delete", "namespace", "scratch", "--wait=false"])
        .ok(&["namespace \"scratch\" deleted"]);
}

per_backend!(impersonation_is_refused);
async fn impersonation_is_refused(backend: Backend) {
    let s = Server::start_on(backend).await;
    let k = Kubectl::new(&s);
    // Impersonation is refused, not answered as the admin.
    k.run(&["auth", "can-i", "create", "pods"]).ok(&["yes"]);
    k.run(&["auth", "can-i", "create", "pods", "--as", "alice"])
        .fails(&["impersonation", "not supported"]);
    k.run(&["get", "pods", "--as", "alice", "--as-group", "dev"])
        .fails(&["Forbidden", "impersonation"]);
}

per_backend!(client_side_apply_migrates_to_server_side);
async fn client_side_apply_migrates_to_server_side(backend: Backend) {
    let s = Server::start_on(backend).await;
    let k = Kubectl::new(&s);
    let one = |image: &str| {
        deployment(&format!(
            "      - name: c\n        image: {image}\n        ports: [{{containerPort: 80}}]\n"
        ))
    };
    let v1 = k.file("m1.yaml", &one("web:1"));
    k.run(&["apply", "-f", &v1])
        .ok(&["deployment.apps/lists created"]);
    k.run(&["apply", "--server-side", "-f", &v1])
        .ok(&["deployment.apps/lists serverside-applied"]);
    // kubectl moved the client-side manager's fields to its server-side one.
    k.run(&[
        "get",
        "deploy",
        "lists",
        "--show-managed-fields",
        "-o",
        "jsonpath={.metadata.managedFields[*].manager}",
    ])
    .ok(&["kubectl"]);
    let v2 = k.file("m2.yaml", &one("web:2"));
    k.run(&["apply", "--server-side", "-f", &v2])
        .ok(&["deployment.apps/lists serverside-applied"]);
    k.run(&[
        "get",
        "deploy",
        "lists",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ])
    .ok(&["web:2"]);
}

per_backend!(openapi_v2_is_served_as_protobuf);
async fn openapi_v2_is_served_as_protobuf(backend: Backend) {
    let s = Server::start_on(backend).await;
    let k = Kubectl::new(&s);
    // A version the server does not serve: kubectl falls back from OpenAPI v3 to v2 (as
    // protobuf) to validate, then reports the missing mapping.
    let v2 = k.file(
        "apps-v2.yaml",
        "apiVersion: apps/v2\nkind: Deployment\nmetadata: {name: x, namespace: default}\nspec: {}\n",
    );
    k.run(&["apply", "-f", &v2])
        .fails(&["no matches for kind \"Deployment\" in version \"apps/v2\""]);
    // explain reads the schemas from the protobuf document.
    k.run(&[
        "explain",
        "deployment.spec.replicas",
        "--output=plaintext-openapiv2",
    ])
    .ok(&["replicas", "<integer>"]);
}
