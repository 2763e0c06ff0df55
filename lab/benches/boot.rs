//! Boot-time benchmark of the guest image under TCG (`cargo bench -p kubelab --bench boot`,
//! as root). Boots each QEMU setup in turn, round-robin so that load on the shared machine
//! hits every setup alike, and prints per-stage medians and the ratio against the peer: the
//! naive setup (`pc` machine, SeaBIOS, Debian's compressed bzImage). Also times the image
//! build from a warm cache. `KUBELAB_BENCH_RUNS` sets the rounds (default 5).

#[path = "../tests/image/util.rs"]
#[allow(dead_code)]
mod util;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use kubelab::image::{self, Lock};
use kubelab_nodeconfig::{Interface, NodeConfig, Role, VERSION, marks};
use util::{Netns, Qemu, Variant};

const MAC: &str = "52:54:00:6b:6c:09";
const GUEST: &str = "10.214.0.2";

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// One key login running `true`.
fn ssh_ok(ns: &Netns, key: &std::path::Path) -> bool {
    ns.command("ssh")
        .arg("-i")
        .arg(key)
        .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no"])
        .args([
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=2",
        ])
        .args(["-o", "LogLevel=ERROR", &format!("root@{GUEST}"), "true"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn main() {
    if let Some(reason) = util::missing(
        &[
            "qemu-system-x86_64",
            "ip",
            "dpkg-deb",
            "tar",
            "ssh",
            "ssh-keygen",
        ],
        true,
    ) {
        println!("SKIPPED boot benchmark: {reason}");
        return;
    }
    let runs: usize = std::env::var("KUBELAB_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let image = util::shared_image();
    let t = Instant::now();
    let warm = image::build(&util::options(&util::shared_cache())).unwrap();
    assert!(warm.cached);
    println!(
        "image build, warm cache: {:.3} s",
        t.elapsed().as_secs_f64()
    );
    for entry in std::fs::read_dir(&image.dir).unwrap() {
        let entry = entry.unwrap();
        println!(
            "  {:<16} {:>6.1} MiB",
            entry.file_name().to_string_lossy(),
            entry.metadata().unwrap().len() as f64 / 1048576.0
        );
    }

    // The peer's kernel: Debian's bzImage, straight from the verified .deb in the cache.
    let lock = Lock::load(&util::repo().join("images/debian.lock")).unwrap();
    let deb = util::shared_cache()
        .join("debs")
        .join(format!("{}.deb", lock.get(&lock.kernel).unwrap().sha256));
    let scratch = tempfile::tempdir().unwrap();
    let bzimage = scratch.path().join("vmlinuz");
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "dpkg-deb --fsys-tarfile '{}' | tar -xO --wildcards './boot/vmlinuz-*' > '{}'",
            deb.display(),
            bzimage.display()
        ))
        .status()
        .unwrap();
    assert!(status.success());

    let qboot = PathBuf::from("/usr/share/qemu/qboot.rom");
    let variants = [
        (
            "peer: pc, SeaBIOS, bzImage",
            Variant {
                kernel: Some(bzimage),
                ..Variant::q35("pc", None)
            },
        ),
        (
            "pc, qboot, PVH vmlinux",
            Variant::q35("pc", Some(qboot.clone())),
        ),
        ("q35, SeaBIOS, PVH vmlinux", Variant::q35("q35", None)),
        (
            "q35, qboot, PVH vmlinux",
            Variant::q35("q35", Some(qboot.clone())),
        ),
        ("microvm, PVH vmlinux (default)", Variant::default()),
    ];
    let key = scratch.path().join("id");
    util::run(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", ""])
            .arg("-f")
            .arg(&key),
    );
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let config = NodeConfig {
        version: VERSION,
        lab: "bench".into(),
        hostname: "bench1".into(),
        role: Role::Worker,
        interfaces: vec![Interface {
            name: "mgmt0".into(),
            mac: MAC.into(),
            address: format!("{GUEST}/24").parse().unwrap(),
            network: "management".into(),
            management: true,
        }],
        routes: vec![],
        ip_forward: false,
        ssh_authorized_keys: vec![public.trim().to_string()],
    };
    let ns = Netns::new("bench", "10.214.0.1/24");
    // stage -> variant -> samples
    let mut samples = vec![[Vec::new(), Vec::new(), Vec::new(), Vec::new()]; variants.len()];
    for round in 0..runs {
        for (i, (name, variant)) in variants.iter().enumerate() {
            if variant.bios.as_ref().is_some_and(|b| !b.exists()) {
                continue;
            }
            let start = Instant::now();
            let vm = Qemu::boot_variant(&image, &config.to_json(), Some((&ns, MAC)), variant);
            let deadline = Duration::from_secs(120);
            // In boot order: each wait returns when its mark first shows on the console.
            let userspace = vm.wait_for(marks::USERSPACE, deadline) - start;
            let network = vm.wait_for(marks::NETWORK_READY, deadline) - start;
            // SSH-ready = a key login that runs a command.
            util::wait_until(deadline, || ssh_ok(&ns, &key).then_some(())).expect("SSH login");
            let banner = start.elapsed();
            let cpu = kubelab::vm::cpu_seconds(vm.pid()).expect("QEMU still runs");
            drop(vm);
            println!(
                "round {round} {name:<36} userspace {:5.2} s  network {:5.2} s  ssh {:5.2} s  \
                 QEMU CPU {cpu:5.2} s",
                userspace.as_secs_f64(),
                network.as_secs_f64(),
                banner.as_secs_f64()
            );
            samples[i][3].push(cpu);
            samples[i][0].push(userspace.as_secs_f64());
            samples[i][1].push(network.as_secs_f64());
            samples[i][2].push(banner.as_secs_f64());
        }
    }
    println!("\nmedians of {runs} runs (TCG, 1 vCPU, 256 MiB), seconds from QEMU start:");
    println!(
        "{:<36} {:>9} {:>9} {:>9} {:>12} {:>9}",
        "setup", "userspace", "network", "ssh login", "vs peer", "QEMU CPU"
    );
    let peer = median(samples[0][2].clone());
    for (i, (name, _)) in variants.iter().enumerate() {
        if samples[i][2].is_empty() {
            println!("{name:<36} (skipped: firmware not installed)");
            continue;
        }
        let ssh = median(samples[i][2].clone());
        println!(
            "{name:<36} {:>9.2} {:>9.2} {:>9.2} {:>11.2}x {:>9.2}",
            median(samples[i][0].clone()),
            median(samples[i][1].clone()),
            ssh,
            peer / ssh,
            median(samples[i][3].clone())
        );
    }
}
