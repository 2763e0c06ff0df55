//! Topology files (`topologies/*.toml`): the TOML model of a lab and its validation.
//!
//! Data flow: [`Topology::load`] reads the file, `toml` deserializes it into span-keeping raw
//! structs (unknown keys are refused there, with their position), then `validate` checks every
//! rule of `docs/topology.md` and resolves what may be left out (vCPUs, memory, interface
//! names, derived addresses) into a [`Topology`] whose every value is known good. Any problem
//! becomes one [`Diagnostic`] naming `file:line:col`, the field, the value and what to do;
//! nothing outside this module is touched before a topology is valid.

mod fields;
mod raw;
mod validate;

#[cfg(test)]
mod tests;

use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnetwork::Ipv4Network;
pub use kubelab_nodeconfig::Role;

/// vCPUs a node gets when the file says nothing: one, because five TCG guests share two host
/// cores and each extra vCPU thread only adds contention.
pub const DEFAULT_VCPUS: u32 = 1;
/// Allowed vCPUs per node.
pub const VCPUS_RANGE: std::ops::RangeInclusive<u32> = 1..=16;
/// Memory in MiB a node gets when the file says nothing; the guest runs from an initramfs plus
/// a read-only root filesystem, 256 MiB leaves room for later cluster components.
pub const DEFAULT_MEMORY_MIB: u32 = 256;
/// Allowed memory per node, MiB. Below 128 the Debian kernel and initramfs do not fit.
pub const MEMORY_RANGE_MIB: std::ops::RangeInclusive<u32> = 128..=16384;
/// Management network when the file has no `[management]`: a /24 rarely used by lab designs.
pub const DEFAULT_MANAGEMENT_CIDR: &str = "172.31.254.0/24";
/// Derived addresses are `network + DERIVED_HOST_OFFSET + node index`, leaving `.1`-`.9` for
/// routers and other static addresses.
pub const DERIVED_HOST_OFFSET: u32 = 10;
/// Longest lab name: it is embedded in the namespace name and in paths.
pub const MAX_LAB_NAME: usize = 32;

/// A validated topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// Lab name (may be overridden by `kubelab up --name`).
    pub name: String,
    /// The harness's management network (SSH only).
    pub management: Ipv4Network,
    /// Declared networks, in file order.
    pub networks: Vec<Network>,
    /// Nodes, in file order; a node's index is its position here.
    pub nodes: Vec<Node>,
}

/// A declared L2 segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    /// Name, unique in the topology.
    pub name: String,
    /// IPv4 network.
    pub cidr: Ipv4Network,
}

/// A VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Host name, unique in the topology.
    pub name: String,
    /// What the node runs.
    pub role: Role,
    /// Virtual CPUs.
    pub vcpus: u32,
    /// Memory, MiB.
    pub memory_mib: u32,
    /// NICs on declared networks (the management NIC is not listed here).
    pub interfaces: Vec<Interface>,
    /// Extra static routes.
    pub routes: Vec<Route>,
}

/// One NIC of a node on a declared network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Name in the guest (`eth0`, ...).
    pub name: String,
    /// Name of the network.
    pub network: String,
    /// Address with the network's prefix.
    pub address: Ipv4Network,
}

/// A static route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Destination network.
    pub to: Ipv4Network,
    /// Next hop on one of the node's networks.
    pub via: Ipv4Addr,
}

/// Why a topology file was refused.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// The file could not be read.
    #[error("cannot read topology file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Not TOML, a key that does not exist, or a value of the wrong type.
    #[error("{0}")]
    Syntax(Box<Diagnostic>),
    /// Well-formed but breaks a rule (duplicate name, address outside its network, ...).
    #[error("{0}")]
    Invalid(Box<Diagnostic>),
}

impl TopologyError {
    /// The diagnostic, for errors that point into the file.
    pub fn diagnostic(&self) -> Option<&Diagnostic> {
        match self {
            TopologyError::Read { .. } => None,
            TopologyError::Syntax(d) | TopologyError::Invalid(d) => Some(d),
        }
    }
}

/// A problem at one place of a topology file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file as given.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (characters).
    pub col: usize,
    /// Dotted path of the field, e.g. `nodes[1].interfaces[0].address`; empty if unknown.
    pub field: String,
    /// The offending value as written, if any.
    pub value: Option<String>,
    /// What is wrong.
    pub problem: String,
    /// What to do about it.
    pub hint: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.col)?;
        if !self.field.is_empty() {
            write!(f, "{}", self.field)?;
            if let Some(value) = &self.value {
                write!(f, " = {value}")?;
            }
            write!(f, ": ")?;
        }
        write!(f, "{}", self.problem)?;
        if !self.hint.is_empty() {
            write!(f, "; {}", self.hint)?;
        }
        Ok(())
    }
}

impl Topology {
    /// Reads and validates a topology file.
    pub fn load(path: &Path) -> Result<Self, TopologyError> {
        let text = std::fs::read_to_string(path).map_err(|source| TopologyError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&path.display().to_string(), &text)
    }

    /// Parses and validates topology text; `file` is only used in diagnostics.
    pub fn parse(file: &str, text: &str) -> Result<Self, TopologyError> {
        let raw: raw::RawTopology = toml::from_str(text).map_err(|err| {
            let (line, col) = err
                .span()
                .map(|span| line_col(text, span.start))
                .unwrap_or((1, 1));
            TopologyError::Syntax(Box::new(Diagnostic {
                file: file.to_owned(),
                line,
                col,
                field: String::new(),
                value: None,
                problem: err.message().trim().to_owned(),
                hint: "fix the file; every key is described in docs/topology.md".into(),
            }))
        })?;
        validate::validate(file, text, raw).map_err(TopologyError::Invalid)
    }

    /// The node with this name.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The network with this name.
    pub fn network(&self, name: &str) -> Option<&Network> {
        self.networks.iter().find(|n| n.name == name)
    }

    /// Address of node number `index` on the management network: `.10 + index`.
    pub fn management_address(&self, index: usize) -> Ipv4Network {
        let ip = self
            .management
            .nth(DERIVED_HOST_OFFSET + index as u32)
            .expect("validate checks the management network holds every node");
        Ipv4Network::new(ip, self.management.prefix()).expect("prefix comes from a valid network")
    }

    /// The host side's address on the management bridge (inside the lab namespace): `.1`.
    pub fn management_host_address(&self) -> Ipv4Network {
        let ip = self
            .management
            .nth(1)
            .expect("validate checks the management network size");
        Ipv4Network::new(ip, self.management.prefix()).expect("prefix comes from a valid network")
    }

    /// Replaces the lab name (`kubelab up --name`), checking it like a name from the file.
    pub fn rename(&mut self, name: &str) -> Result<(), String> {
        fields::check_lab_name(name)?;
        self.name = name.to_owned();
        Ok(())
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}
