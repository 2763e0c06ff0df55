//! `Accept: application/json;as=PartialObjectMetadata[List];g=meta.k8s.io;v=v1` (and
//! v1beta1): metadata-only objects, lists and watch events, as client-go's metadata client
//! asks for them (a protobuf range first, then JSON).

use serde_json::{Value, json};

use crate::support::{self, Client, Server, namespace, pod};

const OBJECT: &str = "application/vnd.kubernetes.protobuf;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json";
const LIST: &str = "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";

async fn get(c: &Client, path: &str, accept: &str) -> (u16, Value) {
    let r = c.send("GET", path, &[("accept", accept)], vec![]).await;
    (r.code, r.json())
}

fn assert_partial(v: &Value, version: &str, name: &str) {
    assert_eq!(v["kind"], "PartialObjectMetadata", "{v}");
    assert_eq!(v["apiVersion"], format!("meta.k8s.io/{version}"), "{v}");
    assert_eq!(v["metadata"]["name"], name, "{v}");
    assert!(v["metadata"]["uid"].is_string(), "{v}");
    assert!(v["metadata"]["resourceVersion"].is_string(), "{v}");
    assert!(v.get("spec").is_none() && v.get("status").is_none(), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_only_objects_lists_and_watch_events() {
    if support::missing(support::ETCD) {
        return;
    }
    let s = Server::start().await;
    let c = s.client();
    namespace(&c, "m").await;
    for name in ["a", "b", "c"] {
        let (code, body) = c
            .json("POST", "/api/v1/namespaces/m/pods", &pod(name))
            .await;
        assert_eq!(code, 201, "{body}");
    }

    // One object, v1 and v1beta1.
    let (code, a) = get(&c, "/api/v1/namespaces/m/pods/a", OBJECT).await;
    assert_eq!(code, 200, "{a}");
    assert_partial(&a, "v1", "a");
    assert_eq!(a["metadata"]["labels"]["app"], "web", "{a}");
    let (code, a) = get(
        &c,
        "/api/v1/namespaces/m/pods/a",
        "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1beta1",
    )
    .await;
    assert_eq!(code, 200, "{a}");
    assert_partial(&a, "v1beta1", "a");
    // The list form for one object (and nothing else acceptable) is refused.
    let (code, refused) = get(
        &c,
        "/api/v1/namespaces/m/pods/a",
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
    )
    .await;
    assert_eq!(code, 406, "{refused}");

    // A list, paged, with a selector.
    let (code, page) = get(&c, "/api/v1/namespaces/m/pods?limit=2", LIST).await;
    assert_eq!(code, 200, "{page}");
    assert_eq!(page["kind"], "PartialObjectMetadataList", "{page}");
    assert_eq!(page["apiVersion"], "meta.k8s.io/v1", "{page}");
    let items = page["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{page}");
    assert_partial(&items[0], "v1", "a");
    let token = page["metadata"]["continue"]
        .as_str()
        .expect("continue token");
    let (code, rest) = get(
        &c,
        &format!("/api/v1/namespaces/m/pods?limit=2&continue={token}"),
        LIST,
    )
    .await;
    assert_eq!(code, 200, "{rest}");
    assert_partial(&rest["items"][0], "v1", "c");
    assert_eq!(
        rest["metadata"]["resourceVersion"],
        page["metadata"]["resourceVersion"]
    );
    let (code, none) = get(&c, "/api/v1/pods?labelSelector=app%3Ddb", LIST).await;
    assert_eq!(
        (code, none["items"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{none}"
    );

    // A write answered as metadata.
    let r = c
        .send(
            "PATCH",
            "/api/v1/namespaces/m/pods/b",
            &[
                ("accept", OBJECT),
                ("content-type", "application/merge-patch+json"),
            ],
            serde_json::to_vec(&json!({"metadata": {"labels": {"x": "y"}}})).unwrap(),
        )
        .await;
    let b = r.json();
    assert_eq!(r.code, 200, "{b}");
    assert_partial(&b, "v1", "b");
    assert_eq!(b["metadata"]["labels"]["x"], "y", "{b}");

    // A watch: every event's object is metadata only.
    let r = c
        .send(
            "GET",
            "/api/v1/namespaces/m/pods?watch=1&timeoutSeconds=1",
            &[("accept", OBJECT)],
            vec![],
        )
        .await;
    assert_eq!(r.code, 200);
    let events: Vec<Value> = String::from_utf8_lossy(&r.body)
        .lines()
        .map(|l| serde_json::from_str(l).expect("event JSON"))
        .collect();
    assert_eq!(events.len(), 3, "{events:?}");
    for (ev, name) in events.iter().zip(["a", "b", "c"]) {
        assert_eq!(ev["type"], "ADDED", "{ev}");
        assert_partial(&ev["object"], "v1", name);
    }
}
