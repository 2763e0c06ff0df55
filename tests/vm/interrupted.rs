//! `up` killed with SIGKILL half-way, then `down`: nothing may be left.
//!
//! The `up` runs in a child process (this test binary re-executed with
//! [`CHILD_ENV`] set), so it can be killed for real while it is booting VMs.

use std::process::{Command, Stdio};
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

/// The test.
pub fn sigkill_during_up(suite: &Suite) -> Result<()> {
    let name = lab_name("sigkill");
    suite.live.lock().unwrap().push(name.clone());
    let mut child = Command::new(std::env::current_exe()?)
        .env(
            CHILD_ENV,
            format!("{name}\t{}\t{}", suite.image.display(), suite.accel),
        )
        .stdin(Stdio::null())
        .spawn()
        .context("re-executing the test binary as the `up` child")?;
    let dir = state_root().lab(&name);
    // Kill it as soon as the first QEMU runs: network made, VMs half started.
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
    child.kill()?;
    child.wait()?;
    waited?;
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
