//! In-process cluster tests of the store: members started with `kubelab_store::start` on
//! loopback, driven through the etcd v3 API with the `etcd-client` crate.

mod durability;
mod failover;
mod leases;
mod membership;
mod reads;
mod transport;
mod util;
mod watch;
