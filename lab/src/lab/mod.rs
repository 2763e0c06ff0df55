//! Lab lifecycle: `up` ([`up::up`]), `down` ([`down::down`]), faults ([`fault`]) and status
//! ([`status`]), on top of a [`Host`](crate::host::Host).
//!
//! A running lab is found again by name through its state directory: [`Lab::open`] reads the
//! topology copy and `state.json` and re-derives the network plan, so every command after `up`
//! works in a new process.

pub mod down;
pub mod fault;
mod node;
pub mod status;
pub mod up;

#[cfg(test)]
mod tests;

use std::net::Ipv4Addr;
use std::path::PathBuf;

use crate::guest::keys::HostKey;
use crate::guest::{Credentials, Guest, GuestError};
use crate::host::HostError;
use crate::net::NetPlan;
use crate::state::{LabDir, LabState, StateError, StateRoot};
use crate::topology::{Topology, TopologyError};
use crate::vm::qmp::{QmpClient, QmpError};

/// A lab operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The topology file was refused.
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// `--name` is not a valid lab name.
    #[error("lab name {name:?} {problem}")]
    BadName {
        /// The name.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// The image directory has no usable manifest.
    #[error("image {} has no readable manifest.json (build it with `kubelab image build`)", path.display())]
    Image {
        /// The image directory.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A lab of this name runs already.
    #[error(
        "lab {name:?} is already running; use it, or remove it first with `kubelab down {name}`"
    )]
    AlreadyRunning {
        /// The lab.
        name: String,
    },
    /// Another `kubelab up` of this name is booting it right now.
    #[error(
        "lab {name:?} is being started by another `kubelab up`; wait for it to finish (or stop it and run `kubelab down {name}`)"
    )]
    Starting {
        /// The lab.
        name: String,
    },
    /// A lab of this name left state behind (an interrupted `up`, or a crashed host).
    #[error("lab {name:?} has leftover state in {}; remove it with `kubelab down {name}`", dir.display())]
    Leftover {
        /// The lab.
        name: String,
        /// Its state directory.
        dir: PathBuf,
    },
    /// The namespace exists but no state directory claims it.
    #[error(
        "network namespace {ns} exists but belongs to no known lab; remove it with `ip netns delete {ns}` if it is stale"
    )]
    NamespaceTaken {
        /// The namespace.
        ns: String,
    },
    /// No lab of this name.
    #[error("no lab named {name:?} (see `kubelab status`)")]
    NotFound {
        /// The lab.
        name: String,
    },
    /// The lab is still being started, or its `up` was interrupted.
    #[error("lab {name:?} is not ready (its `up` has not finished or was interrupted)")]
    NotReady {
        /// The lab.
        name: String,
    },
    /// No such node in the lab.
    #[error("lab {lab:?} has no node {node:?}; nodes: {known}")]
    UnknownNode {
        /// The lab.
        lab: String,
        /// The node asked for.
        node: String,
        /// The lab's nodes, comma-separated.
        known: String,
    },
    /// No such interface on the node.
    #[error("node {node:?} has no interface {iface:?}; interfaces: {known}")]
    UnknownInterface {
        /// The node.
        node: String,
        /// The interface asked for.
        iface: String,
        /// The node's interfaces, comma-separated.
        known: String,
    },
    /// A node is named in both partition groups.
    #[error("node {node:?} is in both partition groups; each node may be on one side only")]
    PartitionOverlap {
        /// The node.
        node: String,
    },
    /// A VM did not boot.
    #[error("node {node:?} did not boot: {reason}\n--- last console lines ({}) ---\n{console}", log.display())]
    Boot {
        /// The node.
        node: String,
        /// Why.
        reason: String,
        /// The console log.
        log: PathBuf,
        /// Its last lines.
        console: String,
    },
    /// Creating or reading an SSH key failed.
    #[error(transparent)]
    Key(#[from] crate::guest::keys::KeyError),
    /// The state directory.
    #[error(transparent)]
    State(#[from] StateError),
    /// A host operation.
    #[error(transparent)]
    Host(#[from] HostError),
    /// QMP.
    #[error(transparent)]
    Qmp(#[from] QmpError),
    /// SSH.
    #[error(transparent)]
    Guest(#[from] GuestError),
    /// Something did not happen in time.
    #[error(transparent)]
    Timeout(#[from] crate::wait::TimedOut),
}

/// A lab found through its state directory.
#[derive(Debug, Clone)]
pub struct Lab {
    /// The state directory.
    pub dir: LabDir,
    /// What `up` recorded.
    pub state: LabState,
    /// The topology, renamed to the lab's name.
    pub topology: Topology,
    /// The network plan derived from it.
    pub plan: NetPlan,
}

impl Lab {
    /// Opens lab `name`.
    pub fn open(root: &StateRoot, name: &str) -> Result<Self, LabError> {
        let dir = root.lab(name);
        if !dir.exists() {
            return Err(LabError::NotFound { name: name.into() });
        }
        let state = dir
            .load()?
            .ok_or_else(|| LabError::NotReady { name: name.into() })?;
        let mut topology = Topology::load(&dir.topology())?;
        topology.rename(name).map_err(|problem| LabError::BadName {
            name: name.into(),
            problem,
        })?;
        let plan = NetPlan::new(&topology);
        Ok(Self {
            dir,
            state,
            topology,
            plan,
        })
    }

    /// Checks that `node` exists and returns its management address.
    pub fn mgmt_address(&self, node: &str) -> Result<Ipv4Addr, LabError> {
        self.plan
            .mgmt_address(node)
            .ok_or_else(|| LabError::UnknownNode {
                lab: self.state.name.clone(),
                node: node.into(),
                known: self
                    .topology
                    .nodes
                    .iter()
                    .map(|n| n.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// How to log in to `node`: the lab's key, and the host key made for the node (labs
    /// started before host keys were made have none; any key is accepted then).
    pub fn credentials(&self, node: &str) -> Result<Credentials, LabError> {
        self.mgmt_address(node)?;
        let path = self.dir.host_key(node);
        let host_key = if path.with_extension("pub").exists() {
            Some(HostKey::load(&path)?.blob)
        } else {
            None
        };
        Ok(Credentials {
            key: self.dir.ssh_key(),
            host_key,
        })
    }

    /// An SSH session to `node`.
    pub fn ssh(&self, node: &str) -> Result<Guest, LabError> {
        let ip = self.mgmt_address(node)?;
        Ok(Guest::connect(
            &self.plan.namespace,
            ip,
            &self.credentials(node)?,
        )?)
    }

    /// A QMP session to `node`'s QEMU.
    pub fn qmp(&self, node: &str) -> Result<QmpClient, LabError> {
        self.mgmt_address(node)?;
        Ok(QmpClient::connect(&self.dir.qmp_socket(node))?)
    }

    /// QEMU's PID for `node`, as recorded by `up`.
    pub fn pid(&self, node: &str) -> Option<u32> {
        self.state
            .nodes
            .iter()
            .find(|n| n.name == node)
            .and_then(|n| n.pid)
    }
}
