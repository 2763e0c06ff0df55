//! Orchestration tests against the recording fake host: order, write-ahead journal, refusal
//! of a running name, teardown after failures and after an interrupted `up`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::down::down;
use super::up::{Event, NodeStage, UpOptions, up};
use super::*;
use crate::host::Host;
use crate::host::fake::RecordingHost;
use crate::image::{MANIFEST_FILE, Manifest};
use crate::state::{Accel, Resource};

struct Fixture {
    _tmp: tempfile::TempDir,
    root: StateRoot,
    image: PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = StateRoot::at(tmp.path().join("labs"));
    let image = tmp.path().join("image");
    std::fs::create_dir_all(&image).unwrap();
    let manifest = Manifest {
        hash: "0".repeat(64),
        kernel_version: "6.1".into(),
        kernel: "vmlinuz".into(),
        initrd: "initrd".into(),
        rootfs: None,
        cmdline: "console=ttyS0".into(),
    };
    std::fs::write(
        image.join(MANIFEST_FILE),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
    Fixture {
        _tmp: tmp,
        root,
        image,
    }
}

fn topology(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../topologies/{name}.toml"))
}

fn options(f: &Fixture) -> UpOptions {
    UpOptions {
        image_dir: f.image.clone(),
        name: None,
        accel: Some(Accel::Tcg),
        boot_timeout: Duration::from_secs(5),
        stall_reset: Some(Duration::from_millis(300)),
    }
}

fn have_ssh_keygen() -> bool {
    let ok = std::process::Command::new("ssh-keygen")
        .arg("-?")
        .output()
        .is_ok();
    if !ok {
        eprintln!("skipped: ssh-keygen is not installed (scripts/setup-host installs it)");
    }
    ok
}

#[test]
fn up_then_down_removes_everything() {
    if !have_ssh_keygen() {
        return;
    }
    let f = fixture();
    let host = RecordingHost::new(&f.root);
    let events = std::sync::Mutex::new(Vec::new());
    let state = up(&host, &f.root, &topology("routed"), &options(&f), &|e| {
        events.lock().unwrap().push(e)
    })
    .unwrap();
    assert!(state.ready);
    assert_eq!(state.nodes.len(), 4);
    assert!(
        state
            .nodes
            .iter()
            .all(|n| n.pid.is_some() && n.ssh_s.is_some())
    );
    assert_eq!(host.processes().len(), 4);
    assert!(host.namespaces().contains("kubelab-routed"));
    assert!(
        host.violations().is_empty(),
        "created before journaled: {:?}",
        host.violations()
    );

    // Network before VMs; the management taps are isolated, data taps are not.
    let ops = host.ops();
    let first_qemu = ops.iter().position(|o| o.starts_with("qemu")).unwrap();
    let last_tap = ops.iter().rposition(|o| o.starts_with("tap")).unwrap();
    assert!(last_tap < first_qemu, "{ops:?}");
    assert!(
        ops.contains(&"tap tap0-0 master brmgmt isolated=true".to_string()),
        "{ops:?}"
    );
    assert!(
        ops.contains(&"tap tap0-2 master br1 isolated=false".to_string()),
        "{ops:?}"
    );
    assert!(
        ops.contains(&"addr 172.31.254.1/24 dev brmgmt".to_string()),
        "{ops:?}"
    );

    // Every node reported every stage in order.
    let events = events.into_inner().unwrap();
    for node in ["router", "cp1", "w1", "w2"] {
        let stages: Vec<NodeStage> = events
            .iter()
            .filter_map(|e| match e {
                Event::Stage { node: n, stage, .. } if n == node => Some(*stage),
                _ => None,
            })
            .collect();
        assert_eq!(
            stages,
            vec![
                NodeStage::Starting,
                NodeStage::Kernel,
                NodeStage::Userspace,
                NodeStage::SshReady
            ]
        );
    }
    // The node's fw_cfg file is a valid config for the guest.
    let dir = f.root.lab("routed");
    let config = std::fs::read(dir.node_config("router")).unwrap();
    assert!(
        kubelab_nodeconfig::NodeConfig::from_json(&config)
            .unwrap()
            .ip_forward
    );

    let report = down(&host, &f.root, "routed").unwrap();
    assert_eq!(report.killed.len(), 4);
    assert!(host.processes().is_empty());
    assert!(host.namespaces().is_empty());
    assert!(!dir.exists());
}

#[test]
fn refuses_a_name_that_is_running() {
    if !have_ssh_keygen() {
        return;
    }
    let f = fixture();
    let host = RecordingHost::new(&f.root);
    up(&host, &f.root, &topology("minimal"), &options(&f), &|_| {}).unwrap();
    let before = host.ops().len();
    let err = up(&host, &f.root, &topology("minimal"), &options(&f), &|_| {}).unwrap_err();
    assert!(matches!(err, LabError::AlreadyRunning { .. }), "{err}");
    assert!(err.to_string().contains("kubelab down minimal"), "{err}");
    assert_eq!(
        host.ops().len(),
        before,
        "a refused up must not touch the host"
    );
    // The running lab is intact.
    assert_eq!(host.processes().len(), 2);
    // The same topology under another name is fine.
    let mut other = options(&f);
    other.name = Some("minimal2".into());
    up(&host, &f.root, &topology("minimal"), &other, &|_| {}).unwrap();
    assert_eq!(host.namespaces().len(), 2);
}

#[test]
fn invalid_topology_creates_nothing() {
    let f = fixture();
    let host = RecordingHost::new(&f.root);
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.toml");
    std::fs::write(
        &bad,
        "name = \"x\"\nnetworks = []\nnodes = [{ name = \"a\", role = \"worker\", memory = 1 }]\n",
    )
    .unwrap();
    let err = up(&host, &f.root, &bad, &options(&f), &|_| {}).unwrap_err();
    assert!(err.to_string().contains("memory"), "{err}");
    assert!(host.ops().is_empty());
    assert!(f.root.labs().is_empty());
}

#[test]
fn missing_image_creates_nothing() {
    let f = fixture();
    let host = RecordingHost::new(&f.root);
    let mut opts = options(&f);
    opts.image_dir = f.image.join("nope");
    let err = up(&host, &f.root, &topology("minimal"), &opts, &|_| {}).unwrap_err();
    assert!(matches!(err, LabError::Image { .. }), "{err}");
    assert!(host.ops().is_empty());
    assert!(f.root.labs().is_empty());
}

#[test]
fn failure_half_way_tears_everything_down() {
    if !have_ssh_keygen() {
        return;
    }
    let f = fixture();
    let mut host = RecordingHost::new(&f.root);
    host.fail_on = Some("qemu minimal/w1".into());
    let err = up(&host, &f.root, &topology("minimal"), &options(&f), &|_| {}).unwrap_err();
    assert!(matches!(err, LabError::Host(_)), "{err}");
    assert!(host.processes().is_empty(), "cp1's QEMU was killed");
    assert!(host.namespaces().is_empty());
    assert!(f.root.labs().is_empty());
}

#[test]
fn qemu_dying_during_boot_is_reported_with_the_console() {
    if !have_ssh_keygen() {
        return;
    }
    let f = fixture();
    let mut host = RecordingHost::new(&f.root);
    host.qemu_dies = true;
    let err = up(&host, &f.root, &topology("minimal"), &options(&f), &|_| {}).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("QEMU exited"), "{text}");
    assert!(text.contains("last console lines"), "{text}");
    assert!(host.namespaces().is_empty());
}

#[test]
fn down_after_interrupted_up_uses_the_journal() {
    // What SIGKILL in the middle of `up` leaves: a journal, a namespace, one QEMU recorded by
    // PID and one only by PID file, and no state.json.
    let f = fixture();
    let host = RecordingHost::new(&f.root);
    let dir = f.root.lab("minimal");
    dir.create().unwrap();
    dir.record(&Resource::Namespace {
        name: "kubelab-minimal".into(),
    })
    .unwrap();
    host.create_namespace("kubelab-minimal").unwrap();
    let mut pids = Vec::new();
    for node in ["cp1", "w1"] {
        std::fs::create_dir_all(dir.node_dir(node)).unwrap();
        let launch = crate::host::QemuLaunch {
            args: vec![
                "-name".into(),
                format!("minimal/{node}"),
                "-chardev".into(),
                format!("file,id=console,path={}", dir.serial_log(node).display()),
            ],
            pidfile: dir.pidfile(node),
        };
        dir.record(&Resource::Qemu {
            node: node.into(),
            pidfile: launch.pidfile.clone(),
        })
        .unwrap();
        pids.push(host.start_qemu("kubelab-minimal", &launch).unwrap());
    }
    dir.record(&Resource::QemuPid {
        node: "cp1".into(),
        pid: pids[0],
    })
    .unwrap();

    let err = up(&host, &f.root, &topology("minimal"), &options(&f), &|_| {}).unwrap_err();
    assert!(matches!(err, LabError::Leftover { .. }), "{err}");
    assert!(matches!(
        Lab::open(&f.root, "minimal"),
        Err(LabError::NotReady { .. })
    ));

    let report = down(&host, &f.root, "minimal").unwrap();
    let mut killed = report.killed.clone();
    killed.sort();
    assert_eq!(killed, pids);
    assert!(host.processes().is_empty());
    assert!(host.namespaces().is_empty());
    assert!(!dir.exists());
}

#[test]
fn down_never_kills_a_recycled_pid() {
    let f = fixture();
    let host = RecordingHost::new(&f.root);
    let dir = f.root.lab("minimal");
    dir.create().unwrap();
    // PID 4242 is in the journal, but the fake host has no such process of this lab.
    dir.record(&Resource::QemuPid {
        node: "cp1".into(),
        pid: 4242,
    })
    .unwrap();
    let report = down(&host, &f.root, "minimal").unwrap();
    assert!(report.killed.is_empty());
    assert!(!host.ops().iter().any(|o| o.starts_with("kill")));
}

#[test]
fn down_refuses_while_an_up_in_this_process_holds_the_lock() {
    let f = fixture();
    let host = RecordingHost::new(&f.root);
    let dir = f.root.lab("minimal");
    dir.create().unwrap();
    let lock = dir.lock_up().unwrap();
    // Killing that `up` would kill the caller: refused, nothing touched.
    assert!(matches!(
        down(&host, &f.root, "minimal"),
        Err(LabError::Starting { .. })
    ));
    assert!(dir.exists());
    assert!(!host.ops().iter().any(|o| o.starts_with("kill")));
    drop(lock);
    let report = down(&host, &f.root, "minimal").unwrap();
    assert_eq!(report.stopped_up, None);
    assert!(!dir.exists());
}

#[test]
fn down_of_unknown_lab_is_an_error_and_leaves_foreign_namespaces() {
    let f = fixture();
    let host = RecordingHost::new(&f.root);
    assert!(matches!(
        down(&host, &f.root, "nope"),
        Err(LabError::NotFound { .. })
    ));
    host.inner_create_foreign("kubelab-foreign");
    assert!(matches!(
        down(&host, &f.root, "foreign"),
        Err(LabError::NamespaceTaken { .. })
    ));
    assert!(host.namespaces().contains("kubelab-foreign"));
}

#[test]
fn partition_checks_groups_and_fault_uses_nft() {
    if !have_ssh_keygen() {
        return;
    }
    let f = fixture();
    let host = RecordingHost::new(&f.root);
    up(&host, &f.root, &topology("routed"), &options(&f), &|_| {}).unwrap();
    let lab = Lab::open(&f.root, "routed").unwrap();
    let err =
        fault::partition_rules(&lab, &["w1".into()], &["w1".into(), "w2".into()]).unwrap_err();
    assert!(matches!(err, LabError::PartitionOverlap { .. }), "{err}");
    let err = fault::partition_rules(&lab, &["w9".into()], &["w2".into()]).unwrap_err();
    assert!(err.to_string().contains("no node \"w9\""), "{err}");
    fault::inject(
        &host,
        &lab,
        &fault::Fault::Partition(vec!["w1".into()], vec!["w2".into()]),
    )
    .unwrap();
    let nft = host
        .ops()
        .into_iter()
        .find(|o| o.starts_with("nft"))
        .unwrap();
    assert!(
        nft.contains("ip saddr { 10.31.0.12 } ip daddr { 10.32.0.13 } drop"),
        "{nft}"
    );
    let err = fault::inject(
        &host,
        &lab,
        &fault::Fault::LinkDown("w1".into(), "eth7".into()),
    )
    .unwrap_err();
    assert!(err.to_string().contains("interfaces: mgmt0, eth0"), "{err}");
}

#[test]
fn refuses_a_name_being_started_by_another_up() {
    let f = fixture();
    let host = RecordingHost::new(&f.root);
    let dir = f.root.lab("minimal");
    dir.create().unwrap();
    // What a concurrent `up` holds while it boots.
    let lock = dir.lock_up().unwrap();
    let err = up(&host, &f.root, &topology("minimal"), &options(&f), &|_| {}).unwrap_err();
    assert!(matches!(err, LabError::Starting { .. }), "{err}");
    assert!(host.ops().is_empty());
    drop(lock);
    // Once that process is gone, what it left is leftover state.
    let err = up(&host, &f.root, &topology("minimal"), &options(&f), &|_| {}).unwrap_err();
    assert!(matches!(err, LabError::Leftover { .. }), "{err}");
}

#[test]
fn a_stalled_boot_is_reset_once_and_reported() {
    if !have_ssh_keygen() {
        return;
    }
    let f = fixture();
    let mut host = RecordingHost::new(&f.root);
    host.stalled_boots = 1;
    let events = std::sync::Mutex::new(Vec::new());
    let state = up(&host, &f.root, &topology("minimal"), &options(&f), &|e| {
        events.lock().unwrap().push(e)
    })
    .unwrap();
    assert!(state.ready);
    assert!(state.nodes.iter().all(|n| n.resets == 1), "{state:?}");
    let resets = host
        .ops()
        .iter()
        .filter(|o| o.starts_with("reset "))
        .count();
    assert_eq!(resets, state.nodes.len(), "{:?}", host.ops());
    let stalled: Vec<(String, String)> = events
        .into_inner()
        .unwrap()
        .into_iter()
        .filter_map(|e| match e {
            Event::Stalled {
                node,
                silent,
                last_line,
                ..
            } => {
                assert!(silent >= Duration::from_millis(300), "{silent:?}");
                Some((node, last_line))
            }
            _ => None,
        })
        .collect();
    assert_eq!(stalled.len(), state.nodes.len(), "{stalled:?}");
    assert!(
        stalled
            .iter()
            .all(|(_, line)| line == kubelab_nodeconfig::marks::USERSPACE),
        "{stalled:?}"
    );
    // The count survives in state.json.
    let saved = f.root.lab(&state.name).load().unwrap().unwrap();
    assert!(saved.nodes.iter().all(|n| n.resets == 1), "{saved:?}");
}

#[test]
fn a_boot_that_stalls_after_its_reset_fails_and_is_torn_down() {
    if !have_ssh_keygen() {
        return;
    }
    let f = fixture();
    let mut host = RecordingHost::new(&f.root);
    host.stalled_boots = 2;
    let err = up(&host, &f.root, &topology("minimal"), &options(&f), &|_| {}).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("stalled again after 1 reset(s)"), "{text}");
    assert!(text.contains("last console lines"), "{text}");
    assert!(host.namespaces().is_empty());
    assert!(host.processes().is_empty());
}

#[test]
fn without_stall_resets_a_stalled_boot_waits_out_its_timeout() {
    if !have_ssh_keygen() {
        return;
    }
    let f = fixture();
    let mut host = RecordingHost::new(&f.root);
    host.stalled_boots = 1;
    let options = UpOptions {
        boot_timeout: Duration::from_secs(1),
        stall_reset: None,
        ..options(&f)
    };
    let err = up(&host, &f.root, &topology("minimal"), &options, &|_| {}).unwrap_err();
    assert!(err.to_string().contains("timed out"), "{err}");
    assert!(!host.ops().iter().any(|o| o.starts_with("reset ")));
}
