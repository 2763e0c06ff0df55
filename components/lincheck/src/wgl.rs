//! The Wing–Gong–Lowe search: find an order of the operations that respects real time and the
//! sequential [model](crate::model), or prove there is none.
//!
//! Data flow, as in Lowe's algorithm and Porcupine:
//!
//! 1. every operation becomes two entries, its call and its return, in one doubly linked list
//!    sorted by time (an indefinite operation's return is at +∞);
//! 2. walking the list from the head, a call entry whose operation the model accepts from the
//!    current state is *linearized*: both its entries are lifted out of the list, the old state
//!    is pushed on a stack, and the walk restarts from the head;
//! 3. reaching a return entry means its operation had to take effect by then but no order found
//!    so far allows it: pop the stack, put the last operation back and try the next candidate;
//! 4. a cache of (set of linearized operations, state) pairs already explored prunes the
//!    search; it is what makes histories of thousands of operations tractable. It keeps a
//!    128-bit fingerprint of each pair, not the pair: a full copy of a 30 000-operation bitset
//!    per entry took tens of GiB on long histories. A fingerprint collision (odds about
//!    2^-128 per pair) could only prune a branch, i.e. at worst report a violation that a
//!    rerun would not; never pass a bad history. The number of entries is capped too;
//! 5. when only indefinite operations remain, they are placed at the end ("never took effect"
//!    is always possible), and the history is linearizable.
//!
//! The deepest partial linearization found is kept, so a failure can be explained.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::history::Operation;
use crate::model::{State, StateSet, step_set};

const NONE: usize = usize::MAX;

/// How a search ended.
#[derive(Debug, Clone)]
pub enum SearchResult {
    /// An order exists.
    Linearizable,
    /// No order exists; the evidence.
    Violation(Failure),
    /// The budget ran out first.
    Inconclusive {
        /// Search steps taken.
        steps: u64,
    },
}

/// Why a search failed: the longest order it could build and where it got stuck.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Ids of the operations of the longest linearizable prefix, in order.
    pub prefix: Vec<usize>,
    /// The states the store may be in after that prefix.
    pub states: StateSet,
    /// The operation (id) that had returned yet could not be placed after the prefix.
    pub stuck: usize,
    /// Operations (ids) that could have come next in real-time order, none of which the model
    /// accepts, with whether each is legal in isolation.
    pub candidates: Vec<(usize, bool)>,
}

/// Limits on one search.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Give up after this long.
    pub max_time: Duration,
    /// Give up when the cache holds this many fingerprints (16 bytes each, plus the table).
    pub max_cache_entries: usize,
}

/// A 128-bit fingerprint of (linearized set, states): two independently keyed 64-bit hashes.
fn fingerprint(bits: &Bits, states: &StateSet) -> u128 {
    use std::hash::{Hash, Hasher};
    let half = |salt: u64| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        salt.hash(&mut h);
        bits.hash(&mut h);
        states.hash(&mut h);
        h.finish()
    };
    (u128::from(half(0x9e37_79b9_7f4a_7c15)) << 64) | u128::from(half(0xc2b2_ae3d_27d4_eb4f))
}

#[derive(Clone, Copy)]
struct Node {
    prev: usize,
    next: usize,
    /// Index into the partition's operations.
    op: usize,
    /// For a call entry, its return entry; for a return entry, `NONE`.
    ret: usize,
    /// Return entries of indefinite operations are at +∞.
    infinite: bool,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Self {
        Bits(vec![0; n.div_ceil(64)])
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
    #[cfg(test)]
    fn get(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
}

/// Searches for a linearization of `ops` (one partition) from the empty store.
pub fn search(ops: &[&Operation], budget: Budget) -> SearchResult {
    let n = ops.len();
    // Node 0 is the head sentinel; then one node per entry in time order.
    let mut entries: Vec<(u64, u8, usize)> = Vec::with_capacity(2 * n);
    for (i, op) in ops.iter().enumerate() {
        entries.push((op.call, 0, i));
        entries.push((op.ret.unwrap_or(u64::MAX), 1, i));
    }
    // At equal times calls sort first: equal stamps are read as overlapping.
    entries.sort();
    let mut nodes = vec![Node {
        prev: NONE,
        next: NONE,
        op: NONE,
        ret: NONE,
        infinite: false,
    }];
    let mut call_node = vec![NONE; n];
    for (t, kind, i) in &entries {
        let idx = nodes.len();
        nodes.push(Node {
            prev: idx - 1,
            next: NONE,
            op: *i,
            ret: NONE,
            infinite: *kind == 1 && *t == u64::MAX && ops[*i].ret.is_none(),
        });
        nodes[idx - 1].next = idx;
        if *kind == 0 {
            call_node[*i] = idx;
        } else {
            nodes[call_node[*i]].ret = idx;
        }
    }

    let started = Instant::now();
    let mut state: StateSet = vec![State::default()];
    let mut linearized = Bits::new(n);
    let mut cache: HashSet<u128> = HashSet::new();
    let mut stack: Vec<(usize, StateSet)> = Vec::new();
    let mut best: Option<(Vec<usize>, StateSet)> = None;
    let mut entry = nodes[0].next;
    let mut steps: u64 = 0;

    loop {
        steps += 1;
        if steps.is_multiple_of(4096) && started.elapsed() > budget.max_time {
            return SearchResult::Inconclusive { steps };
        }
        if nodes[0].next == NONE || nodes[entry].infinite {
            return SearchResult::Linearizable;
        }
        let node = nodes[entry];
        if node.ret != NONE {
            // A call entry: try to linearize its operation here.
            let op = ops[node.op];
            let next = step_set(&state, &op.input, &op.outcome);
            if !next.is_empty() {
                linearized.set(node.op);
                if cache.len() >= budget.max_cache_entries {
                    return SearchResult::Inconclusive { steps };
                }
                if cache.insert(fingerprint(&linearized, &next)) {
                    stack.push((entry, std::mem::replace(&mut state, next)));
                    lift(&mut nodes, entry);
                    if best.as_ref().is_none_or(|(p, _)| p.len() < stack.len()) {
                        let prefix = stack.iter().map(|(e, _)| ops[nodes[*e].op].id).collect();
                        best = Some((prefix, state.clone()));
                    }
                    entry = nodes[0].next;
                    continue;
                }
                linearized.clear(node.op);
            }
            entry = node.next;
        } else {
            // A return entry: its operation should already be linearized. Backtrack.
            let Some((e, s)) = stack.pop() else {
                return SearchResult::Violation(explain(ops, best));
            };
            state = s;
            linearized.clear(nodes[e].op);
            unlift(&mut nodes, e);
            entry = nodes[e].next;
        }
    }
}

/// Builds the failure report from the deepest prefix reached.
fn explain(ops: &[&Operation], best: Option<(Vec<usize>, StateSet)>) -> Failure {
    let (prefix, states) = best.unwrap_or_else(|| (Vec::new(), vec![State::default()]));
    let placed: HashSet<usize> = prefix.iter().copied().collect();
    let rest: Vec<&Operation> = ops
        .iter()
        .copied()
        .filter(|o| !placed.contains(&o.id))
        .collect();
    // The remaining definite operation that returned first must be placed next-or-earlier.
    let stuck = rest
        .iter()
        .filter_map(|o| o.ret.map(|r| (r, o.id)))
        .min()
        .map_or(usize::MAX, |(_, id)| id);
    let deadline = rest.iter().filter_map(|o| o.ret).min().unwrap_or(u64::MAX);
    let candidates = rest
        .iter()
        .filter(|o| o.call <= deadline)
        .map(|o| (o.id, !step_set(&states, &o.input, &o.outcome).is_empty()))
        .collect();
    Failure {
        prefix,
        states,
        stuck,
        candidates,
    }
}

fn lift(nodes: &mut [Node], call: usize) {
    let ret = nodes[call].ret;
    for e in [call, ret] {
        let Node { prev, next, .. } = nodes[e];
        nodes[prev].next = next;
        if next != NONE {
            nodes[next].prev = prev;
        }
    }
}

fn unlift(nodes: &mut [Node], call: usize) {
    let ret = nodes[call].ret;
    for e in [ret, call] {
        let Node { prev, next, .. } = nodes[e];
        nodes[prev].next = e;
        if next != NONE {
            nodes[next].prev = e;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_set_clear() {
        let mut b = Bits::new(130);
        b.set(0);
        b.set(129);
        assert!(b.get(0) && b.get(129) && !b.get(64));
        b.clear(129);
        assert!(!b.get(129));
    }
}
