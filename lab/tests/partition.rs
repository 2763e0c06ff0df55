//! The partition rules and the isolated management ports, on real bridges: a lab-like
//! namespace with a data bridge and a management bridge, and two "nodes" that are network
//! namespaces of their own joined to the bridges by veth pairs (stand-ins for VM taps).
//! Traffic is TCP between addresses inside these namespaces only. Skips without root.

use std::net::{SocketAddr, TcpListener};
use std::process::Command;
use std::time::Duration;

use kubelab::guest::netns::{connect_tcp, run_in};
use kubelab::host::{Host, SystemHost};
use kubelab::net::{heal_ruleset, partition_ruleset};
use kubelab::wait::wait_until;

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip runs");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Deletes every namespace of the test, also when it fails.
struct Namespaces(Vec<String>);

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in &self.0 {
            let _ = SystemHost.delete_namespace(ns);
        }
    }
}

/// Accepts connections forever (the thread dies with the test process).
fn listen(ns: &str, addr: SocketAddr) -> SocketAddr {
    let listener = run_in(ns, move || TcpListener::bind(addr)).expect("bind in namespace");
    let local = listener.local_addr().unwrap();
    std::thread::spawn(move || for _ in listener.incoming() {});
    local
}

fn reaches(from: &str, to: SocketAddr) -> bool {
    connect_tcp(from, to, Duration::from_secs(1)).is_ok()
}

/// Waits until `from` reaches `to` (or, with `want == false`, until it does not, and then
/// checks once more that it still does not, so one lost SYN cannot pass for a cut).
fn wait_reach(from: &str, to: SocketAddr, want: bool) {
    wait_until(
        &format!("{from} -> {to} reachable={want}"),
        Duration::from_secs(10),
        Duration::from_millis(50),
        |_| {
            if reaches(from, to) == want {
                Ok(())
            } else {
                Err("not yet")
            }
        },
    )
    .unwrap();
    if !want {
        assert!(!reaches(from, to), "{from} -> {to} came back by itself");
    }
}

#[test]
fn partition_cuts_data_traffic_and_management_ports_are_isolated() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root (network namespaces, bridges, nftables)");
        return;
    }
    if Command::new("nft").arg("--version").output().is_err() {
        eprintln!("skipped: nft is not installed (scripts/setup-host installs nftables)");
        return;
    }
    let host = SystemHost;
    let id = std::process::id();
    let lab = format!("kubelab-ptest-{id}");
    let (a, b) = (format!("kl-ptest-{id}-a"), format!("kl-ptest-{id}-b"));
    let _cleanup = Namespaces(vec![lab.clone(), a.clone(), b.clone()]);
    host.create_namespace(&lab).unwrap();
    host.create_namespace(&a).unwrap();
    host.create_namespace(&b).unwrap();
    host.add_bridge(&lab, "br0").unwrap();
    host.add_bridge(&lab, "brmgmt").unwrap();
    host.add_address(&lab, "brmgmt", "172.31.254.1/24".parse().unwrap())
        .unwrap();
    for (k, (node, data, mgmt)) in [
        (&a, "10.99.0.10/24", "172.31.254.10/24"),
        (&b, "10.99.0.11/24", "172.31.254.11/24"),
    ]
    .into_iter()
    .enumerate()
    {
        for (bridge, addr, dev, isolated) in [
            ("br0", data, "eth0", false),
            ("brmgmt", mgmt, "mgmt0", true),
        ] {
            let port = format!("p{k}{dev}");
            ip(&[
                "-n", &lab, "link", "add", &port, "type", "veth", "peer", "name", dev, "netns",
                node,
            ]);
            ip(&["-n", &lab, "link", "set", &port, "master", bridge, "up"]);
            if isolated {
                let out = Command::new("bridge")
                    .args(["-n", &lab, "link", "set", "dev", &port, "isolated", "on"])
                    .output()
                    .unwrap();
                assert!(out.status.success());
            }
            ip(&["-n", node, "addr", "add", addr, "dev", dev]);
            ip(&["-n", node, "link", "set", dev, "up"]);
        }
    }
    let b_data = listen(&b, "10.99.0.11:0".parse().unwrap());
    let b_mgmt = listen(&b, "172.31.254.11:0".parse().unwrap());
    let lab_mgmt = listen(&lab, "172.31.254.1:0".parse().unwrap());

    // Baseline: the data network connects the nodes; the management network connects each
    // node with the host side only.
    wait_reach(&a, b_data, true);
    wait_reach(&a, lab_mgmt, true); // node -> host side over management
    wait_reach(&lab, b_mgmt, true); // host side -> node over management (the SSH path)
    assert!(
        !reaches(&a, b_mgmt),
        "node -> node over management must be blocked"
    );

    let addr = |s: &str| s.parse().unwrap();
    host.nft(
        &lab,
        &partition_ruleset(&[addr("10.99.0.10")], &[addr("10.99.0.11")]),
    )
    .unwrap();
    wait_reach(&a, b_data, false);
    wait_reach(&lab, b_mgmt, true); // management survives a partition
    // A second partition replaces the first: now nothing separates a from b.
    host.nft(
        &lab,
        &partition_ruleset(&[addr("10.99.0.10")], &[addr("10.99.0.99")]),
    )
    .unwrap();
    wait_reach(&a, b_data, true);
    host.nft(
        &lab,
        &partition_ruleset(&[addr("10.99.0.11")], &[addr("10.99.0.10")]),
    )
    .unwrap();
    wait_reach(&a, b_data, false);
    host.nft(&lab, &heal_ruleset()).unwrap();
    wait_reach(&a, b_data, true);
}
