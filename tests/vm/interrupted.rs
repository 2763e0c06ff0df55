//! `up` interrupted half-way: killed with SIGKILL, then `down`; or `down` run while the `up`
//! is still booting (it stops that `up` first). Nothing may be left either way.
//!
//! The `up` runs in a child process (this test binary re-executed with
//! [`CHILD_ENV`] set), so it can be killed for real while it is booting VMs.

use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use kubelab::host::SystemHost;
use kubelab::lab::down::down;
use kubelab::lab::up::{UpOptions, up};
use kubelab::state::{Accel, Resource};
use kubelab::wait::wait_until;

use crate::util::{
    Suite, assert_nothing_left, lab_name, processes_mentioning, state_root, topology,
};

/// Set in the child: `<lab name>\t<image dir>\t<accel>`.
const CHILD_ENV: &str = "KUBELAB_VMTEST_UP_CHILD";

/// In the child process, runs `up` and returns its exit code; `None` in the test process.
pub fn child_main() -> Option<i32> {
    let spec = std::env::var(CHILD_ENV).ok()?;
    let mut parts = spec.split('\t');
    let (name, image, accel) = (parts.next()?, parts.next()?, parts.next()?);
    let options = UpOptions {
        image_dir: image.into(),
        name: Some(name.into()),
        accel: Some(if accel == "kvm" {
            Accel::Kvm
        } else {
            Accel::Tcg
        }),
        boot_timeout: Duration::from_secs(150),
        stall_reset: Some(kubelab::lab::up::DEFAULT_STALL_RESET),
    };
    Some(
        match up(
            &SystemHost,
            &state_root(),
            &topology("minimal"),
            &options,
            &|_| {},
        ) {
            Ok(_) => 0,
            Err(_) => 1,
        },
    )
}

/// Starts `up` of lab `name` in a child process and returns it once the child's first QEMU
/// runs (network made, VMs half started); kills the child if that does not happen.
fn up_child_until_first_qemu(suite: &Suite, name: &str) -> Result<Child> {
    suite.live.lock().unwrap().push(name.to_owned());
    let mut child = Command::new(std::env::current_exe()?)
        .env(
            CHILD_ENV,
            format!("{name}\t{}\t{}", suite.image.display(), suite.accel),
        )
        .stdin(Stdio::null())
        .spawn()
        .context("re-executing the test binary as the `up` child")?;
    let dir = state_root().lab(name);
    let waited = wait_until(
        "the child's first QEMU",
        Duration::from_secs(60),
        Duration::from_millis(10),
        |_| {
            let started = dir
                .journal()
                .unwrap_or_default()
                .iter()
                .any(|r| matches!(r, Resource::QemuPid { .. }));
            if started { Ok(()) } else { Err("no QEMU yet") }
        },
    );
    if let Err(e) = waited {
        child.kill()?;
        child.wait()?;
        return Err(e.into());
    }
    Ok(child)
}

/// SIGKILL to `up` half-way, then `down` cleans up from the journal.
pub fn sigkill_during_up(suite: &Suite) -> Result<()> {
    let name = lab_name("sigkill");
    let mut child = up_child_until_first_qemu(suite, &name)?;
    child.kill()?;
    child.wait()?;
    let dir = state_root().lab(&name);
    let marker = dir.path().display().to_string();
    ensure!(
        !processes_mentioning(&marker).is_empty(),
        "the killed up left a QEMU running (as expected)"
    );
    ensure!(
        std::path::Path::new("/run/netns")
            .join(kubelab::net::namespace(&name))
            .exists(),
        "the killed up left its namespace"
    );
    let report = down(&SystemHost, &state_root(), &name)?;
    ensure!(
        !report.killed.is_empty(),
        "down killed the orphaned QEMU(s)"
    );
    suite.live.lock().unwrap().retain(|l| *l != name);
    assert_nothing_left(&name)
}

/// `down` while another process's `up` of the lab is still booting: `down` stops that `up`
/// (SIGKILL by the PID in the lab's lock), waits for its lock, then removes everything,
/// including the QEMUs the `up` had started.
pub fn down_during_up(suite: &Suite) -> Result<()> {
    let name = lab_name("downup");
    let mut child = up_child_until_first_qemu(suite, &name)?;
    let report = match down(&SystemHost, &state_root(), &name) {
        Ok(report) => report,
        Err(e) => {
            child.kill()?;
            child.wait()?;
            return Err(e).context("down during up");
        }
    };
    let status = child.wait()?;
    ensure!(
        report.stopped_up == Some(child.id()),
        "down did not stop the up (PID {}): {report:?}",
        child.id()
    );
    ensure!(
        status.signal() == Some(9),
        "the up ended otherwise than by down's SIGKILL: {status:?}"
    );
    ensure!(
        !report.killed.is_empty(),
        "down killed the QEMU(s) the up had started"
    );
    suite.live.lock().unwrap().retain(|l| *l != name);
    assert_nothing_left(&name)
}
