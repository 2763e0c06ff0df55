//! `down` while an `up` of the same lab still runs in another process: `down` kills that
//! `up` by the PID in the lab's lock file, waits for the lock, then tears down. The `up`
//! here is a stand-in — a shell that takes the lock exactly as `up` does (exclusive `flock`
//! on `up.lock`, its PID written into it) and then sleeps — so the lock handling runs
//! against a real second process without root or VMs. The VM suite's
//! `minimal::down_during_up` does the same against a real booting `up`.

use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kubelab::host::SystemHost;
use kubelab::lab::down::down;
use kubelab::state::StateRoot;
use kubelab::wait::wait_until;

/// Kills the stand-in by PID if the test fails before `down` did.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn down_stops_a_running_up_then_tears_down() {
    if Command::new("flock").arg("--version").output().is_err() {
        println!("SKIPPED down_stops_a_running_up_then_tears_down: no `flock` (util-linux)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = StateRoot::at(tmp.path());
    let name = format!("dnd{}", std::process::id());
    let dir = root.lab(&name);
    dir.create().unwrap();
    let lock = dir.path().join("up.lock");
    let mut up = Reap(
        Command::new("sh")
            .arg("-c")
            .arg(r#"exec 9<>"$1"; flock -x 9; echo $$ >&9; exec sleep 120"#)
            .arg("sh")
            .arg(&lock)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = up.0.id();
    wait_until(
        "the stand-in up to hold the lock",
        Duration::from_secs(10),
        Duration::from_millis(10),
        |_| {
            if dir.up_in_progress() && dir.up_holder() == Some(pid) {
                Ok(())
            } else {
                Err("not yet")
            }
        },
    )
    .unwrap();

    let report = down(&SystemHost, &root, &name).unwrap();
    assert_eq!(report.stopped_up, Some(pid), "{report:?}");
    assert!(report.state_removed);
    assert!(!dir.exists(), "state directory left behind");
    let status = up.0.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "the up was not SIGKILLed: {status:?}"
    );
}
