//! Verifying that a store speaking the etcd v3 API behaves like one linearizable etcd.
//!
//! # Layout
//!
//! - [`history`]: what clients asked and were told, with invocation/response times; writes
//!   whose fate is unknown are *indefinite*.
//! - [`model`]: the sequential specification (per-key value, version, mod/create revision;
//!   put, get, delete, txn with compares) as a step function over sets of states.
//! - [`wgl`]: the Wing–Gong–Lowe search with memoization over one partition.
//! - [`check`]: partitions a history by connected keys, searches each, and explains failures.
//! - [`revision`]: the cross-key rule that revisions follow real time.
//! - [`patch`]: resolves indefinite writes with the watch streams before the search.
//! - [`watch`]: watch-stream guarantees (order, no duplicates, atomic txns, consistency with
//!   acknowledged writes, no gaps across resumes).
//! - [`runner`]: drives a real cluster: N clients with the etcd client, watchers, and a
//!   [`runner::FaultDriver`] that kills, restarts and stops members while the history is
//!   recorded; then runs every check above.
//!
//! # Flow
//!
//! `runner::run` → [`history::History`] + [`watch::WatchLog`]s → [`watch::check_watches`]
//! → (if the watches are sound) [`patch::resolve_with_watches`] → [`check::check`] and
//! [`revision::check_revisions`] → a printable verdict.

#![warn(missing_docs)]

pub mod check;
pub mod history;
pub mod model;
pub mod patch;
pub mod revision;
pub mod runner;
pub mod watch;
pub mod wgl;

#[cfg(test)]
mod check_tests;
#[cfg(test)]
mod sim_tests;

pub use check::{CheckOptions, CheckReport, check};
pub use history::{History, Input, Operation, Outcome, Output};
