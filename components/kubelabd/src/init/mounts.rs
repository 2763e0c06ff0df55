//! Mounts: the early pseudo filesystems, the overlay root, the switch into it, and the
//! unmount at shutdown.
//!
//! The root disk (read-only squashfs, shared by every VM of a lab) is the overlay's lower
//! layer; its upper layer is a tmpfs, so writes live in RAM and every boot starts clean.

use std::path::Path;
use std::time::Duration;

use rustix::mount::{MountFlags, UnmountFlags, mount, mount_move, unmount};

use super::{Context, Error, wait_until};

/// Where the root device comes from, as given on the kernel command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootSpec {
    /// Block device (`root=`), default `/dev/vda`.
    pub device: String,
    /// Filesystem type (`rootfstype=`), default `squashfs`.
    pub fstype: String,
}

impl RootSpec {
    /// Reads `root=` and `rootfstype=` from `/proc/cmdline` text.
    pub fn from_cmdline(cmdline: &str) -> Self {
        let mut spec = RootSpec {
            device: "/dev/vda".into(),
            fstype: "squashfs".into(),
        };
        for word in cmdline.split_whitespace() {
            if let Some(v) = word.strip_prefix("root=") {
                spec.device = v.into();
            } else if let Some(v) = word.strip_prefix("rootfstype=") {
                spec.fstype = v.into();
            }
        }
        spec
    }
}

fn mount_fs(
    source: &str,
    target: &str,
    fstype: &str,
    flags: MountFlags,
    data: &str,
) -> Result<(), Error> {
    std::fs::create_dir_all(target).ctx(|| format!("creating {target}"))?;
    let data = std::ffi::CString::new(data).expect("mount options have no NUL");
    mount(source, target, fstype, flags, data.as_c_str())
        .ctx(|| format!("mounting {fstype} on {target}"))
}

/// `/proc`, `/sys`, `/dev` in the initramfs.
pub fn mount_early() -> Result<(), Error> {
    let nosuid = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
    mount_fs("proc", "/proc", "proc", nosuid, "")?;
    mount_fs("sysfs", "/sys", "sysfs", nosuid, "")?;
    mount_fs(
        "devtmpfs",
        "/dev",
        "devtmpfs",
        MountFlags::NOSUID,
        "mode=0755",
    )?;
    Ok(())
}

/// Mounts the root disk under a tmpfs overlay at `/mnt/root`, moves the pseudo filesystems
/// into it, removes the initramfs files (freeing their RAM) and makes it `/`.
pub fn switch_to_overlay_root(root: &RootSpec) -> Result<(), Error> {
    let device = Path::new(&root.device);
    if !wait_until(Duration::from_secs(5), || device.exists()) {
        return Err(Error::Timeout(format!(
            "root device {} did not appear within 5 s (is the rootfs attached as a virtio disk?)",
            root.device
        )));
    }
    mount_fs(
        &root.device,
        "/mnt/lower",
        &root.fstype,
        MountFlags::RDONLY,
        "",
    )?;
    mount_fs(
        "tmpfs",
        "/mnt/rw",
        "tmpfs",
        MountFlags::empty(),
        "mode=0755",
    )?;
    for dir in ["/mnt/rw/upper", "/mnt/rw/work"] {
        std::fs::create_dir_all(dir).ctx(|| format!("creating {dir}"))?;
    }
    mount_fs(
        "overlay",
        "/mnt/root",
        "overlay",
        MountFlags::empty(),
        "lowerdir=/mnt/lower,upperdir=/mnt/rw/upper,workdir=/mnt/rw/work",
    )?;
    for dir in ["/proc", "/sys", "/dev"] {
        let target = format!("/mnt/root{dir}");
        std::fs::create_dir_all(&target).ctx(|| format!("creating {target}"))?;
        mount_move(dir, &target).ctx(|| format!("moving {dir} to {target}"))?;
    }
    // The initramfs is a tmpfs-like rootfs that cannot be unmounted; empty it instead.
    std::fs::remove_file("/init").ctx(|| "removing /init".into())?;
    std::fs::remove_dir_all("/lib").ctx(|| "removing /lib".into())?;
    std::env::set_current_dir("/mnt/root").ctx(|| "entering /mnt/root".into())?;
    mount_move(".", "/").ctx(|| "moving the new root to /".into())?;
    rustix::process::chroot(".").ctx(|| "chroot to the new root".into())?;
    std::env::set_current_dir("/").ctx(|| "entering /".into())?;
    Ok(())
}

/// `/run`, `/dev/pts` (terminals for `kubelab ssh`), `/dev/shm` in the new root.
pub fn mount_late() -> Result<(), Error> {
    let nosuid = MountFlags::NOSUID | MountFlags::NODEV;
    mount_fs("tmpfs", "/run", "tmpfs", nosuid, "mode=0755")?;
    mount_fs(
        "devpts",
        "/dev/pts",
        "devpts",
        MountFlags::NOSUID | MountFlags::NOEXEC,
        "gid=5,mode=620,ptmxmode=666",
    )?;
    mount_fs("tmpfs", "/dev/shm", "tmpfs", nosuid, "mode=1777")?;
    Ok(())
}

/// Detaches every mount but `/`, deepest first. Everything writable lives in RAM, so this is
/// about leaving no filesystem busy, not about saving data.
pub fn unmount_all() {
    let Ok(text) = std::fs::read_to_string("/proc/self/mounts") else {
        return;
    };
    let targets: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|t| *t != "/")
        .collect();
    for target in targets.iter().rev() {
        if let Err(err) = unmount(*target, UnmountFlags::DETACH) {
            tracing::warn!(target = %target, error = %err, "unmount failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_spec_defaults_and_overrides() {
        assert_eq!(
            RootSpec::from_cmdline("console=ttyS0 quiet"),
            RootSpec {
                device: "/dev/vda".into(),
                fstype: "squashfs".into()
            }
        );
        let spec = RootSpec::from_cmdline("root=/dev/vdb rootfstype=erofs ro");
        assert_eq!(spec.device, "/dev/vdb");
        assert_eq!(spec.fstype, "erofs");
    }
}
