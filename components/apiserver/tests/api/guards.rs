//! The storage layer's guarded creates (a key whose revision must be unchanged in the same
//! transaction: the namespace of a namespaced create) and the serializable read updates use.

use kubelab_apiserver::storage::{Guard, Key, StorageError, Store};
use serde_json::json;

use crate::support::{self, Etcd};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guarded_create_writes_only_while_the_guard_is_unchanged() {
    if support::missing(support::ETCD) {
        return;
    }
    let etcd = Etcd::start();
    let store = Store::connect(std::slice::from_ref(&etcd.endpoint))
        .await
        .unwrap();
    let ns = Key::object("namespaces", None, "g");
    let rev = store
        .create(&ns, &json!({"metadata": {"name": "g"}}), &[])
        .await
        .unwrap();
    let guard = Guard {
        key: ns.clone(),
        revision: rev,
    };
    let a = Key::object("pods", Some("g"), "a");
    store
        .create_guarded(&a, &json!({"metadata": {"name": "a"}}), &[], Some(&guard))
        .await
        .unwrap();
    // An existing object with a valid guard is still "exists", not a guard failure.
    match store
        .create_guarded(&a, &json!({"metadata": {"name": "a"}}), &[], Some(&guard))
        .await
    {
        Err(StorageError::Exists(k)) => assert_eq!(k, a.to_string()),
        other => panic!("expected Exists, got {other:?}"),
    }
    // The namespace changes (say, marked terminating): the old guard fails, nothing is written.
    let rev2 = store
        .update(
            &ns,
            &json!({"metadata": {"name": "g", "deletionTimestamp": "2026-01-01T00:00:00Z"}}),
            rev,
            &[],
        )
        .await
        .unwrap();
    let b = Key::object("pods", Some("g"), "b");
    match store
        .create_guarded(&b, &json!({"metadata": {"name": "b"}}), &[], Some(&guard))
        .await
    {
        Err(StorageError::GuardChanged(k)) => assert_eq!(k, ns.to_string()),
        other => panic!("expected GuardChanged, got {other:?}"),
    }
    assert!(store.get(&b).await.unwrap().is_none());
    // Deleted: the guard fails too.
    store.delete(&ns, rev2, &[]).await.unwrap();
    let gone = Guard {
        key: ns.clone(),
        revision: rev2,
    };
    assert!(matches!(
        store
            .create_guarded(&b, &json!({"metadata": {"name": "b"}}), &[], Some(&gone))
            .await,
        Err(StorageError::GuardChanged(_))
    ));
    assert!(store.get(&b).await.unwrap().is_none());

    // The serializable read sees the object as the linearizable one does.
    let fast = store.get_serializable(&a).await.unwrap().unwrap();
    let slow = store.get(&a).await.unwrap().unwrap();
    assert_eq!(fast.revision, slow.revision);
    assert_eq!(fast.object, slow.object);
    assert!(store.get_serializable(&b).await.unwrap().is_none());

    // The memo of guard revisions.
    assert_eq!(store.recall(&ns), None);
    store.remember(&ns, 42);
    assert_eq!(store.clone().recall(&ns), Some(42), "clones share the memo");
    store.forget(&ns);
    assert_eq!(store.recall(&ns), None);
}
