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
    resolve_deletes(&mut ops, deferred, watches, &mut stats);
    ops.sort_by_key(|o| (o.call, o.id));
    (History::from_ops(ops), stats)
}

/// Indefinite deletes, per key. Delete events no delete of known revision explains were
/// caused by indefinite deletes of that key; all such deletes have the same effect, so only
/// their time windows differ. In revision order, each unexplained event is given the
/// earliest-invoked unused candidate invoked before the event was received: it becomes
/// [`Outcome::Observed`] at the event's revision, answered by the receipt time. The windows
/// chosen this way contain every true schedule's (the i-th effect cannot happen before the
/// i-th earliest invocation), so nothing linearizable is rejected. The candidates left over
/// changed nothing and are dropped. A key where some event has no candidate keeps all of its
/// indefinite deletes as they were.
fn resolve_deletes(
    ops: &mut Vec<Operation>,
    deferred: Vec<&Operation>,
    watches: &[WatchLog],
    stats: &mut PatchStats,
) {
    let mut events: HashMap<&Key, Vec<(i64, u64)>> = HashMap::new();
    for (key, revision, received) in unexplained_delete_events(ops, watches) {
        events.entry(key).or_default().push((revision, received));
    }
    let mut by_key: HashMap<&Key, Vec<&Operation>> = HashMap::new();
    for op in deferred {
        if let Input::Delete { key } = &op.input {
            by_key.entry(key).or_default().push(op);
        }
    }
    for (key, mut candidates) in by_key {
        candidates.sort_by_key(|o| (o.call, o.id));
        let mut evs = events.remove(key).unwrap_or_default();
        evs.sort();
        let mut used = vec![false; candidates.len()];
        let mut assigned = Vec::new();
        for (revision, received) in &evs {
            let pick =
                (0..candidates.len()).find(|i| !used[*i] && candidates[*i].call <= *received);
            match pick {
                Some(i) => {
                    used[i] = true;
                    assigned.push((i, *revision, *received));
                }
                None => break,
            }
        }
        if assigned.len() < evs.len() {
            stats.left += candidates.len();
            ops.extend(candidates.into_iter().cloned());
            continue;
        }
        for (i, revision, received) in assigned {
            stats.took_effect += 1;
            ops.push(Operation {
                ret: Some(received),
                outcome: Outcome::Observed {
                    revision,
                    succeeded: true,
                },
                ..candidates[i].clone()
            });
        }
        stats.never_did += used.iter().filter(|u| !**u).count();
    }
}

/// Delete events (key, revision, first receipt) that no delete of known revision accounts for.
fn unexplained_delete_events<'a>(
    ops: &[Operation],
    watches: &'a [WatchLog],
) -> Vec<(&'a Key, i64, u64)> {
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
    let mut first: HashMap<(&Key, i64), u64> = HashMap::new();
    for b in watches.iter().flat_map(|w| &w.batches) {
        for e in &b.events {
            if e.kind == EventKind::Delete && !explained.contains(&(&e.key, e.revision)) {
                let t = first.entry((&e.key, e.revision)).or_insert(b.received);
                *t = (*t).min(b.received);
            }
        }
    }
    first.into_iter().map(|((k, r), t)| (k, r, t)).collect()
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

        // A delete event no known delete explains: the indefinite delete caused it.
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
        assert_eq!((stats.took_effect, stats.never_did, stats.left), (2, 1, 0));
        assert_eq!(p.len(), 2);
        let del = p
            .ops()
            .iter()
            .find(|o| matches!(o.input, Input::Delete { .. }))
            .unwrap();
        assert_eq!(
            del.outcome,
            Outcome::Observed {
                revision: 3,
                succeeded: true
            }
        );
        assert_eq!(del.ret, Some(60));

        // An unexplained delete event received before the only candidate was invoked: no
        // assignment is possible, the delete stays indefinite.
        let mut late = History::new();
        late.push_indefinite(2, 100, Input::Delete { key: "a".into() });
        let (p, stats) = resolve_with_watches(&late, &w);
        assert_eq!(stats.left, 1);
        assert_eq!(p.ops()[0].outcome, Outcome::Indefinite);
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
