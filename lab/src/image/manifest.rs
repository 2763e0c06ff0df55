//! `manifest.json`: how to boot an image. Written last by the builder (so a directory with a
//! manifest is complete), read by the VM layer.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// File name of the manifest inside an image directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// Describes one built image. Paths are relative to the image directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Hex sha256 over all inputs; also the image directory's name.
    pub hash: String,
    /// Version of the guest kernel (`uname -r` in the guest).
    pub kernel_version: String,
    /// The kernel, for QEMU `-kernel`.
    pub kernel: PathBuf,
    /// The initramfs, for QEMU `-initrd`.
    pub initrd: PathBuf,
    /// The shared read-only root filesystem, attached as a read-only virtio disk; `None` when
    /// everything lives in the initramfs.
    pub rootfs: Option<PathBuf>,
    /// Kernel command line every VM gets; the VM layer may append to it.
    pub cmdline: String,
}

impl Manifest {
    /// Reads `dir/manifest.json`.
    pub fn load(dir: &Path) -> std::io::Result<Self> {
        let bytes = std::fs::read(dir.join(MANIFEST_FILE))?;
        serde_json::from_slice(&bytes).map_err(std::io::Error::other)
    }
}
