//! The checker on small histories known to be linearizable and known not to be.

use std::time::Duration;

use crate::check::{CheckOptions, check, partition};
use crate::history::{
    CmpOp, Compare, CompareTarget, History, Input, KeyValue, Output, TxnOp, TxnOpOutput,
};
use crate::wgl::SearchResult;

fn opts() -> CheckOptions {
    CheckOptions {
        max_time_per_partition: Duration::from_secs(10),
        ..CheckOptions::default()
    }
}

fn put(k: &str, v: &str) -> Input {
    Input::Put {
        key: k.into(),
        value: v.into(),
    }
}

fn get(k: &str) -> Input {
    Input::Get { key: k.into() }
}

fn kv(v: &str, version: i64, rev: i64, create: i64) -> Option<KeyValue> {
    Some(KeyValue {
        value: v.into(),
        version,
        mod_revision: rev,
        create_revision: create,
    })
}

fn read(kv: Option<KeyValue>, revision: i64) -> Output {
    Output::Get { kv, revision }
}

fn assert_linearizable(h: &History) {
    let report = check(h, opts());
    assert!(report.is_linearizable(), "expected linearizable:\n{report}");
}

fn assert_violation(h: &History) -> String {
    let report = check(h, opts());
    assert!(!report.is_linearizable(), "expected a violation:\n{report}");
    assert!(
        report
            .partitions
            .iter()
            .any(|p| matches!(p.result, SearchResult::Violation(_)))
    );
    report.to_string()
}

#[test]
fn sequential_history_is_linearizable() {
    let mut h = History::new();
    h.push_ok(0, 0, 10, put("a", "1"), Output::Put { revision: 2 });
    h.push_ok(1, 20, 30, get("a"), read(kv("1", 1, 2, 2), 2));
    h.push_ok(0, 40, 50, put("a", "2"), Output::Put { revision: 3 });
    h.push_ok(1, 60, 70, get("a"), read(kv("2", 2, 3, 2), 3));
    assert_linearizable(&h);
}

#[test]
fn concurrent_read_may_see_either_value() {
    let mut h = History::new();
    h.push_ok(0, 0, 10, put("a", "1"), Output::Put { revision: 2 });
    h.push_ok(0, 20, 100, put("a", "2"), Output::Put { revision: 3 });
    h.push_ok(1, 30, 40, get("a"), read(kv("1", 1, 2, 2), 2));
    h.push_ok(2, 50, 60, get("a"), read(kv("2", 2, 3, 2), 3));
    assert_linearizable(&h);
}

#[test]
fn stale_read_is_a_violation() {
    let mut h = History::new();
    h.push_ok(0, 0, 10, put("a", "1"), Output::Put { revision: 2 });
    h.push_ok(0, 20, 30, put("a", "2"), Output::Put { revision: 3 });
    // Invoked after the second put returned, yet sees the first value.
    h.push_ok(1, 40, 50, get("a"), read(kv("1", 1, 2, 2), 2));
    let text = assert_violation(&h);
    // Shown with `--no-capture`: what a failing run prints.
    println!("{text}");
    assert!(
        text.contains("get(a)") && text.contains("ILLEGAL"),
        "{text}"
    );
}

#[test]
fn lost_write_is_a_violation() {
    let mut h = History::new();
    h.push_ok(0, 0, 10, put("a", "1"), Output::Put { revision: 2 });
    // The acknowledged write is gone: a later read finds the key absent.
    h.push_ok(1, 20, 30, get("a"), read(None, 2));
    assert_violation(&h);
}

#[test]
fn reordered_writes_are_a_violation() {
    let mut h = History::new();
    h.push_ok(0, 0, 10, put("a", "1"), Output::Put { revision: 2 });
    h.push_ok(1, 20, 30, put("a", "2"), Output::Put { revision: 3 });
    // Version 2 with the first value: "2" was applied before "1".
    h.push_ok(2, 40, 50, get("a"), read(kv("1", 2, 3, 2), 3));
    assert_violation(&h);
}

#[test]
fn non_atomic_txn_is_a_violation() {
    let mut h = History::new();
    let txn = Input::Txn {
        compares: vec![],
        success: vec![
            TxnOp::Put {
                key: "a".into(),
                value: "a1".into(),
            },
            TxnOp::Put {
                key: "b".into(),
                value: "b1".into(),
            },
        ],
        failure: vec![],
    };
    h.push_ok(
        0,
        0,
        10,
        txn,
        Output::Txn {
            succeeded: true,
            results: vec![TxnOpOutput::Put; 2],
            revision: 2,
        },
    );
    h.push_ok(1, 20, 30, get("a"), read(kv("a1", 1, 2, 2), 2));
    // Half the transaction is missing.
    h.push_ok(1, 40, 50, get("b"), read(None, 2));
    let report = check(&h, opts());
    assert_eq!(
        report.partitions.len(),
        1,
        "a two-key txn joins the keys' partitions"
    );
    assert_violation(&h);
}

#[test]
fn txn_branch_must_match_compare() {
    let cas = |expect: &str, new: &str| Input::Txn {
        compares: vec![Compare {
            key: "a".into(),
            target: CompareTarget::Value(expect.into()),
            op: CmpOp::Equal,
        }],
        success: vec![TxnOp::Put {
            key: "a".into(),
            value: new.into(),
        }],
        failure: vec![TxnOp::Get { key: "a".into() }],
    };
    let mut ok = History::new();
    ok.push_ok(0, 0, 10, put("a", "1"), Output::Put { revision: 2 });
    ok.push_ok(
        1,
        20,
        30,
        cas("1", "2"),
        Output::Txn {
            succeeded: true,
            results: vec![TxnOpOutput::Put],
            revision: 3,
        },
    );
    assert_linearizable(&ok);

    let mut bad = History::new();
    bad.push_ok(0, 0, 10, put("a", "1"), Output::Put { revision: 2 });
    // Claims the compare failed although "1" is the only value ever written.
    bad.push_ok(
        1,
        20,
        30,
        cas("1", "2"),
        Output::Txn {
            succeeded: false,
            results: vec![TxnOpOutput::Get(kv("1", 1, 2, 2))],
            revision: 2,
        },
    );
    assert_violation(&bad);
}

#[test]
fn indefinite_write_may_or_may_not_take_effect() {
    let mut took = History::new();
    took.push_indefinite(0, 0, put("a", "1"));
    took.push_ok(1, 20, 30, get("a"), read(kv("1", 1, 2, 2), 2));
    assert_linearizable(&took);

    let mut did_not = History::new();
    did_not.push_indefinite(0, 0, put("a", "1"));
    did_not.push_ok(1, 20, 30, get("a"), read(None, 1));
    assert_linearizable(&did_not);

    let mut late = History::new();
    late.push_indefinite(0, 0, put("a", "1"));
    late.push_ok(1, 20, 30, get("a"), read(None, 1));
    late.push_ok(1, 40, 50, get("a"), read(kv("1", 1, 2, 2), 2));
    assert_linearizable(&late);

    // But it cannot be undone once seen.
    let mut flicker = History::new();
    flicker.push_indefinite(0, 0, put("a", "1"));
    flicker.push_ok(1, 20, 30, get("a"), read(kv("1", 1, 2, 2), 2));
    flicker.push_ok(1, 40, 50, get("a"), read(None, 2));
    assert_violation(&flicker);
}

#[test]
fn write_cannot_take_effect_before_its_invocation() {
    let mut h = History::new();
    h.push_ok(1, 0, 10, get("a"), read(kv("1", 1, 2, 2), 2));
    h.push_indefinite(0, 20, put("a", "1"));
    assert_violation(&h);
}

#[test]
fn independent_keys_are_separate_partitions() {
    let mut h = History::new();
    h.push_ok(0, 0, 10, put("a", "1"), Output::Put { revision: 2 });
    h.push_ok(0, 0, 10, put("b", "1"), Output::Put { revision: 3 });
    h.push_ok(0, 0, 10, put("c", "1"), Output::Put { revision: 4 });
    let txn = Input::Txn {
        compares: vec![Compare {
            key: "b".into(),
            target: CompareTarget::Version(1),
            op: CmpOp::Equal,
        }],
        success: vec![TxnOp::Put {
            key: "c".into(),
            value: "2".into(),
        }],
        failure: vec![],
    };
    h.push_indefinite(1, 20, txn);
    let parts = partition(&h);
    let keys: Vec<Vec<String>> = parts.into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        vec![
            vec!["a".to_string()],
            vec!["b".to_string(), "c".to_string()]
        ]
    );
}

#[test]
fn many_concurrent_clients_stay_tractable() {
    // 8 clients, 2000 operations on one key with heavy overlap, every read consistent with a
    // sequential execution: the memoized search must finish quickly.
    let mut h = History::new();
    let mut version = 0;
    let mut value = String::new();
    for i in 0..2000u64 {
        let client = (i % 8) as usize;
        let (call, ret) = (i * 10, i * 10 + 75);
        if i % 3 == 0 {
            version += 1;
            value = format!("v{i}");
            let rev = i as i64 + 2;
            h.push_ok(
                client,
                call,
                ret,
                put("a", &value),
                Output::Put { revision: rev },
            );
            let _ = rev;
        } else if version == 0 {
            h.push_ok(client, call, ret, get("a"), read(None, 1));
        } else {
            let rev = (i - i % 3) as i64 + 2;
            h.push_ok(
                client,
                call,
                ret,
                get("a"),
                read(kv(&value, version, rev, 2), rev),
            );
        }
    }
    let started = std::time::Instant::now();
    assert_linearizable(&h);
    assert!(started.elapsed() < Duration::from_secs(10));
}
