//! Checking a whole history: partition by key, search each part, explain any failure.
//!
//! Linearizability is compositional: a history of independent objects is linearizable when
//! each object's sub-history is. Each key is such an object, except that a transaction touching
//! several keys ties them together, so keys are grouped with a union-find over every
//! operation's key set and each group is checked as one object (its state holds all its keys).
//! Groups are searched one after the other; the report lists every group's result.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::history::{History, Key, Operation};
use crate::wgl::{Budget, SearchResult, search};

/// Options of [`check`].
#[derive(Debug, Clone, Copy)]
pub struct CheckOptions {
    /// Time budget per partition; a search that runs out is reported as inconclusive.
    pub max_time_per_partition: Duration,
    /// Memory budget per partition, in cache entries (about 40 bytes each with the table).
    pub max_cache_entries: usize,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self {
            max_time_per_partition: Duration::from_secs(60),
            // About 1.2 GiB at most: the machine is shared.
            max_cache_entries: 30_000_000,
        }
    }
}

/// The result for one partition.
#[derive(Debug, Clone)]
pub struct PartitionReport {
    /// The keys of this partition.
    pub keys: Vec<Key>,
    /// The partition's operations.
    pub ops: Vec<Operation>,
    /// What the search found.
    pub result: SearchResult,
}

/// The result of [`check`].
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// One entry per partition, in key order.
    pub partitions: Vec<PartitionReport>,
}

impl CheckReport {
    /// Whether every partition was found linearizable.
    pub fn is_linearizable(&self) -> bool {
        self.partitions
            .iter()
            .all(|p| matches!(p.result, SearchResult::Linearizable))
    }
}

/// Groups operations by connected key sets.
pub fn partition(history: &History) -> Vec<(Vec<Key>, Vec<&Operation>)> {
    let mut index: BTreeMap<&Key, usize> = BTreeMap::new();
    for op in history.ops() {
        for k in op.input.keys() {
            let n = index.len();
            index.entry(k).or_insert(n);
        }
    }
    let mut parent: Vec<usize> = (0..index.len()).collect();
    fn find(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for op in history.ops() {
        let keys = op.input.keys();
        if let Some((first, rest)) = keys.split_first() {
            let a = find(&mut parent, index[first]);
            for k in rest {
                let b = find(&mut parent, index[k]);
                parent[b] = a;
            }
        }
    }
    let mut groups: BTreeMap<usize, (Vec<Key>, Vec<&Operation>)> = BTreeMap::new();
    for (k, i) in &index {
        let root = find(&mut parent, *i);
        groups.entry(root).or_default().0.push((*k).clone());
    }
    for op in history.ops() {
        if let Some(k) = op.input.keys().first() {
            let root = find(&mut parent, index[k]);
            groups
                .get_mut(&root)
                .expect("every key has a group")
                .1
                .push(op);
        }
    }
    let mut out: Vec<_> = groups.into_values().collect();
    out.iter_mut().for_each(|(keys, _)| keys.sort());
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Checks `history` against the sequential KV model.
pub fn check(history: &History, options: CheckOptions) -> CheckReport {
    let budget = Budget {
        max_time: options.max_time_per_partition,
        max_cache_entries: options.max_cache_entries,
    };
    let partitions = partition(history)
        .into_iter()
        .map(|(keys, ops)| {
            let result = search(&ops, budget);
            tracing::debug!(keys = ?keys, ops = ops.len(), ?result, "partition checked");
            PartitionReport {
                keys,
                ops: ops.into_iter().cloned().collect(),
                result,
            }
        })
        .collect();
    CheckReport { partitions }
}

/// How many operations of the prefix to show before the point of failure.
const SHOWN_PREFIX: usize = 12;

impl fmt::Display for PartitionReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = self.keys.join(", ");
        let n = self.ops.len();
        match &self.result {
            SearchResult::Linearizable => writeln!(f, "keys [{keys}] ({n} ops): linearizable"),
            SearchResult::Inconclusive { steps } => writeln!(
                f,
                "keys [{keys}] ({n} ops): INCONCLUSIVE, search budget exhausted after {steps} steps"
            ),
            SearchResult::Violation(fail) => {
                let by_id: BTreeMap<usize, &Operation> =
                    self.ops.iter().map(|o| (o.id, o)).collect();
                writeln!(f, "keys [{keys}] ({n} ops): NOT LINEARIZABLE")?;
                writeln!(
                    f,
                    "  longest linearizable order found: {} ops; its last {}:",
                    fail.prefix.len(),
                    fail.prefix.len().min(SHOWN_PREFIX)
                )?;
                for id in &fail.prefix[fail.prefix.len().saturating_sub(SHOWN_PREFIX)..] {
                    writeln!(f, "    {}", by_id[id])?;
                }
                writeln!(f, "  store state after it (any of):")?;
                for s in &fail.states {
                    writeln!(f, "    {s}")?;
                }
                if let Some(op) = by_id.get(&fail.stuck) {
                    writeln!(
                        f,
                        "  this operation returned but fits nowhere after that order:"
                    )?;
                    writeln!(f, "    {op}")?;
                }
                writeln!(
                    f,
                    "  operations that could come next in real time (none leads on):"
                )?;
                for (id, legal) in &fail.candidates {
                    let why = if *legal {
                        "legal here, but blocks a later op"
                    } else {
                        "ILLEGAL"
                    };
                    writeln!(f, "    {} [{why}]", by_id[id])?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bad = self
            .partitions
            .iter()
            .filter(|p| !matches!(p.result, SearchResult::Linearizable))
            .count();
        let ops: usize = self.partitions.iter().map(|p| p.ops.len()).sum();
        writeln!(
            f,
            "linearizability: {} partitions, {ops} ops, {bad} not shown linearizable",
            self.partitions.len()
        )?;
        for p in &self.partitions {
            if matches!(p.result, SearchResult::Linearizable) && bad > 0 {
                continue;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}
