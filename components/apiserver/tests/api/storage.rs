//! The storage layer directly: lists larger than one batch and than one gRPC message.

use kubelab_apiserver::storage::Store;
use kubelab_apiserver::storage::list::ListOptions;
use serde_json::{Value, json};

use crate::support::{self, Etcd};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_span_batches_and_big_messages() {
    if support::missing(support::ETCD) {
        return;
    }
    let etcd = Etcd::start();
    let raw = etcd_client::Client::connect([etcd.endpoint.as_str()], None)
        .await
        .unwrap();
    // 1234 small objects, written by 16 writers.
    let mut tasks = Vec::new();
    for w in 0..16 {
        let mut c = raw.clone();
        tasks.push(tokio::spawn(async move {
            for i in (w..1234).step_by(16) {
                let v = json!({"metadata": {"name": format!("o{i:04}"), "labels": {"n": (i % 7).to_string()}}});
                c.put(format!("/registry/things/ns/o{i:04}"), v.to_string(), None).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let store = Store::connect(std::slice::from_ref(&etcd.endpoint))
        .await
        .unwrap();
    let all = store
        .list("/registry/things/", &ListOptions::default(), false, |_| {
            true
        })
        .await
        .unwrap();
    assert_eq!(all.items.len(), 1234);
    assert!(all.continue_token.is_none());
    assert!(all.items.windows(2).all(
        |w| w[0].object["metadata"]["name"].as_str() < w[1].object["metadata"]["name"].as_str()
    ));
    // A filtered page counts matches, and its continue token resumes at the same revision.
    let sevens = |o: &Value| o["metadata"]["labels"]["n"] == "0";
    let opts = ListOptions {
        limit: Some(50),
        ..ListOptions::default()
    };
    let page = store
        .list("/registry/things/", &opts, true, sevens)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 50);
    let mut total = page.items.len();
    let mut token = page.continue_token;
    while let Some(t) = token {
        let next = store
            .list(
                "/registry/things/",
                &ListOptions {
                    limit: Some(50),
                    continue_token: Some(t),
                    ..ListOptions::default()
                },
                true,
                sevens,
            )
            .await
            .unwrap();
        assert_eq!(next.revision, page.revision);
        total += next.items.len();
        token = next.continue_token;
    }
    assert_eq!(total, 1234usize.div_ceil(7));

    // Objects bigger in sum than the 4 MiB default gRPC message limit.
    let mut c = raw.clone();
    let blob = "x".repeat(1024 * 1024);
    for i in 0..6 {
        c.put(
            format!("/registry/blobs/ns/b{i}"),
            json!({"metadata": {"name": format!("b{i}")}, "data": {"x": blob}}).to_string(),
            None,
        )
        .await
        .unwrap();
    }
    let blobs = store
        .list("/registry/blobs/", &ListOptions::default(), false, |_| true)
        .await
        .unwrap();
    assert_eq!(blobs.items.len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_is_compacted_periodically() {
    compacted_periodically(support::Backend::Etcd).await;
}

/// The default store: the embedded kubelab store must answer the compaction too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_store_is_compacted_periodically() {
    compacted_periodically(support::Backend::Embedded).await;
}

async fn compacted_periodically(backend: support::Backend) {
    if backend.missing() {
        return;
    }
    let s = support::Server::start_full(backend, &[], |c| {
        c.etcd_compaction_interval = std::time::Duration::from_millis(300);
    })
    .await;
    let c = s.client();
    let (code, cm) = c
        .json(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            &serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
                                "metadata": {"name": "old"}, "data": {"a": "1"}}),
        )
        .await;
    assert_eq!(code, 201, "{cm}");
    let old = cm["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    // Later writes move the store past `old`; two ticks later it is compacted away.
    let mut i = 0;
    support::wait_until_async(
        "a watch from the old resourceVersion to be 410 Gone",
        std::time::Duration::from_secs(20),
        || {
            i += 1;
            let c = c.clone();
            let old = old.clone();
            let name = format!("new{i}");
            async move {
                c.json(
                    "POST",
                    "/api/v1/namespaces/default/configmaps",
                    &serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
                                        "metadata": {"name": name}}),
                )
                .await;
                let (code, st) = c
                    .get(&format!(
                        "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={old}&timeoutSeconds=1"
                    ))
                    .await;
                (code == 410 && st["reason"] == "Expired").then_some(())
            }
        },
    )
    .await;
}
