//! Create/get/update/list semantics.

use serde_json::{Value, json};

use crate::support::{self, Server, namespace, pod};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_get_update_with_kubernetes_semantics() {
    if support::missing(support::ETCD) {
        return;
    }
    let s = Server::start().await;
    let c = s.client();
    namespace(&c, "ns1").await;
    let (code, created) = c
        .json("POST", "/api/v1/namespaces/ns1/pods", &pod("p1"))
        .await;
    assert_eq!(code, 201, "{created}");
    let meta = &created["metadata"];
    assert!(
        meta["uid"].as_str().is_some_and(|u| u.len() == 36),
        "{meta}"
    );
    assert!(
        meta["creationTimestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    let rv: i64 = meta["resourceVersion"].as_str().unwrap().parse().unwrap();
    assert!(rv > 0);
    // Defaults.
    assert_eq!(created["spec"]["restartPolicy"], "Always");
    assert_eq!(created["spec"]["dnsPolicy"], "ClusterFirst");
    assert_eq!(created["spec"]["terminationGracePeriodSeconds"], 30);
    assert_eq!(
        created["spec"]["containers"][0]["imagePullPolicy"],
        "IfNotPresent"
    );
    assert_eq!(created["status"]["phase"], "Pending");

    let (code, got) = c.get("/api/v1/namespaces/ns1/pods/p1").await;
    assert_eq!(code, 200);
    assert_eq!(got["metadata"]["resourceVersion"], meta["resourceVersion"]);

    // AlreadyExists.
    let (code, st) = c
        .json("POST", "/api/v1/namespaces/ns1/pods", &pod("p1"))
        .await;
    assert_eq!(
        (code, st["reason"].as_str()),
        (409, Some("AlreadyExists")),
        "{st}"
    );

    // Update with the current resourceVersion succeeds and moves it on.
    let mut upd = got.clone();
    upd["metadata"]["labels"]["tier"] = json!("front");
    let (code, updated) = c.json("PUT", "/api/v1/namespaces/ns1/pods/p1", &upd).await;
    assert_eq!(code, 200, "{updated}");
    let rv2: i64 = updated["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rv2 > rv);
    assert_eq!(updated["metadata"]["uid"], meta["uid"]);
    // Stale resourceVersion: 409 Conflict, object unchanged.
    let (code, st) = c.json("PUT", "/api/v1/namespaces/ns1/pods/p1", &upd).await;
    assert_eq!(
        (code, st["reason"].as_str()),
        (409, Some("Conflict")),
        "{st}"
    );
    let (_, again) = c.get("/api/v1/namespaces/ns1/pods/p1").await;
    assert_eq!(
        again["metadata"]["resourceVersion"],
        updated["metadata"]["resourceVersion"]
    );

    // generateName.
    let mut g = pod("");
    g["metadata"] = json!({"generateName": "web-"});
    let (code, generated) = c.json("POST", "/api/v1/namespaces/ns1/pods", &g).await;
    assert_eq!(code, 201, "{generated}");
    let name = generated["metadata"]["name"].as_str().unwrap();
    assert!(name.starts_with("web-") && name.len() == 9, "{name}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generation_bumps_on_spec_change_only_and_namespaces_gate_creates() {
    if support::missing(support::ETCD) {
        return;
    }
    let s = Server::start().await;
    let c = s.client();
    namespace(&c, "apps").await;
    let d = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}},
                 "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}},
    });
    let (code, created) = c
        .json("POST", "/apis/apps/v1/namespaces/apps/deployments", &d)
        .await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["metadata"]["generation"], 1);
    assert_eq!(created["spec"]["strategy"]["type"], "RollingUpdate");
    let mut labelled = created.clone();
    labelled["metadata"]["labels"] = json!({"x": "y"});
    let (_, after_label) = c
        .json(
            "PUT",
            "/apis/apps/v1/namespaces/apps/deployments/d",
            &labelled,
        )
        .await;
    assert_eq!(
        after_label["metadata"]["generation"], 1,
        "label change must not bump generation"
    );
    let mut scaled = after_label.clone();
    scaled["spec"]["replicas"] = json!(3);
    let (_, after_scale) = c
        .json(
            "PUT",
            "/apis/apps/v1/namespaces/apps/deployments/d",
            &scaled,
        )
        .await;
    assert_eq!(after_scale["metadata"]["generation"], 2);
    // Status changes through the main resource are ignored; /status takes them.
    let mut st = after_scale.clone();
    st["status"] = json!({"replicas": 7});
    let (_, ignored) = c
        .json("PUT", "/apis/apps/v1/namespaces/apps/deployments/d", &st)
        .await;
    assert!(ignored["status"].get("replicas").is_none(), "{ignored}");
    st["metadata"]["resourceVersion"] = ignored["metadata"]["resourceVersion"].clone();
    let (code, via_status) = c
        .json(
            "PUT",
            "/apis/apps/v1/namespaces/apps/deployments/d/status",
            &st,
        )
        .await;
    assert_eq!(code, 200, "{via_status}");
    assert_eq!(via_status["status"]["replicas"], 7);
    assert_eq!(via_status["metadata"]["generation"], 2);

    // Missing namespace: 404 naming it.
    let (code, st) = c
        .json("POST", "/api/v1/namespaces/nope/pods", &pod("p"))
        .await;
    assert_eq!(code, 404, "{st}");
    assert!(
        st["message"]
            .as_str()
            .unwrap()
            .contains("namespaces \"nope\" not found"),
        "{st}"
    );
    // Terminating namespace: 403.
    let (code, _) = c
        .json("DELETE", "/api/v1/namespaces/apps", &json!({}))
        .await;
    assert_eq!(code, 200);
    let (_, ns) = c.get("/api/v1/namespaces/apps").await;
    assert_eq!(ns["status"]["phase"], "Terminating");
    assert!(ns["metadata"]["deletionTimestamp"].is_string());
    let (code, st) = c
        .json("POST", "/api/v1/namespaces/apps/pods", &pod("p"))
        .await;
    assert_eq!(code, 403, "{st}");
    assert!(st["message"].as_str().unwrap().contains("being terminated"));
    // The namespace controller's last step: finalize empties spec.finalizers and it is gone.
    let mut fin = ns.clone();
    fin["spec"]["finalizers"] = json!([]);
    let (code, _) = c
        .json("PUT", "/api/v1/namespaces/apps/finalize", &fin)
        .await;
    assert_eq!(code, 200);
    let (code, _) = c.get("/api/v1/namespaces/apps").await;
    assert_eq!(code, 404);
    // Creates check the namespace in their own transaction, from the revision this server
    // saw last: gone now, so 404 — and a namespace of the same name created again is live.
    let (code, st) = c
        .json("POST", "/api/v1/namespaces/apps/pods", &pod("p"))
        .await;
    assert_eq!(code, 404, "{st}");
    namespace(&c, "apps").await;
    let (code, st) = c
        .json("POST", "/api/v1/namespaces/apps/pods", &pod("p"))
        .await;
    assert_eq!(code, 201, "{st}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_with_selectors_and_consistent_pages() {
    if support::missing(support::ETCD) {
        return;
    }
    let s = Server::start().await;
    let c = s.client();
    namespace(&c, "l").await;
    for i in 0..7 {
        let mut p = pod(&format!("p{i}"));
        p["metadata"]["labels"]["parity"] = json!(if i % 2 == 0 { "even" } else { "odd" });
        let (code, body) = c.json("POST", "/api/v1/namespaces/l/pods", &p).await;
        assert_eq!(code, 201, "{body}");
    }
    // Bind one pod, then select by spec.nodeName.
    let (code, b) = c
        .json("POST", "/api/v1/namespaces/l/pods/p3/binding", &json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p3"}, "target": {"kind": "Node", "name": "n1"}}))
        .await;
    assert_eq!(code, 201, "{b}");
    let (code, st) = c
        .json(
            "POST",
            "/api/v1/namespaces/l/pods/p3/binding",
            &json!({"target": {"name": "n2"}}),
        )
        .await;
    assert_eq!(code, 409, "rebinding must conflict: {st}");
    let names = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, on_n1) = c.get("/api/v1/pods?fieldSelector=spec.nodeName%3Dn1").await;
    assert_eq!(names(&on_n1), ["p3"]);
    let (_, pending) = c
        .get("/api/v1/namespaces/l/pods?fieldSelector=status.phase%3DPending,metadata.name!%3Dp0")
        .await;
    assert_eq!(names(&pending).len(), 6);
    let (_, even) = c
        .get("/api/v1/namespaces/l/pods?labelSelector=parity%3Deven")
        .await;
    assert_eq!(names(&even), ["p0", "p2", "p4", "p6"]);
    let (_, set) = c
        .get("/api/v1/namespaces/l/pods?labelSelector=parity%20in%20(odd),app")
        .await;
    assert_eq!(names(&set), ["p1", "p3", "p5"]);
    let (code, st) = c.get("/api/v1/pods?fieldSelector=spec.bogus%3Dx").await;
    assert_eq!(code, 400, "{st}");

    // Pages of 3: all pages read the first page's revision even if objects change meanwhile.
    let (_, page1) = c.get("/api/v1/namespaces/l/pods?limit=3").await;
    assert_eq!(names(&page1), ["p0", "p1", "p2"]);
    assert_eq!(page1["metadata"]["remainingItemCount"], 4);
    let rv = page1["metadata"]["resourceVersion"].clone();
    let (code, _) = c
        .json("DELETE", "/api/v1/namespaces/l/pods/p4", &json!({}))
        .await;
    assert_eq!(code, 200);
    let cont = page1["metadata"]["continue"].as_str().unwrap().to_string();
    let (_, page2) = c
        .get(&format!(
            "/api/v1/namespaces/l/pods?limit=3&continue={cont}"
        ))
        .await;
    assert_eq!(
        names(&page2),
        ["p3", "p4", "p5"],
        "p4 is still in the snapshot"
    );
    assert_eq!(page2["metadata"]["resourceVersion"], rv);
    let cont = page2["metadata"]["continue"].as_str().unwrap().to_string();
    let (_, page3) = c
        .get(&format!(
            "/api/v1/namespaces/l/pods?limit=3&continue={cont}"
        ))
        .await;
    assert_eq!(names(&page3), ["p6"]);
    assert!(page3["metadata"].get("continue").is_none());
    // Filtered pages count matches, not scanned keys.
    let (_, odd) = c
        .get("/api/v1/namespaces/l/pods?limit=2&labelSelector=parity%3Dodd")
        .await;
    assert_eq!(names(&odd), ["p1", "p3"]);
    let (code, st) = c
        .get("/api/v1/namespaces/l/pods?limit=2&continue=garbage")
        .await;
    assert_eq!(code, 400, "{st}");
}
