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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sizes_over_the_limits_are_client_errors() {
    if support::missing(support::ETCD) {
        return;
    }
    let s = Server::start().await;
    let c = s.client();
    let cms = "/api/v1/namespaces/default/configmaps";
    let cm = |name: &str, data: Value, binary: Value| {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
               "data": data, "binaryData": binary})
    };
    // data + binaryData together over 1 MiB.
    let half = "x".repeat(600 * 1024);
    let (code, st) = post(
        &c,
        cms,
        &cm(
            "big",
            json!({"a": half}),
            json!({"b": support_b64(600 * 1024)}),
        ),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    assert!(st["message"].as_str().unwrap().contains("1048576"), "{st}");
    let (code, st) = post(
        &c,
        cms,
        &cm("huge", json!({"a": "y".repeat(1_500_000)}), json!({})),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    let (code, st) = post(
        &c,
        cms,
        &cm("fits", json!({"a": "z".repeat(1000 * 1024)}), json!({})),
    )
    .await;
    assert_eq!(code, 201, "{st}");
    // An object the validation lets through but the store refuses (etcd's 1.5 MiB request
    // limit): 413, not a 500.
    let mut p = pod("huge-env");
    p["spec"]["containers"][0]["env"] = json!([{"name": "A", "value": "e".repeat(1_700_000)}]);
    let (code, st) = post(&c, "/api/v1/namespaces/default/pods", &p).await;
    assert_eq!(
        (code, st["reason"].as_str()),
        (413, Some("RequestEntityTooLarge")),
        "{st}"
    );
    let (code, _) = c.get("/api/v1/namespaces/default/pods/huge-env").await;
    assert_eq!(code, 404);
}

/// Base64 of `n` zero bytes.
fn support_b64(n: usize) -> String {
    "A".repeat(n.div_ceil(3) * 4)
}
