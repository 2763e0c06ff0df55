//! The `kube` crate's metadata API against the server: `get_metadata`, `list_metadata`
//! (paged) and `watch_metadata`, which ask for `as=PartialObjectMetadata[List]` as
//! client-go's metadata client does. Authenticates with the admin kubeconfig the server
//! wrote (client certificate over TLS).

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};

use crate::support::{self, Server, namespace, pod};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_metadata_client_gets_lists_and_watches() {
    if support::missing(support::ETCD) {
        return;
    }
    let s = Server::start().await;
    let c = s.client();
    namespace(&c, "k").await;
    for name in ["a", "b"] {
        let (code, body) = c
            .json("POST", "/api/v1/namespaces/k/pods", &pod(name))
            .await;
        assert_eq!(code, 201, "{body}");
    }
    let kubeconfig = kube::config::Kubeconfig::read_from(s.kubeconfig()).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("client config");
    let client = kube::Client::try_from(config).expect("client");
    let pods: Api<Pod> = Api::namespaced(client, "k");

    let a = pods.get_metadata("a").await.expect("get_metadata");
    assert_eq!(a.metadata.name.as_deref(), Some("a"));
    assert!(a.metadata.uid.is_some());
    assert_eq!(
        a.types.as_ref().map(|t| t.kind.as_str()),
        Some("PartialObjectMetadata")
    );

    let page = pods
        .list_metadata(&ListParams::default().limit(1))
        .await
        .expect("list_metadata page");
    assert_eq!(page.items.len(), 1);
    let token = page.metadata.continue_.clone().expect("continue token");
    let rest = pods
        .list_metadata(&ListParams::default().limit(1).continue_token(&token))
        .await
        .expect("list_metadata next page");
    assert_eq!(rest.items[0].metadata.name.as_deref(), Some("b"));

    let all = pods
        .list_metadata(&ListParams::default())
        .await
        .expect("list_metadata");
    let names: Vec<_> = all
        .items
        .iter()
        .filter_map(|m| m.metadata.name.clone())
        .collect();
    assert_eq!(names, ["a", "b"]);
    let rv = all
        .metadata
        .resource_version
        .clone()
        .expect("list resourceVersion");
    let mut events = pods
        .watch_metadata(&WatchParams::default(), &rv)
        .await
        .expect("watch_metadata")
        .boxed();
    let (code, body) = c.json("POST", "/api/v1/namespaces/k/pods", &pod("c")).await;
    assert_eq!(code, 201, "{body}");
    let event = tokio::time::timeout(Duration::from_secs(10), events.try_next())
        .await
        .expect("an event within 10 s")
        .expect("watch stream")
        .expect("stream open");
    match event {
        WatchEvent::Added(m) => assert_eq!(m.metadata.name.as_deref(), Some("c")),
        other => panic!("expected ADDED of c, got {other:?}"),
    }
}
