//! The topology file as written: serde structs that keep each value's byte span, so that
//! validation can point at `file:line:col`. Nothing here is trusted; [`super::validate`]
//! turns a [`RawTopology`] into a [`super::Topology`] or a [`super::Diagnostic`].

use kubelab_nodeconfig::Role;
use serde::Deserialize;
use toml::Spanned;

/// Top level of a topology file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTopology {
    /// Lab name; also names the network namespace and the state directory.
    pub name: Spanned<String>,
    /// The harness's own network for SSH; optional.
    #[serde(default)]
    pub management: Option<RawManagement>,
    /// Declared L2 segments.
    #[serde(default)]
    pub networks: Vec<RawNetwork>,
    /// The VMs.
    #[serde(default)]
    pub nodes: Vec<RawNode>,
}

/// `[management]`: the harness's SSH network.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawManagement {
    /// IPv4 CIDR of the management network; must not overlap a declared network.
    pub cidr: Spanned<String>,
}

/// One `[[networks]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNetwork {
    /// Network name, referenced by interfaces.
    pub name: Spanned<String>,
    /// IPv4 CIDR, network address with host bits zero.
    pub cidr: Spanned<String>,
}

/// One `[[nodes]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNode {
    /// Node (host) name.
    pub name: Spanned<String>,
    /// `control-plane`, `worker` or `router`.
    pub role: Spanned<Role>,
    /// Virtual CPUs; defaults to 1.
    #[serde(default)]
    pub vcpus: Option<Spanned<i64>>,
    /// Memory in MiB; defaults to [`super::DEFAULT_MEMORY_MIB`].
    #[serde(default)]
    pub memory: Option<Spanned<i64>>,
    /// NICs on declared networks, in order.
    #[serde(default)]
    pub interfaces: Vec<RawInterface>,
    /// Extra static routes.
    #[serde(default)]
    pub routes: Vec<RawRoute>,
}

/// One interface of a node.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInterface {
    /// Name of the declared network.
    pub network: Spanned<String>,
    /// Static IPv4 address (no prefix); derived when absent.
    #[serde(default)]
    pub address: Option<Spanned<String>>,
    /// Interface name in the guest; defaults to `eth<index>`.
    #[serde(default)]
    pub name: Option<Spanned<String>>,
}

/// One static route of a node.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoute {
    /// Destination CIDR.
    pub to: Spanned<String>,
    /// Next hop, on one of the node's networks.
    pub via: Spanned<String>,
}
