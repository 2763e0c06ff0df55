//! Unit tests of the MVCC state machine: revisions, ranges, txn, compaction, leases, history.

use super::*;
use crate::types::*;

fn put(m: &mut Mvcc, k: &str, v: &str) -> Response {
    let p = Put {
        key: k.into(),
        value: v.into(),
        prev_kv: true,
        ..Default::default()
    };
    m.apply(&Request::Put(p)).0
}

fn get(m: &Mvcc, k: &str, rev: i64) -> Result<RangeResult, ApplyError> {
    m.range(&Range {
        key: k.into(),
        revision: rev,
        ..Default::default()
    })
}

fn prefix(m: &Mvcc, p: &str) -> RangeResult {
    let mut end = p.as_bytes().to_vec();
    *end.last_mut().unwrap() += 1;
    m.range(&Range {
        key: p.into(),
        range_end: end,
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn revisions_versions_and_create_revision_follow_etcd() {
    let mut m = Mvcc::default();
    assert_eq!(m.revision(), 1, "an empty store is at revision 1, as etcd");
    assert_eq!(put(&mut m, "a", "1").revision, 2);
    assert_eq!(put(&mut m, "a", "2").revision, 3);
    let kv = &get(&m, "a", 0).unwrap().kvs[0];
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (2, 3, 2));
    assert_eq!(kv.value, b"2");
    // Delete then recreate: a new generation restarts version and create_revision.
    let del = DeleteRange {
        key: "a".into(),
        prev_kv: true,
        ..Default::default()
    };
    let (resp, events) = m.apply(&Request::DeleteRange(del));
    assert_eq!(resp.result, Ok(Outcome::Delete(1, vec![kv.clone()])));
    assert_eq!(events[0].kind, EventKind::Delete);
    assert_eq!(events[0].kv.mod_revision, 4);
    put(&mut m, "a", "3");
    let kv = &get(&m, "a", 0).unwrap().kvs[0];
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (5, 5, 1));
    // Past revisions still read their value.
    assert_eq!(get(&m, "a", 2).unwrap().kvs[0].value, b"1");
    assert!(get(&m, "a", 4).unwrap().kvs.is_empty());
    assert_eq!(get(&m, "a", 6), Err(ApplyError::FutureRevision));
}

#[test]
fn deleting_nothing_does_not_bump_the_revision() {
    let mut m = Mvcc::default();
    let (r, ev) = m.apply(&Request::DeleteRange(DeleteRange {
        key: "x".into(),
        ..Default::default()
    }));
    assert_eq!((r.revision, ev.len()), (1, 0));
}

#[test]
fn put_returns_prev_kv_and_ranges_honour_limit_count_and_keys_only() {
    let mut m = Mvcc::default();
    for k in ["p/a", "p/b", "p/c", "q"] {
        put(&mut m, k, "v");
    }
    let r = put(&mut m, "p/a", "w");
    match r.result {
        Ok(Outcome::Put(Some(prev))) => assert_eq!(prev.value, b"v"),
        other => panic!("unexpected {other:?}"),
    }
    let all = prefix(&m, "p/");
    assert_eq!(all.count, 3);
    let keys: Vec<_> = all.kvs.iter().map(|k| k.key.clone()).collect();
    assert_eq!(
        keys,
        vec![b"p/a".to_vec(), b"p/b".to_vec(), b"p/c".to_vec()]
    );
    let lim = m
        .range(&Range {
            key: "p/".into(),
            range_end: "p0".into(),
            limit: 2,
            ..Default::default()
        })
        .unwrap();
    assert_eq!((lim.kvs.len(), lim.count, lim.more), (2, 3, true));
    let co = m
        .range(&Range {
            key: "p/".into(),
            range_end: "p0".into(),
            count_only: true,
            ..Default::default()
        })
        .unwrap();
    assert_eq!((co.kvs.len(), co.count, co.more), (0, 3, false));
    let ko = m
        .range(&Range {
            key: "p/".into(),
            range_end: "p0".into(),
            keys_only: true,
            ..Default::default()
        })
        .unwrap();
    assert!(ko.kvs.iter().all(|kv| kv.value.is_empty()));
    // `\0` as both key and end selects every key.
    let every = m
        .range(&Range {
            key: vec![0],
            range_end: vec![0],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(every.count, 4);
    // Descending sort by key with a limit returns the last keys.
    let desc = m
        .range(&Range {
            key: "p/".into(),
            range_end: "p0".into(),
            limit: 1,
            sort_order: SortOrder::Descend,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(desc.kvs[0].key, b"p/c");
}

#[test]
fn txn_compares_pick_the_branch_and_share_one_revision() {
    let mut m = Mvcc::default();
    put(&mut m, "k", "v1");
    let txn = |expect: i64| {
        Request::Txn(Txn {
            compare: vec![Compare {
                key: "k".into(),
                range_end: vec![],
                result: CompareResult::Equal,
                target: CompareTarget::Mod(expect),
            }],
            success: vec![
                Op::Put(Put {
                    key: "k".into(),
                    value: "v2".into(),
                    ..Default::default()
                }),
                Op::Put(Put {
                    key: "other".into(),
                    value: "o".into(),
                    ..Default::default()
                }),
                Op::Range(Range {
                    key: "k".into(),
                    ..Default::default()
                }),
            ],
            failure: vec![Op::Range(Range {
                key: "k".into(),
                ..Default::default()
            })],
        })
    };
    let (resp, events) = m.apply(&txn(2));
    assert_eq!(resp.revision, 3, "both puts share revision 3");
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e.kv.mod_revision == 3));
    let Ok(Outcome::Txn(t)) = resp.result else {
        panic!("txn failed")
    };
    assert!(t.succeeded);
    let OpResult::Range(r) = &t.responses[2] else {
        panic!("not a range")
    };
    assert_eq!(
        r.kvs[0].value, b"v2",
        "a read in a txn sees the txn's own writes"
    );
    // The same compare is now stale: the failure branch runs and nothing is written.
    let (resp, events) = m.apply(&txn(2));
    assert_eq!((resp.revision, events.len()), (3, 0));
    let Ok(Outcome::Txn(t)) = resp.result else {
        panic!("txn failed")
    };
    assert!(!t.succeeded);
    // Comparing the value of a missing key fails; its version compares as 0.
    let missing = |target| Compare {
        key: "nope".into(),
        range_end: vec![],
        result: CompareResult::Equal,
        target,
    };
    assert!(!m.compare(&missing(CompareTarget::Value(vec![]))));
    assert!(m.compare(&missing(CompareTarget::Version(0))));
}

#[test]
fn failing_txn_changes_nothing() {
    let mut m = Mvcc::default();
    let t = Txn {
        compare: vec![],
        success: vec![
            Op::Put(Put {
                key: "a".into(),
                value: "1".into(),
                ..Default::default()
            }),
            Op::Put(Put {
                key: "b".into(),
                lease: 99,
                ..Default::default()
            }),
        ],
        failure: vec![],
    };
    let (resp, events) = m.apply(&Request::Txn(t));
    assert_eq!(resp.result, Err(ApplyError::LeaseNotFound));
    assert_eq!((resp.revision, events.len(), m.key_count()), (1, 0, 0));
    let dup = Txn {
        success: vec![
            Op::Put(Put {
                key: "a".into(),
                ..Default::default()
            }),
            Op::Put(Put {
                key: "a".into(),
                ..Default::default()
            }),
        ],
        ..Default::default()
    };
    assert_eq!(
        m.apply(&Request::Txn(dup)).0.result,
        Err(ApplyError::DuplicateKey)
    );
}

#[test]
fn compaction_keeps_what_reads_at_or_above_it_see() {
    let mut m = Mvcc::default();
    put(&mut m, "a", "1"); // 2
    put(&mut m, "a", "2"); // 3
    put(&mut m, "b", "1"); // 4
    m.apply(&Request::DeleteRange(DeleteRange {
        key: "b".into(),
        ..Default::default()
    })); // 5
    put(&mut m, "a", "3"); // 6
    assert_eq!(
        m.apply(&Request::Compact(5)).0.result,
        Ok(Outcome::Compacted)
    );
    assert_eq!(get(&m, "a", 4), Err(ApplyError::Compacted));
    assert_eq!(get(&m, "a", 5).unwrap().kvs[0].value, b"2");
    assert_eq!(get(&m, "a", 0).unwrap().kvs[0].value, b"3");
    assert!(
        !m.keys.map.contains_key(b"b".as_slice()),
        "a deleted key's history is dropped"
    );
    assert_eq!(m.keys.map[b"a".as_slice()].len(), 2);
    assert_eq!(
        m.apply(&Request::Compact(5)).0.result,
        Err(ApplyError::Compacted)
    );
    assert_eq!(
        m.apply(&Request::Compact(7)).0.result,
        Err(ApplyError::FutureRevision)
    );
    assert_eq!(m.history(b"a", b"", 4), Err(ApplyError::Compacted));
    // The version counter survives compaction.
    put(&mut m, "a", "4");
    assert_eq!(get(&m, "a", 0).unwrap().kvs[0].version, 4);
}

#[test]
fn history_is_ordered_grouped_by_revision_and_carries_prev_kv() {
    let mut m = Mvcc::default();
    put(&mut m, "w/a", "1"); // 2
    put(&mut m, "x", "1"); // 3
    let t = Txn {
        success: vec![
            Op::Put(Put {
                key: "w/b".into(),
                value: "1".into(),
                ..Default::default()
            }),
            Op::Put(Put {
                key: "w/a".into(),
                value: "2".into(),
                ..Default::default()
            }),
        ],
        ..Default::default()
    };
    m.apply(&Request::Txn(t)); // 4
    m.apply(&Request::DeleteRange(DeleteRange {
        key: "w/a".into(),
        ..Default::default()
    })); // 5
    let h = m.history(b"w/", b"w0", 2).unwrap();
    let revs: Vec<i64> = h.iter().map(|(r, _)| *r).collect();
    assert_eq!(revs, vec![2, 4, 5]);
    assert_eq!(h[1].1.len(), 2, "a txn's events come together");
    assert_eq!(h[1].1[0].kv.key, b"w/b", "in sub-revision order");
    assert_eq!(h[1].1[1].prev_kv.as_ref().unwrap().value, b"1");
    assert_eq!(h[2].1[0].kind, EventKind::Delete);
    assert_eq!(h[2].1[0].prev_kv.as_ref().unwrap().value, b"2");
    assert_eq!(m.history(b"w/", b"w0", 6).unwrap(), vec![]);
}

#[test]
fn leases_attach_move_and_revoke_delete_their_keys_in_one_revision() {
    let mut m = Mvcc::default();
    assert_eq!(
        m.apply(&Request::LeaseGrant { id: 7, ttl: 10 }).0.revision,
        1
    );
    assert_eq!(
        m.apply(&Request::LeaseGrant { id: 7, ttl: 10 }).0.result,
        Err(ApplyError::LeaseExists)
    );
    m.apply(&Request::LeaseGrant { id: 8, ttl: 10 });
    for k in ["a", "b"] {
        let p = Put {
            key: k.into(),
            value: "v".into(),
            lease: 7,
            ..Default::default()
        };
        m.apply(&Request::Put(p));
    }
    // Keep the value, keep the lease.
    let keep = Put {
        key: "a".into(),
        ignore_value: true,
        ignore_lease: true,
        ..Default::default()
    };
    m.apply(&Request::Put(keep));
    assert_eq!(get(&m, "a", 0).unwrap().kvs[0].lease, 7);
    assert_eq!(get(&m, "a", 0).unwrap().kvs[0].value, b"v");
    // Moving "b" to lease 8 detaches it from 7.
    let mv = Put {
        key: "b".into(),
        value: "v".into(),
        lease: 8,
        ..Default::default()
    };
    m.apply(&Request::Put(mv));
    assert_eq!(m.leases()[&7].keys.len(), 1);
    let rev = m.revision();
    let (resp, events) = m.apply(&Request::LeaseRevoke(7));
    assert_eq!(resp.result, Ok(Outcome::LeaseRevoked));
    assert_eq!((resp.revision, events.len()), (rev + 1, 1));
    assert!(get(&m, "a", 0).unwrap().kvs.is_empty());
    assert_eq!(get(&m, "b", 0).unwrap().count, 1);
    assert_eq!(
        m.apply(&Request::LeaseRevoke(7)).0.result,
        Err(ApplyError::LeaseNotFound)
    );
    let bad = Put {
        key: "zz".into(),
        ignore_value: true,
        ..Default::default()
    };
    assert_eq!(
        m.apply(&Request::Put(bad)).0.result,
        Err(ApplyError::KeyNotFound)
    );
    // Deleting a key detaches it from its lease.
    m.apply(&Request::DeleteRange(DeleteRange {
        key: "b".into(),
        ..Default::default()
    }));
    assert!(m.leases()[&8].keys.is_empty());
}

#[test]
fn key_range_helpers_follow_etcd_semantics() {
    assert!(in_range(b"a", b"", b"a"));
    assert!(!in_range(b"a", b"", b"ab"));
    assert!(in_range(b"a", b"b", b"ab"));
    assert!(!in_range(b"a", b"b", b"b"));
    assert!(in_range(b"a", &[0], b"zzz"));
    assert!(in_range(&[0], &[0], b""));
    let mut m = Mvcc::default();
    put(&mut m, "b", "1");
    // An inverted range selects nothing rather than panicking.
    let r = m.range(&Range {
        key: "c".into(),
        range_end: "a".into(),
        ..Default::default()
    });
    assert_eq!(r.unwrap().count, 0);
}

#[test]
fn a_batch_applies_each_request_with_its_own_revision() {
    let mut m = Mvcc::default();
    let p = |k: &str, v: &str| {
        Request::Put(Put {
            key: k.into(),
            value: v.into(),
            ..Default::default()
        })
    };
    let batch = Request::Batch(vec![
        p("a", "1"),
        p("b", "1"),
        Request::Put(Put {
            key: "c".into(),
            lease: 42,
            ..Default::default()
        }), // fails alone
        p("a", "2"),
    ]);
    let mut announced = Vec::new();
    let resp = m.apply_entry(&batch, |rev, evs| announced.push((rev, evs.len())));
    let Ok(Outcome::Batch(rs)) = resp.result else {
        panic!("not a batch response")
    };
    let revs: Vec<i64> = rs.iter().map(|r| r.revision).collect();
    assert_eq!(
        revs,
        vec![2, 3, 3, 4],
        "a failed request in a batch writes nothing"
    );
    assert_eq!(rs[2].result, Err(ApplyError::LeaseNotFound));
    assert_eq!(
        announced,
        vec![(2, 1), (3, 1), (4, 1)],
        "one announcement per revision"
    );
    assert_eq!(get(&m, "a", 0).unwrap().kvs[0].version, 2);
}
