//! Bad input: Status objects with the right code and reason, and no damage.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as PtConfig, TestRunner};
use serde_json::{Value, json};

use crate::support::{self, Server, namespace, pod};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_status_objects() {
    if support::missing(support::ETCD) {
        return;
    }
    let s = Server::start_with(|c| c.max_request_bytes = 64 * 1024).await;
    let c = s.client();
    namespace(&c, "e").await;
    let json_ct = [("content-type", "application/json")];

    let r = c
        .send(
            "POST",
            "/api/v1/namespaces/e/pods",
            &json_ct,
            b"{not json".to_vec(),
        )
        .await;
    assert_eq!(
        (r.code, r.json()["reason"].as_str()),
        (400, Some("BadRequest"))
    );
    assert_eq!(r.json()["kind"], "Status");
    let r = c
        .send(
            "POST",
            "/api/v1/namespaces/e/pods",
            &[("content-type", "application/yaml")],
            b"a: [".to_vec(),
        )
        .await;
    assert_eq!(r.code, 400);
    // A type error names the field.
    let mut typed = pod("t");
    typed["spec"]["containers"][0]["ports"] = json!([{"containerPort": "eighty"}]);
    let (code, st) = c.json("POST", "/api/v1/namespaces/e/pods", &typed).await;
    assert_eq!(code, 400, "{st}");
    assert!(
        st["message"]
            .as_str()
            .unwrap()
            .contains("spec.containers[0].ports[0].containerPort"),
        "{st}"
    );

    // Invalid objects: 422 with one cause per field.
    let mut bad = pod("Bad_Name");
    bad["spec"]["containers"] = json!([{"name": "c"}, {"name": "c", "image": "x"}]);
    let (code, st) = c.json("POST", "/api/v1/namespaces/e/pods", &bad).await;
    assert_eq!(
        (code, st["reason"].as_str()),
        (422, Some("Invalid")),
        "{st}"
    );
    let fields: Vec<&str> = st["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    for f in [
        "metadata.name",
        "spec.containers[0].image",
        "spec.containers[1].name",
    ] {
        assert!(fields.contains(&f), "{f} not in {fields:?}");
    }
    let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"replicas": -1, "selector": {"matchLabels": {"a": "b"}},
                 "template": {"metadata": {"labels": {"a": "c"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}});
    let (code, st) = c
        .json("POST", "/apis/apps/v1/namespaces/e/deployments", &d)
        .await;
    assert_eq!(code, 422, "{st}");
    let fields: Vec<&str> = st["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"spec.replicas") && fields.contains(&"spec.template.metadata.labels"),
        "{fields:?}"
    );

    // Unknown resources and groups.
    let (code, st) = c.get("/api/v1/widgets").await;
    assert_eq!((code, st["reason"].as_str()), (404, Some("NotFound")));
    let (code, _) = c.get("/apis/nope.example.com/v1").await;
    assert_eq!(code, 404);

    // Too large.
    let mut big = pod("big");
    big["metadata"]["annotations"] = json!({"a": "x".repeat(100 * 1024)});
    let (code, st) = c.json("POST", "/api/v1/namespaces/e/pods", &big).await;
    assert_eq!(
        (code, st["reason"].as_str()),
        (413, Some("RequestEntityTooLarge")),
        "{st}"
    );

    // Unknown fields: Strict refuses, Warn (default) warns, Ignore is silent.
    let mut extra = pod("extra");
    extra["spec"]["bogus"] = json!(1);
    let (code, st) = c
        .json(
            "POST",
            "/api/v1/namespaces/e/pods?fieldValidation=Strict",
            &extra,
        )
        .await;
    assert_eq!(code, 400, "{st}");
    assert!(
        st["message"]
            .as_str()
            .unwrap()
            .contains("unknown field \"spec.bogus\""),
        "{st}"
    );
    let r = c
        .send(
            "POST",
            "/api/v1/namespaces/e/pods",
            &json_ct,
            serde_json::to_vec(&extra).unwrap(),
        )
        .await;
    assert_eq!(r.code, 201);
    let warning = r
        .headers
        .get("warning")
        .and_then(|w| w.to_str().ok())
        .unwrap_or_default();
    assert!(warning.contains("spec.bogus"), "{warning}");
    assert!(
        r.json()["spec"].get("bogus").is_none(),
        "unknown fields are dropped"
    );

    // Duplicate keys: Strict refuses them too.
    let dup = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dup","name":"dup2"}}"#;
    let r = c
        .send(
            "POST",
            "/api/v1/namespaces/e/configmaps?fieldValidation=Strict",
            &json_ct,
            dup.to_vec(),
        )
        .await;
    assert_eq!(r.code, 400);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("duplicate field \"metadata.name\""),
        "{}",
        r.json()
    );

    // Wrong kind for the URL.
    let mut wrong = pod("w");
    wrong["kind"] = json!("Service");
    let (code, _) = c.json("POST", "/api/v1/namespaces/e/pods", &wrong).await;
    assert_eq!(code, 400);
}

/// Random bodies (and random mutations of a valid pod) never crash the server, never
/// answer 5xx, and never store anything the server would not read back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzzed_bodies_are_refused_cleanly() {
    if support::missing(support::ETCD) {
        return;
    }
    let s = Server::start().await;
    let c = s.client();
    namespace(&c, "f").await;
    let mut runner = TestRunner::new(PtConfig {
        cases: 150,
        ..PtConfig::default()
    });
    let strategy = (
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..200).prop_map(|b| (b, false)),
            arb_mutation().prop_map(|v| (serde_json::to_vec(&v).unwrap(), true)),
        ],
        prop_oneof![Just("pods"), Just("services"), Just("configmaps")],
    );
    let cases: Vec<_> = (0..150)
        .map(|_| strategy.new_tree(&mut runner).expect("strategy").current())
        .collect();
    for ((body, _), resource) in cases {
        let r = c
            .send(
                "POST",
                &format!("/api/v1/namespaces/f/{resource}"),
                &[("content-type", "application/json")],
                body.clone(),
            )
            .await;
        assert!(
            r.code < 500,
            "{resource} body {:?} got {}: {}",
            String::from_utf8_lossy(&body),
            r.code,
            String::from_utf8_lossy(&r.body)
        );
        if r.code >= 400 {
            assert_eq!(r.json()["kind"], "Status");
        }
    }
    // Whatever got stored lists and reads back.
    for resource in ["pods", "services", "configmaps"] {
        let (code, list) = c.get(&format!("/api/v1/namespaces/f/{resource}")).await;
        assert_eq!(code, 200, "{list}");
    }
    assert_eq!(c.get("/readyz").await.0, 200);
}

fn arb_mutation() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-zA-Z0-9./-]{0,12}".prop_map(Value::String),
    ];
    let paths = prop_oneof![
        Just("/metadata/name"),
        Just("/metadata/labels"),
        Just("/spec"),
        Just("/spec/containers"),
        Just("/spec/containers/0/image"),
        Just("/spec/containers/0/ports"),
        Just("/spec/ports"),
        Just("/spec/type"),
        Just("/spec/clusterIP"),
        Just("/data"),
        Just("/kind"),
        Just("/metadata"),
    ];
    (paths, leaf).prop_map(|(path, value)| {
        let mut v = pod("m");
        v["spec"]["ports"] = json!([{"port": 80}]);
        if let Some(slot) = v.pointer_mut(path) {
            *slot = value;
        }
        v
    })
}

/// With the store gone, requests fail with 503 (not a hang, not a crash), and the server keeps
/// answering what needs no store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_outage_is_503_and_the_server_survives() {
    if support::missing(support::ETCD) {
        return;
    }
    let mut s = Server::start().await;
    let c = s.client();
    namespace(&c, "o").await;
    s.etcd().stop();
    let started = std::time::Instant::now();
    let (code, st) = c.get("/api/v1/namespaces/o/pods").await;
    assert_eq!(
        (code, st["reason"].as_str()),
        (503, Some("ServiceUnavailable")),
        "{st}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(35),
        "answered within the store timeout"
    );
    let (code, _) = c.json("POST", "/api/v1/namespaces/o/pods", &pod("p")).await;
    assert_eq!(code, 503);
    let r = c.send("GET", "/readyz?verbose", &[], vec![]).await;
    let body = String::from_utf8_lossy(&r.body);
    assert_eq!(r.code, 500, "{body}");
    assert!(
        body.contains("[+]ping ok\n[-]etcd failed") && body.ends_with("readyz check failed\n"),
        "{body}"
    );
    let (code, v) = c.get("/version").await;
    assert_eq!((code, v["major"].as_str()), (200, Some("1")));
}
