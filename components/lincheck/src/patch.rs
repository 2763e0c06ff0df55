//! Resolving indefinite writes with the watch streams, before the linearizability search.
//!
//! A write the client never heard back about may or may not have taken effect; each one
//! multiplies the search space. Every value is written once, so a watch stream that covered
//! the whole run tells which of them took effect and at what revision (etcd's own robustness
//! tests do the same). Given watch logs that passed [`crate::watch::check_watches`] and reached
//! the final revision:
//!
//! - a put (or a transaction with puts) whose value a watcher delivered took effect at that
//!   event's revision, and before the watcher received it: it becomes
//!   [`Outcome::Observed`] with that revision and a response time of the first receipt;
//! - one whose values no watcher delivered never took effect (or ran a read-only branch),
//!   so it changed nothing and is dropped;
//! - deletes carry no value: an indefinite delete of a key whose every delete event is
//!   accounted for by deletes of known revision changed nothing (it never ran, or found the
//!   key absent) and is dropped; otherwise it stays indefinite.
//!
//! A watch event received before its write was even invoked is impossible; it is reported,
//! and that operation is left indefinite.

use std::collections::{HashMap, HashSet};

use crate::history::{History, Input, Key, Operation, Outcome, Output, TxnOp, Value};
use crate::watch::{EventKind, WatchLog};

/// What [`resolve_with_watches`] did.
#[derive(Debug, Clone, Default)]
pub struct PatchStats {
    /// Indefinite writes the watches showed taking effect.
    pub took_effect: usize,
    /// Indefinite writes with no visible effect (never applied, or a no-op delete): dropped.
    pub never_did: usize,
    /// Indefinite operations left as they were (deletes).
    pub left: usize,
    /// Operations whose event was received before they were invoked (impossible).
    pub anomalies: Vec<Operation>,
}

/// The history with indefinite writes resolved; see the module docs for the preconditions.
pub fn resolve_with_watches(history: &History, watches: &[WatchLog]) -> (History, PatchStats) {
    // value -> (revision, first receipt time)
    let mut seen: HashMap<&Value, (i64, u64)> = HashMap::new();
    for log in watches {
        for batch in &log.batches {
            for e in batch.events.iter().filter(|e| e.kind == EventKind::Put) {
                let entry = seen.entry(&e.value).or_insert((e.revision, batch.received));
                entry.1 = entry.1.min(batch.received);
            }
        }
    }
    let mut stats = PatchStats::default();
    let mut ops = Vec::with_capacity(history.len());
    let mut deferred = Vec::new();
    for op in history.ops() {
        if op.outcome != Outcome::Indefinite {
            ops.push(op.clone());
            continue;
        }
        let (puts, deletes): (Vec<(&Value, bool)>, bool) = match &op.input {
            Input::Put { value, .. } => (vec![(value, true)], false),
            Input::Txn {
                success, failure, ..
            } => {
                let mut puts = Vec::new();
                for (branch, succeeded) in [(success, true), (failure, false)] {
                    for t in branch {
                        if let TxnOp::Put { value, .. } = t {
                            puts.push((value, succeeded));
                        }
                    }
                }
                let deletes = success
                    .iter()
                    .chain(failure)
                    .any(|t| matches!(t, TxnOp::Delete { .. }));
                (puts, deletes)
            }
            Input::Delete { .. } | Input::Get { .. } => (Vec::new(), true),
        };
        let hit = puts
            .iter()
            .find_map(|(v, branch)| seen.get(v).map(|s| (*s, *branch)));
        match hit {
            Some(((_, received), _)) if received < op.call => {
                stats.anomalies.push(op.clone());
                stats.left += 1;
                ops.push(op.clone());
            }
            Some(((revision, received), succeeded)) => {
                stats.took_effect += 1;
                ops.push(Operation {
                    ret: Some(received),
                    outcome: Outcome::Observed {
                        revision,
                        succeeded,
                    },
                    ..op.clone()
                });
            }
            None if !deletes => stats.never_did += 1,
            None if matches!(op.input, Input::Delete { .. }) => deferred.push(op),
            None => {
                stats.left += 1;
                ops.push(op.clone());
            }
        }
    }
    // Indefinite deletes: a key whose every delete event is explained by a write with a known
    // revision had no delete of unknown fate take effect, so those deletes changed nothing.
    let unexplained = unexplained_delete_keys(&ops, watches);
    for op in deferred {
        match &op.input {
            Input::Delete { key } if !unexplained.contains(key) => stats.never_did += 1,
            _ => {
                stats.left += 1;
                ops.push(op.clone());
            }
        }
    }
    ops.sort_by_key(|o| (o.call, o.id));
    (History::from_ops(ops), stats)
}

/// Keys with a delete event that no delete of known revision accounts for.
fn unexplained_delete_keys<'a>(ops: &[Operation], watches: &'a [WatchLog]) -> HashSet<&'a Key> {
    let mut explained: HashSet<(&Key, i64)> = HashSet::new();
    for op in ops {
        let ran = match (&op.input, &op.outcome) {
            (Input::Delete { key }, Outcome::Ok(Output::Delete { deleted, revision })) => {
                if *deleted > 0 {
                    explained.insert((key, *revision));
                }
                continue;
            }
            (
                Input::Txn {
                    success, failure, ..
                },
                Outcome::Ok(Output::Txn {
                    succeeded,
                    revision,
                    ..
                }),
            )
            | (
                Input::Txn {
                    success, failure, ..
                },
                Outcome::Observed {
                    succeeded,
                    revision,
                },
            ) => (if *succeeded { success } else { failure }, *revision),
            _ => continue,
        };
        for t in ran.0 {
            if let TxnOp::Delete { key } = t {
                explained.insert((key, ran.1));
            }
        }
    }
    watches
        .iter()
        .flat_map(|w| &w.batches)
        .flat_map(|b| &b.events)
        .filter(|e| e.kind == EventKind::Delete && !explained.contains(&(&e.key, e.revision)))
        .map(|e| &e.key)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{CheckOptions, check};
    use crate::history::{KeyValue, Output};
    use crate::watch::{WatchBatch, WatchEvent};

    fn put(v: &str) -> Input {
        Input::Put {
            key: "a".into(),
            value: v.into(),
        }
    }

    fn watch(events: Vec<(i64, &str, u64)>) -> Vec<WatchLog> {
        vec![WatchLog {
            watcher: 0,
            start_revision: 2,
            batches: events
                .into_iter()
                .map(|(revision, value, received)| WatchBatch {
                    events: vec![WatchEvent {
                        revision,
                        key: "a".into(),
                        kind: EventKind::Put,
                        value: value.into(),
                    }],
                    received,
                })
                .collect(),
            resumes: 0,
        }]
    }

    #[test]
    fn seen_writes_get_their_revision_and_unseen_ones_are_dropped() {
        let mut h = History::new();
        h.push_indefinite(0, 0, put("seen"));
        h.push_indefinite(1, 0, put("lost"));
        h.push_indefinite(2, 0, Input::Delete { key: "a".into() });
        let (p, stats) = resolve_with_watches(&h, &watch(vec![(2, "seen", 50)]));
        // No delete event on "a": the indefinite delete changed nothing.
        assert_eq!((stats.took_effect, stats.never_did, stats.left), (1, 2, 0));
        let observed = Outcome::Observed {
            revision: 2,
            succeeded: true,
        };
        assert_eq!(p.ops()[0].outcome, observed);
        assert_eq!(p.ops()[0].ret, Some(50));
        assert_eq!(p.len(), 1);

        // A delete event no known delete explains: the indefinite delete stays.
        let mut w = watch(vec![(2, "seen", 50)]);
        w[0].batches.push(WatchBatch {
            events: vec![WatchEvent {
                revision: 3,
                key: "a".into(),
                kind: EventKind::Delete,
                value: String::new(),
            }],
            received: 60,
        });
        let (p, stats) = resolve_with_watches(&h, &w);
        assert_eq!((stats.took_effect, stats.never_did, stats.left), (1, 1, 1));
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn observed_write_must_precede_reads_that_miss_it() {
        // The watch saw the write by t=50, yet a read invoked at 60 misses it.
        let mut h = History::new();
        h.push_indefinite(0, 0, put("v"));
        h.push_ok(
            1,
            60,
            70,
            Input::Get { key: "a".into() },
            Output::Get {
                kv: None,
                revision: 2,
            },
        );
        let (p, _) = resolve_with_watches(&h, &watch(vec![(2, "v", 50)]));
        assert!(!check(&p, CheckOptions::default()).is_linearizable());
        // Unpatched, "never took effect" would have explained it.
        assert!(check(&h, CheckOptions::default()).is_linearizable());
        let seen = KeyValue {
            value: "v".into(),
            version: 1,
            mod_revision: 2,
            create_revision: 2,
        };
        let mut ok = History::new();
        ok.push_indefinite(0, 0, put("v"));
        ok.push_ok(
            1,
            60,
            70,
            Input::Get { key: "a".into() },
            Output::Get {
                kv: Some(seen),
                revision: 2,
            },
        );
        let (p, _) = resolve_with_watches(&ok, &watch(vec![(2, "v", 50)]));
        assert!(check(&p, CheckOptions::default()).is_linearizable());
    }

    #[test]
    fn event_before_invocation_is_an_anomaly() {
        let mut h = History::new();
        h.push_indefinite(0, 100, put("v"));
        let (_, stats) = resolve_with_watches(&h, &watch(vec![(2, "v", 50)]));
        assert_eq!(stats.anomalies.len(), 1);
    }
}
