//! `kubelab fault`: break a running lab on purpose, and mend it.
//!
//! VM-level faults go through QMP: `kill` (`quit`: QEMU exits at once, like pulling the plug),
//! `pause`/`resume` (`stop`/`cont`), `reset` (`system_reset`), `link-down`/`link-up`
//! (`set_link` on one NIC). Network partitions are nftables rules in the bridge family inside
//! the lab namespace, matching the data-network addresses of each side, so bridged and routed
//! paths between the two sides are both cut while the management network (SSH) stays up.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::host::Host;
use crate::net::{heal_ruleset, partition_ruleset};
use crate::wait::wait_until;

use super::{Lab, LabError};

/// A fault to inject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Hard-kill the node's QEMU.
    Kill(String),
    /// Pause the node's vCPUs.
    Pause(String),
    /// Resume them.
    Resume(String),
    /// Hard reset.
    Reset(String),
    /// Cut one NIC (node, interface name).
    LinkDown(String, String),
    /// Restore it.
    LinkUp(String, String),
    /// Cut all traffic between two groups of nodes.
    Partition(Vec<String>, Vec<String>),
    /// Remove the partition.
    Heal,
}

/// How long a killed QEMU may take to disappear.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Applies `fault` to `lab`.
pub fn inject(host: &dyn Host, lab: &Lab, fault: &Fault) -> Result<(), LabError> {
    tracing::info!(lab = %lab.state.name, ?fault, "fault");
    match fault {
        Fault::Kill(node) => {
            lab.qmp(node)?.quit()?;
            if let Some(pid) = lab.pid(node) {
                let dir = lab.dir.path();
                wait_until(
                    &format!("QEMU of {node} to exit"),
                    EXIT_TIMEOUT,
                    Duration::from_millis(20),
                    |_| {
                        if host.is_ours(pid, dir) {
                            Err("still running")
                        } else {
                            Ok(())
                        }
                    },
                )?;
            }
            Ok(())
        }
        Fault::Pause(node) => Ok(lab.qmp(node)?.stop()?),
        Fault::Resume(node) => Ok(lab.qmp(node)?.cont()?),
        Fault::Reset(node) => Ok(lab.qmp(node)?.system_reset()?),
        Fault::LinkDown(node, iface) | Fault::LinkUp(node, iface) => {
            check_interface(lab, node, iface)?;
            Ok(lab
                .qmp(node)?
                .set_link(iface, matches!(fault, Fault::LinkUp(..)))?)
        }
        Fault::Partition(a, b) => {
            let rules = partition_rules(lab, a, b)?;
            Ok(host.nft(&lab.plan.namespace, &rules)?)
        }
        Fault::Heal => Ok(host.nft(&lab.plan.namespace, &heal_ruleset())?),
    }
}

fn check_interface(lab: &Lab, node: &str, iface: &str) -> Result<(), LabError> {
    lab.mgmt_address(node)?;
    if lab.plan.node_nics(node).any(|n| n.name == iface) {
        return Ok(());
    }
    Err(LabError::UnknownInterface {
        node: node.into(),
        iface: iface.into(),
        known: lab
            .plan
            .node_nics(node)
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// The nftables rules cutting `a` from `b`; checks the groups first.
pub fn partition_rules(lab: &Lab, a: &[String], b: &[String]) -> Result<String, LabError> {
    for node in a.iter().chain(b) {
        lab.mgmt_address(node)?;
    }
    if let Some(node) = a.iter().find(|n| b.contains(n)) {
        return Err(LabError::PartitionOverlap { node: node.clone() });
    }
    let addresses = |group: &[String]| -> Vec<Ipv4Addr> {
        lab.plan
            .nics
            .iter()
            .filter(|n| !n.management && group.contains(&n.node))
            .map(|n| n.address.ip())
            .collect()
    };
    Ok(partition_ruleset(&addresses(a), &addresses(b)))
}
