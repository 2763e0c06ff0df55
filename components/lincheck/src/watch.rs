//! Checking watch streams against etcd's guarantees and against the operation history.
//!
//! A watcher records every `WatchResponse` it received as one [`WatchBatch`], across
//! reconnections (it resumes from the last revision seen + 1). [`check_watches`] then verifies,
//! per watcher:
//!
//! 1. **ordered**: revisions never go down, and each batch starts above the previous batch's
//!    last revision;
//! 2. **no duplicates**: one event per (revision, key);
//! 3. **atomic transactions**: all events of one revision arrive in one batch;
//! 4. **consistent with writes**: every put event carries a value some client wrote to that
//!    key, at the revision acknowledged to that client if it was acknowledged; every
//!    acknowledged write inside the watched range appears;
//! 5. **resumable without gaps**: when the watched prefix holds every write of the store,
//!    every revision of the watched range has an event, and the stream reached the last
//!    acknowledged revision;
//!
//! and across watchers, that they agree on every revision both saw.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::history::{History, Input, Key, Outcome, Output, TxnOp, TxnOpOutput, Value};

/// Put or delete.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum EventKind {
    /// The key was written.
    Put,
    /// The key was deleted.
    Delete,
}

/// One watch event.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct WatchEvent {
    /// The revision of the change (the event's `kv.mod_revision`).
    pub revision: i64,
    /// The key changed.
    pub key: Key,
    /// Put or delete.
    pub kind: EventKind,
    /// The new value (empty for a delete).
    pub value: Value,
}

/// The events of one `WatchResponse`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WatchBatch {
    /// In delivery order.
    pub events: Vec<WatchEvent>,
    /// When the watcher received it (ns since the run's origin, the history's clock).
    pub received: u64,
}

/// Everything one watcher received.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct WatchLog {
    /// Which watcher.
    pub watcher: usize,
    /// The revision the first watch started from.
    pub start_revision: i64,
    /// Every non-empty response, in order, across reconnections.
    pub batches: Vec<WatchBatch>,
    /// How many times the stream broke and was resumed.
    pub resumes: usize,
}

impl WatchLog {
    /// The last revision delivered, or `start_revision - 1` when nothing was.
    pub fn last_revision(&self) -> i64 {
        self.batches
            .iter()
            .flat_map(|b| b.events.last())
            .map(|e| e.revision)
            .next_back()
            .unwrap_or(self.start_revision - 1)
    }
}

/// What [`check_watches`] may assume.
#[derive(Debug, Clone, Copy, Default)]
pub struct WatchCheckOptions {
    /// Every write of the store is in the watched prefix, so revisions have no holes.
    pub contiguous: bool,
    /// Each watcher must have reached at least this revision.
    pub must_reach: Option<i64>,
}

/// One broken guarantee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchViolation {
    /// A batch or event went back in revision.
    OutOfOrder {
        /// The watcher.
        watcher: usize,
        /// The revision before.
        previous: i64,
        /// The revision that came after it.
        next: i64,
    },
    /// The same (revision, key) twice.
    Duplicate {
        /// The watcher.
        watcher: usize,
        /// The repeated event.
        event: WatchEvent,
    },
    /// An event below the requested start revision.
    BeforeStart {
        /// The watcher.
        watcher: usize,
        /// The event.
        event: WatchEvent,
    },
    /// A put event whose value nobody wrote to that key, or that a failed transaction branch
    /// would have written.
    Unexplained {
        /// The watcher.
        watcher: usize,
        /// The event.
        event: WatchEvent,
    },
    /// An event for an acknowledged write at another revision than the client was told.
    WrongRevision {
        /// The watcher.
        watcher: usize,
        /// The event.
        event: WatchEvent,
        /// The acknowledged revision.
        acknowledged: i64,
    },
    /// An acknowledged write within the watched range never arrived.
    Missing {
        /// The watcher.
        watcher: usize,
        /// The expected event.
        expected: WatchEvent,
    },
    /// A revision in the watched range without any event.
    Gap {
        /// The watcher.
        watcher: usize,
        /// The missing revision.
        revision: i64,
    },
    /// The stream stopped short.
    Behind {
        /// The watcher.
        watcher: usize,
        /// Its last revision.
        last: i64,
        /// The revision it had to reach.
        required: i64,
    },
    /// Two watchers saw different events at one revision.
    Disagree {
        /// The two watchers.
        watchers: (usize, usize),
        /// The revision.
        revision: i64,
        /// What each saw.
        events: (Vec<WatchEvent>, Vec<WatchEvent>),
    },
}

/// What the history says about a written value.
struct Source {
    key: Key,
    /// The acknowledged revision, when the write was acknowledged and ran.
    acked: Option<i64>,
    /// False when the write was in the branch of a transaction that did not run.
    possible: bool,
}

fn sources_and_expected(history: &History) -> (HashMap<&Value, Source>, Vec<WatchEvent>) {
    let mut sources = HashMap::new();
    let mut expected = Vec::new();
    let mut expect = |revision: i64, key: &Key, kind, value: &Value| {
        expected.push(WatchEvent {
            revision,
            key: key.clone(),
            kind,
            value: value.clone(),
        })
    };
    for op in history.ops() {
        match (&op.input, &op.outcome) {
            (Input::Put { key, value }, outcome) => {
                let acked = match outcome {
                    Outcome::Ok(Output::Put { revision }) => Some(*revision),
                    _ => None,
                };
                if let Some(r) = acked {
                    expect(r, key, EventKind::Put, value);
                }
                sources.insert(
                    value,
                    Source {
                        key: key.clone(),
                        acked,
                        possible: true,
                    },
                );
            }
            (Input::Delete { key }, Outcome::Ok(Output::Delete { deleted, revision }))
                if *deleted > 0 =>
            {
                expect(*revision, key, EventKind::Delete, &Value::new());
            }
            (
                Input::Txn {
                    success, failure, ..
                },
                outcome,
            ) => {
                let ran = match outcome {
                    Outcome::Ok(Output::Txn {
                        succeeded,
                        results,
                        revision,
                    }) => Some((*succeeded, results, *revision)),
                    _ => None,
                };
                for (branch, is_success) in [(success, true), (failure, false)] {
                    for (i, t) in branch.iter().enumerate() {
                        let this_ran = ran.map(|(s, _, _)| s == is_success);
                        match t {
                            TxnOp::Put { key, value } => {
                                let acked = ran.filter(|_| this_ran == Some(true)).map(|r| r.2);
                                if let Some(r) = acked {
                                    expect(r, key, EventKind::Put, value);
                                }
                                let possible = this_ran != Some(false);
                                sources.insert(
                                    value,
                                    Source {
                                        key: key.clone(),
                                        acked,
                                        possible,
                                    },
                                );
                            }
                            TxnOp::Delete { key } if this_ran == Some(true) => {
                                let (_, results, rev) = ran.expect("ran is known here");
                                if matches!(results.get(i), Some(TxnOpOutput::Delete(n)) if *n > 0)
                                {
                                    expect(rev, key, EventKind::Delete, &Value::new());
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
            _ => {}
        }
    }
    expected.sort();
    (sources, expected)
}

/// Checks every watcher's log; returns every violation found.
pub fn check_watches(
    logs: &[WatchLog],
    history: &History,
    options: WatchCheckOptions,
) -> Vec<WatchViolation> {
    let (sources, expected) = sources_and_expected(history);
    let mut out = Vec::new();
    let mut per_watcher: Vec<BTreeMap<i64, Vec<WatchEvent>>> = Vec::new();
    for log in logs {
        let w = log.watcher;
        let mut by_rev: BTreeMap<i64, Vec<WatchEvent>> = BTreeMap::new();
        let mut last = log.start_revision - 1;
        let mut last_batch_end = log.start_revision - 1;
        for batch in &log.batches {
            if let Some(first) = batch.events.first()
                && first.revision <= last_batch_end
            {
                out.push(WatchViolation::OutOfOrder {
                    watcher: w,
                    previous: last_batch_end,
                    next: first.revision,
                });
            }
            for e in &batch.events {
                if e.revision < last {
                    out.push(WatchViolation::OutOfOrder {
                        watcher: w,
                        previous: last,
                        next: e.revision,
                    });
                }
                if e.revision < log.start_revision {
                    out.push(WatchViolation::BeforeStart {
                        watcher: w,
                        event: e.clone(),
                    });
                }
                last = last.max(e.revision);
                let same = by_rev.entry(e.revision).or_default();
                if same.iter().any(|x| x.key == e.key) {
                    out.push(WatchViolation::Duplicate {
                        watcher: w,
                        event: e.clone(),
                    });
                }
                same.push(e.clone());
                if e.kind == EventKind::Put {
                    match sources.get(&e.value) {
                        Some(s) if s.key == e.key && s.possible => {
                            if let Some(acked) = s.acked.filter(|a| *a != e.revision) {
                                out.push(WatchViolation::WrongRevision {
                                    watcher: w,
                                    event: e.clone(),
                                    acknowledged: acked,
                                });
                            }
                        }
                        _ => out.push(WatchViolation::Unexplained {
                            watcher: w,
                            event: e.clone(),
                        }),
                    }
                }
            }
            last_batch_end = last_batch_end.max(last);
        }
        let end = log.last_revision();
        for exp in expected
            .iter()
            .filter(|e| e.revision >= log.start_revision && e.revision <= end)
        {
            let seen = by_rev.get(&exp.revision).is_some_and(|v| {
                v.iter()
                    .any(|e| e.key == exp.key && e.kind == exp.kind && e.value == exp.value)
            });
            if !seen {
                out.push(WatchViolation::Missing {
                    watcher: w,
                    expected: exp.clone(),
                });
            }
        }
        if options.contiguous {
            for revision in log.start_revision..=end {
                if !by_rev.contains_key(&revision) {
                    out.push(WatchViolation::Gap {
                        watcher: w,
                        revision,
                    });
                }
            }
        }
        if let Some(required) = options.must_reach.filter(|r| end < *r) {
            out.push(WatchViolation::Behind {
                watcher: w,
                last: end,
                required,
            });
        }
        per_watcher.push(by_rev);
    }
    for a in 0..logs.len() {
        for b in a + 1..logs.len() {
            let lo = logs[a].start_revision.max(logs[b].start_revision);
            let hi = logs[a].last_revision().min(logs[b].last_revision());
            if lo > hi {
                continue;
            }
            let sorted = |m: &BTreeMap<i64, Vec<WatchEvent>>, r: i64| {
                let mut v = m.get(&r).cloned().unwrap_or_default();
                v.sort();
                v
            };
            let revs: std::collections::BTreeSet<i64> = per_watcher[a]
                .range(lo..=hi)
                .chain(per_watcher[b].range(lo..=hi))
                .map(|(r, _)| *r)
                .collect();
            for r in revs {
                let (x, y) = (sorted(&per_watcher[a], r), sorted(&per_watcher[b], r));
                if x != y {
                    out.push(WatchViolation::Disagree {
                        watchers: (logs[a].watcher, logs[b].watcher),
                        revision: r,
                        events: (x, y),
                    });
                }
            }
        }
    }
    out
}

impl fmt::Display for WatchEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            EventKind::Put => write!(f, "@{} PUT {} = {:?}", self.revision, self.key, self.value),
            EventKind::Delete => write!(f, "@{} DELETE {}", self.revision, self.key),
        }
    }
}

impl fmt::Display for WatchViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WatchViolation::OutOfOrder {
                watcher,
                previous,
                next,
            } if previous == next => write!(
                f,
                "watcher {watcher}: revision {next} split across two responses \
                 (a transaction's events must arrive together)"
            ),
            WatchViolation::OutOfOrder {
                watcher,
                previous,
                next,
            } => {
                write!(
                    f,
                    "watcher {watcher}: revision {next} delivered after {previous}"
                )
            }
            WatchViolation::Duplicate { watcher, event } => {
                write!(f, "watcher {watcher}: duplicate event {event}")
            }
            WatchViolation::BeforeStart { watcher, event } => {
                write!(
                    f,
                    "watcher {watcher}: event {event} is before the start revision"
                )
            }
            WatchViolation::Unexplained { watcher, event } => {
                write!(
                    f,
                    "watcher {watcher}: event {event} matches no write that could have run"
                )
            }
            WatchViolation::WrongRevision {
                watcher,
                event,
                acknowledged,
            } => write!(
                f,
                "watcher {watcher}: event {event}, but the client was told revision {acknowledged}"
            ),
            WatchViolation::Missing { watcher, expected } => {
                write!(
                    f,
                    "watcher {watcher}: acknowledged write {expected} never delivered"
                )
            }
            WatchViolation::Gap { watcher, revision } => {
                write!(
                    f,
                    "watcher {watcher}: no event at revision {revision} (gap)"
                )
            }
            WatchViolation::Behind {
                watcher,
                last,
                required,
            } => {
                write!(
                    f,
                    "watcher {watcher}: stopped at revision {last}, needed {required}"
                )
            }
            WatchViolation::Disagree {
                watchers,
                revision,
                events,
            } => {
                let show = |v: &[WatchEvent]| {
                    v.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                write!(
                    f,
                    "watchers {} and {} disagree at revision {revision}: [{}] vs [{}]",
                    watchers.0,
                    watchers.1,
                    show(&events.0),
                    show(&events.1)
                )
            }
        }
    }
}

#[cfg(test)]
#[path = "watch_tests.rs"]
mod tests;
