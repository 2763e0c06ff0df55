//! The kubelab harness: everything that runs on the host.
//!
//! # Layout
//!
//! - [`image`]: pinned Debian inputs plus the static `kubelabd` -> a content-addressed image
//!   (kernel, initramfs, root filesystem, [`image::Manifest`]).
//!
//! - [`topology`]: `topologies/*.toml` -> a validated [`topology::Topology`], or a diagnostic
//!   at `file:line:col`.
//! - [`net`]: the lab's network planned from a topology (namespace, bridges, taps, MACs,
//!   addresses, per-VM [`kubelab_nodeconfig::NodeConfig`]) and the partition rules.
//! - [`host`]: every side effect on the host behind the [`host::Host`] trait (real:
//!   `ip`/`bridge`/`nft`/QEMU/signals; a recording fake for unit tests).
//! - [`vm`]: QEMU command lines, QMP control (`qapi`), boot stages from the serial log, the
//!   KVM-or-TCG trial.
//! - [`guest`]: SSH (`ssh2`) from inside the lab namespace: exec, file copy, wait-until-ready.
//! - [`state`]: the lab's state directory: write-ahead journal, `state.json`, paths.
//! - [`lab`]: `up`, `down`, `status`, faults; [`lab::Lab`] reopens a running lab by name.
//! - [`wait`]: the one polling primitive, [`wait::wait_until`].
//! - [`output`]: the command line's stdout, quiet when its reader has gone ([`outln!`]).
//!
//! The scenario suite lives in `tests/` (crate `kubelab-vmtests`).
//!
//! # Flow of `kubelab up`
//!
//! topology file -> validated model -> image (built or taken from the cache) -> lab namespace,
//! bridges and taps -> one QEMU per node, each handed its [`kubelab_nodeconfig::NodeConfig`]
//! through fw_cfg -> SSH over the management network until every node answers.

#![warn(missing_docs)]

pub mod guest;
pub mod host;
pub mod image;
pub mod lab;
pub mod net;
pub mod output;
pub mod state;
pub mod topology;
pub mod vm;
pub mod wait;
