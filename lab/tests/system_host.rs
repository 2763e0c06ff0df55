//! The real host layer and QMP against a QEMU without a kernel (it sits in its firmware),
//! inside a throw-away namespace: no guest image needed. Skips, saying why, without root or
//! QEMU.

use std::path::Path;
use std::time::Duration;

use kubelab::host::{Host, QemuLaunch, SystemHost};
use kubelab::vm::process_alive;
use kubelab::vm::qmp::QmpClient;
use kubelab::wait::wait_until;

fn skip_reason() -> Option<&'static str> {
    if !rustix::process::geteuid().is_root() {
        return Some("needs root (network namespaces, taps)");
    }
    if std::process::Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_err()
    {
        return Some("qemu-system-x86_64 is not installed (scripts/setup-host installs it)");
    }
    None
}

/// Deletes the namespace and kills the QEMU even when an assertion fails.
struct Cleanup<'a> {
    ns: String,
    pid: Option<u32>,
    dir: &'a Path,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.filter(|&p| SystemHost.is_ours(p, self.dir)) {
            let _ = SystemHost.kill(pid);
        }
        let _ = SystemHost.delete_namespace(&self.ns);
    }
}

#[test]
fn namespace_taps_qemu_and_qmp() {
    if let Some(reason) = skip_reason() {
        eprintln!("skipped: {reason}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let host = SystemHost;
    let ns = format!("kubelab-syshost-{}", std::process::id());
    let mut cleanup = Cleanup {
        ns: ns.clone(),
        pid: None,
        dir: tmp.path(),
    };
    host.create_namespace(&ns).unwrap();
    assert!(host.namespace_exists(&ns));
    host.add_bridge(&ns, "br0").unwrap();
    host.add_address(&ns, "br0", "10.99.0.1/24".parse().unwrap())
        .unwrap();
    host.add_tap(&ns, "tap0-0", "br0", true).unwrap();
    // The tap exists in the namespace, not on the host.
    let link = |args: &[&str]| {
        std::process::Command::new("ip")
            .args(args)
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(link(&["-n", &ns, "link", "show", "tap0-0"]));
    assert!(
        !link(&["link", "show", "tap0-0"]),
        "the host's own namespace is untouched"
    );
    host.nft(
        &ns,
        &kubelab::net::partition_ruleset(
            &["10.99.0.10".parse().unwrap()],
            &["10.99.0.11".parse().unwrap()],
        ),
    )
    .unwrap();
    host.nft(&ns, &kubelab::net::heal_ruleset()).unwrap();
    host.nft(&ns, &kubelab::net::heal_ruleset())
        .expect("heal is idempotent");

    let qmp_path = tmp.path().join("qmp.sock");
    let pidfile = tmp.path().join("qemu.pid");
    let args: Vec<String> = [
        "-name",
        "syshost/vm",
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-machine",
        "pc,accel=tcg",
        "-m",
        "64",
        "-netdev",
        "tap,id=eth0,ifname=tap0-0,script=no,downscript=no",
        "-device",
        "virtio-net-pci,netdev=eth0,mac=52:54:00:4b:00:00",
        "-qmp",
        &format!("unix:{},server=on,wait=off", qmp_path.display()),
        "-daemonize",
        "-pidfile",
        &pidfile.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let pid = host.start_qemu(&ns, &QemuLaunch { args, pidfile }).unwrap();
    cleanup.pid = Some(pid);
    assert!(host.is_ours(pid, tmp.path()));
    assert!(!host.is_ours(pid, Path::new("/some/other/lab")));
    assert!(
        host.namespace_pids(&ns).contains(&pid),
        "QEMU runs inside the namespace"
    );

    let mut qmp = QmpClient::connect(&qmp_path).unwrap();
    assert!(qmp.status().unwrap().running);
    assert!(!qmp.kvm_enabled().unwrap());
    qmp.stop().unwrap();
    assert_eq!(qmp.status().unwrap().state, "paused");
    qmp.cont().unwrap();
    assert_eq!(qmp.status().unwrap().state, "running");
    qmp.set_link("eth0", false).unwrap();
    qmp.set_link("eth0", true).unwrap();
    assert!(
        qmp.set_link("eth9", false).is_err(),
        "unknown NIC is refused"
    );
    qmp.system_reset().unwrap();
    qmp.quit().unwrap();
    wait_until(
        "QEMU to exit",
        Duration::from_secs(10),
        Duration::from_millis(20),
        |_| {
            if process_alive(pid) {
                Err("alive")
            } else {
                Ok(())
            }
        },
    )
    .unwrap();
    assert!(!host.is_ours(pid, tmp.path()));
    drop(cleanup);
    assert!(!host.namespace_exists(&ns));
}
