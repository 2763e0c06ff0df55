//! Linearizability and watch checks of real 3-member clusters under faults.
//!
//! Each target starts its own cluster on loopback (fresh ports and data directories, every
//! process killed on drop), runs the seeded workload with faults, and fails on any violation,
//! printing the offending operations, the seed and the fault timeline.
//!
//! `LINCHECK_SEED=<n>` replays a seed. `LINCHECK_LONG=1` runs 5 minutes with 16 clients; run it
//! with `cargo test` (nextest's default profile stops a test after 5 minutes):
//! `LINCHECK_LONG=1 cargo test -p kubelab-lincheck --test cluster -- --nocapture`.
//! `KUBELABD=<path>` tests that binary (e.g. a release build) instead of building one.

mod etcd;
mod kubelabd;
mod util;
