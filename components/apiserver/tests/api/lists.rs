//! Lists through the HTTP API larger than one store batch (`storage::list::BATCH`, 500):
//! streamed without `limit`, whole pages with it, plain and Table, filtered and not — the
//! same objects, in key order, at one revision, whichever way they are read.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::support::{self, Server, namespace};

const N: usize = 1234;
const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";

/// GET `path` as a Table; it must answer 200.
async fn get_table(c: &support::Client, path: &str) -> Value {
    let r = c.send("GET", path, &[("accept", TABLE)], vec![]).await;
    assert_eq!(r.code, 200, "{path}");
    r.json()
}

fn names(list: &Value, field: &str) -> Vec<String> {
    list[field]
        .as_array()
        .unwrap_or_else(|| panic!("no {field} in {list}"))
        .iter()
        .map(|i| match field {
            "rows" => i["cells"][0].as_str().unwrap().to_string(),
            _ => i["metadata"]["name"].as_str().unwrap().to_string(),
        })
        .collect()
}

/// Row `i` of a Table without its Age cell (which may tick between two requests).
fn sans_age(table: &Value, i: usize) -> Value {
    let age = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .position(|c| c["name"] == "Age")
        .expect("an Age column");
    let mut row = table["rows"][i].clone();
    row["cells"].as_array_mut().unwrap().remove(age);
    row
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_larger_than_a_batch_stream_at_one_revision() {
    if support::missing(support::ETCD) {
        return;
    }
    let s = Server::start().await;
    let c = s.client();
    namespace(&c, "big").await;
    // N ConfigMaps written straight into the store (fast): two and a half batches.
    let raw = etcd_client::Client::connect(s.store.endpoints(), None)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for w in 0..16 {
        let mut raw = raw.clone();
        tasks.push(tokio::spawn(async move {
            for i in (w..N).step_by(16) {
                let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": format!("cm-{i:04}"), "namespace": "big",
                                 "uid": format!("uid-{i}"), "creationTimestamp": "2026-01-01T00:00:00Z",
                                 "labels": {"n": (i % 7).to_string()}},
                    "data": {"k": "v"}});
                raw.put(format!("/registry/configmaps/big/cm-{i:04}"), cm.to_string(), None)
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let expected: Vec<String> = (0..N).map(|i| format!("cm-{i:04}")).collect();

    // Without limit: every object, in key order, streamed (no Content-Length).
    let r = c
        .send("GET", "/api/v1/namespaces/big/configmaps", &[], vec![])
        .await;
    assert_eq!(r.code, 200);
    assert!(
        r.headers.get("content-length").is_none(),
        "a list of {N} objects is streamed: {:?}",
        r.headers
    );
    let all = r.json();
    assert_eq!(all["kind"], "ConfigMapList");
    assert_eq!(all["apiVersion"], "v1");
    assert!(
        all["metadata"].get("continue").is_none(),
        "{}",
        all["metadata"]
    );
    let rv: i64 = all["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(names(&all, "items"), expected);
    for item in all["items"].as_array().unwrap() {
        let item_rv: i64 = item["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(item_rv > 0 && item_rv <= rv, "{item_rv} vs list {rv}");
        assert_eq!(item["data"]["k"], "v");
    }

    // Pages of 100 give the same objects; the first knows how many remain, all share a revision.
    let mut paged = Vec::new();
    let mut path = "/api/v1/namespaces/big/configmaps?limit=100".to_string();
    let mut first_rv = None;
    loop {
        let r = c.send("GET", &path, &[], vec![]).await;
        assert_eq!(r.code, 200);
        assert!(
            r.headers.get("content-length").is_some(),
            "a page is sent whole"
        );
        let page = r.json();
        let page_rv = page["metadata"]["resourceVersion"].clone();
        if first_rv.is_none() {
            assert_eq!(page["metadata"]["remainingItemCount"], json!(N - 100));
        }
        assert_eq!(page_rv, *first_rv.get_or_insert(page_rv.clone()));
        assert_eq!(
            page["items"].as_array().unwrap().len(),
            100.min(N - paged.len())
        );
        paged.extend(names(&page, "items"));
        match page["metadata"]["continue"].as_str() {
            Some(t) => path = format!("/api/v1/namespaces/big/configmaps?limit=100&continue={t}"),
            None => break,
        }
    }
    assert_eq!(paged, expected);

    // A Table without limit: one row per object, PartialObjectMetadata by default.
    let table = get_table(&c, "/api/v1/namespaces/big/configmaps").await;
    assert_eq!(table["kind"], "Table");
    assert_eq!(table["columnDefinitions"][0]["name"], "Name");
    assert_eq!(names(&table, "rows"), expected);
    let row = &table["rows"][N - 1];
    assert_eq!(row["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(row["object"]["metadata"]["name"], "cm-1233");
    assert!(
        row["object"]["metadata"]["resourceVersion"].is_string(),
        "{row}"
    );
    assert!(row["object"].get("data").is_none(), "{row}");
    // Rows of a list are built without decoding managedFields; they equal the row a GET of
    // the same object as a Table gives (decoded path). Neither carries managedFields (a
    // departure from kube-apiserver, for kubectl's decoding cost: `table.rs`); the object
    // has them, and `includeObject=Object` rows keep them.
    let mut p = crate::support::pod("p0");
    p["metadata"]["labels"] = json!({"app": "x"});
    let (code, body) = c.json("POST", "/api/v1/namespaces/big/pods", &p).await;
    assert_eq!(code, 201, "{body}");
    let one = get_table(&c, "/api/v1/namespaces/big/pods/p0").await;
    let listed = get_table(&c, "/api/v1/namespaces/big/pods").await;
    assert_eq!(sans_age(&listed, 0), sans_age(&one, 0));
    assert!(
        listed["rows"][0]["object"]["metadata"]
            .get("managedFields")
            .is_none(),
        "{listed}"
    );
    assert_eq!(listed["rows"][0]["object"]["metadata"]["name"], "p0");
    let (_, stored) = c.get("/api/v1/namespaces/big/pods/p0").await;
    assert!(stored["metadata"]["managedFields"].is_array(), "{stored}");
    let whole = get_table(&c, "/api/v1/namespaces/big/pods?includeObject=Object").await;
    assert_eq!(whole["rows"][0]["object"], stored, "{whole}");
    let cm = get_table(&c, "/api/v1/namespaces/big/configmaps/cm-0007").await;
    assert_eq!(sans_age(&table, 7), sans_age(&cm, 0));
    let bare = get_table(&c, "/api/v1/namespaces/big/configmaps?includeObject=None").await;
    assert_eq!(bare["rows"].as_array().unwrap().len(), N);
    assert!(
        bare["rows"][0].get("object").is_none(),
        "{}",
        bare["rows"][0]
    );
    let objects = get_table(&c, "/api/v1/namespaces/big/configmaps?includeObject=Object").await;
    assert_eq!(objects["rows"][7]["object"]["data"]["k"], "v");

    // A selector without limit filters every batch; with a limit it counts matches.
    let (code, zeros) = c
        .get("/api/v1/namespaces/big/configmaps?labelSelector=n%3D0")
        .await;
    assert_eq!(code, 200);
    let want: Vec<String> = expected.iter().step_by(7).cloned().collect();
    assert_eq!(names(&zeros, "items"), want);
    let (_, page) = c
        .get("/api/v1/namespaces/big/configmaps?labelSelector=n%3D0&limit=150")
        .await;
    assert_eq!(names(&page, "items"), want[..150]);
    assert!(page["metadata"]["continue"].is_string());

    // A watch's initial events (sendInitialEvents) come batch by batch too: every object
    // once, in key order, then the end bookmark at the list's revision; then live events.
    let mut rx = c
        .watch("/api/v1/namespaces/big/configmaps?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true")
        .await;
    let mut initial = Vec::new();
    let end = loop {
        let ev = support::next_event(&mut rx).await;
        if ev["type"] != "ADDED" {
            break ev;
        }
        initial.push(
            ev["object"]["metadata"]["name"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    };
    assert_eq!(initial, expected);
    assert_eq!(end["type"], "BOOKMARK", "{end}");
    assert_eq!(
        end["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    let (code, _) = c
        .json(
            "POST",
            "/api/v1/namespaces/big/configmaps",
            &json!({"metadata": {"name": "zz-late"}}),
        )
        .await;
    assert_eq!(code, 201);
    let live = loop {
        let ev = support::next_event(&mut rx).await;
        if ev["type"] != "BOOKMARK" {
            break ev;
        }
    };
    assert_eq!(live["type"], "ADDED", "{live}");
    assert_eq!(live["object"]["metadata"]["name"], "zz-late");

    // Across namespaces, and as YAML (built as one document).
    let (_, every) = c.get("/api/v1/configmaps").await;
    let every: BTreeSet<String> = names(&every, "items").into_iter().collect();
    assert!(expected.iter().all(|n| every.contains(n)));
    let r = c
        .send(
            "GET",
            "/api/v1/namespaces/big/configmaps",
            &[("accept", "application/yaml")],
            vec![],
        )
        .await;
    assert_eq!(r.code, 200);
    let yaml: Value = serde_yaml_ng::from_slice(&r.body).unwrap();
    let mut with_late = expected.clone();
    with_late.push("zz-late".into());
    assert_eq!(names(&yaml, "items"), with_late);
}

/// Table lists ignore `limit` by default (kubectl's rate limiter makes every page beyond the
/// tenth cost ~0.2 s: `Config::honor_table_limit`); plain lists keep their pages; with
/// `honor_table_limit` a Table is paged as kube-apiserver pages it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_lists_are_whole_unless_the_limit_is_honoured() {
    for honor in [false, true] {
        let s = support::Server::start_full(support::Backend::Embedded, &[], |c| {
            c.honor_table_limit = honor;
        })
        .await;
        let c = s.client();
        namespace(&c, "t").await;
        for i in 0..3 {
            let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": format!("cm-{i}")}, "data": {"k": "v"}});
            let (code, body) = c.json("POST", "/api/v1/namespaces/t/configmaps", &cm).await;
            assert_eq!(code, 201, "{body}");
        }
        let all = ["cm-0", "cm-1", "cm-2"].map(String::from).to_vec();
        let first = get_table(&c, "/api/v1/namespaces/t/configmaps?limit=2").await;
        let token = first["metadata"]["continue"].as_str().map(str::to_string);
        if honor {
            assert_eq!(names(&first, "rows"), all[..2], "{first}");
            let token = token.expect("a continue token on a Table page");
            let path = format!("/api/v1/namespaces/t/configmaps?limit=2&continue={token}");
            let rest = get_table(&c, &path).await;
            assert_eq!(names(&rest, "rows"), all[2..], "{rest}");
        } else {
            assert_eq!(names(&first, "rows"), all, "{first}");
            assert_eq!(token, None, "no continue token on a whole Table: {first}");
            assert!(first["metadata"]["resourceVersion"].is_string(), "{first}");
        }
        // Plain lists are paged either way.
        let (code, page) = c.get("/api/v1/namespaces/t/configmaps?limit=2").await;
        assert_eq!(code, 200);
        assert_eq!(names(&page, "items"), all[..2], "{page}");
        assert!(page["metadata"]["continue"].is_string(), "{page}");
    }
}
