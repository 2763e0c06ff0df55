//! Deletion: finalizers, graceful deletion, propagation policy, deletecollection.

use serde_json::json;

use crate::support::{self, Server, namespace, pod};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalizers_grace_and_propagation() {
    if support::missing(support::ETCD) {
        return;
    }
    let s = Server::start().await;
    let c = s.client();
    namespace(&c, "d").await;
    // A finalizer holds the object after delete, with deletionTimestamp set.
    let mut cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "held", "finalizers": ["example.com/hold"]}, "data": {"a": "b"}});
    let (code, _) = c.json("POST", "/api/v1/namespaces/d/configmaps", &cm).await;
    assert_eq!(code, 201);
    let (code, marked) = c
        .json("DELETE", "/api/v1/namespaces/d/configmaps/held", &json!({}))
        .await;
    assert_eq!(code, 200);
    assert!(
        marked["metadata"]["deletionTimestamp"].is_string(),
        "{marked}"
    );
    let (code, still) = c.get("/api/v1/namespaces/d/configmaps/held").await;
    assert_eq!(code, 200);
    assert!(still["metadata"]["deletionTimestamp"].is_string());
    // Removing the last finalizer completes the deletion.
    cm = still.clone();
    cm["metadata"]["finalizers"] = json!([]);
    let (code, _) = c
        .json("PUT", "/api/v1/namespaces/d/configmaps/held", &cm)
        .await;
    assert_eq!(code, 200);
    let (code, _) = c.get("/api/v1/namespaces/d/configmaps/held").await;
    assert_eq!(code, 404);

    // A pod bound to a node is deleted gracefully (its kubelet finishes the job).
    c.json("POST", "/api/v1/namespaces/d/pods", &pod("bound"))
        .await;
    c.json(
        "POST",
        "/api/v1/namespaces/d/pods/bound/binding",
        &json!({"target": {"name": "n1"}}),
    )
    .await;
    let (code, p) = c
        .json(
            "DELETE",
            "/api/v1/namespaces/d/pods/bound",
            &json!({"gracePeriodSeconds": 20}),
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(p["metadata"]["deletionGracePeriodSeconds"], 20, "{p}");
    let (code, _) = c.get("/api/v1/namespaces/d/pods/bound").await;
    assert_eq!(code, 200, "still there during its grace period");
    let (code, _) = c
        .json(
            "DELETE",
            "/api/v1/namespaces/d/pods/bound",
            &json!({"gracePeriodSeconds": 0}),
        )
        .await;
    assert_eq!(code, 200);
    let (code, _) = c.get("/api/v1/namespaces/d/pods/bound").await;
    assert_eq!(code, 404, "grace period 0 deletes at once");
    // An unscheduled pod goes at once.
    c.json("POST", "/api/v1/namespaces/d/pods", &pod("loose"))
        .await;
    let (code, st) = c
        .json("DELETE", "/api/v1/namespaces/d/pods/loose", &json!({}))
        .await;
    assert_eq!(
        (code, st["status"].as_str()),
        (200, Some("Success")),
        "{st}"
    );
    let (code, _) = c.get("/api/v1/namespaces/d/pods/loose").await;
    assert_eq!(code, 404);

    // Foreground and Orphan add the garbage collector's finalizers.
    for (policy, fin) in [("Foreground", "foregroundDeletion"), ("Orphan", "orphan")] {
        let name = policy.to_lowercase();
        c.json(
            "POST",
            "/api/v1/namespaces/d/configmaps",
            &json!({"metadata": {"name": name}}),
        )
        .await;
        let (code, o) = c
            .json(
                "DELETE",
                &format!("/api/v1/namespaces/d/configmaps/{name}"),
                &json!({"propagationPolicy": policy}),
            )
            .await;
        assert_eq!(code, 200);
        assert_eq!(o["metadata"]["finalizers"], json!([fin]), "{o}");
    }
    // Preconditions.
    c.json(
        "POST",
        "/api/v1/namespaces/d/configmaps",
        &json!({"metadata": {"name": "pre"}}),
    )
    .await;
    let (code, st) = c
        .json(
            "DELETE",
            "/api/v1/namespaces/d/configmaps/pre",
            &json!({"preconditions": {"uid": "not-it"}}),
        )
        .await;
    assert_eq!(code, 409, "{st}");

    // deletecollection by label.
    for (n, l) in [("k1", "keep"), ("x1", "drop"), ("x2", "drop")] {
        c.json(
            "POST",
            "/api/v1/namespaces/d/configmaps",
            &json!({"metadata": {"name": n, "labels": {"fate": l}}}),
        )
        .await;
    }
    let r = c
        .send(
            "DELETE",
            "/api/v1/namespaces/d/configmaps?labelSelector=fate%3Ddrop",
            &[],
            vec![],
        )
        .await;
    assert_eq!(r.code, 200);
    let (_, left) = c
        .get("/api/v1/namespaces/d/configmaps?labelSelector=fate")
        .await;
    let names: Vec<_> = left["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].clone())
        .collect();
    assert_eq!(names, [json!("k1")]);
}
