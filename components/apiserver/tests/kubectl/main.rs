//! The real kubectl (found as `$KUBECTL`, /usr/local/bin, /usr/bin or PATH) against the API
//! server in-process, over HTTPS with the admin kubeconfig the server wrote. Each step asserts
//! on kubectl's exit code and output.
//!
//! Every test runs on each store backend: `<test>::embedded` (the single-member kubelab store
//! embedded in the server, `kubelabd apiserver`'s default), `<test>::etcd` (real etcd 3.4, a
//! child process) and `<test>::store3` (three kubelab store members in-process on loopback).
//! Each test has its own server and store (nextest runs every test in its own process, so a
//! shared server would have to be a cross-process fixture; a server with its store starts in
//! about a second, small next to kubectl's own run time). Skips with a reason when kubectl —
//! or, for `::etcd`, etcd — is missing.

#[path = "../support/mod.rs"]
mod support;

mod log;
mod util;

/// Turns `async fn <test>(Backend)` into the tests `<test>::embedded`, `<test>::etcd` and
/// `<test>::store3`.
macro_rules! per_backend {
    ($test:ident) => {
        mod $test {
            use crate::support::Backend;

            async fn on(backend: Backend) {
                if crate::util::skip(backend) {
                    return;
                }
                super::$test(backend).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                on(Backend::Embedded).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn etcd() {
                on(Backend::Etcd).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn store3() {
                on(Backend::Store3).await
            }
        }
    };
}

mod apply;
mod audit;
mod commands;
mod concurrency;
mod events;
mod noop;
mod security;
