//! The real kubectl (found as `$KUBECTL`, /usr/local/bin, /usr/bin or PATH) against the API server (in-process, over a
//! private etcd 3.4) with the kubeconfig the server library writes. Each step asserts on
//! kubectl's exit code and output. Skips with a reason when kubectl or etcd is missing.

#[path = "../support/mod.rs"]
mod support;

mod util;

mod apply;
mod commands;
mod concurrency;
mod security;
