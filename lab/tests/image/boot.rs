//! Real boots under QEMU (TCG): the image reaches every console mark, answers SSH on its
//! address inside a network namespace the test made, accepts the NodeConfig's key, restarts
//! a killed dropbear, and powers off on ACPI shutdown; a bad config ends in a FATAL line and
//! a power-off instead of a hang.

use std::process::Command;
use std::time::{Duration, Instant};

use kubelab_nodeconfig::{Interface, NodeConfig, Role, Route, VERSION, marks};

use crate::util::{self, Netns, Qemu, Variant};

const MAC: &str = "52:54:00:6b:6c:02";
const GUEST: &str = "10.213.0.2";
const HOST: &str = "10.213.0.1/24";

/// Boots are slow under TCG on a loaded 2-core machine; generous, never a fixed sleep.
const BOOT_DEADLINE: Duration = Duration::from_secs(90);

fn config(ssh_key: &str) -> NodeConfig {
    NodeConfig {
        version: VERSION,
        lab: "imagetest".into(),
        hostname: "guest1".into(),
        role: Role::Worker,
        interfaces: vec![Interface {
            name: "mgmt0".into(),
            mac: MAC.into(),
            address: format!("{GUEST}/24").parse().unwrap(),
            network: "management".into(),
            management: true,
        }],
        routes: vec![Route {
            destination: "10.215.0.0/24".parse().unwrap(),
            via: "10.213.0.1".parse().unwrap(),
        }],
        ip_forward: true,
        ssh_authorized_keys: vec![ssh_key.trim().to_string()],
    }
}

fn needs() -> Option<String> {
    util::missing(
        &[
            "qemu-system-x86_64",
            "ip",
            "ssh",
            "ssh-keygen",
            "apt-get",
            "mksquashfs",
        ],
        true,
    )
    .or_else(|| {
        (!std::path::Path::new("/dev/net/tun").exists()).then(|| "no /dev/net/tun".to_string())
    })
}

fn ssh(ns: &Netns, key: &std::path::Path, command: &str) -> std::process::Output {
    ns.command("ssh")
        .arg("-i")
        .arg(key)
        .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no"])
        .args([
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=5",
            "-o",
            "LogLevel=ERROR",
        ])
        .arg(format!("root@{GUEST}"))
        .arg(command)
        .output()
        .unwrap()
}

#[test]
fn boots_to_ssh_restarts_services_and_powers_off() {
    let test = "boots_to_ssh_restarts_services_and_powers_off";
    if let Some(reason) = needs() {
        return util::skip(test, &reason);
    }
    let started = Instant::now();
    let image = util::shared_image();
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("id");
    util::run(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", ""])
            .arg("-f")
            .arg(&key),
    );
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();

    let ns = Netns::new("img", HOST);
    let boot = Instant::now();
    let mut vm = Qemu::boot(&image, &config(&public).to_json(), Some((&ns, MAC)));
    let userspace = vm.wait_for(marks::USERSPACE, BOOT_DEADLINE);
    let network = vm.wait_for(marks::NETWORK_READY, BOOT_DEADLINE);
    let ssh_mark = vm.wait_for(marks::SSH_STARTED, BOOT_DEADLINE);
    let banner = util::wait_until(Duration::from_secs(30), || {
        ns.tcp_first_line(&format!("{GUEST}:22"))
            .filter(|l| l.starts_with("SSH-2.0-"))
    })
    .unwrap_or_else(|| panic!("no SSH banner from {GUEST}:22\n{}", vm.console()));
    let ready = boot.elapsed();
    eprintln!(
        "boot (TCG): userspace {:.2} s, network {:.2} s, ssh mark {:.2} s, banner {:.2} s ({banner})",
        (userspace - boot).as_secs_f64(),
        (network - boot).as_secs_f64(),
        (ssh_mark - boot).as_secs_f64(),
        ready.as_secs_f64()
    );

    // Login with the NodeConfig's key; the guest sees what the config says.
    let out = ssh(
        &ns,
        &key,
        "hostname; cat /proc/sys/net/ipv4/ip_forward; ip -4 -o addr show mgmt0; ping -c 1 -W 5 10.213.0.1 >/dev/null && echo ping-ok; tcpdump --version 2>&1 | head -1; touch /usr/written && echo overlay-rw; ip route show 10.215.0.0/24",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ssh failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        vm.console()
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "guest1", "{stdout}");
    assert_eq!(lines[1], "1", "ip_forward from the config: {stdout}");
    assert!(lines[2].contains(&format!("{GUEST}/24")), "{stdout}");
    assert!(
        stdout.contains("ping-ok"),
        "guest pings the host side of the bridge: {stdout}"
    );
    assert!(stdout.contains("tcpdump version"), "{stdout}");
    assert!(
        stdout.contains("overlay-rw"),
        "root is writable through the overlay: {stdout}"
    );
    assert!(
        stdout.contains("10.215.0.0/24 via 10.213.0.1 dev mgmt0"),
        "the config's route: {stdout}"
    );

    // Orphans are re-parented to init and reaped: no zombie stays behind.
    let out = ssh(
        &ns,
        &key,
        "for i in 1 2 3; do (sleep 0.1 &); done; echo spawned",
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("spawned"));
    let no_zombies = util::wait_until(Duration::from_secs(20), || {
        let out = ssh(
            &ns,
            &key,
            "cat /proc/[0-9]*/stat 2>/dev/null | awk '$3 == \"Z\"' | wc -l",
        );
        (String::from_utf8_lossy(&out.stdout).trim() == "0").then_some(())
    });
    assert!(no_zombies.is_some(), "zombies were not reaped");

    // A password is never accepted: dropbear runs with -s.
    let pw = ns
        .command("ssh")
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "PreferredAuthentications=password",
            "-o",
            "PubkeyAuthentication=no",
        ])
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
        ])
        .arg(format!("root@{GUEST}"))
        .arg("true")
        .output()
        .unwrap();
    assert!(!pw.status.success(), "password login must be refused");

    // Supervision: kill dropbear's listener; init logs it and starts a new one.
    let console = vm.console();
    let listener = console
        .lines()
        .find_map(|l| l.split("started service=dropbear pid=").nth(1))
        .map(|pid| pid.trim().to_string())
        .unwrap_or_else(|| panic!("init logs the dropbear pid:\n{console}"));
    let _ = ssh(&ns, &key, &format!("kill -9 {listener}"));
    vm.wait_for(
        &format!("service dropbear (pid {listener}) was killed by signal 9"),
        Duration::from_secs(30),
    );
    let again = util::wait_until(Duration::from_secs(30), || {
        ssh(&ns, &key, "echo back").status.success().then_some(())
    });
    assert!(
        again.is_some(),
        "SSH did not come back after the restart:\n{}",
        vm.console()
    );

    // ACPI shutdown: QMP system_powerdown -> power button -> clean power-off; QEMU exits.
    let t = Instant::now();
    vm.qmp("system_powerdown");
    vm.wait_for("kubelab-init: power-off", Duration::from_secs(30));
    assert!(
        vm.wait_exit(Duration::from_secs(30)),
        "QEMU did not exit after power-off"
    );
    eprintln!("power-off took {:.2} s", t.elapsed().as_secs_f64());
    assert!(!vm.console().contains(marks::FATAL), "{}", vm.console());
    eprintln!("{test}: {:.1} s", started.elapsed().as_secs_f64());
}

/// Boots with `node_json` and no NIC on `variant`; expects a FATAL line containing `reason`
/// and QEMU to exit by itself (the guest powered off, it did not hang or panic).
fn expect_fatal(test: &str, node_json: &[u8], reason: &str, variant: &Variant) {
    if let Some(reason) = needs() {
        return util::skip(test, &reason);
    }
    let started = Instant::now();
    let image = util::shared_image();
    let mut vm = Qemu::boot_variant(&image, node_json, None, variant);
    vm.wait_for(marks::FATAL, BOOT_DEADLINE);
    assert!(
        vm.wait_exit(Duration::from_secs(30)),
        "QEMU must exit: the guest powers off after FATAL"
    );
    let console = vm.console();
    let line = console
        .lines()
        .find(|l| l.starts_with(marks::FATAL))
        .unwrap_or_else(|| panic!("FATAL must start a line:\n{console}"));
    assert!(
        line.contains(reason),
        "FATAL line should say {reason:?}: {line}"
    );
    assert!(!console.contains("Kernel panic"), "{console}");
    eprintln!("{test}: {line} ({:.1} s)", started.elapsed().as_secs_f64());
}

#[test]
fn an_unknown_config_version_is_fatal_with_a_clear_message() {
    let mut value: serde_json::Value =
        serde_json::from_slice(&config("ssh-ed25519 AAAA k").to_json()).unwrap();
    value["version"] = 7.into();
    expect_fatal(
        "an_unknown_config_version_is_fatal_with_a_clear_message",
        value.to_string().as_bytes(),
        "format version 7",
        &Variant::default(),
    );
}

/// Also shows the image boots on `q35` with PCI virtio devices (not the lab's `microvm`):
/// init gets through the initramfs, the root disk and the node config before it refuses.
#[test]
fn a_config_naming_a_missing_nic_is_fatal_with_a_clear_message() {
    let qboot = std::path::Path::new(kubelab::image::QBOOT_ROM);
    expect_fatal(
        "a_config_naming_a_missing_nic_is_fatal_with_a_clear_message",
        &config("ssh-ed25519 AAAA k").to_json(),
        &format!("no NIC with MAC {MAC}"),
        &Variant::q35("q35", qboot.exists().then(|| qboot.to_path_buf())),
    );
}
