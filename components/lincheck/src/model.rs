//! The sequential specification: an etcd-like key-value store, one register per key.
//!
//! The checker asks one question of it: "from this state, may this operation have produced this
//! outcome, and what state follows?" ([`step`]). The answer is a set of states, empty when the
//! outcome is impossible. It is a set because some operations are nondeterministic from the
//! checker's point of view:
//!
//! - an indefinite write's revision is unknown, so the key's `mod_revision` becomes
//!   [`None`] ("unknown") until a read reveals it;
//! - an indefinite transaction whose guard reads an unknown revision may have run either
//!   branch.
//!
//! The global revision counter is not modelled here (it would forbid partitioning by key):
//! revisions are taken from the responses and checked for consistency per key, and the
//! cross-key revision order is checked separately by [`crate::revision`].

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use crate::history::{
    CmpOp, Compare, CompareTarget, Input, Key, KeyValue, Outcome, Output, TxnOp, TxnOpOutput, Value,
};

/// What the model knows about one present key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyState {
    /// The current value.
    pub value: Value,
    /// Writes since (re)creation.
    pub version: i64,
    /// Revision of the last write; `None` when that write's response was lost.
    pub mod_revision: Option<i64>,
    /// Revision of the creating put; `None` when unknown.
    pub create_revision: Option<i64>,
}

/// The model's state: every present key. Absent keys are not stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct State(pub BTreeMap<Key, KeyState>);

/// The set of states the store may be in (sorted, without duplicates).
pub type StateSet = Vec<State>;

/// Every state `input` with `outcome` may lead to from `state`; empty when impossible.
pub fn step(state: &State, input: &Input, outcome: &Outcome) -> Vec<State> {
    let mut next = state.clone();
    match (input, outcome) {
        (Input::Put { key, value }, Outcome::Ok(Output::Put { revision })) => {
            next.put(key, value, Some(*revision));
            vec![next]
        }
        (
            Input::Put { key, value },
            Outcome::Observed {
                revision,
                succeeded: true,
            },
        ) => {
            next.put(key, value, Some(*revision));
            vec![next]
        }
        (Input::Put { key, value }, Outcome::Indefinite) => {
            next.put(key, value, None);
            vec![next]
        }
        (Input::Get { key }, Outcome::Ok(Output::Get { kv, .. })) => {
            if next.observe(key, kv.as_ref()) {
                vec![next]
            } else {
                vec![]
            }
        }
        (Input::Get { .. }, Outcome::Indefinite) => vec![next],
        (Input::Delete { key }, Outcome::Ok(Output::Delete { deleted, .. })) => {
            let present = next.0.remove(key).is_some();
            if *deleted == i64::from(present) {
                vec![next]
            } else {
                vec![]
            }
        }
        // A delete the watch saw take effect: the key was there.
        (Input::Delete { key }, Outcome::Observed { .. }) => {
            if next.0.remove(key).is_some() {
                vec![next]
            } else {
                vec![]
            }
        }
        (Input::Delete { key }, Outcome::Indefinite) => {
            next.0.remove(key);
            vec![next]
        }
        (
            Input::Txn {
                compares,
                success,
                failure,
            },
            Outcome::Ok(Output::Txn {
                succeeded,
                results,
                revision,
            }),
        ) => {
            let verdicts: Vec<Option<bool>> = compares.iter().map(|c| state.eval(c)).collect();
            let possible = if *succeeded {
                verdicts.iter().all(|v| *v != Some(false))
            } else {
                verdicts.iter().any(|v| *v != Some(true))
            };
            if !possible {
                return vec![];
            }
            if *succeeded {
                for c in compares {
                    next.learn_from_true_compare(c);
                }
            }
            let branch = if *succeeded { success } else { failure };
            if next.apply(branch, Some(results), Some(*revision)) {
                vec![next]
            } else {
                vec![]
            }
        }
        (
            Input::Txn {
                compares,
                success,
                failure,
            },
            Outcome::Indefinite,
        ) => {
            let verdicts: Vec<Option<bool>> = compares.iter().map(|c| state.eval(c)).collect();
            let may_succeed = verdicts.iter().all(|v| *v != Some(false));
            let may_fail = verdicts.iter().any(|v| *v != Some(true));
            let mut out = Vec::with_capacity(2);
            for (possible, branch) in [(may_succeed, success), (may_fail, failure)] {
                if possible {
                    let mut s = state.clone();
                    if s.apply(branch, None, None) {
                        out.push(s);
                    }
                }
            }
            out
        }
        (
            Input::Txn {
                compares,
                success,
                failure,
            },
            Outcome::Observed {
                revision,
                succeeded,
            },
        ) => {
            let verdicts: Vec<Option<bool>> = compares.iter().map(|c| state.eval(c)).collect();
            let possible = if *succeeded {
                verdicts.iter().all(|v| *v != Some(false))
            } else {
                verdicts.iter().any(|v| *v != Some(true))
            };
            let branch = if *succeeded { success } else { failure };
            if possible && next.apply(branch, None, Some(*revision)) {
                vec![next]
            } else {
                vec![]
            }
        }
        // A definite outcome of the wrong kind for the request can never be explained.
        _ => vec![],
    }
}

/// [`step`] lifted to a set of states: the union of every member's successors.
pub fn step_set(states: &[State], input: &Input, outcome: &Outcome) -> StateSet {
    let mut out: StateSet = states
        .iter()
        .flat_map(|s| step(s, input, outcome))
        .collect();
    out.sort();
    out.dedup();
    out
}

fn holds(ord: Ordering, op: CmpOp) -> bool {
    match op {
        CmpOp::Equal => ord == Ordering::Equal,
        CmpOp::NotEqual => ord != Ordering::Equal,
        CmpOp::Greater => ord == Ordering::Greater,
        CmpOp::Less => ord == Ordering::Less,
    }
}

fn same_revision(known: &mut Option<i64>, seen: i64) -> bool {
    match known {
        Some(r) => *r == seen,
        None => {
            *known = Some(seen);
            true
        }
    }
}

impl State {
    fn put(&mut self, key: &Key, value: &Value, revision: Option<i64>) {
        let (version, create_revision) = match self.0.get(key) {
            Some(ks) => (ks.version + 1, ks.create_revision),
            None => (1, revision),
        };
        self.0.insert(
            key.clone(),
            KeyState {
                value: value.clone(),
                version,
                mod_revision: revision,
                create_revision,
            },
        );
    }

    /// Whether a read of `key` may return `kv`; learns unknown revisions from it.
    fn observe(&mut self, key: &Key, kv: Option<&KeyValue>) -> bool {
        match (self.0.get_mut(key), kv) {
            (None, None) => true,
            (Some(ks), Some(kv)) => {
                ks.value == kv.value
                    && ks.version == kv.version
                    && same_revision(&mut ks.mod_revision, kv.mod_revision)
                    && same_revision(&mut ks.create_revision, kv.create_revision)
            }
            _ => false,
        }
    }

    /// A guard's truth: `None` when it depends on a revision the model does not know.
    fn eval(&self, c: &Compare) -> Option<bool> {
        let ks = self.0.get(&c.key);
        match &c.target {
            // etcd: a value compare on an absent key always fails, whatever the relation.
            CompareTarget::Value(v) => Some(ks.is_some_and(|ks| holds(ks.value.cmp(v), c.op))),
            CompareTarget::Version(n) => Some(holds(ks.map_or(0, |ks| ks.version).cmp(n), c.op)),
            CompareTarget::ModRevision(n) => match ks {
                None => Some(holds(0.cmp(n), c.op)),
                Some(ks) => ks.mod_revision.map(|r| holds(r.cmp(n), c.op)),
            },
            CompareTarget::CreateRevision(n) => match ks {
                None => Some(holds(0.cmp(n), c.op)),
                Some(ks) => ks.create_revision.map(|r| holds(r.cmp(n), c.op)),
            },
        }
    }

    /// A guard `rev == n` that held reveals an unknown revision.
    fn learn_from_true_compare(&mut self, c: &Compare) {
        if c.op != CmpOp::Equal {
            return;
        }
        if let Some(ks) = self.0.get_mut(&c.key) {
            match c.target {
                CompareTarget::ModRevision(n) if ks.mod_revision.is_none() => {
                    ks.mod_revision = Some(n)
                }
                CompareTarget::CreateRevision(n) if ks.create_revision.is_none() => {
                    ks.create_revision = Some(n)
                }
                _ => {}
            }
        }
    }

    /// Runs a branch; checks its results when known. `false` when they cannot be explained.
    fn apply(
        &mut self,
        ops: &[TxnOp],
        results: Option<&[TxnOpOutput]>,
        revision: Option<i64>,
    ) -> bool {
        if results.is_some_and(|r| r.len() != ops.len()) {
            return false;
        }
        for (i, op) in ops.iter().enumerate() {
            let result = results.map(|r| &r[i]);
            let ok = match (op, result) {
                (TxnOp::Put { key, value }, None | Some(TxnOpOutput::Put)) => {
                    self.put(key, value, revision);
                    true
                }
                (TxnOp::Get { .. }, None) => true,
                (TxnOp::Get { key }, Some(TxnOpOutput::Get(kv))) => self.observe(key, kv.as_ref()),
                (TxnOp::Delete { key }, None) => {
                    self.0.remove(key);
                    true
                }
                (TxnOp::Delete { key }, Some(TxnOpOutput::Delete(n))) => {
                    *n == i64::from(self.0.remove(key).is_some())
                }
                _ => false,
            };
            if !ok {
                return false;
            }
        }
        true
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("{all keys absent}");
        }
        let rev = |r: Option<i64>| r.map_or_else(|| "?".to_string(), |r| r.to_string());
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(k, ks)| {
                format!(
                    "{k} = {:?} (ver {}, mod {}, create {})",
                    ks.value,
                    ks.version,
                    rev(ks.mod_revision),
                    rev(ks.create_revision)
                )
            })
            .collect();
        write!(f, "{{{}}}", parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(value: &str, version: i64, m: i64, c: i64) -> KeyValue {
        KeyValue {
            value: value.into(),
            version,
            mod_revision: m,
            create_revision: c,
        }
    }

    fn put(k: &str, v: &str) -> Input {
        Input::Put {
            key: k.into(),
            value: v.into(),
        }
    }

    #[test]
    fn put_then_get_matches_revisions() {
        let s = step(
            &State::default(),
            &put("a", "1"),
            &Outcome::Ok(Output::Put { revision: 5 }),
        );
        assert_eq!(s.len(), 1);
        let get = Input::Get { key: "a".into() };
        let good = Outcome::Ok(Output::Get {
            kv: Some(kv("1", 1, 5, 5)),
            revision: 5,
        });
        let bad_rev = Outcome::Ok(Output::Get {
            kv: Some(kv("1", 1, 6, 5)),
            revision: 6,
        });
        assert_eq!(step(&s[0], &get, &good).len(), 1);
        assert!(step(&s[0], &get, &bad_rev).is_empty());
    }

    #[test]
    fn indefinite_put_learns_revision_from_read() {
        let s = step(&State::default(), &put("a", "1"), &Outcome::Indefinite);
        let get = Input::Get { key: "a".into() };
        let seen = Outcome::Ok(Output::Get {
            kv: Some(kv("1", 1, 9, 9)),
            revision: 9,
        });
        let after = step(&s[0], &get, &seen);
        assert_eq!(after[0].0["a"].mod_revision, Some(9));
        let other = Outcome::Ok(Output::Get {
            kv: Some(kv("1", 1, 10, 10)),
            revision: 10,
        });
        assert!(step(&after[0], &get, &other).is_empty());
    }

    #[test]
    fn value_compare_on_absent_key_fails_even_for_not_equal() {
        let txn = Input::Txn {
            compares: vec![Compare {
                key: "a".into(),
                target: CompareTarget::Value("x".into()),
                op: CmpOp::NotEqual,
            }],
            success: vec![],
            failure: vec![],
        };
        let ok = |succeeded| {
            Outcome::Ok(Output::Txn {
                succeeded,
                results: vec![],
                revision: 1,
            })
        };
        assert!(step(&State::default(), &txn, &ok(true)).is_empty());
        assert_eq!(step(&State::default(), &txn, &ok(false)).len(), 1);
    }

    #[test]
    fn indefinite_txn_on_unknown_revision_branches_both_ways() {
        let s = step(&State::default(), &put("a", "1"), &Outcome::Indefinite);
        let txn = Input::Txn {
            compares: vec![Compare {
                key: "a".into(),
                target: CompareTarget::ModRevision(3),
                op: CmpOp::Equal,
            }],
            success: vec![TxnOp::Put {
                key: "a".into(),
                value: "2".into(),
            }],
            failure: vec![TxnOp::Delete { key: "a".into() }],
        };
        let next = step(&s[0], &txn, &Outcome::Indefinite);
        assert_eq!(next.len(), 2, "{next:?}");
    }

    #[test]
    fn delete_count_must_match_presence() {
        let del = Input::Delete { key: "a".into() };
        let one = Outcome::Ok(Output::Delete {
            deleted: 1,
            revision: 2,
        });
        let zero = Outcome::Ok(Output::Delete {
            deleted: 0,
            revision: 2,
        });
        assert!(step(&State::default(), &del, &one).is_empty());
        assert_eq!(step(&State::default(), &del, &zero).len(), 1);
    }
}
