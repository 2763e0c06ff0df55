//! API-level tests: the server in-process over a real etcd 3.4, driven over HTTP.
//! Each test starts its own etcd and server (skipped with a reason if etcd is missing).

#[path = "../support/mod.rs"]
mod support;

mod audit;
mod crud;
mod delete;
mod discovery;
mod errors;
mod fresh;
mod guards;
mod kube_client;
mod lists;
mod metadata;
mod metrics;
mod noop;
mod patch;
mod services;
mod storage;
mod validation;
mod version;
mod watch;
