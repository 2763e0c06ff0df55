//! The embedded store's direct txn against its gRPC txn: two fresh members, one written
//! through each [`Kv`], get the same sequence of transactions; every response (revision,
//! `succeeded`, operation responses with `prev_kv`s) and every error (code and message) must
//! be the same, and so must the storage layer's creates, updates and deletes and their
//! [`StorageError`]s.

use etcd_client::proto::PbTxnResponse;
use etcd_client::{Compare, CompareOp, GetOptions, PutOptions, Txn, TxnOp};
use serde_json::json;

use super::Kv;
use crate::storage::{Guard, Key, Marker, StorageError, Store};

/// One embedded member in a temporary dir with a store client on it. Shut down by
/// [`Member::stop`]; the temporary dir goes with it.
struct Member {
    embedded: crate::embedded::EmbeddedStore,
    store: Store,
    _dir: tempfile::TempDir,
}

impl Member {
    async fn start(direct: bool) -> Member {
        let dir = tempfile::tempdir().expect("temp dir");
        let embedded = crate::embedded::start(dir.path())
            .await
            .expect("embedded store");
        let mut store = Store::connect_in_process("test", embedded.in_process_api())
            .await
            .expect("in-process client");
        if direct {
            store = store.with_direct_kv(embedded.direct_kv());
            assert!(matches!(store.kv, Kv::Direct(_)));
        } else {
            assert!(matches!(store.kv, Kv::Grpc(_)));
        }
        Member {
            embedded,
            store,
            _dir: dir,
        }
    }

    async fn stop(self) {
        drop(self.store);
        self.embedded.shutdown().await;
    }
}

/// A response without the member and cluster ids and terms in its headers, the operations'
/// too (they differ between the two members); the revisions stay.
fn comparable(mut r: PbTxnResponse) -> PbTxnResponse {
    use etcd_client::proto::PbTxnOpResponse as Op;
    fn clear(h: &mut Option<etcd_client::proto::PbResponseHeader>) {
        if let Some(h) = h.as_mut() {
            h.cluster_id = 0;
            h.member_id = 0;
            h.raft_term = 0;
        }
    }
    clear(&mut r.header);
    for op in &mut r.responses {
        match op.response.take() {
            Some(Op::ResponseRange(mut g)) => {
                clear(&mut g.header);
                op.response = Some(Op::ResponseRange(g));
            }
            Some(Op::ResponsePut(mut p)) => {
                clear(&mut p.header);
                op.response = Some(Op::ResponsePut(p));
            }
            Some(Op::ResponseDeleteRange(mut d)) => {
                clear(&mut d.header);
                op.response = Some(Op::ResponseDeleteRange(d));
            }
            Some(Op::ResponseTxn(t)) => op.response = Some(Op::ResponseTxn(comparable(t))),
            None => {}
        }
    }
    r
}

/// Runs `txn` on both members; asserts the same outcome and returns it.
async fn both(grpc: &Member, direct: &Member, txn: Txn) -> Result<PbTxnResponse, tonic::Status> {
    let what = format!("{txn:?}");
    let g = grpc.store.kv.txn(txn.clone()).await;
    let d = direct.store.kv.txn(txn).await;
    match (g, d) {
        (Ok(g), Ok(d)) => {
            let d = comparable(d.0);
            assert_eq!(comparable(g.0), d, "responses differ for {what}");
            Ok(d)
        }
        (Err(etcd_client::Error::GRpcStatus(g)), Err(etcd_client::Error::GRpcStatus(d))) => {
            assert_eq!(
                (g.code(), g.message()),
                (d.code(), d.message()),
                "errors differ for {what}"
            );
            Err(d)
        }
        (g, d) => panic!("outcomes differ for {what}: gRPC {g:?}, direct {d:?}"),
    }
}

fn create(key: &str, value: &str) -> Txn {
    Txn::new()
        .when([Compare::create_revision(key, CompareOp::Equal, 0)])
        .and_then([TxnOp::put(
            key,
            value,
            Some(PutOptions::new().with_prev_key()),
        )])
        .or_else([TxnOp::get(key, None)])
}

#[tokio::test]
async fn direct_txn_matches_grpc_txn() {
    let grpc = Member::start(false).await;
    let direct = Member::start(true).await;

    // A create that succeeds, then fails its compare and answers with the failure branch.
    let first = both(&grpc, &direct, create("/k/a", "one")).await.unwrap();
    assert!(first.succeeded);
    let rev = first.header.as_ref().unwrap().revision;
    let again = both(&grpc, &direct, create("/k/a", "two")).await.unwrap();
    assert!(!again.succeeded);
    assert_eq!(again.header.as_ref().unwrap().revision, rev);
    assert_eq!(values(&again), ["one"]);

    // An update on the right revision with prev_kv, then a stale one; a delete with prev_kv.
    let update = |expected: i64, value: &str| {
        Txn::new()
            .when([Compare::mod_revision("/k/a", CompareOp::Equal, expected)])
            .and_then([TxnOp::put(
                "/k/a",
                value,
                Some(PutOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get("/k/a", None)])
    };
    let up = both(&grpc, &direct, update(rev, "three")).await.unwrap();
    assert!(up.succeeded);
    assert_eq!(values(&up), ["one"], "prev_kv");
    let stale = both(&grpc, &direct, update(rev, "four")).await.unwrap();
    assert!(!stale.succeeded);
    assert_eq!(values(&stale), ["three"]);
    let del = Txn::new().and_then([
        TxnOp::put("/k/b", "x", None),
        TxnOp::delete(
            "/k/",
            Some(
                etcd_client::DeleteOptions::new()
                    .with_prefix()
                    .with_prev_key(),
            ),
        ),
        TxnOp::get("/k/", Some(GetOptions::new().with_prefix())),
    ]);
    let del = both(&grpc, &direct, del).await.unwrap();
    assert!(del.succeeded);
    // The put's (absent) prev_kv, the deleted "three" and "x", an empty range after.
    assert_eq!(values(&del), ["three", "x"]);

    // Errors: an empty key, too many operations, a value over the request limit (the
    // handler's check), a message over the gRPC decoder's limit (tonic's check, repeated by
    // the direct path).
    let e = both(
        &grpc,
        &direct,
        Txn::new().and_then([TxnOp::put("", "v", None)]),
    )
    .await
    .unwrap_err();
    assert!(e.message().contains("key is not provided"), "{e:?}");
    let many: Vec<TxnOp> = (0..129)
        .map(|i| TxnOp::put(format!("/m/{i}"), "v", None))
        .collect();
    let e = both(&grpc, &direct, Txn::new().and_then(many))
        .await
        .unwrap_err();
    assert!(e.message().contains("too many operations"), "{e:?}");
    let big = "x".repeat(1600 * 1024);
    let e = both(&grpc, &direct, create("/k/big", &big))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(e.message().contains("request is too large"), "{e:?}");
    let huge = "x".repeat(2100 * 1024);
    let e = both(&grpc, &direct, create("/k/huge", &huge))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::OutOfRange, "{e:?}");
    // Nothing of the refused requests was written, on either member.
    let after = both(
        &grpc,
        &direct,
        Txn::new().and_then([TxnOp::get("/", Some(GetOptions::new().with_prefix()))]),
    )
    .await
    .unwrap();
    assert_eq!(
        after.header.as_ref().unwrap().revision,
        del.header.as_ref().unwrap().revision
    );

    // The storage layer's writes and their errors.
    let ns = Key::object("namespaces", None, "ns");
    let pod = Key::object("pods", Some("ns"), "p");
    let obj =
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns"}});
    let mut outcomes = Vec::new();
    for m in [&grpc, &direct] {
        let s = &m.store;
        let ns_rev = s
            .create(&ns, &json!({"metadata": {"name": "ns"}}), &[])
            .await;
        let ns_rev = ns_rev.expect("namespace");
        let guard = Guard {
            key: ns.clone(),
            revision: ns_rev,
        };
        let marker = Marker::Claim("/registry/ranges/ip/10.0.0.1".into(), "p".into());
        let created = s
            .create_guarded(&pod, &obj, std::slice::from_ref(&marker), Some(&guard))
            .await
            .expect("create");
        let exists = s.create(&pod, &obj, &[]).await;
        let stale_guard = Guard {
            key: ns.clone(),
            revision: ns_rev - 1,
        };
        let other = Key::object("pods", Some("ns"), "q");
        let guard_changed = s
            .create_guarded(&other, &obj, &[], Some(&stale_guard))
            .await;
        let taken = s.create(&other, &obj, std::slice::from_ref(&marker)).await;
        let updated = s.update(&pod, &obj, created, &[]).await.expect("update");
        let modified = s.update(&pod, &obj, created, &[]).await;
        let release = Marker::Release("/registry/ranges/ip/10.0.0.1".into());
        let deleted = s.delete(&pod, updated, &[release]).await;
        let not_found = s.delete(&pod, updated, &[]).await;
        let stored = s.get(&pod).await.expect("get").map(|o| o.object);
        let markers = s
            .keys_with_prefix("/registry/ranges/")
            .await
            .expect("markers");
        outcomes.push(format!(
            "{created} {exists:?} {guard_changed:?} {taken:?} {updated} {modified:?} \
             {deleted:?} {not_found:?} {stored:?} {markers:?}"
        ));
        assert!(matches!(exists, Err(StorageError::Exists(_))), "{exists:?}");
        assert!(matches!(guard_changed, Err(StorageError::GuardChanged(_))));
        assert!(
            matches!(taken, Err(StorageError::MarkerTaken(_))),
            "{taken:?}"
        );
        assert!(matches!(modified, Err(StorageError::Modified { .. })));
        assert!(deleted.is_ok(), "{deleted:?}");
        assert!(matches!(not_found, Err(StorageError::NotFound(_))));
        assert_eq!(stored, None);
        assert!(
            markers.is_empty(),
            "released marker still held: {markers:?}"
        );
    }
    assert_eq!(outcomes[0], outcomes[1]);

    grpc.stop().await;
    direct.stop().await;
}

/// Every value in a txn's operation responses (ranges' key-values, puts' `prev_kv`,
/// deletes' `prev_kvs`), as text.
fn values(r: &PbTxnResponse) -> Vec<String> {
    use etcd_client::proto::PbTxnOpResponse as Op;
    let text =
        |kv: &etcd_client::proto::PbKeyValue| String::from_utf8_lossy(&kv.value).into_owned();
    r.responses
        .iter()
        .flat_map(|op| match op.response.as_ref().expect("op response") {
            Op::ResponseRange(g) => g.kvs.iter().map(text).collect::<Vec<_>>(),
            Op::ResponsePut(p) => p.prev_kv.iter().map(text).collect(),
            Op::ResponseDeleteRange(d) => d.prev_kvs.iter().map(text).collect(),
            Op::ResponseTxn(t) => values(t),
        })
        .collect()
}
