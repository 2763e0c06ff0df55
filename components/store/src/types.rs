//! The Raft type configuration and the commands that travel through the Raft log.
//!
//! A client request is turned (by `api/`) into a [`Request`], proposed through openraft,
//! replicated, and applied by `state_machine` to the MVCC store (`mvcc/`), which returns a
//! [`Response`]. These types are transport-free: the etcd protobuf types never enter the log.

use std::fmt;
use std::io::Cursor;

use serde::{Deserialize, Serialize};

/// A member's Raft id. Derived from its advertised peer URLs (see `config::member_id`), like etcd.
pub type NodeId = u64;

/// The store's openraft type configuration: openraft's defaults (log ids and votes with the
/// "advanced" leader id, term plus node id, as in 0.9) except the ids, the application data and
/// the responder. Written out rather than with `declare_raft_types!`, which cannot set the
/// generic `Responder<T>`.
#[derive(Debug, Clone, Copy, Default, Eq, PartialEq, Ord, PartialOrd)]
pub struct TypeConfig {}

impl openraft::RaftTypeConfig for TypeConfig {
    type D = Request;
    type R = Response;
    type NodeId = NodeId;
    type Node = PeerNode;
    type Term = u64;
    type LeaderId = openraft::impls::leader_id_adv::LeaderId<Self::Term, Self::NodeId>;
    type Vote = openraft::impls::Vote<Self::LeaderId>;
    type Payload = openraft::EntryPayload<Self::D, Self::NodeId, Self::Node>;
    type Entry =
        openraft::Entry<<Self::LeaderId as openraft::vote::RaftLeaderId>::Committed, Self::Payload>;
    type AsyncRuntime = openraft::TokioRuntime;
    type Responder<T>
        = Callback<T>
    where
        T: openraft::OptionalSend + 'static;
    type Batch<T>
        = openraft::impls::InlineBatch<T>
    where
        T: openraft::OptionalSend + 'static;
    type ErrorSource = openraft::impls::BoxedErrorSource;
}

/// What openraft calls with a write's result (its `Responder`): a closure, run where openraft
/// completes the write — in the state machine's apply, right after the entry is applied, or in
/// the Raft core when the write is refused. The proposer (`node/propose.rs`) hands each waiting
/// caller its response from there, with no task in between. Dropped without being called (the
/// member stopped), the closure's channels close and the callers see that.
pub struct Callback<T>(Box<dyn FnOnce(T) + Send + 'static>);

impl<T> Callback<T> {
    /// A responder that calls `f` with the result.
    pub fn new(f: impl FnOnce(T) + Send + 'static) -> Self {
        Self(Box::new(f))
    }
}

impl<T> openraft::raft::responder::Responder<TypeConfig, T> for Callback<T>
where
    T: openraft::OptionalSend + 'static,
{
    fn on_complete(self, result: T) {
        (self.0)(result)
    }
}

/// A snapshot's bytes (the encoded state machine), as the state machine and transport see them.
pub type SnapshotData = Cursor<Vec<u8>>;
/// The Raft handle of one member.
pub type Raft = openraft::Raft<TypeConfig, crate::state_machine::StateMachineStore>;
/// A Raft log entry.
pub type Entry = openraft::alias::EntryOf<TypeConfig>;
/// A Raft log id.
pub type LogId = openraft::alias::LogIdOf<TypeConfig>;
/// A Raft vote (term, candidate, whether granted by a quorum).
pub type Vote = openraft::alias::VoteOf<TypeConfig>;
/// openraft's storage error for our types.
pub type StorageError = openraft::StorageError<TypeConfig>;
/// A snapshot's metadata.
pub type SnapshotMeta = openraft::alias::SnapshotMetaOf<TypeConfig>;
/// A snapshot: metadata plus the encoded state.
pub type Snapshot = openraft::alias::SnapshotOf<TypeConfig, SnapshotData>;
/// The membership as stored in the log and state machine.
pub type StoredMembership = openraft::alias::StoredMembershipOf<TypeConfig>;

/// What openraft knows about a member: where its peer (Raft) transport listens.
/// Its name and client URLs live in the state machine (published by the member itself).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerNode {
    /// The member's advertised peer URLs (`http://host:port`); the first one is dialled.
    pub peer_urls: Vec<String>,
}

impl fmt::Display for PeerNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.peer_urls.join(","))
    }
}

/// A short form for openraft's log lines: the kind of request, never keys or values.
impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::Put(_) => f.write_str("put"),
            Request::DeleteRange(_) => f.write_str("delete-range"),
            Request::Txn(_) => f.write_str("txn"),
            Request::Compact(rev) => write!(f, "compact({rev})"),
            Request::LeaseGrant { .. } => f.write_str("lease-grant"),
            Request::LeaseRevoke(id) => write!(f, "lease-revoke({id})"),
            Request::PublishMember { id, .. } => write!(f, "publish-member({id})"),
            Request::MemberAdded { .. } => f.write_str("member-added"),
            Request::MemberPromoted(id) => write!(f, "member-promoted({id})"),
            Request::MemberRemoved(id) => write!(f, "member-removed({id})"),
            Request::Batch(reqs) => write!(f, "batch({})", reqs.len()),
            Request::Once { req, .. } => write!(f, "once({req})"),
        }
    }
}

/// One key's value at one revision, as etcd's `mvccpb.KeyValue`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: Vec<u8>,
    /// Revision of the last creation of this key.
    pub create_revision: i64,
    /// Revision of the last modification of this key.
    pub mod_revision: i64,
    /// Number of modifications since creation (1 after the creating put).
    pub version: i64,
    /// The value.
    pub value: Vec<u8>,
    /// Attached lease id, 0 for none.
    pub lease: i64,
}

/// A put, as etcd's `PutRequest`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Put {
    /// The key.
    pub key: Vec<u8>,
    /// The new value.
    pub value: Vec<u8>,
    /// Lease to attach, 0 for none.
    pub lease: i64,
    /// Return the previous key-value.
    pub prev_kv: bool,
    /// Keep the current value (error if the key does not exist).
    pub ignore_value: bool,
    /// Keep the current lease (error if the key does not exist).
    pub ignore_lease: bool,
}

/// A delete of one key or a range, as etcd's `DeleteRangeRequest`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteRange {
    /// First key.
    pub key: Vec<u8>,
    /// End of the range (exclusive); empty for one key, `\0` for every key from `key`.
    pub range_end: Vec<u8>,
    /// Return the deleted key-values.
    pub prev_kv: bool,
}

/// Sort order of a range result.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortOrder {
    /// Key order, unsorted by the target.
    #[default]
    None,
    /// Ascending by the target.
    Ascend,
    /// Descending by the target.
    Descend,
}

/// What a range result is sorted by.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortTarget {
    /// The key.
    #[default]
    Key,
    /// The version.
    Version,
    /// The create revision.
    Create,
    /// The mod revision.
    Mod,
    /// The value.
    Value,
}

/// A read, as etcd's `RangeRequest`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Range {
    /// First key.
    pub key: Vec<u8>,
    /// End of the range (exclusive); empty for one key, `\0` for every key from `key`.
    pub range_end: Vec<u8>,
    /// Maximum number of keys returned, 0 for no limit.
    pub limit: i64,
    /// Read at this revision; 0 (or less) for the current one.
    pub revision: i64,
    /// Sort order.
    pub sort_order: SortOrder,
    /// Sort target.
    pub sort_target: SortTarget,
    /// Return keys without values.
    pub keys_only: bool,
    /// Return only the count.
    pub count_only: bool,
    /// Filters (0 = no filter).
    pub min_mod_revision: i64,
    /// See `min_mod_revision`.
    pub max_mod_revision: i64,
    /// See `min_mod_revision`.
    pub min_create_revision: i64,
    /// See `min_mod_revision`.
    pub max_create_revision: i64,
}

/// The result of a range.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeResult {
    /// The matching key-values (up to the limit).
    pub kvs: Vec<KeyValue>,
    /// Whether more keys matched than the limit let through.
    pub more: bool,
    /// How many keys matched in total.
    pub count: i64,
}

/// What a txn compare looks at.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum CompareTarget {
    /// The key's version.
    Version(i64),
    /// The key's create revision.
    Create(i64),
    /// The key's mod revision.
    Mod(i64),
    /// The key's value.
    Value(Vec<u8>),
    /// The key's lease.
    Lease(i64),
}

/// How a txn compare compares.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareResult {
    /// `==`
    Equal,
    /// `>`
    Greater,
    /// `<`
    Less,
    /// `!=`
    NotEqual,
}

/// One txn condition.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Compare {
    /// The key (or first key of a range).
    pub key: Vec<u8>,
    /// End of the range, empty for one key.
    pub range_end: Vec<u8>,
    /// The comparison.
    pub result: CompareResult,
    /// The field and the value compared with.
    pub target: CompareTarget,
}

/// One operation of a txn branch.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// A read.
    Range(Range),
    /// A put.
    Put(Put),
    /// A delete.
    Delete(DeleteRange),
    /// A nested txn.
    Txn(Txn),
}

/// A transaction, as etcd's `TxnRequest`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Txn {
    /// All must hold for `success` to run; otherwise `failure` runs.
    pub compare: Vec<Compare>,
    /// Ops run when every compare holds.
    pub success: Vec<Op>,
    /// Ops run otherwise.
    pub failure: Vec<Op>,
}

/// The result of one txn op.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum OpResult {
    /// Result of a range.
    Range(RangeResult),
    /// Result of a put: the previous key-value if asked.
    Put(Option<KeyValue>),
    /// Result of a delete: how many keys, and their previous values if asked.
    Delete(i64, Vec<KeyValue>),
    /// Result of a nested txn.
    Txn(TxnResult),
}

/// The result of a txn.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct TxnResult {
    /// Whether the compares held.
    pub succeeded: bool,
    /// One result per op of the branch that ran.
    pub responses: Vec<OpResult>,
}

/// A command replicated through the Raft log.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Put one key.
    Put(Put),
    /// Delete a key or range.
    DeleteRange(DeleteRange),
    /// A transaction.
    Txn(Txn),
    /// Compact history up to this revision.
    Compact(i64),
    /// Grant a lease (the id is chosen by the proposer so every replica applies the same one).
    LeaseGrant {
        /// Lease id (non-zero).
        id: i64,
        /// TTL in seconds.
        ttl: i64,
    },
    /// Revoke a lease and delete its keys (a client revoke, or expiry detected by the leader).
    LeaseRevoke(i64),
    /// A member announces its name and client URLs (like etcd's publish on start).
    PublishMember {
        /// Member id.
        id: NodeId,
        /// Member name.
        name: String,
        /// Client URLs.
        client_urls: Vec<String>,
    },
    /// A member was added at run time; the leader promotes it to voter once it caught up
    /// unless it was added as a learner.
    MemberAdded {
        /// Member id.
        id: NodeId,
        /// Whether it stays a learner until promoted.
        learner: bool,
    },
    /// A learner was promoted to voter (by the leader, or by `member promote`).
    MemberPromoted(NodeId),
    /// A member was removed at run time.
    MemberRemoved(NodeId),
    /// Several client requests proposed as one log entry (one fsync for all of them, see
    /// `node/propose.rs`); applied in order, each with its own revision.
    Batch(Vec<Request>),
    /// A client write tagged so that it is applied at most once however often it is proposed
    /// (a follower re-forwards it after losing the leader mid-call; see `mvcc/sessions.rs`).
    Once {
        /// The proposing member's session (random per process start).
        session: u64,
        /// This write's number within the session.
        seq: u64,
        /// Every number below this one has finished: its cached response may go.
        done_below: u64,
        /// The write.
        req: Box<Request>,
    },
}

impl Request {
    /// Rough encoded size, to bound batches.
    pub fn approx_size(&self) -> usize {
        match self {
            Request::Put(p) => p.key.len() + p.value.len() + 32,
            Request::DeleteRange(d) => d.key.len() + d.range_end.len() + 32,
            Request::Txn(t) => {
                let ops = |ops: &[Op]| -> usize {
                    ops.iter()
                        .map(|op| match op {
                            Op::Put(p) => p.key.len() + p.value.len() + 32,
                            Op::Delete(d) => d.key.len() + d.range_end.len() + 32,
                            Op::Range(r) => r.key.len() + r.range_end.len() + 64,
                            Op::Txn(t) => Request::Txn(t.clone()).approx_size(),
                        })
                        .sum()
                };
                let cmp: usize = t
                    .compare
                    .iter()
                    .map(|c| c.key.len() + c.range_end.len() + 48)
                    .sum();
                cmp + ops(&t.success) + ops(&t.failure)
            }
            Request::Batch(reqs) => reqs.iter().map(Request::approx_size).sum(),
            Request::Once { req, .. } => req.approx_size() + 24,
            _ => 64,
        }
    }
}

/// An error applying a request, deterministic on every replica; reported to the client.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// Read or compaction below the compacted revision.
    #[error("etcdserver: mvcc: required revision has been compacted")]
    Compacted,
    /// Read or compaction above the current revision.
    #[error("etcdserver: mvcc: required revision is a future revision")]
    FutureRevision,
    /// The lease does not exist.
    #[error("etcdserver: requested lease not found")]
    LeaseNotFound,
    /// A lease with this id exists.
    #[error("etcdserver: lease already exists")]
    LeaseExists,
    /// `ignore_value`/`ignore_lease` on a key that does not exist.
    #[error("etcdserver: key not found")]
    KeyNotFound,
    /// A txn writes the same key twice.
    #[error("etcdserver: duplicate key given in txn request")]
    DuplicateKey,
    /// A late copy of a tagged write whose proposer had already given up on it: not applied.
    #[error("etcdserver: request timed out")]
    Abandoned,
}

/// The outcome of applying a [`Request`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Put done; the previous key-value if asked.
    Put(Option<KeyValue>),
    /// Delete done: count and previous key-values if asked.
    Delete(i64, Vec<KeyValue>),
    /// Txn done.
    Txn(TxnResult),
    /// Compaction done.
    Compacted,
    /// Lease granted with this TTL.
    LeaseGranted(i64),
    /// Lease revoked.
    LeaseRevoked,
    /// Membership bookkeeping done.
    Member,
    /// A membership (config change or blank) entry.
    Raft,
    /// The responses of a [`Request::Batch`], in order.
    Batch(Vec<Response>),
}

/// The response to an applied [`Request`]: the store revision after it, and its outcome.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The store's revision after applying.
    pub revision: i64,
    /// What happened.
    pub result: Result<Outcome, ApplyError>,
}
