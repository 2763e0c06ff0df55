//! The embedded store's direct range against its gRPC range: on one member, the same
//! requests through both [`Kv`]s must give the same responses (header, key-values, `more`,
//! `count`) and the same errors, and lists through a [`Store`] on each must give the same
//! pages and the same [`StorageError`]s.

use serde_json::json;

use super::{Kv, RangeRequest};
use crate::storage::list::{ListOptions, prefix_end};
use crate::storage::{Key, StorageError, Store};

const PODS: &str = "/registry/pods/";

/// An embedded member in a temporary dir, and a store client on each path. Shut down by
/// [`Fixture::stop`]; the temporary dir goes with the fixture.
struct Fixture {
    embedded: crate::embedded::EmbeddedStore,
    grpc: Store,
    direct: Store,
    _dir: tempfile::TempDir,
}

impl Fixture {
    async fn start() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let embedded = crate::embedded::start(dir.path())
            .await
            .expect("embedded store");
        let grpc = Store::connect_in_process("test", embedded.in_process_api())
            .await
            .expect("in-process client");
        let direct = grpc.clone().with_direct_kv(embedded.direct_kv());
        Fixture {
            embedded,
            grpc,
            direct,
            _dir: dir,
        }
    }

    async fn stop(self) {
        drop((self.grpc, self.direct));
        self.embedded.shutdown().await;
    }

    /// Runs `req` on both paths; asserts the same outcome and returns it.
    async fn both(&self, req: RangeRequest) -> Result<etcd_client::GetResponse, String> {
        let g = self.grpc.kv.range(req.clone()).await;
        let d = self.direct.kv.range(req.clone()).await;
        assert!(matches!(self.grpc.kv, Kv::Grpc(_)));
        assert!(matches!(self.direct.kv, Kv::Direct(_)));
        match (g, d) {
            (Ok(g), Ok(d)) => {
                assert_eq!(g.0, d.0, "responses differ for {req:?}");
                Ok(d)
            }
            (Err(etcd_client::Error::GRpcStatus(g)), Err(etcd_client::Error::GRpcStatus(d))) => {
                assert_eq!(
                    (g.code(), g.message()),
                    (d.code(), d.message()),
                    "errors differ for {req:?}"
                );
                Err(d.message().to_string())
            }
            (g, d) => panic!("outcomes differ for {req:?}: gRPC {g:?}, direct {d:?}"),
        }
    }
}

fn pod(i: usize) -> (Key, serde_json::Value) {
    let name = format!("pod-{i:03}");
    let key = Key::object("pods", Some("ns"), &name);
    let obj = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "ns"}, "spec": {"nodeName": format!("n{i}")}});
    (key, obj)
}

fn span(limit: i64, revision: i64) -> RangeRequest {
    RangeRequest {
        limit,
        revision,
        ..RangeRequest::span(PODS, prefix_end(PODS))
    }
}

/// Both pages of a list compared item by item; returns the direct one.
async fn same_list(
    f: &Fixture,
    opts: &ListOptions,
) -> Result<crate::storage::list::ListPage, String> {
    let g = f.grpc.list(PODS, opts, false, |_| true).await;
    let d = f.direct.list(PODS, opts, false, |_| true).await;
    match (g, d) {
        (Ok(g), Ok(d)) => {
            let objects = |p: &crate::storage::list::ListPage| {
                p.items
                    .iter()
                    .map(|s| (s.object.clone(), s.revision))
                    .collect::<Vec<_>>()
            };
            assert_eq!(objects(&g), objects(&d), "{opts:?}");
            assert_eq!(
                (g.revision, &g.continue_token, g.remaining),
                (d.revision, &d.continue_token, d.remaining),
                "{opts:?}"
            );
            Ok(d)
        }
        (Err(g), Err(d)) => {
            assert_eq!(format!("{g:?}"), format!("{d:?}"), "{opts:?}");
            Err(format!("{d:?}"))
        }
        (g, d) => panic!("outcomes differ for {opts:?}: gRPC {g:?}, direct {d:?}"),
    }
}

#[tokio::test]
async fn direct_range_matches_grpc_range() {
    let f = Fixture::start().await;
    for i in 0..30 {
        let (key, obj) = pod(i);
        f.grpc.create(&key, &obj, &[]).await.expect("create");
    }
    let before_updates = f.grpc.current_revision().await.unwrap();
    // History: updates and deletes after `before_updates`.
    for i in 0..5 {
        let (key, mut obj) = pod(i);
        obj["spec"]["nodeName"] = json!("moved");
        let rev = f.grpc.get(&key).await.unwrap().unwrap().revision;
        f.grpc.update(&key, &obj, rev, &[]).await.expect("update");
    }
    let (gone, _) = pod(29);
    let rev = f.grpc.get(&gone).await.unwrap().unwrap().revision;
    f.grpc.delete(&gone, rev, &[]).await.expect("delete");
    let now = f.grpc.current_revision().await.unwrap();
    assert_eq!(now, before_updates + 6);

    // Unpaged, paged, at an old revision, counts, keys only, one key, a missing key,
    // serializable: the same responses.
    let all = f.both(span(0, 0)).await.unwrap();
    assert_eq!((all.kvs().len(), all.count(), all.more()), (29, 29, false));
    assert_eq!(all.header().unwrap().revision(), now);
    let page = f.both(span(10, 0)).await.unwrap();
    assert_eq!(
        (page.kvs().len(), page.count(), page.more()),
        (10, 29, true)
    );
    let old = f.both(span(7, before_updates)).await.unwrap();
    assert_eq!((old.kvs().len(), old.count(), old.more()), (7, 30, true));
    assert!(
        old.kvs()
            .iter()
            .all(|kv| kv.mod_revision() <= before_updates)
    );
    let count = f
        .both(RangeRequest {
            count_only: true,
            ..span(0, 0)
        })
        .await
        .unwrap();
    assert_eq!((count.kvs().len(), count.count()), (0, 29));
    let keys = f
        .both(RangeRequest {
            keys_only: true,
            ..span(3, 0)
        })
        .await
        .unwrap();
    assert!(keys.kvs().iter().all(|kv| kv.value().is_empty()));
    let (k0, _) = pod(0);
    let one = f.both(RangeRequest::key(k0.as_str())).await.unwrap();
    assert_eq!(one.kvs().len(), 1);
    assert!(one.kvs()[0].value().starts_with(b"{"));
    let missing = f.both(RangeRequest::key(gone.as_str())).await.unwrap();
    assert_eq!((missing.kvs().len(), missing.count()), (0, 0));
    f.both(RangeRequest {
        serializable: true,
        ..span(5, 0)
    })
    .await
    .unwrap();

    // Errors: no key, a future revision, a compacted revision — and what the storage layer
    // makes of them.
    let no_key = f.both(RangeRequest::default()).await.unwrap_err();
    assert!(no_key.contains("key is not provided"), "{no_key}");
    let future = f.both(span(0, now + 100)).await.unwrap_err();
    assert!(future.contains("future revision"), "{future}");
    f.grpc.compact(before_updates + 2).await.expect("compact");
    let compacted = f.both(span(0, before_updates)).await.unwrap_err();
    assert!(compacted.contains("compacted"), "{compacted}");

    // Lists through the storage layer: unpaged, paged with continue, at a compacted
    // revision (410 Gone upstream), at a future revision, a continue token of a page whose
    // revision was compacted.
    let unpaged = same_list(&f, &ListOptions::default()).await.unwrap();
    assert_eq!((unpaged.items.len(), unpaged.revision), (29, now));
    let mut opts = ListOptions {
        limit: Some(12),
        ..ListOptions::default()
    };
    let mut seen = 0;
    loop {
        let p = same_list(&f, &opts).await.unwrap();
        seen += p.items.len();
        match p.continue_token {
            Some(t) => {
                assert_eq!(p.remaining, Some(29 - seen as i64));
                opts.continue_token = Some(t);
            }
            None => break,
        }
    }
    assert_eq!(seen, 29);
    let gone_rev = ListOptions {
        revision: Some(before_updates),
        ..ListOptions::default()
    };
    let e = same_list(&f, &gone_rev).await.unwrap_err();
    assert!(e.starts_with("Compacted"), "{e}");
    let ahead = ListOptions {
        revision: Some(now + 100),
        ..ListOptions::default()
    };
    let e = same_list(&f, &ahead).await.unwrap_err();
    assert!(e.starts_with("FutureRevision"), "{e}");
    let first = same_list(
        &f,
        &ListOptions {
            limit: Some(5),
            ..ListOptions::default()
        },
    )
    .await
    .unwrap();
    let (k1, mut o1) = pod(1);
    o1["spec"]["nodeName"] = json!("again");
    let r1 = f.grpc.get(&k1).await.unwrap().unwrap().revision;
    let latest = f.grpc.update(&k1, &o1, r1, &[]).await.unwrap();
    f.grpc.compact(latest).await.expect("compact");
    let stale = ListOptions {
        limit: Some(5),
        continue_token: first.continue_token,
        ..ListOptions::default()
    };
    let e = same_list(&f, &stale).await.unwrap_err();
    assert!(e.starts_with("Compacted"), "{e}");

    // The other reads on the direct path.
    assert_eq!(
        f.direct.get(&k1).await.unwrap().unwrap().object["spec"]["nodeName"],
        "again"
    );
    assert_eq!(f.direct.count(PODS).await.unwrap(), 29);
    assert_eq!(f.direct.current_revision().await.unwrap(), latest);
    assert!(matches!(
        f.direct.check_revision(PODS, before_updates).await,
        Err(StorageError::Compacted { .. })
    ));
    f.stop().await;
}
