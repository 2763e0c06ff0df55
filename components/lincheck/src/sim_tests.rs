//! Randomized soundness tests: histories produced by a simulated linearizable etcd (an
//! independent, straightforward sequential implementation with global revisions) with random
//! overlapping timing, lost responses and unapplied writes, must always pass; the same
//! histories with one read falsified must not.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::check::{CheckOptions, check};
use crate::history::{
    CmpOp, Compare, CompareTarget, History, Input, KeyValue, Operation, Outcome, Output, TxnOp,
    TxnOpOutput,
};
use crate::revision::check_revisions;

/// A sequential etcd: one revision counter, a map of keys.
#[derive(Default)]
struct RefStore {
    rev: i64,
    kv: BTreeMap<String, KeyValue>,
}

impl RefStore {
    fn holds(&self, c: &Compare) -> bool {
        let kv = self.kv.get(&c.key);
        let ord = match (&c.target, kv) {
            (CompareTarget::Value(_), None) => return false,
            (CompareTarget::Value(v), Some(kv)) => kv.value.cmp(v),
            (CompareTarget::Version(n), _) => kv.map_or(0, |k| k.version).cmp(n),
            (CompareTarget::ModRevision(n), _) => kv.map_or(0, |k| k.mod_revision).cmp(n),
            (CompareTarget::CreateRevision(n), _) => kv.map_or(0, |k| k.create_revision).cmp(n),
        };
        match c.op {
            CmpOp::Equal => ord.is_eq(),
            CmpOp::NotEqual => ord.is_ne(),
            CmpOp::Greater => ord.is_gt(),
            CmpOp::Less => ord.is_lt(),
        }
    }

    fn put(&mut self, key: &str, value: &str, rev: i64) {
        let (version, create) = self
            .kv
            .get(key)
            .map_or((1, rev), |k| (k.version + 1, k.create_revision));
        let kv = KeyValue {
            value: value.into(),
            version,
            mod_revision: rev,
            create_revision: create,
        };
        self.kv.insert(key.into(), kv);
    }

    fn apply(&mut self, input: &Input) -> Output {
        match input {
            Input::Put { key, value } => {
                self.rev += 1;
                self.put(key, value, self.rev);
                Output::Put { revision: self.rev }
            }
            Input::Get { key } => Output::Get {
                kv: self.kv.get(key).cloned(),
                revision: self.rev,
            },
            Input::Delete { key } => {
                let deleted = i64::from(self.kv.contains_key(key));
                if deleted == 1 {
                    self.rev += 1;
                    self.kv.remove(key);
                }
                Output::Delete {
                    deleted,
                    revision: self.rev,
                }
            }
            Input::Txn {
                compares,
                success,
                failure,
            } => {
                let succeeded = compares.iter().all(|c| self.holds(c));
                let branch = if succeeded { success } else { failure };
                let writes = branch.iter().any(|t| match t {
                    TxnOp::Put { .. } => true,
                    TxnOp::Delete { key } => self.kv.contains_key(key),
                    TxnOp::Get { .. } => false,
                });
                let rev = if writes { self.rev + 1 } else { self.rev };
                let results = branch
                    .iter()
                    .map(|t| match t {
                        TxnOp::Put { key, value } => {
                            self.put(key, value, rev);
                            TxnOpOutput::Put
                        }
                        TxnOp::Get { key } => TxnOpOutput::Get(self.kv.get(key).cloned()),
                        TxnOp::Delete { key } => {
                            TxnOpOutput::Delete(i64::from(self.kv.remove(key).is_some()))
                        }
                    })
                    .collect();
                self.rev = rev;
                Output::Txn {
                    succeeded,
                    results,
                    revision: rev,
                }
            }
        }
    }
}

fn random_input(rng: &mut StdRng, client: usize, seq: &mut u64) -> Input {
    let keys = ["a", "b", "c", "d"];
    let k = rng.random_range(0..keys.len());
    let key = keys[k].to_string();
    *seq += 1;
    let value = format!("c{client}-{seq}");
    match rng.random_range(0..10) {
        0..=2 => Input::Get { key },
        3..=4 => Input::Put { key, value },
        5 => Input::Delete { key },
        6..=7 => Input::Txn {
            // Guards that hold sometimes and fail sometimes.
            compares: vec![if rng.random_bool(0.5) {
                Compare {
                    key: key.clone(),
                    target: CompareTarget::Version(rng.random_range(0..3)),
                    op: CmpOp::Equal,
                }
            } else {
                Compare {
                    key: key.clone(),
                    target: CompareTarget::ModRevision(rng.random_range(0..200)),
                    op: if rng.random_bool(0.5) {
                        CmpOp::Greater
                    } else {
                        CmpOp::Less
                    },
                }
            }],
            success: vec![TxnOp::Put {
                key: key.clone(),
                value,
            }],
            failure: vec![TxnOp::Get { key }],
        },
        _ => {
            // Keys a-b and c-d are paired by two-key transactions.
            let other = keys[k ^ 1].to_string();
            Input::Txn {
                compares: vec![Compare {
                    key: key.clone(),
                    target: CompareTarget::Version(rng.random_range(0..3)),
                    op: if rng.random_bool(0.5) {
                        CmpOp::Greater
                    } else {
                        CmpOp::Less
                    },
                }],
                success: vec![
                    TxnOp::Put {
                        key: key.clone(),
                        value: value.clone(),
                    },
                    TxnOp::Delete { key: other.clone() },
                ],
                failure: vec![TxnOp::Get { key }, TxnOp::Get { key: other }],
            }
        }
    }
}

/// A history of `clients` sequential clients with random timing, run through [`RefStore`] in
/// the order of hidden linearization points.
fn simulate(seed: u64, clients: usize, per_client: usize) -> History {
    let mut rng = StdRng::seed_from_u64(seed);
    // (linearization point, client, call, ret, input, lost response, not applied)
    let mut planned = Vec::new();
    let mut seq = 0;
    for client in 0..clients {
        let mut t = rng.random_range(0..50u64);
        for _ in 0..per_client {
            let call = t;
            let lp = call + rng.random_range(0..100);
            let ret = lp + rng.random_range(0..100);
            let input = random_input(&mut rng, client, &mut seq);
            let lost = rng.random_bool(0.05);
            let unapplied = lost && rng.random_bool(0.5);
            planned.push((lp, client, call, ret, input, lost, unapplied));
            t = ret + rng.random_range(1..30);
        }
    }
    planned.sort_by_key(|p| (p.0, p.1));
    let mut store = RefStore::default();
    let mut ops = Vec::new();
    for (_, client, call, ret, input, lost, unapplied) in planned {
        if lost && matches!(input, Input::Get { .. }) {
            continue;
        }
        let output = if unapplied {
            None
        } else {
            Some(store.apply(&input))
        };
        ops.push(Operation {
            id: 0,
            client,
            call,
            ret: if lost { None } else { Some(ret) },
            input,
            outcome: match output {
                Some(o) if !lost => Outcome::Ok(o),
                _ => Outcome::Indefinite,
            },
        });
    }
    ops.sort_by_key(|o| o.call);
    let mut h = History::new();
    ops.into_iter().for_each(|o| h.push(o));
    h
}

#[test]
fn simulated_linearizable_histories_pass_and_falsified_ones_fail() {
    for seed in 0..40 {
        let h = simulate(seed, 6, 60);
        let report = check(&h, CheckOptions::default());
        assert!(report.is_linearizable(), "seed {seed}:\n{report}");
        assert!(
            check_revisions(&h).is_empty(),
            "seed {seed}: {:?}",
            check_revisions(&h)
        );

        let mut ops = h.ops().to_vec();
        let Some(kv) = ops.iter_mut().find_map(|o| match &mut o.outcome {
            Outcome::Ok(Output::Get { kv: Some(kv), .. }) => Some(kv),
            _ => None,
        }) else {
            continue;
        };
        kv.version += 100;
        let bad = History::from_ops(ops);
        assert!(
            !check(&bad, CheckOptions::default()).is_linearizable(),
            "seed {seed}"
        );
    }
}
