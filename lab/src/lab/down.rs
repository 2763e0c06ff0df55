//! `kubelab down`: remove every process, namespace, device and file a lab made.
//!
//! Works from the journal alone, so it also cleans up after an `up` that was SIGKILLed at any
//! point: every resource was recorded before it was created.
//!
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

/// What `down` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DownReport {
    /// PIDs that were killed.
    pub killed: Vec<u32>,
    /// Whether a namespace was deleted.
    pub namespace_deleted: bool,
    /// Whether a state directory was removed.
    pub state_removed: bool,
}

/// Tears lab `name` down.
pub fn down(host: &dyn Host, root: &StateRoot, name: &str) -> Result<DownReport, LabError> {
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
                .filter(|&p| host.is_ours(p, dir.path()))
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
