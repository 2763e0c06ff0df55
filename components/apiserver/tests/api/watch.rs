//! Watch: event stream from a resourceVersion, selectors, bookmarks, initial events, 410.

use serde_json::json;

use crate::support::{self, Server, namespace, next_event, pod};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_from_a_resource_version_with_selector_transitions() {
    if support::missing(support::ETCD) {
        return;
    }
    let s = Server::start().await;
    let c = s.client();
    namespace(&c, "w").await;
    let (_, list) = c.get("/api/v1/namespaces/w/pods").await;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let mut rx = c
        .watch(&format!(
            "/api/v1/namespaces/w/pods?watch=true&resourceVersion={rv}&labelSelector=app%3Dweb"
        ))
        .await;
    let (_, created) = c.json("POST", "/api/v1/namespaces/w/pods", &pod("a")).await;
    let ev = next_event(&mut rx).await;
    assert_eq!(ev["type"], "ADDED");
    assert_eq!(ev["object"]["metadata"]["name"], "a");
    assert_eq!(
        ev["object"]["metadata"]["resourceVersion"],
        created["metadata"]["resourceVersion"]
    );
    // A pod outside the selector is not seen.
    let mut other = pod("other");
    other["metadata"]["labels"] = json!({"app": "db"});
    c.json("POST", "/api/v1/namespaces/w/pods", &other).await;
    // Relabelling `a` out of the selector is a DELETED for this watch.
    let (code, _) = c
        .patch(
            "/api/v1/namespaces/w/pods/a",
            "application/merge-patch+json",
            &json!({"metadata": {"labels": {"app": "gone"}}}),
        )
        .await;
    assert_eq!(code, 200);
    let ev = next_event(&mut rx).await;
    assert_eq!(
        (
            ev["type"].as_str(),
            ev["object"]["metadata"]["name"].as_str()
        ),
        (Some("DELETED"), Some("a"))
    );
    // `other` moving into the selector is an ADDED; a change while inside is MODIFIED.
    c.patch(
        "/api/v1/namespaces/w/pods/other",
        "application/merge-patch+json",
        &json!({"metadata": {"labels": {"app": "web"}}}),
    )
    .await;
    let ev = next_event(&mut rx).await;
    assert_eq!(
        (
            ev["type"].as_str(),
            ev["object"]["metadata"]["name"].as_str()
        ),
        (Some("ADDED"), Some("other"))
    );
    c.patch(
        "/api/v1/namespaces/w/pods/other",
        "application/merge-patch+json",
        &json!({"metadata": {"annotations": {"x": "1"}}}),
    )
    .await;
    assert_eq!(next_event(&mut rx).await["type"], "MODIFIED");
    let (code, _) = c
        .json("DELETE", "/api/v1/namespaces/w/pods/other", &json!({}))
        .await;
    assert_eq!(code, 200);
    let ev = next_event(&mut rx).await;
    assert_eq!(ev["type"], "DELETED");
    assert_eq!(ev["object"]["metadata"]["name"], "other");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_events_bookmarks_and_gone() {
    if support::missing(support::ETCD) {
        return;
    }
    let s = Server::start().await;
    let c = s.client();
    namespace(&c, "w").await;
    c.json("POST", "/api/v1/namespaces/w/pods", &pod("a")).await;
    c.json("POST", "/api/v1/namespaces/w/pods", &pod("b")).await;

    // No resourceVersion: current state first, as ADDED.
    let mut rx = c.watch("/api/v1/namespaces/w/pods?watch=1").await;
    let names: Vec<_> = [next_event(&mut rx).await, next_event(&mut rx).await]
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_string(),
                e["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("ADDED".to_string(), "a".to_string()),
            ("ADDED".to_string(), "b".to_string())
        ]
    );

    // sendInitialEvents: ADDED..., then a bookmark marking the end, then bookmarks over time.
    let mut rx = c
        .watch("/api/v1/namespaces/w/pods?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true")
        .await;
    assert_eq!(next_event(&mut rx).await["type"], "ADDED");
    assert_eq!(next_event(&mut rx).await["type"], "ADDED");
    let end = next_event(&mut rx).await;
    assert_eq!(end["type"], "BOOKMARK");
    assert_eq!(
        end["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    // The test server sends bookmarks every second.
    let periodic = next_event(&mut rx).await;
    assert_eq!(periodic["type"], "BOOKMARK", "{periodic}");
    assert!(
        periodic["object"]["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
            > 0
    );
    // sendInitialEvents without its companions is refused, not ignored.
    let (code, st) = c
        .get("/api/v1/namespaces/w/pods?watch=1&sendInitialEvents=true")
        .await;
    assert_eq!(code, 400, "{st}");

    // Compact the store past an old revision: a watch from it is 410 Gone.
    let (_, list) = c.get("/api/v1/namespaces/w/pods").await;
    let old: i64 = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    for i in 0..3 {
        c.json("POST", "/api/v1/namespaces/w/pods", &pod(&format!("x{i}")))
            .await;
    }
    let (_, list) = c.get("/api/v1/namespaces/w/pods").await;
    let now: i64 = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut etcd = etcd_client::Client::connect(s.store.endpoints(), None)
        .await
        .unwrap();
    etcd.compact(now, None).await.unwrap();
    let (code, st) = c
        .get(&format!(
            "/api/v1/namespaces/w/pods?watch=1&resourceVersion={old}"
        ))
        .await;
    assert_eq!(
        (code, st["reason"].as_str()),
        (410, Some("Expired")),
        "{st}"
    );
    // A resourceVersion the store has not reached: a list at it times out (504), a watch
    // from it waits and then sees the change.
    let (code, st) = c
        .get(&format!(
            "/api/v1/namespaces/w/pods?resourceVersion={}&resourceVersionMatch=Exact",
            now + 100
        ))
        .await;
    assert_eq!(
        (code, st["reason"].as_str()),
        (504, Some("Timeout")),
        "{st}"
    );
    let mut future = c
        .watch(&format!(
            "/api/v1/namespaces/w/pods?watch=1&resourceVersion={now}"
        ))
        .await;
    c.json("POST", "/api/v1/namespaces/w/pods", &pod("after"))
        .await;
    assert_eq!(
        next_event(&mut future).await["object"]["metadata"]["name"],
        "after"
    );
    // A list page token from before the compaction is 410 too.
    let (code, st) = c
        .get(&format!(
            "/api/v1/namespaces/w/pods?resourceVersion={old}&resourceVersionMatch=Exact"
        ))
        .await;
    assert_eq!(code, 410, "{st}");
}
