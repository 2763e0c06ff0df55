//! kubelab's store: an etcd-compatible, Raft-replicated MVCC key-value store.
#![warn(missing_docs)]

pub mod log_store;
pub mod mvcc;
pub mod state_machine;
pub mod types;
