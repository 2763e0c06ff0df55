//! KVM or TCG: decided by a trial boot, never assumed.
//!
//! `/dev/kvm` existing does not mean guests run under it (on this project's machines KVM
//! guests may hang), so the first `up` after a host boot starts one throwaway VM of the image
//! with KVM and waits, time-boxed, for the init's userspace mark on its console. If it shows
//! up, KVM is used; otherwise TCG. The verdict is cached per host boot and image in
//! `accel.json` beside the state root (`/var/lib/kubelab/accel.json` for the default root, so
//! users' labs, the VM suite and the benchmark share one trial); `KUBELAB_ACCEL=kvm|tcg`
//! overrides it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::console::{self, Stage};
use crate::host::system::QEMU;
use crate::image::Manifest;
use crate::state::Accel;
use crate::wait::wait_until;

/// Environment variable forcing the accelerator.
pub const ACCEL_ENV: &str = "KUBELAB_ACCEL";
/// How long the KVM trial may take; a working KVM guest reaches userspace in well under this.
pub const TRIAL_TIMEOUT: Duration = Duration::from_secs(12);

/// The cached verdict.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Cached {
    boot_id: String,
    image: String,
    accel: Accel,
}

/// How the accelerator was chosen, for `up` to report.
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    /// `KUBELAB_ACCEL` said so.
    Forced,
    /// `/dev/kvm` missing or not usable.
    NoKvmDevice,
    /// Cached verdict of an earlier trial in this host boot.
    Cached,
    /// A trial boot just now.
    Trial {
        /// Seconds the trial took.
        seconds: f64,
    },
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// Chooses the accelerator for `manifest`'s image, running a trial if nothing is cached.
pub fn choose(state_root: &Path, image_dir: &Path, manifest: &Manifest) -> (Accel, Reason) {
    match std::env::var(ACCEL_ENV).as_deref() {
        Ok("kvm") => return (Accel::Kvm, Reason::Forced),
        Ok("tcg") => return (Accel::Tcg, Reason::Forced),
        _ => {}
    }
    if std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_err()
    {
        return (Accel::Tcg, Reason::NoKvmDevice);
    }
    let cache = state_root.parent().unwrap_or(state_root).join("accel.json");
    let key = (boot_id(), manifest.hash.clone());
    if let Some(cached) = std::fs::read(&cache)
        .ok()
        .and_then(|b| serde_json::from_slice::<Cached>(&b).ok())
        .filter(|c| (c.boot_id.clone(), c.image.clone()) == key)
    {
        return (cached.accel, Reason::Cached);
    }
    let started = std::time::Instant::now();
    let accel = if trial(state_root, image_dir, manifest) {
        Accel::Kvm
    } else {
        Accel::Tcg
    };
    let seconds = started.elapsed().as_secs_f64();
    tracing::info!(%accel, seconds, "accelerator trial");
    let record = Cached {
        boot_id: key.0,
        image: key.1,
        accel,
    };
    // A failed cache write only costs another trial next time.
    let _ = std::fs::create_dir_all(cache.parent().unwrap_or(state_root))
        .and_then(|()| std::fs::write(&cache, serde_json::to_vec(&record).expect("serializes")));
    (accel, Reason::Trial { seconds })
}

/// Boots the image once under KVM without any network; true if it reached userspace in time.
fn trial(state_root: &Path, image_dir: &Path, manifest: &Manifest) -> bool {
    let dir: PathBuf = state_root.join(format!(".accel-trial-{}", std::process::id()));
    if std::fs::create_dir_all(&dir).is_err() {
        return false;
    }
    let log = dir.join("serial.log");
    let mut cmd = Command::new(QEMU);
    // The lab's own machine, so the trial says whether *that* works under KVM.
    cmd.args(["-nodefaults", "-no-user-config", "-display", "none"])
        .args(super::qemu::machine_args(Accel::Kvm))
        .args(["-m", "256", "-nic", "none"])
        .args(crate::image::qemu_image_args(
            image_dir,
            manifest,
            &super::qemu::kernel_cmdline_extra(Accel::Kvm),
            super::qemu::TRANSPORT,
        ))
        .arg("-serial")
        .arg(format!("file:{}", log.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let ok = match cmd.spawn() {
        Ok(mut child) => {
            let reached = wait_until(
                "KVM trial boot",
                TRIAL_TIMEOUT,
                Duration::from_millis(50),
                |_| {
                    if let Ok(Some(_)) = child.try_wait() {
                        return Ok(false);
                    }
                    if console::scan_file(&log).stage >= Stage::Userspace {
                        Ok(true)
                    } else {
                        Err("no userspace mark yet")
                    }
                },
            )
            .unwrap_or(false);
            let _ = child.kill();
            let _ = child.wait();
            reached
        }
        Err(_) => false,
    };
    let _ = std::fs::remove_dir_all(&dir);
    ok
}
