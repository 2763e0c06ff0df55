//! PATCH over HTTP: strategic merge by merge key, JSON patch, server-side apply conflicts.

use serde_json::json;

use crate::support::{self, Server, namespace};

fn deployment() -> serde_json::Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [
                {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}]},
                {"name": "side", "image": "side:1"}]}}}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strategic_json_and_apply_patches() {
    if support::missing(support::ETCD) {
        return;
    }
    let s = Server::start().await;
    let c = s.client();
    namespace(&c, "p").await;
    let url = "/apis/apps/v1/namespaces/p/deployments/d";
    let (code, _) = c
        .json(
            "POST",
            "/apis/apps/v1/namespaces/p/deployments",
            &deployment(),
        )
        .await;
    assert_eq!(code, 201);
    // Strategic: the container named `app` changes; `side` stays; env merges by name.
    let (code, d) = c
        .patch(
            url,
            "application/strategic-merge-patch+json",
            &json!({"spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "app:2", "env": [{"name": "B", "value": "2"}]}]}}}}),
        )
        .await;
    assert_eq!(code, 200, "{d}");
    let cs = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(cs.len(), 2);
    assert_eq!(cs[0]["image"], "app:2");
    assert_eq!(cs[0]["env"].as_array().unwrap().len(), 2);
    assert_eq!(cs[1]["name"], "side");
    assert_eq!(d["metadata"]["generation"], 2);
    // The same body as a merge patch replaces the whole list.
    let (_, m) = c
        .patch(url, "application/merge-patch+json", &json!({"spec": {"template": {"spec": {"containers": [{"name": "only", "image": "o:1"}]}}}}))
        .await;
    assert_eq!(
        m["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // JSON patch, including a failing test op (422, nothing written).
    let (code, j) = c
        .patch(
            url,
            "application/json-patch+json",
            &json!([{"op": "replace", "path": "/spec/replicas", "value": 4}]),
        )
        .await;
    assert_eq!((code, j["spec"]["replicas"].as_i64()), (200, Some(4)));
    let (code, _) = c
        .patch(
            url,
            "application/json-patch+json",
            &json!([{"op": "test", "path": "/spec/replicas", "value": 9}]),
        )
        .await;
    assert_eq!(code, 422);
    // A patch that makes the object invalid is refused.
    let (code, _) = c
        .patch(
            url,
            "application/merge-patch+json",
            &json!({"spec": {"replicas": -3}}),
        )
        .await;
    assert_eq!(code, 422);
    // A stale resourceVersion in a patch is a conflict.
    let (code, _) = c
        .patch(
            url,
            "application/merge-patch+json",
            &json!({"metadata": {"resourceVersion": "1"}, "spec": {"replicas": 2}}),
        )
        .await;
    assert_eq!(code, 409);

    // Server-side apply: creates, then conflicts with another manager's field.
    let applied = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"k": "v1", "other": "x"}});
    let cm = "/api/v1/namespaces/p/configmaps/cfg";
    let (code, created) = c
        .patch(
            &format!("{cm}?fieldManager=alice"),
            "application/apply-patch+yaml",
            &applied,
        )
        .await;
    assert_eq!(code, 201, "{created}");
    let (code, _) = c
        .patch(
            cm,
            "application/merge-patch+json",
            &json!({"data": {"k": "bob"}}),
        )
        .await;
    assert_eq!(code, 200);
    let mut again = applied.clone();
    again["data"]["k"] = json!("v2");
    let (code, st) = c
        .patch(
            &format!("{cm}?fieldManager=alice"),
            "application/apply-patch+yaml",
            &again,
        )
        .await;
    assert_eq!(code, 409, "{st}");
    assert_eq!(st["details"]["causes"][0]["field"], ".data.k", "{st}");
    let (code, forced) = c
        .patch(
            &format!("{cm}?fieldManager=alice&force=true"),
            "application/apply-patch+yaml",
            &again,
        )
        .await;
    assert_eq!(
        (code, forced["data"]["k"].as_str()),
        (200, Some("v2")),
        "{forced}"
    );
    // Dropping a field from the applied config removes it.
    let (code, dropped) = c
        .patch(&format!("{cm}?fieldManager=alice"), "application/apply-patch+yaml", &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"k": "v2"}}))
        .await;
    assert_eq!(code, 200);
    assert!(dropped["data"].get("other").is_none(), "{dropped}");
    let (code, st) = c.patch(cm, "application/apply-patch+yaml", &again).await;
    assert_eq!(code, 400, "apply needs a fieldManager: {st}");

    // Scale subresource.
    let (code, sc) = c.get(&format!("{url}/scale")).await;
    assert_eq!(
        (code, sc["kind"].as_str(), sc["status"]["selector"].as_str()),
        (200, Some("Scale"), Some("a=b"))
    );
    let (code, sc) = c
        .patch(
            &format!("{url}/scale"),
            "application/merge-patch+json",
            &json!({"spec": {"replicas": 6}}),
        )
        .await;
    assert_eq!(
        (code, sc["spec"]["replicas"].as_i64()),
        (200, Some(6)),
        "{sc}"
    );
    let (_, d) = c.get(url).await;
    assert_eq!(d["spec"]["replicas"], 6);
}
