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
async fn pod_specs_are_checked_for_volumes_env_names_and_requests_over_limits() {
    if support::missing(support::ETCD) {
        return;
    }
    let s = Server::start().await;
    let c = s.client();
    let mut p = pod("bad");
    p["spec"]["volumes"] = json!([{"name": "v", "emptyDir": {}}, {"name": "v", "emptyDir": {}}]);
    p["spec"]["containers"][0]["volumeMounts"] = json!([{"name": "missing", "mountPath": "/m"}]);
    p["spec"]["containers"][0]["env"] =
        json!([{"name": "1BAD", "value": "x"}, {"name": "ok.name-1_", "value": "y"}]);
    p["spec"]["containers"][0]["resources"] = json!({"requests": {"cpu": "2", "memory": "1Gi"}, "limits": {"cpu": "1500m", "memory": "2G"}});
    let (code, st) = post(&c, "/api/v1/namespaces/default/pods", &p).await;
    assert_eq!(code, 422, "{st}");
    let causes: Vec<(String, String)> = st["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["field"].as_str().unwrap().to_string(),
                c["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let c0 = "spec.containers[0]";
    for want in [
        ("spec.volumes[1].name".to_string(), "FieldValueDuplicate"),
        (format!("{c0}.volumeMounts[0].name"), "FieldValueNotFound"),
        (format!("{c0}.env[0].name"), "FieldValueInvalid"),
        (format!("{c0}.resources.requests"), "FieldValueInvalid"),
    ] {
        assert!(
            causes.iter().any(|(f, r)| *f == want.0 && r == want.1),
            "missing {want:?} in {causes:?}"
        );
    }
    assert_eq!(
        causes.len(),
        4,
        "only those (1Gi <= 2G, ok.name-1_ is valid): {causes:?}"
    );
    assert!(
        st["message"]
            .as_str()
            .unwrap()
            .contains("must be less than or equal to cpu limit of 1500m"),
        "{st}"
    );
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

/// PUTs `object` after `change`, returning the answer.
async fn put_changed(c: &Client, path: &str, change: impl FnOnce(&mut Value)) -> (u16, Value) {
    let (code, mut object) = c.get(path).await;
    assert_eq!(code, 200, "{object}");
    change(&mut object);
    c.json("PUT", path, &object).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn immutable_fields_stay() {
    if support::missing(support::ETCD) {
        return;
    }
    let s = Server::start().await;
    let c = s.client();
    let ns = "/api/v1/namespaces/default";

    // An immutable ConfigMap: data, binaryData and `immutable` itself are frozen.
    let (code, st) = post(
        &c,
        &format!("{ns}/configmaps"),
        &json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "frozen"}, "data": {"a": "1"}, "immutable": true}),
    )
    .await;
    assert_eq!(code, 201, "{st}");
    let cm = format!("{ns}/configmaps/frozen");
    let (code, st) = put_changed(&c, &cm, |o| o["data"]["a"] = json!("2")).await;
    assert_eq!(invalid_field(code, &st), "data");
    let (code, st) = put_changed(&c, &cm, |o| o["binaryData"] = json!({"b": "AA=="})).await;
    assert_eq!(invalid_field(code, &st), "binaryData");
    let (code, st) = put_changed(&c, &cm, |o| o["immutable"] = json!(false)).await;
    assert_eq!(invalid_field(code, &st), "immutable");
    let (code, st) = put_changed(&c, &cm, |o| o["metadata"]["labels"] = json!({"l": "v"})).await;
    assert_eq!(code, 200, "metadata stays mutable: {st}");
    // The same for a Secret.
    let (code, st) = post(
        &c,
        &format!("{ns}/secrets"),
        &json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "frozen"}, "data": {"a": "MQ=="}, "immutable": true}),
    )
    .await;
    assert_eq!(code, 201, "{st}");
    let (code, st) = put_changed(&c, &format!("{ns}/secrets/frozen"), |o| {
        o["immutable"] = json!(false)
    })
    .await;
    assert_eq!(invalid_field(code, &st), "immutable");

    // apps/v1 selectors.
    let template = json!({"metadata": {"labels": {"app": "a", "tier": "t"}},
                          "spec": {"containers": [{"name": "c", "image": "x"}]}});
    for (plural, kind) in [("daemonsets", "DaemonSet"), ("replicasets", "ReplicaSet")] {
        let base = format!("/apis/apps/v1/namespaces/default/{plural}");
        let (code, st) = post(
            &c,
            &base,
            &json!({"apiVersion": "apps/v1", "kind": kind,
            "metadata": {"name": "sel"},
            "spec": {"selector": {"matchLabels": {"app": "a"}}, "template": template}}),
        )
        .await;
        assert_eq!(code, 201, "{st}");
        let (code, st) = put_changed(&c, &format!("{base}/sel"), |o| {
            o["spec"]["selector"] = json!({"matchLabels": {"app": "a", "tier": "t"}})
        })
        .await;
        assert_eq!(invalid_field(code, &st), "spec.selector", "{kind}");
    }

    // StatefulSet: replicas may change, serviceName may not.
    let sts = "/apis/apps/v1/namespaces/default/statefulsets";
    let (code, st) = post(
        &c,
        sts,
        &json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db"},
        "spec": {"serviceName": "db", "replicas": 1, "selector": {"matchLabels": {"app": "a"}},
                 "template": template}}),
    )
    .await;
    assert_eq!(code, 201, "{st}");
    let (code, st) = put_changed(&c, &format!("{sts}/db"), |o| {
        o["spec"]["replicas"] = json!(3)
    })
    .await;
    assert_eq!(code, 200, "{st}");
    let (code, st) = put_changed(&c, &format!("{sts}/db"), |o| {
        o["spec"]["serviceName"] = json!("other")
    })
    .await;
    assert_eq!(invalid_field(code, &st), "spec");
    assert!(
        st["message"]
            .as_str()
            .unwrap()
            .contains("updates to statefulset spec"),
        "{st}"
    );

    // EndpointSlice addressType.
    let eps = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices";
    let (code, st) = post(
        &c,
        eps,
        &json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "e"}, "addressType": "IPv4", "endpoints": []}),
    )
    .await;
    assert_eq!(code, 201, "{st}");
    let (code, st) = put_changed(&c, &format!("{eps}/e"), |o| {
        o["addressType"] = json!("IPv6")
    })
    .await;
    assert_eq!(invalid_field(code, &st), "addressType");

    // Node podCIDR: settable once.
    let (code, st) = post(
        &c,
        "/api/v1/nodes",
        &json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "n1"}}),
    )
    .await;
    assert_eq!(code, 201, "{st}");
    let (code, st) = put_changed(&c, "/api/v1/nodes/n1", |o| {
        o["spec"] = json!({"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24"]})
    })
    .await;
    assert_eq!(code, 200, "first set: {st}");
    let (code, st) = put_changed(&c, "/api/v1/nodes/n1", |o| {
        o["spec"] = json!({"podCIDR": "10.244.2.0/24", "podCIDRs": ["10.244.2.0/24"]})
    })
    .await;
    assert_eq!(invalid_field(code, &st), "spec.podCIDR");

    // A PUT carrying another uid.
    let (code, st) = put_changed(&c, &cm, |o| o["metadata"]["uid"] = json!("not-the-uid")).await;
    assert_eq!(invalid_field(code, &st), "metadata.uid");

    // No new finalizers on an object being deleted.
    let mut p = pod("held");
    p["metadata"]["finalizers"] = json!(["example.com/keep"]);
    let (code, st) = post(&c, &format!("{ns}/pods"), &p).await;
    assert_eq!(code, 201, "{st}");
    let (code, st) = c
        .json(
            "DELETE",
            &format!("{ns}/pods/held"),
            &json!({"gracePeriodSeconds": 0}),
        )
        .await;
    assert_eq!(code, 200, "{st}");
    let (code, st) = put_changed(&c, &format!("{ns}/pods/held"), |o| {
        o["metadata"]["finalizers"] = json!(["example.com/keep", "example.com/more"])
    })
    .await;
    assert_eq!(invalid_field(code, &st), "metadata.finalizers");
    let (code, st) = put_changed(&c, &format!("{ns}/pods/held"), |o| {
        o["metadata"]["finalizers"] = json!([])
    })
    .await;
    assert_eq!(code, 200, "removing finalizers is allowed: {st}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_streaming_subresources() {
    if support::missing(support::ETCD) {
        return;
    }
    let s = Server::start().await;
    let c = s.client();
    for path in ["/apis/nothing.example.com/v1/things", "/no/such/route"] {
        let (code, st) = c.get(path).await;
        assert_eq!(code, 404, "{path}: {st}");
        assert_eq!(st["details"], json!({}), "{path}: {st}");
    }
    let ns = "/api/v1/namespaces/default";
    let (code, st) = post(&c, &format!("{ns}/pods"), &pod("p")).await;
    assert_eq!(code, 201, "{st}");
    for sub in ["exec", "attach", "portforward"] {
        let (code, st) = post(&c, &format!("{ns}/pods/p/{sub}"), &json!({})).await;
        assert_eq!(code, 400, "{sub}: {st}");
        assert!(
            st["message"]
                .as_str()
                .unwrap()
                .contains("does not have a host assigned"),
            "{st}"
        );
    }
    let (code, st) = post(
        &c,
        &format!("{ns}/pods/p/binding"),
        &json!({"apiVersion": "v1", "kind": "Binding",
        "metadata": {"name": "p"}, "target": {"kind": "Node", "name": "n1"}}),
    )
    .await;
    assert_eq!(code, 201, "{st}");
    for sub in ["exec", "attach", "portforward"] {
        let (code, st) = c.get(&format!("{ns}/pods/p/{sub}")).await;
        assert_eq!(code, 501, "{sub}: {st}");
        let message = st["message"].as_str().unwrap();
        assert!(message.contains("kubelet on node n1"), "{message}");
    }
    let (code, st) = post(&c, &format!("{ns}/pods/nope/exec"), &json!({})).await;
    assert_eq!(code, 404, "{st}");
}
