//! Regressions for the defects an acceptance audit found (issue 4) that show at the API:
//! quantity grammar, ConfigMap size and store size limits, immutability on update, the 404
//! body, and the pod streaming subresources.

use serde_json::{Value, json};

use crate::support::{self, Client, Server, pod};

/// The first cause's field of a 422.
#[track_caller]
fn invalid_field(code: u16, st: &Value) -> String {
    assert_eq!(code, 422, "{st}");
    st["details"]["causes"][0]["field"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn post(c: &Client, path: &str, body: &Value) -> (u16, Value) {
    c.json("POST", path, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quantities_follow_the_kubernetes_grammar() {
    if support::missing(support::ETCD) {
        return;
    }
    let s = Server::start().await;
    let c = s.client();
    let pods = "/api/v1/namespaces/default/pods";
    let mut p = pod("bad-cpu");
    p["spec"]["containers"][0]["resources"] = json!({"requests": {"cpu": "abc"}});
    let (code, st) = post(&c, pods, &p).await;
    assert_eq!(
        invalid_field(code, &st),
        "spec.containers[0].resources.requests.cpu"
    );
    let mut p = pod("negative");
    p["spec"]["containers"][0]["resources"] = json!({"limits": {"memory": "-1Gi"}});
    let (code, st) = post(&c, pods, &p).await;
    assert_eq!(
        invalid_field(code, &st),
        "spec.containers[0].resources.limits.memory"
    );
    let mut p = pod("good");
    p["spec"]["containers"][0]["resources"] = json!({"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "1.5", "memory": "1e9"}});
    let (code, st) = post(&c, pods, &p).await;
    assert_eq!(code, 201, "{st}");

    // In a pod template.
    let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"app": "d"}}, "template": {
            "metadata": {"labels": {"app": "d"}},
            "spec": {"containers": [{"name": "c", "image": "x",
                     "resources": {"limits": {"memory": "12XYZ"}}}]}}}});
    let (code, st) = post(&c, "/apis/apps/v1/namespaces/default/deployments", &d).await;
    assert_eq!(
        invalid_field(code, &st),
        "spec.template.spec.containers[0].resources.limits.memory"
    );
    assert!(st["message"].as_str().unwrap().contains("12XYZ"), "{st}");
}
