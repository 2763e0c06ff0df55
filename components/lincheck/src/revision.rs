//! The cross-key check the per-key model cannot make: the store's one global revision.
//!
//! Every definite answer carries the store revision (`header.revision`). Real time orders
//! them: if X returned before Y was invoked, Y's revision is at least X's, and strictly greater
//! when Y wrote something. Two different writes never share a revision. One sweep over the
//! history sorted by invocation, with the maximum revision of everything returned so far, finds
//! every violation.

use std::collections::HashMap;
use std::fmt;

use crate::history::{History, Input, Operation, Outcome, Output, TxnOp, TxnOpOutput};

/// One broken revision rule, with the two operations involved.
#[derive(Debug, Clone)]
pub struct RevisionViolation {
    /// What rule broke.
    pub rule: &'static str,
    /// The earlier operation.
    pub earlier: Operation,
    /// The later operation.
    pub later: Operation,
}

/// The answer's store revision and whether the operation wrote (bumped the revision).
fn revision_of(op: &Operation) -> Option<(i64, bool)> {
    let Outcome::Ok(out) = &op.outcome else {
        return None;
    };
    Some(match (out, &op.input) {
        (Output::Put { revision }, _) => (*revision, true),
        (Output::Get { revision, .. }, _) => (*revision, false),
        (Output::Delete { deleted, revision }, _) => (*revision, *deleted > 0),
        (
            Output::Txn {
                succeeded,
                results,
                revision,
            },
            Input::Txn {
                success, failure, ..
            },
        ) => {
            let branch = if *succeeded { success } else { failure };
            let wrote = branch.iter().zip(results).any(|(op, r)| match (op, r) {
                (TxnOp::Put { .. }, _) => true,
                (TxnOp::Delete { .. }, TxnOpOutput::Delete(n)) => *n > 0,
                _ => false,
            });
            (*revision, wrote)
        }
        (Output::Txn { .. }, _) => return None,
    })
}

/// Every violation of the revision rules in `history`.
pub fn check_revisions(history: &History) -> Vec<RevisionViolation> {
    let mut out = Vec::new();
    let known: Vec<(&Operation, i64, bool)> = history
        .ops()
        .iter()
        .filter_map(|op| revision_of(op).map(|(r, w)| (op, r, w)))
        .collect();

    let mut writers: HashMap<i64, &Operation> = HashMap::new();
    for (op, rev, wrote) in &known {
        if *wrote && let Some(other) = writers.insert(*rev, op) {
            out.push(RevisionViolation {
                rule: "two writes were acknowledged at the same revision",
                earlier: other.clone(),
                later: (*op).clone(),
            });
        }
    }

    let mut by_ret: Vec<&(&Operation, i64, bool)> = known.iter().collect();
    by_ret.sort_by_key(|(op, _, _)| op.ret);
    let mut by_call: Vec<&(&Operation, i64, bool)> = known.iter().collect();
    by_call.sort_by_key(|(op, _, _)| op.call);
    let mut done = 0;
    let mut max_seen: Option<(i64, &Operation)> = None;
    for (op, rev, wrote) in by_call {
        while done < by_ret.len() && by_ret[done].0.ret.is_some_and(|r| r < op.call) {
            let (prev, prev_rev, _) = by_ret[done];
            if max_seen.is_none_or(|(m, _)| *prev_rev > m) {
                max_seen = Some((*prev_rev, prev));
            }
            done += 1;
        }
        if let Some((m, prev)) = max_seen {
            let broken = if *wrote { *rev <= m } else { *rev < m };
            if broken {
                out.push(RevisionViolation {
                    rule: if *wrote {
                        "a write got a revision not above one already returned to a client"
                    } else {
                        "a read saw an older revision than one already returned to a client"
                    },
                    earlier: prev.clone(),
                    later: (*op).clone(),
                });
            }
        }
    }
    out
}

impl fmt::Display for RevisionViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "revision order: {}", self.rule)?;
        writeln!(f, "    {}", self.earlier)?;
        writeln!(f, "    {}", self.later)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(k: &str) -> Input {
        Input::Put {
            key: k.into(),
            value: format!("v-{k}"),
        }
    }

    #[test]
    fn later_write_with_lower_revision_is_reported() {
        let mut h = History::new();
        h.push_ok(0, 0, 10, put("a"), Output::Put { revision: 5 });
        h.push_ok(1, 20, 30, put("b"), Output::Put { revision: 4 });
        let v = check_revisions(&h);
        assert_eq!(v.len(), 1, "{v:?}");
    }

    #[test]
    fn read_behind_a_returned_write_is_reported_but_concurrent_is_not() {
        let mut h = History::new();
        h.push_ok(0, 0, 10, put("a"), Output::Put { revision: 5 });
        h.push_ok(
            1,
            5,
            30,
            Input::Get { key: "b".into() },
            Output::Get {
                kv: None,
                revision: 4,
            },
        );
        assert!(check_revisions(&h).is_empty());
        h.push_ok(
            1,
            40,
            50,
            Input::Get { key: "b".into() },
            Output::Get {
                kv: None,
                revision: 4,
            },
        );
        assert_eq!(check_revisions(&h).len(), 1);
    }

    #[test]
    fn duplicate_write_revision_is_reported() {
        let mut h = History::new();
        h.push_ok(0, 0, 10, put("a"), Output::Put { revision: 5 });
        h.push_ok(1, 0, 10, put("b"), Output::Put { revision: 5 });
        assert_eq!(check_revisions(&h).len(), 1);
    }
}
