//! The kubelab harness: everything that runs on the host.
//!
//! # Layout
//!
//! - [`image`]: pinned Debian inputs plus the static `kubelabd` -> a content-addressed image
//!   (kernel, initramfs, root filesystem, [`image::Manifest`]).
//!
//! Modules still to land (see `ARCHITECTURE.md`): `topology` (TOML model and validation),
//! `net` (namespace, bridges, taps), `vm` (QEMU + QMP), `guest` (SSH), `state`, `scenario`.
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
pub mod state;
pub mod topology;
pub mod vm;
pub mod wait;
