//! kubelab's store: an etcd-compatible, Raft-replicated MVCC key-value store — the cluster's
//! etcd. Run it as `kubelabd store`, or embed it with [`start`] / [`run`].
//!
//! # Layout (the split of openraft's examples)
//!
//! - [`types`]: the Raft type config and the commands in the log ([`types::Request`]).
//! - [`log_store`]: Raft log + vote, durable in fjall (group commit, one journal append + fsync before ack).
//! - [`state_machine`]: applies entries to [`mvcc`], builds/installs snapshots, announces
//!   applied revisions to watchers.
//! - [`mvcc`]: etcd's data model (revisions, versions, txn, compaction, leases), deterministic.
//! - [`network`]: the peer transport on one port: AppendEntries as openraft `stream_append`
//!   over plain TCP frames; vote, snapshot and forwarding to the leader on gRPC.
//! - [`node`]: one member's client-side operations: writes (grouped into batch entries),
//!   linearizable reads (shared read-index rounds), leases, membership — leader or not.
//! - `api`: the etcd v3 gRPC services (KV, Watch, Lease, Cluster, Maintenance), and
//!   [`DirectKv`], their Range and Txn for a client in the same process without the codec.
//! - [`lease`]: lease expiry on the leader.
//! - [`config`] and [`server`]: configuration, start and shutdown.
//! - [`ports`]: loopback ports to name before binding them (local clusters, tests).
//!
//! # Flow of a write
//!
//! etcd client → `api` (validate, convert) → [`node::Node::write`] → openraft on the leader
//! (forwarded over [`network`] from a follower) → [`log_store`] appends and fsyncs on a quorum →
//! [`state_machine`] applies to [`mvcc`] → response (with the new revision) back to the client;
//! the revision's events go to the watch streams through a broadcast channel.
#![warn(missing_docs)]

mod api;
pub mod config;
pub mod lease;
pub mod log_store;
pub mod mvcc;
pub mod network;
pub mod node;
pub mod ports;
pub mod server;
pub mod state_machine;
pub mod timing;
pub mod types;

pub use api::DirectKv;
pub use config::{ClusterState, Config, ConfigError};
pub use server::{Error, RunningStore, run, start};
