//! `kubelab down`: remove every process, namespace, device and file a lab made.
//!
//! Works from the journal alone, so it also cleans up after an `up` that was SIGKILLed at any
//! point: every resource was recorded before it was created.
//!
//! 0. If an `up` of the lab is still running (it holds the lab's lock), stop it: SIGKILL by
//!    the PID it wrote into the lock file (checked to still hold that file, so a recycled PID
//!    is never hit), wait for the kernel to release its lock, and hold the lock while tearing
//!    down, so no `up` of the name starts half-way. From then on the lab is exactly an `up`
//!    killed at some step, which the journal covers. An `up` running in this very process
//!    (a library caller) cannot be killed: that is refused ([`LabError::Starting`]).
//! 1. Kill each recorded QEMU by PID (from the journal, or from its PID file if `up` died
//!    between starting it and recording the PID), but only if that PID's command line still
//!    names this lab's state directory, so a recycled PID is never hit.
//! 2. Kill whatever else still runs in the lab's namespace (by definition the lab's).
//! 3. Wait, with a deadline, until those processes are gone.
//! 4. Delete the namespace: its bridges and taps go with it.
//! 5. Remove the state directory.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::host::Host;
use crate::net::namespace;
use crate::state::{Resource, StateRoot};
use crate::wait::wait_until;

use super::LabError;

/// How long processes get to disappear after SIGKILL.
const KILL_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a killed `up` gets to release the lab's lock.
const UP_EXIT_TIMEOUT: Duration = Duration::from_secs(15);

/// What `down` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DownReport {
    /// PIDs that were killed.
    pub killed: Vec<u32>,
    /// Whether a namespace was deleted.
    pub namespace_deleted: bool,
    /// Whether a state directory was removed.
    pub state_removed: bool,
    /// The PID of an `up` of the lab that was still running and was stopped first.
    pub stopped_up: Option<u32>,
}

/// Tears lab `name` down, first stopping an `up` of it that is still running.
pub fn down(host: &dyn Host, root: &StateRoot, name: &str) -> Result<DownReport, LabError> {
    let dir = root.lab(name);
    if !dir.exists() {
        return teardown(host, root, name);
    }
    // An `up` in this very process cannot be killed without killing the caller.
    if dir.up_in_progress() && dir.up_holder() == Some(std::process::id()) {
        return Err(LabError::Starting { name: name.into() });
    }
    let mut stopped_up = None;
    let lock = wait_until(
        &format!("the running up of lab {name} to stop"),
        UP_EXIT_TIMEOUT,
        Duration::from_millis(20),
        |_| {
            if let Some(lock) = dir.try_lock_down().map_err(|e| e.to_string())? {
                return Ok(lock);
            }
            // Held by an `up`. Its PID may not be in the file yet in the instant after it
            // took the lock; then the next round finds it.
            match dir.up_holder() {
                Some(pid) if stopped_up.is_none() => {
                    tracing::info!(lab = %name, pid, "down: stopping the running up");
                    host.kill(pid).map_err(|e| e.to_string())?;
                    stopped_up = Some(pid);
                    Err(format!("up (PID {pid}) killed, its lock not released yet"))
                }
                Some(pid) => Err(format!("up (PID {pid}) killed, its lock not released yet")),
                None => Err("the lock is held by a process that named no PID".to_string()),
            }
        },
    )?;
    let mut report = teardown(host, root, name)?;
    drop(lock);
    report.stopped_up = stopped_up;
    Ok(report)
}

/// Tears lab `name` down from its journal; the caller holds the lab's lock (or knows no
/// `up` runs): `up` itself after a failed boot, and [`down`].
pub(crate) fn teardown(
    host: &dyn Host,
    root: &StateRoot,
    name: &str,
) -> Result<DownReport, LabError> {
    let dir = root.lab(name);
    let ns = namespace(name);
    if !dir.exists() {
        // Without a state directory the namespace may be someone else's: leave it.
        return Err(if host.namespace_exists(&ns) {
            LabError::NamespaceTaken { ns }
        } else {
            LabError::NotFound { name: name.into() }
        });
    }
    let journal = dir.journal()?;
    let mut pids = BTreeSet::new();
    for resource in &journal {
        match resource {
            Resource::QemuPid { pid, .. } => {
                pids.insert(*pid);
            }
            Resource::Qemu { pidfile, .. } => {
                if let Some(pid) = std::fs::read_to_string(pidfile)
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                {
                    pids.insert(pid);
                }
            }
            _ => {}
        }
    }
    let mut report = DownReport::default();
    for &pid in &pids {
        if host.is_ours(pid, dir.path()) {
            host.kill(pid)?;
            report.killed.push(pid);
        }
    }
    let in_namespace = host.namespace_pids(&ns);
    for &pid in &in_namespace {
        if !report.killed.contains(&pid) {
            host.kill(pid)?;
            report.killed.push(pid);
        }
    }
    let ours: Vec<u32> = report.killed.clone();
    wait_until(
        &format!("lab {name}'s processes to exit"),
        KILL_TIMEOUT,
        Duration::from_millis(20),
        |_| {
            let left: Vec<u32> = ours
                .iter()
                .copied()
                .filter(|&p| host.is_ours(p, dir.path()) || host.is_exiting(p))
                .chain(host.namespace_pids(&ns))
                .collect();
            if left.is_empty() {
                Ok(())
            } else {
                Err(format!("still running: {left:?}"))
            }
        },
    )?;
    let recorded_ns = journal
        .iter()
        .any(|r| matches!(r, Resource::Namespace { name } if *name == ns));
    if recorded_ns || host.namespace_exists(&ns) {
        host.delete_namespace(&ns)?;
        report.namespace_deleted = true;
    }
    dir.remove()?;
    report.state_removed = true;
    tracing::info!(lab = %name, killed = ?report.killed, "down");
    Ok(report)
}
