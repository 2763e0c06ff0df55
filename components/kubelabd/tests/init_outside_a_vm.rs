//! `kubelabd init` is the guest's PID 1 and touches mounts, modules and network devices. On
//! a host (any PID but 1) it must refuse and change nothing, whether it is called as
//! `kubelabd init` or under the name `init` the kernel uses.

use std::process::Command;

#[test]
fn init_refuses_to_run_unless_it_is_pid_1() {
    let exe = env!("CARGO_BIN_EXE_kubelabd");
    let out = Command::new(exe).arg("init").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("must run as PID 1"), "{stderr}");
    assert!(out.stdout.is_empty(), "no boot marks outside a VM: {out:?}");
}

#[test]
fn invoked_as_init_refuses_too() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("init");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_kubelabd"), &link).unwrap();
    let out = Command::new(&link).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("must run as PID 1"));
}
