//! `kubelab fault LAB ...`.

use kubelab::host::SystemHost;
use kubelab::lab::Lab;
use kubelab::lab::fault::{Fault, inject};
use kubelab::state::StateRoot;

use super::CliError;

/// The faults.
#[derive(clap::Subcommand)]
pub enum FaultCommand {
    /// Hard-kill a node's VM (QMP quit).
    Kill {
        /// Node.
        node: String,
    },
    /// Pause a node's vCPUs (QMP stop).
    Pause {
        /// Node.
        node: String,
    },
    /// Resume a paused node (QMP cont).
    Resume {
        /// Node.
        node: String,
    },
    /// Hard-reset a node (QMP system_reset).
    Reset {
        /// Node.
        node: String,
    },
    /// Cut one NIC of a node (QMP set_link off).
    LinkDown {
        /// Node.
        node: String,
        /// Interface name in the guest (eth0, ...).
        iface: String,
    },
    /// Restore a NIC cut by link-down.
    LinkUp {
        /// Node.
        node: String,
        /// Interface name in the guest.
        iface: String,
    },
    /// Drop all traffic between two groups of nodes: `partition a,b c,d`.
    Partition {
        /// First group, comma-separated.
        a: String,
        /// Second group, comma-separated.
        b: String,
    },
    /// Remove the partition.
    Heal,
}

fn group(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Runs `kubelab fault`.
pub fn run(lab: &str, command: FaultCommand) -> Result<i32, CliError> {
    let fault = match command {
        FaultCommand::Kill { node } => Fault::Kill(node),
        FaultCommand::Pause { node } => Fault::Pause(node),
        FaultCommand::Resume { node } => Fault::Resume(node),
        FaultCommand::Reset { node } => Fault::Reset(node),
        FaultCommand::LinkDown { node, iface } => Fault::LinkDown(node, iface),
        FaultCommand::LinkUp { node, iface } => Fault::LinkUp(node, iface),
        FaultCommand::Partition { a, b } => Fault::Partition(group(&a), group(&b)),
        FaultCommand::Heal => Fault::Heal,
    };
    let lab = Lab::open(&StateRoot::from_env(), lab)?;
    inject(&SystemHost, &lab, &fault)?;
    kubelab::outln!("{}: done", describe(&fault));
    Ok(0)
}

fn describe(fault: &Fault) -> String {
    match fault {
        Fault::Kill(n) => format!("kill {n}"),
        Fault::Pause(n) => format!("pause {n}"),
        Fault::Resume(n) => format!("resume {n}"),
        Fault::Reset(n) => format!("reset {n}"),
        Fault::LinkDown(n, i) => format!("link-down {n} {i}"),
        Fault::LinkUp(n, i) => format!("link-up {n} {i}"),
        Fault::Partition(a, b) => format!("partition {} | {}", a.join(","), b.join(",")),
        Fault::Heal => "heal".into(),
    }
}
