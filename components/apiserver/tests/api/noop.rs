//! No-op writes: an update, patch or apply whose result equals the stored object keeps the
//! resourceVersion and emits no watch event (kube-apiserver skips the store write).

use serde_json::{Value, json};

use crate::support::{self, Server, namespace, next_event};

fn rv(v: &Value) -> String {
    v["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_else(|| panic!("no resourceVersion in {v}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_writes_keep_the_resource_version_and_emit_nothing() {
    if support::missing(support::ETCD) {
        return;
    }
    let s = Server::start().await;
    let c = s.client();
    namespace(&c, "n").await;
    let path = "/api/v1/namespaces/n/configmaps/c";
    let apply = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "labels": {"a": "1"}}, "data": {"k": "v"}});
    let ssa = "application/apply-patch+yaml";
    let (code, created) = c
        .patch(&format!("{path}?fieldManager=tester"), ssa, &apply)
        .await;
    assert_eq!(code, 201, "{created}");
    let first = rv(&created);
    let mut rx = c
        .watch(&format!(
            "/api/v1/namespaces/n/configmaps?watch=true&resourceVersion={first}"
        ))
        .await;

    // The same apply again (its managedFields time would differ: ignored).
    let (code, again) = c
        .patch(&format!("{path}?fieldManager=tester"), ssa, &apply)
        .await;
    assert_eq!((code, rv(&again)), (200, first.clone()), "{again}");
    // A merge patch setting the value already there.
    let (code, patched) = c
        .patch(
            path,
            "application/merge-patch+json",
            &json!({"metadata": {"labels": {"a": "1"}}}),
        )
        .await;
    assert_eq!((code, rv(&patched)), (200, first.clone()), "{patched}");
    // A PUT of the stored object as read.
    let (_, stored) = c.get(path).await;
    let (code, put) = c.json("PUT", path, &stored).await;
    assert_eq!((code, rv(&put)), (200, first.clone()), "{put}");
    let (_, read) = c.get(path).await;
    assert_eq!(rv(&read), first);

    // A real change is the next event: nothing was emitted for the no-ops.
    let (code, changed) = c
        .patch(
            path,
            "application/merge-patch+json",
            &json!({"metadata": {"labels": {"a": "2"}}}),
        )
        .await;
    assert_eq!(code, 200, "{changed}");
    assert_ne!(rv(&changed), first);
    let ev = next_event(&mut rx).await;
    assert_eq!(
        (ev["type"].as_str(), rv(&ev["object"])),
        (Some("MODIFIED"), rv(&changed)),
        "{ev}"
    );
}
