//! Every side effect the lab has on the host, behind one trait.
//!
//! The orchestration in [`crate::lab`] only talks to a [`Host`]: [`SystemHost`] does the real
//! thing (`ip`, `bridge`, `nft` run inside the lab's namespace, QEMU started detached inside
//! it, signals by PID), while the recording fake in `fake.rs` lets unit tests check the order
//! of operations, the write-ahead state and the cleanup after failures without root.
//!
//! Every operation except namespace creation is scoped to one lab namespace, so nothing here
//! can touch the host's own interfaces, routes or firewall.

pub(crate) mod system;

#[cfg(test)]
pub(crate) mod fake;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnetwork::Ipv4Network;

use crate::guest::Credentials;
pub use system::SystemHost;

/// A host operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// A helper program could not be started at all.
    #[error("cannot run {program} (is it installed? scripts/setup-host installs it)")]
    Spawn {
        /// The program.
        program: String,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A helper program ran and failed.
    #[error("`{command}` failed: {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// QEMU started but its PID file is missing or unreadable.
    #[error("QEMU left no usable PID file at {}", path.display())]
    PidFile {
        /// The PID file.
        path: PathBuf,
    },
    /// A QMP command failed.
    #[error("QMP on {}", socket.display())]
    Qmp {
        /// The QMP socket.
        socket: PathBuf,
        /// Underlying error.
        #[source]
        source: Box<crate::vm::qmp::QmpError>,
    },
    /// A signal could not be delivered.
    #[error("cannot signal process {pid}")]
    Signal {
        /// The process.
        pid: u32,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// How to start one QEMU: its arguments (without the program name) and where it writes its
/// PID once it has daemonized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuLaunch {
    /// Arguments after `qemu-system-x86_64`.
    pub args: Vec<String>,
    /// The `-pidfile` QEMU writes.
    pub pidfile: PathBuf,
}

/// Side effects of a lab on the host. All names are scoped to the namespace `ns`.
pub trait Host: Send + Sync {
    /// Whether the named network namespace exists.
    fn namespace_exists(&self, ns: &str) -> bool;
    /// Creates a network namespace with its loopback up.
    fn create_namespace(&self, ns: &str) -> Result<(), HostError>;
    /// Deletes a network namespace (and with it every device inside). Absent is success.
    fn delete_namespace(&self, ns: &str) -> Result<(), HostError>;
    /// Creates a Linux bridge inside `ns` and sets it up.
    fn add_bridge(&self, ns: &str, bridge: &str) -> Result<(), HostError>;
    /// Creates a tap inside `ns`, enslaves it to `bridge` and sets it up. An `isolated` port
    /// only talks to the bridge itself, not to other ports (used on the management bridge).
    fn add_tap(&self, ns: &str, tap: &str, bridge: &str, isolated: bool) -> Result<(), HostError>;
    /// Adds an address to a device inside `ns`.
    fn add_address(&self, ns: &str, dev: &str, addr: Ipv4Network) -> Result<(), HostError>;
    /// Loads an nftables ruleset (`nft -f -`) inside `ns`.
    fn nft(&self, ns: &str, ruleset: &str) -> Result<(), HostError>;
    /// PIDs of all processes whose network namespace is `ns`.
    fn namespace_pids(&self, ns: &str) -> Vec<u32>;
    /// Starts QEMU detached inside `ns`; returns its PID once it has daemonized.
    fn start_qemu(&self, ns: &str, launch: &QemuLaunch) -> Result<u32, HostError>;
    /// Whether `pid` is alive and its command line mentions `marker` (the lab's state
    /// directory), so a recycled PID is never mistaken for ours.
    fn is_ours(&self, pid: u32, marker: &Path) -> bool;
    /// Whether `pid` is still exiting: killed, no longer showing a command line (its memory
    /// is being released — seconds for a large guest), not yet a zombie. Waits for a killed
    /// process to be gone must count it as still there.
    fn is_exiting(&self, _pid: u32) -> bool {
        false
    }
    /// Sends SIGKILL to `pid`.
    fn kill(&self, pid: u32) -> Result<(), HostError>;
    /// Hard-resets the VM whose QMP socket is `qmp` (`system_reset`, like the reset button)
    /// and lets its vCPUs run if they were stopped: the same QEMU process boots the guest
    /// again.
    fn reset_vm(&self, qmp: &Path) -> Result<(), HostError>;
    /// What the host can see of QEMU `pid` (QMP socket `qmp`) while its guest is silent, for
    /// the stall warning: QEMU's run state, its threads' states and kernel wait channels, the
    /// host's load and dirty memory.
    fn describe_vm(&self, _pid: u32, _qmp: &Path) -> String {
        String::new()
    }
    /// CPU seconds QEMU `pid` has used so far (all threads); `None` if unknown.
    fn cpu_seconds(&self, _pid: u32) -> Option<f64> {
        None
    }
    /// Whether the guest at `ip` (management address, inside `ns`) presents the node's host
    /// key, accepts the lab's SSH key and runs a command.
    fn ssh_ready(&self, ns: &str, ip: Ipv4Addr, credentials: &Credentials) -> Result<(), String>;
}
