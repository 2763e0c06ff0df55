//! Unit tests of the watch checker: one broken guarantee per test.

use super::*;
use crate::history::Output;

fn put_ev(rev: i64, key: &str, value: &str) -> WatchEvent {
    WatchEvent {
        revision: rev,
        key: key.into(),
        kind: EventKind::Put,
        value: value.into(),
    }
}

fn history() -> History {
    let mut h = History::new();
    h.push_ok(
        0,
        0,
        10,
        Input::Put {
            key: "a".into(),
            value: "1".into(),
        },
        Output::Put { revision: 2 },
    );
    // A two-key transaction at revision 3.
    h.push_ok(
        1,
        20,
        30,
        Input::Txn {
            compares: vec![],
            success: vec![
                TxnOp::Put {
                    key: "a".into(),
                    value: "2".into(),
                },
                TxnOp::Put {
                    key: "b".into(),
                    value: "3".into(),
                },
            ],
            failure: vec![TxnOp::Put {
                key: "a".into(),
                value: "never".into(),
            }],
        },
        Output::Txn {
            succeeded: true,
            results: vec![TxnOpOutput::Put; 2],
            revision: 3,
        },
    );
    // Unknown outcome: may appear, at any revision.
    h.push_indefinite(
        2,
        40,
        Input::Put {
            key: "b".into(),
            value: "4".into(),
        },
    );
    h
}

fn log(batches: Vec<Vec<WatchEvent>>) -> WatchLog {
    WatchLog {
        watcher: 0,
        start_revision: 2,
        batches: batches
            .into_iter()
            .map(|events| WatchBatch {
                events,
                received: 0,
            })
            .collect(),
        resumes: 0,
    }
}

fn opts() -> WatchCheckOptions {
    WatchCheckOptions {
        contiguous: true,
        must_reach: Some(3),
    }
}

#[test]
fn faithful_stream_passes() {
    let l = log(vec![
        vec![put_ev(2, "a", "1")],
        vec![put_ev(3, "a", "2"), put_ev(3, "b", "3")],
        vec![put_ev(4, "b", "4")],
    ]);
    let v = check_watches(
        &[l.clone(), WatchLog { watcher: 1, ..l }],
        &history(),
        opts(),
    );
    assert!(v.is_empty(), "{v:?}");
}

#[test]
fn split_transaction_is_reported() {
    let l = log(vec![
        vec![put_ev(2, "a", "1")],
        vec![put_ev(3, "a", "2")],
        vec![put_ev(3, "b", "3")],
    ]);
    let v = check_watches(&[l], &history(), opts());
    assert!(v.iter().any(|v| v.to_string().contains("split")), "{v:?}");
}

#[test]
fn duplicate_and_reordered_events_are_reported() {
    let l = log(vec![
        vec![put_ev(3, "a", "2"), put_ev(3, "b", "3")],
        vec![put_ev(2, "a", "1")],
        vec![put_ev(2, "a", "1")],
    ]);
    let v = check_watches(&[l], &history(), opts());
    assert!(
        v.iter()
            .any(|v| matches!(v, WatchViolation::OutOfOrder { .. })),
        "{v:?}"
    );
    assert!(
        v.iter()
            .any(|v| matches!(v, WatchViolation::Duplicate { .. })),
        "{v:?}"
    );
}

#[test]
fn missing_acknowledged_write_and_gap_are_reported() {
    // Resumed after revision 2 but skipped the transaction at revision 3.
    let l = log(vec![vec![put_ev(2, "a", "1")], vec![put_ev(4, "b", "4")]]);
    let v = check_watches(&[l], &history(), opts());
    assert!(
        v.iter()
            .any(|v| matches!(v, WatchViolation::Missing { .. })),
        "{v:?}"
    );
    assert!(
        v.iter()
            .any(|v| matches!(v, WatchViolation::Gap { revision: 3, .. })),
        "{v:?}"
    );
}

#[test]
fn unexplained_and_misplaced_events_are_reported() {
    let l = log(vec![
        vec![put_ev(2, "a", "1")],
        vec![put_ev(3, "a", "never"), put_ev(3, "b", "3")],
        vec![put_ev(5, "a", "2")],
    ]);
    let v = check_watches(&[l], &history(), opts());
    assert!(
        v.iter()
            .any(|v| matches!(v, WatchViolation::Unexplained { .. })),
        "{v:?}"
    );
    assert!(
        v.iter()
            .any(|v| matches!(v, WatchViolation::WrongRevision { .. })),
        "{v:?}"
    );
}

#[test]
fn behind_and_disagreeing_watchers_are_reported() {
    let full = log(vec![
        vec![put_ev(2, "a", "1")],
        vec![put_ev(3, "a", "2"), put_ev(3, "b", "3")],
        vec![put_ev(4, "b", "4")],
    ]);
    let short = WatchLog {
        watcher: 1,
        ..log(vec![vec![put_ev(2, "a", "1")]])
    };
    let other = WatchLog {
        watcher: 2,
        ..log(vec![
            vec![put_ev(2, "a", "1")],
            vec![put_ev(3, "a", "2"), put_ev(3, "b", "3")],
            vec![put_ev(4, "b", "X")],
        ])
    };
    let v = check_watches(&[full, short, other], &history(), opts());
    assert!(
        v.iter()
            .any(|v| matches!(v, WatchViolation::Behind { watcher: 1, .. })),
        "{v:?}"
    );
    assert!(
        v.iter()
            .any(|v| matches!(v, WatchViolation::Disagree { .. })),
        "{v:?}"
    );
}
