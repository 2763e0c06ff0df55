//! Reads from a resourceVersion the store has not reached: get and list wait up to 3 s, then
//! answer 504 `Timeout` "Too large resource version" with `Retry-After`, as kube-apiserver
//! does; a watch without initial events starts at the future revision; a watch with
//! `sendInitialEvents` ends with an ERROR event.

use serde_json::{Value, json};

use crate::support::{self, Client, Server, namespace, next_event};

fn rv_of(v: &Value) -> i64 {
    v["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no resourceVersion in {v}"))
}

async fn current(c: &Client) -> i64 {
    let (code, list) = c.get("/api/v1/namespaces/f/configmaps").await;
    assert_eq!(code, 200, "{list}");
    rv_of(&list)
}

fn cm(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})
}

/// Asserts a 504 too-large answer for `requested`, with its Retry-After.
async fn too_large(c: &Client, path: String, requested: i64) {
    let r = c.send("GET", &path, &[], vec![]).await;
    let status = r.json();
    assert_eq!(r.code, 504, "{status}");
    assert_eq!(status["reason"], "Timeout", "{status}");
    let message = status["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!(
            "Too large resource version: {requested}, current: "
        )),
        "{status}"
    );
    assert_eq!(
        status["details"]["causes"][0]["reason"], "ResourceVersionTooLarge",
        "{status}"
    );
    assert_eq!(
        r.headers.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("1"),
        "{status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn future_resource_versions_wait_then_time_out() {
    if support::missing(support::ETCD) {
        return;
    }
    let s = Server::start().await;
    let c = s.client();
    namespace(&c, "f").await;
    let (code, made) = c
        .json("POST", "/api/v1/namespaces/f/configmaps", &cm("c"))
        .await;
    assert_eq!(code, 201, "{made}");
    let far = current(&c).await + 1000;

    // Far future: get, list (NotOlderThan and Exact) and an initial-events watch all wait,
    // then fail; run side by side (each waits 3 s).
    let started = std::time::Instant::now();
    let watch_initial = async {
        let mut rx = c
            .watch(&format!(
                "/api/v1/namespaces/f/configmaps?watch=1&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan&resourceVersion={far}"
            ))
            .await;
        let ev = next_event(&mut rx).await;
        assert_eq!(ev["type"], "ERROR", "{ev}");
        assert_eq!(ev["object"]["code"], 504, "{ev}");
        assert_eq!(
            ev["object"]["details"]["causes"][0]["reason"], "ResourceVersionTooLarge",
            "{ev}"
        );
    };
    tokio::join!(
        too_large(
            &c,
            format!("/api/v1/namespaces/f/configmaps/c?resourceVersion={far}"),
            far
        ),
        too_large(
            &c,
            format!("/api/v1/namespaces/f/configmaps?resourceVersion={far}"),
            far
        ),
        too_large(
            &c,
            format!(
                "/api/v1/namespaces/f/configmaps?resourceVersion={far}&resourceVersionMatch=Exact"
            ),
            far
        ),
        watch_initial,
    );
    let waited = started.elapsed();
    assert!(
        waited.as_millis() >= 2900,
        "answered after {waited:?}, before the wait"
    );

    // Near future: the list waits for a write that reaches it, then answers.
    let next = current(&c).await + 1;
    let list = {
        let c = c.clone();
        tokio::spawn(async move {
            c.get(&format!(
                "/api/v1/namespaces/f/configmaps?resourceVersion={next}"
            ))
            .await
        })
    };
    let (code, _) = c
        .json("POST", "/api/v1/namespaces/f/configmaps", &cm("d"))
        .await;
    assert_eq!(code, 201);
    let (code, body) = list.await.expect("list task");
    assert_eq!(code, 200, "{body}");
    assert!(rv_of(&body) >= next, "{body}");
    assert!(
        body["items"].as_array().is_some_and(|i| i.len() == 2),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_from_a_future_resource_version_starts_there() {
    if support::missing(support::ETCD) {
        return;
    }
    let s = Server::start().await;
    let c = s.client();
    namespace(&c, "f").await;
    let start = current(&c).await + 2;
    let mut rx = c
        .watch(&format!(
            "/api/v1/namespaces/f/configmaps?watch=1&resourceVersion={start}"
        ))
        .await;
    let mut made = Vec::new();
    for name in ["x1", "x2", "x3"] {
        let (code, o) = c
            .json("POST", "/api/v1/namespaces/f/configmaps", &cm(name))
            .await;
        assert_eq!(code, 201, "{o}");
        made.push((name, rv_of(&o)));
    }
    // Exactly the creates after `start` arrive, in order.
    let expected: Vec<(&str, i64)> = made.into_iter().filter(|(_, rv)| *rv > start).collect();
    assert!(!expected.is_empty());
    for (name, rv) in expected {
        let ev = next_event(&mut rx).await;
        assert_eq!(
            (
                ev["type"].as_str(),
                ev["object"]["metadata"]["name"].as_str(),
                rv_of(&ev["object"])
            ),
            (Some("ADDED"), Some(name), rv),
            "{ev}"
        );
    }
}
