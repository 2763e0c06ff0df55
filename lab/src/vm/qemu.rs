//! The QEMU command line for one node, built from the image manifest, the node's topology
//! entry and its NICs from the [`NetPlan`](crate::net::NetPlan).
//!
//! Every VM is a `microvm` ([`machine_args`]): no PCI bus, no firmware tables beyond a small
//! ACPI DSDT (the power button for `system_powerdown`, the virtio-mmio devices, fw_cfg), no
//! legacy devices but the serial port, the RTC and the PIT. Measured under TCG, QEMU needs
//! about 9 % less CPU to an SSH login than with `q35` + qboot (2.37 s vs 2.61 s, median of
//! 5; docs/benchmarks.md). The image boots on `q35`/`pc` as well (its initramfs has both
//! virtio transports).

use std::path::{Path, PathBuf};

use kubelab_nodeconfig::{FW_CFG_NAME, FW_CFG_SSH_HOST_KEY};

use crate::host::QemuLaunch;
use crate::image::{Manifest, VirtioTransport};
use crate::net::Nic;
use crate::state::Accel;

/// Appended to the image's kernel command line on every machine. `quiet` would hide the
/// kernel's banner, the only console line that tells "the kernel runs" apart from "QEMU is
/// still in firmware"; `loglevel=6` prints messages up to notice level (the banner is a
/// notice), which adds only a handful of console lines. `pci=off`: `microvm` has no PCI
/// bus, so the kernel need not probe for one.
pub const CMDLINE_EXTRA: &str = "loglevel=6 pci=off";

/// How the lab's machine attaches virtio devices.
pub const TRANSPORT: VirtioTransport = VirtioTransport::Mmio;

/// `-machine` and `-cpu` of every lab VM.
///
/// `microvm` with ACPI (the power button and device descriptions), the RTC (wall-clock time
/// at boot) and the ISA serial console; no PCIe, no option ROMs. Under KVM `-cpu host`
/// passes the host's features through. Under TCG, `max` emulates RDRAND, so the guest's CRNG
/// is ready at once (measured: "crng init done" at 0.0 s instead of ~7 s of guest time with
/// `qemu64`).
pub fn machine_args(accel: Accel) -> Vec<String> {
    let (accel, cpu) = match accel {
        Accel::Kvm => ("kvm", "host"),
        Accel::Tcg => ("tcg", "max"),
    };
    vec![
        "-machine".into(),
        format!("microvm,accel={accel},acpi=on,pcie=off,rtc=on,isa-serial=on,x-option-roms=off"),
        "-cpu".into(),
        cpu.into(),
    ]
}

/// The kernel command line the VM layer adds to the image's: [`CMDLINE_EXTRA`], and under
/// TCG the host's TSC rate (`tsc_early_khz`, [`super::tsc`]) and `tsc=reliable` (no watchdog
/// comparing the TSC against jiffies, which lag under TCG on a busy host, not the TSC).
/// Under KVM the guest gets kvmclock and needs neither.
pub fn kernel_cmdline_extra(accel: Accel) -> String {
    match (accel, super::tsc::host_khz()) {
        (Accel::Tcg, Some(khz)) => format!("{CMDLINE_EXTRA} tsc_early_khz={khz} tsc=reliable"),
        _ => CMDLINE_EXTRA.to_string(),
    }
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
        // Named threads ("CPU 0/TCG", "CPU 0/KVM"), so a stall report says what the vCPU does.
        let name = format!("{},debug-threads=on", self.name);
        push(&["-name", &name]);
        push(&["-nodefaults", "-no-user-config", "-display", "none"]);
        args.extend(machine_args(self.accel));
        let mut push = |items: &[&str]| args.extend(items.iter().map(|s| s.to_string()));
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
            &kernel_cmdline_extra(self.accel),
            TRANSPORT,
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
            let device = format!(
                "{},netdev={},mac={}",
                TRANSPORT.device("net"),
                nic.name,
                nic.mac
            );
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
        assert!(
            line.starts_with("-name routed/router,debug-threads=on "),
            "{line}"
        );
        assert!(line.contains("-kernel /img/abc/vmlinuz"), "{line}");
        assert!(
            line.contains("-append console=ttyS0 quiet loglevel=6 pci=off tsc_early_khz="),
            "{line}"
        );
        assert!(line.contains(" tsc=reliable -drive"), "{line}");
        assert!(
            line.contains("-machine microvm,accel=tcg,acpi=on"),
            "{line}"
        );
        assert!(
            line.contains("-device virtio-blk-device,drive=rootfs"),
            "{line}"
        );
        assert!(line.contains("-device virtio-rng-device"), "{line}");
        assert!(
            line.contains("virtio-net-device,netdev=eth1,mac="),
            "{line}"
        );
        assert!(!line.contains("-pci"), "no PCI device on microvm: {line}");
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
