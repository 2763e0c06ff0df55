//! Image builder and guest init, end to end: the lock is enforced, builds are bit-identical,
//! and the image boots under QEMU to SSH (or to a clear FATAL line on bad config).
//!
//! Tests that need root, QEMU or apt print `SKIPPED <test>: <reason>` and return.

mod boot;
mod kubelabd;
mod lock;
mod reproducible;
mod util;
