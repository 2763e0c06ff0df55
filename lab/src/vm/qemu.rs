//! The QEMU command line for one node, built from the image manifest, the node's topology
//! entry and its NICs from the [`NetPlan`](crate::net::NetPlan).

use std::path::{Path, PathBuf};

use kubelab_nodeconfig::{FW_CFG_NAME, FW_CFG_SSH_HOST_KEY};

use crate::host::QemuLaunch;
use crate::image::Manifest;
use crate::net::Nic;
use crate::state::Accel;

/// Appended to the image's kernel command line. `quiet` would hide the kernel's banner, the
/// only console line that tells "the kernel runs" apart from "QEMU is still in firmware";
/// `loglevel=6` prints messages up to notice level (the banner is a notice), which adds only a
/// handful of console lines.
pub const CMDLINE_EXTRA: &str = "loglevel=6";

/// qboot, when installed: the fastest firmware for direct kernel boot.
pub fn firmware() -> Option<String> {
    Path::new(crate::image::QBOOT_ROM)
        .exists()
        .then(|| crate::image::QBOOT_ROM.to_string())
}

/// Everything needed to start one node's QEMU.
#[derive(Debug, Clone)]
pub struct VmSpec<'a> {
    /// `<lab>/<node>`, shown by `ps` and in QEMU's window title.
    pub name: String,
    /// The image directory (paths in the manifest are relative to it).
    pub image_dir: &'a Path,
    /// The image's manifest.
    pub manifest: &'a Manifest,
    /// vCPUs.
    pub vcpus: u32,
    /// Memory, MiB.
    pub memory_mib: u32,
    /// The node's NICs, management first.
    pub nics: Vec<&'a Nic>,
    /// Accelerator.
    pub accel: Accel,
    /// The node's fw_cfg file.
    pub node_config: PathBuf,
    /// The node's SSH host key in dropbear's format, handed in through fw_cfg too.
    pub host_key: Option<PathBuf>,
    /// QMP socket to create.
    pub qmp_socket: PathBuf,
    /// Serial console log.
    pub serial_log: PathBuf,
    /// PID file.
    pub pidfile: PathBuf,
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

impl VmSpec<'_> {
    /// The command line, detached (`-daemonize`) with a PID file.
    pub fn launch(&self) -> QemuLaunch {
        let mut args: Vec<String> = Vec::new();
        let mut push = |items: &[&str]| args.extend(items.iter().map(|s| s.to_string()));
        push(&["-name", &self.name]);
        push(&["-nodefaults", "-no-user-config", "-display", "none"]);
        // q35 (MSI-X for virtio instead of ACPI PCI link setup) and qboot (firmware in ~0.1 s
        // instead of ~0.7 s under TCG) are the image's recommended setup (docs/images.md).
        match self.accel {
            // `-cpu host` passes the host's features through. Under TCG, `max` emulates RDRAND,
            // so the guest's CRNG is ready at once (measured: "crng init done" at 0.0 s instead
            // of ~7 s of guest time with `qemu64`); boot to the kernel banner is no slower.
            Accel::Kvm => push(&["-machine", "q35,accel=kvm", "-cpu", "host"]),
            Accel::Tcg => push(&["-machine", "q35,accel=tcg", "-cpu", "max"]),
        }
        if let Some(bios) = firmware() {
            push(&["-bios", &bios]);
        }
        push(&[
            "-smp",
            &self.vcpus.to_string(),
            "-m",
            &self.memory_mib.to_string(),
        ]);
        // Kernel, initramfs, command line, read-only root disk, RNG: the image's part.
        args.extend(crate::image::qemu_image_args(
            self.image_dir,
            self.manifest,
            CMDLINE_EXTRA,
        ));
        let mut push = |items: &[&str]| args.extend(items.iter().map(|s| s.to_string()));
        let fw_cfg = format!("name={FW_CFG_NAME},file={}", path(&self.node_config));
        push(&["-fw_cfg", &fw_cfg]);
        if let Some(key) = &self.host_key {
            let item = format!("name={FW_CFG_SSH_HOST_KEY},file={}", path(key));
            push(&["-fw_cfg", &item]);
        }
        for nic in &self.nics {
            // The netdev id is the guest's interface name, so `set_link` takes that name.
            let netdev = format!(
                "tap,id={},ifname={},script=no,downscript=no",
                nic.name, nic.tap
            );
            let device = format!("virtio-net-pci,netdev={},mac={}", nic.name, nic.mac);
            push(&["-netdev", &netdev, "-device", &device]);
        }
        let chardev = format!("file,id=console,path={}", path(&self.serial_log));
        push(&["-chardev", &chardev, "-serial", "chardev:console"]);
        let qmp = format!("unix:{},server=on,wait=off", path(&self.qmp_socket));
        push(&["-qmp", &qmp]);
        push(&["-daemonize", "-pidfile", &path(&self.pidfile)]);
        QemuLaunch {
            args,
            pidfile: self.pidfile.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::NetPlan;
    use crate::topology::Topology;

    #[test]
    fn command_line_has_every_nic_fw_cfg_and_control_sockets() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../topologies/routed.toml");
        let t = Topology::load(&path).unwrap();
        let plan = NetPlan::new(&t);
        let manifest = Manifest {
            hash: "abc".into(),
            kernel_version: "6.1".into(),
            kernel: "vmlinuz".into(),
            initrd: "initrd.img".into(),
            rootfs: Some("root.squashfs".into()),
            cmdline: "console=ttyS0 quiet".into(),
        };
        let spec = VmSpec {
            name: "routed/router".into(),
            image_dir: Path::new("/img/abc"),
            manifest: &manifest,
            vcpus: 1,
            memory_mib: 256,
            nics: plan.node_nics("router").collect(),
            accel: Accel::Tcg,
            node_config: "/s/node.json".into(),
            host_key: Some("/s/host.key".into()),
            qmp_socket: "/s/qmp.sock".into(),
            serial_log: "/s/serial.log".into(),
            pidfile: "/s/qemu.pid".into(),
        };
        let launch = spec.launch();
        let line = launch.args.join(" ");
        assert!(line.contains("-kernel /img/abc/vmlinuz"), "{line}");
        assert!(
            line.contains("-append console=ttyS0 quiet loglevel=6"),
            "{line}"
        );
        assert!(line.contains("file=/img/abc/root.squashfs"), "{line}");
        assert!(
            line.contains(&format!("-fw_cfg name={FW_CFG_NAME},file=/s/node.json")),
            "{line}"
        );
        assert!(
            line.contains(&format!(
                "-fw_cfg name={FW_CFG_SSH_HOST_KEY},file=/s/host.key"
            )),
            "{line}"
        );
        assert!(
            line.contains("-netdev tap,id=mgmt0,ifname=tap0-0,"),
            "{line}"
        );
        assert!(
            line.contains("-netdev tap,id=eth1,ifname=tap0-2,"),
            "{line}"
        );
        assert!(line.contains("mac=52:54:00:4b:00:02"), "{line}");
        assert!(
            line.contains("-qmp unix:/s/qmp.sock,server=on,wait=off"),
            "{line}"
        );
        assert!(line.contains("accel=tcg"), "{line}");
        assert!(line.ends_with("-daemonize -pidfile /s/qemu.pid"), "{line}");
        assert_eq!(launch.pidfile, PathBuf::from("/s/qemu.pid"));
    }
}
