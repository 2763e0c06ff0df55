//! `kubelab status`: what runs, read from the state directory and asked of each QEMU over QMP.

use crate::host::Host;
use crate::state::{Accel, StateRoot};

use super::{Lab, LabError};

/// One node's live status.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeStatus {
    /// Node name.
    pub name: String,
    /// Role.
    pub role: String,
    /// `running`, `paused`, ... as QMP says; `gone` if QEMU does not answer.
    pub vm: String,
    /// QEMU's PID.
    pub pid: Option<u32>,
    /// Management address.
    pub mgmt: String,
    /// Data addresses, `iface=addr/prefix`.
    pub addresses: Vec<String>,
    /// Seconds from start to SSH ready at `up`.
    pub ssh_s: Option<f64>,
}

/// A lab's live status.
#[derive(Debug, Clone, PartialEq)]
pub struct LabStatus {
    /// Lab name.
    pub name: String,
    /// Accelerator in use.
    pub accel: Accel,
    /// Whether `up` finished.
    pub ready: bool,
    /// Whether the namespace exists.
    pub namespace: bool,
    /// Nodes in topology order.
    pub nodes: Vec<NodeStatus>,
}

/// Status of lab `name`.
pub fn status(host: &dyn Host, root: &StateRoot, name: &str) -> Result<LabStatus, LabError> {
    let lab = Lab::open(root, name)?;
    let nodes = lab
        .topology
        .nodes
        .iter()
        .map(|node| {
            let pid = lab.pid(&node.name);
            let alive = pid.is_some_and(|p| host.is_ours(p, lab.dir.path()));
            let vm = if alive {
                match lab.qmp(&node.name).and_then(|mut q| Ok(q.status()?)) {
                    Ok(s) => s.state,
                    Err(_) => "unresponsive".into(),
                }
            } else {
                "gone".into()
            };
            let nics: Vec<_> = lab.plan.node_nics(&node.name).collect();
            NodeStatus {
                name: node.name.clone(),
                role: serde_json::to_value(node.role)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                vm,
                pid,
                mgmt: nics
                    .iter()
                    .find(|n| n.management)
                    .map(|n| n.address.ip().to_string())
                    .unwrap_or_default(),
                addresses: nics
                    .iter()
                    .filter(|n| !n.management)
                    .map(|n| format!("{}={}", n.name, n.address))
                    .collect(),
                ssh_s: lab
                    .state
                    .nodes
                    .iter()
                    .find(|n| n.name == node.name)
                    .and_then(|n| n.ssh_s),
            }
        })
        .collect();
    Ok(LabStatus {
        name: lab.state.name.clone(),
        accel: lab.state.accel,
        ready: lab.state.ready,
        namespace: host.namespace_exists(&lab.plan.namespace),
        nodes,
    })
}
