//! The MVCC key-value store: etcd's data model, in memory, deterministic.
//!
//! Every write bumps one global revision (a txn's writes share it, told apart by a sub-revision).
//! Each key keeps its history of records (puts and tombstones) ordered by revision until a
//! compaction drops what no read at or above the compacted revision can see. Reads at a past
//! revision walk each key's history. Leases and member attributes live here too, so that a
//! snapshot carries the whole replicated state.
//!
//! Data flow: `state_machine` applies a [`Request`](crate::types::Request) through
//! [`Mvcc::apply`] (in `write.rs`), which returns the response and the watch [`Event`]s of that
//! revision; `api/` reads through [`Mvcc::range`] and the watch code through [`Mvcc::history`].

mod keys;
mod read;
mod sessions;
mod write;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::types::{KeyValue, NodeId};
use keys::{KeyBounds, Keys};

/// One record in a key's history.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    /// Main revision of the write.
    pub main: i64,
    /// Sub-revision within the write's txn.
    pub sub: i64,
    /// `None` marks a deletion (tombstone).
    pub value: Option<Value>,
}

/// A live value of a key.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Value {
    /// Revision that created this generation of the key.
    pub create_revision: i64,
    /// Version within the generation.
    pub version: i64,
    /// The bytes.
    pub data: Vec<u8>,
    /// Attached lease, 0 for none.
    pub lease: i64,
}

/// A lease as replicated: its TTL and the keys attached. Expiry is the leader's business
/// (`lease.rs`), so no clock value is replicated.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Lease {
    /// Granted TTL, seconds.
    pub ttl: i64,
    /// Keys attached.
    pub keys: BTreeSet<Vec<u8>>,
}

/// What a member published about itself, plus whether the leader should promote it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberAttrs {
    /// Member name (empty until the member started and published it).
    pub name: String,
    /// Client URLs.
    pub client_urls: Vec<String>,
    /// Added as a learner at run time and waiting to be promoted by the leader.
    pub promote_pending: bool,
}

/// Kind of a watch event.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A put.
    Put,
    /// A delete.
    Delete,
}

/// A change, as etcd's `mvccpb.Event`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Put or delete.
    pub kind: EventKind,
    /// The key-value after the change (for a delete: key and mod_revision only).
    pub kv: KeyValue,
    /// The key-value before the change, if the key existed.
    pub prev_kv: Option<KeyValue>,
}

/// The replicated key-value state.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Mvcc {
    /// Current revision; 1 for an empty store, as etcd.
    pub(crate) revision: i64,
    /// Highest compacted revision, 0 if never compacted.
    pub(crate) compact_revision: i64,
    /// Each key's history, oldest first, and which keys are live (`keys.rs`).
    pub(crate) keys: Keys,
    /// Leases by id.
    pub(crate) leases: BTreeMap<i64, Lease>,
    /// Members' published attributes by id.
    pub(crate) members: BTreeMap<NodeId, MemberAttrs>,
    /// Cluster id, derived from the first membership applied.
    pub(crate) cluster_id: u64,
    /// Exactly-once bookkeeping of tagged writes, by session (`sessions.rs`).
    #[serde(default)]
    pub(crate) sessions: BTreeMap<u64, sessions::Session>,
}

impl Default for Mvcc {
    fn default() -> Self {
        Self {
            revision: 1,
            compact_revision: 0,
            keys: Keys::default(),
            leases: BTreeMap::new(),
            members: BTreeMap::new(),
            cluster_id: 0,
            sessions: BTreeMap::new(),
        }
    }
}

impl Mvcc {
    /// The current revision.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// The compacted revision (0 if never compacted).
    pub fn compact_revision(&self) -> i64 {
        self.compact_revision
    }

    /// Leases and their TTLs.
    pub fn leases(&self) -> &BTreeMap<i64, Lease> {
        &self.leases
    }

    /// Members' published attributes.
    pub fn members(&self) -> &BTreeMap<NodeId, MemberAttrs> {
        &self.members
    }

    /// The cluster id (0 before the first membership was applied).
    pub fn cluster_id(&self) -> u64 {
        self.cluster_id
    }

    /// Number of keys with any history (live or not yet compacted away).
    pub fn key_count(&self) -> usize {
        self.keys.map.len()
    }
}

/// The keys a `key`/`range_end` pair selects, as etcd: empty end = one key, `\0` end = every key
/// from `key`, `key == "\0"` and end `\0` = every key.
pub(crate) fn key_bounds(key: &[u8], range_end: &[u8]) -> KeyBounds {
    use std::ops::Bound::*;
    if range_end.is_empty() {
        return (Included(key.to_vec()), Included(key.to_vec()));
    }
    let start = if key == [0] {
        Unbounded
    } else {
        Included(key.to_vec())
    };
    let end = if range_end == [0] {
        Unbounded
    } else {
        Excluded(range_end.to_vec())
    };
    (start, end)
}

/// Whether a (start, end) bound pair selects no key at all (BTreeMap::range panics on those).
pub(crate) fn bounds_empty(b: &KeyBounds) -> bool {
    use std::ops::Bound::*;
    match b {
        (Included(s), Excluded(e)) => s >= e,
        (Included(s), Included(e)) => s > e,
        _ => false,
    }
}

/// Whether `key` lies in the range `key_start`/`range_end` (etcd semantics, see [`key_bounds`]).
pub fn in_range(start: &[u8], range_end: &[u8], key: &[u8]) -> bool {
    if range_end.is_empty() {
        return key == start;
    }
    let after_start = start == [0] || key >= start;
    let before_end = range_end == [0] || key < range_end;
    after_start && before_end
}
