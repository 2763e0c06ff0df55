//! The lab's network, planned from a topology: one namespace, a bridge per declared network, a
//! management bridge with the host side's address, and a tap plus MAC per VM interface.
//!
//! [`NetPlan::new`] is pure: names, MACs and addresses follow from the topology alone, so `up`,
//! `down`, `fault` and the tests all agree on them without storing them. [`NetPlan::node_config`]
//! turns a node's part of the plan into the [`NodeConfig`] its guest reads from fw_cfg, and
//! [`partition_ruleset`] renders the nftables rules of `kubelab fault partition`.

use std::net::Ipv4Addr;

use ipnetwork::Ipv4Network;
use kubelab_nodeconfig::{self as nodeconfig, NodeConfig, Role};

use crate::topology::Topology;

/// Prefix of every lab namespace; the rest is the lab name.
pub const NAMESPACE_PREFIX: &str = "kubelab-";
/// Name of the management bridge inside the namespace.
pub const MGMT_BRIDGE: &str = "brmgmt";
/// Name of the management NIC in every guest.
pub const MGMT_IFACE: &str = "mgmt0";
/// nftables table holding the current partition, in the bridge family.
pub const PARTITION_TABLE: &str = "kubelab_partition";

/// The namespace of lab `lab`.
pub fn namespace(lab: &str) -> String {
    format!("{NAMESPACE_PREFIX}{lab}")
}

/// Everything a lab's network is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetPlan {
    /// The lab namespace.
    pub namespace: String,
    /// The host side's address on [`MGMT_BRIDGE`].
    pub mgmt_host: Ipv4Network,
    /// `(network name, bridge name)` per declared network, in topology order.
    pub bridges: Vec<(String, String)>,
    /// Every VM NIC, node by node, management NIC first.
    pub nics: Vec<Nic>,
}

/// One NIC of one VM and the tap behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nic {
    /// Index of the node in the topology.
    pub node_index: usize,
    /// Node name.
    pub node: String,
    /// Name in the guest (`mgmt0`, `eth0`, ...); also QEMU's netdev id, for `set_link`.
    pub name: String,
    /// The tap inside the namespace.
    pub tap: String,
    /// The bridge the tap is a port of.
    pub bridge: String,
    /// Network name (`management` for the management NIC).
    pub network: String,
    /// MAC address, `52:54:00:4b:NN:KK` (node, NIC index).
    pub mac: String,
    /// Address and prefix.
    pub address: Ipv4Network,
    /// True for the management NIC.
    pub management: bool,
}

impl NetPlan {
    /// Plans the network of `topology`.
    pub fn new(topology: &Topology) -> Self {
        let bridges: Vec<(String, String)> = topology
            .networks
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.clone(), format!("br{i}")))
            .collect();
        let mut nics = Vec::new();
        for (i, node) in topology.nodes.iter().enumerate() {
            nics.push(Nic {
                node_index: i,
                node: node.name.clone(),
                name: MGMT_IFACE.into(),
                tap: format!("tap{i}-0"),
                bridge: MGMT_BRIDGE.into(),
                network: "management".into(),
                mac: mac(i, 0),
                address: topology.management_address(i),
                management: true,
            });
            for (k, iface) in node.interfaces.iter().enumerate() {
                let bridge = bridges
                    .iter()
                    .find(|(n, _)| n == &iface.network)
                    .map(|(_, b)| b.clone())
                    .expect("validated topology: interfaces are on declared networks");
                nics.push(Nic {
                    node_index: i,
                    node: node.name.clone(),
                    name: iface.name.clone(),
                    tap: format!("tap{i}-{}", k + 1),
                    bridge,
                    network: iface.network.clone(),
                    mac: mac(i, k + 1),
                    address: iface.address,
                    management: false,
                });
            }
        }
        Self {
            namespace: namespace(&topology.name),
            mgmt_host: topology.management_host_address(),
            bridges,
            nics,
        }
    }

    /// The NICs of one node, management first.
    pub fn node_nics(&self, node: &str) -> impl Iterator<Item = &Nic> {
        self.nics.iter().filter(move |n| n.node == node)
    }

    /// The management address of `node`.
    pub fn mgmt_address(&self, node: &str) -> Option<Ipv4Addr> {
        self.node_nics(node)
            .find(|n| n.management)
            .map(|n| n.address.ip())
    }

    /// The fw_cfg document for node `index` of `topology`.
    pub fn node_config(&self, topology: &Topology, index: usize, ssh_key: &str) -> NodeConfig {
        let node = &topology.nodes[index];
        NodeConfig {
            version: nodeconfig::VERSION,
            lab: topology.name.clone(),
            hostname: node.name.clone(),
            role: node.role,
            interfaces: self
                .node_nics(&node.name)
                .map(|n| nodeconfig::Interface {
                    name: n.name.clone(),
                    mac: n.mac.clone(),
                    address: n.address,
                    network: n.network.clone(),
                    management: n.management,
                })
                .collect(),
            routes: node
                .routes
                .iter()
                .map(|r| nodeconfig::Route {
                    destination: r.to,
                    via: r.via,
                })
                .collect(),
            ip_forward: node.role == Role::Router,
            ssh_authorized_keys: vec![ssh_key.trim().to_owned()],
        }
    }
}

fn mac(node: usize, nic: usize) -> String {
    format!("52:54:00:4b:{:02x}:{:02x}", node & 0xff, nic & 0xff)
}

/// nftables ruleset (bridge family, inside the lab namespace) that drops every IPv4 packet
/// between an address of `a` and an address of `b`, in both directions, on every bridge. It
/// matches addresses rather than ports so routed paths (through a router node) are cut too.
/// Loading it replaces any earlier partition.
pub fn partition_ruleset(a: &[Ipv4Addr], b: &[Ipv4Addr]) -> String {
    let set = |addrs: &[Ipv4Addr]| {
        addrs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (a, b) = (set(a), set(b));
    format!(
        "table bridge {PARTITION_TABLE}\n\
         delete table bridge {PARTITION_TABLE}\n\
         table bridge {PARTITION_TABLE} {{\n\
         \tchain forward {{\n\
         \t\ttype filter hook forward priority 0; policy accept;\n\
         \t\tip saddr {{ {a} }} ip daddr {{ {b} }} drop\n\
         \t\tip saddr {{ {b} }} ip daddr {{ {a} }} drop\n\
         \t}}\n\
         }}\n"
    )
}

/// nftables ruleset that removes the partition (idempotent: creates the table first).
pub fn heal_ruleset() -> String {
    format!("table bridge {PARTITION_TABLE}\ndelete table bridge {PARTITION_TABLE}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routed() -> Topology {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../topologies/routed.toml");
        Topology::load(&path).unwrap()
    }

    #[test]
    fn plans_names_macs_and_addresses_deterministically() {
        let t = routed();
        let plan = NetPlan::new(&t);
        assert_eq!(plan, NetPlan::new(&t));
        assert_eq!(plan.namespace, "kubelab-routed");
        assert_eq!(
            plan.bridges,
            vec![
                ("net-a".into(), "br0".into()),
                ("net-b".into(), "br1".into())
            ]
        );
        let router: Vec<&Nic> = plan.node_nics("router").collect();
        assert_eq!(router.len(), 3);
        assert_eq!(router[0].name, MGMT_IFACE);
        assert_eq!(router[0].bridge, MGMT_BRIDGE);
        assert_eq!(router[2].tap, "tap0-2");
        assert_eq!(router[2].bridge, "br1");
        assert_eq!(router[2].mac, "52:54:00:4b:00:02");
        // Taps and MACs are unique, tap names fit IFNAMSIZ.
        let mut taps: Vec<&str> = plan.nics.iter().map(|n| n.tap.as_str()).collect();
        taps.sort();
        taps.dedup();
        assert_eq!(taps.len(), plan.nics.len());
        assert!(taps.iter().all(|t| t.len() <= 15));
        assert_eq!(
            plan.mgmt_address("w2").unwrap().to_string(),
            "172.31.254.13"
        );
    }

    #[test]
    fn node_config_is_valid_for_the_guest() {
        let t = routed();
        let plan = NetPlan::new(&t);
        for i in 0..t.nodes.len() {
            let config = plan.node_config(&t, i, "ssh-ed25519 AAAA lab\n");
            config.validate().unwrap();
            assert_eq!(config.ip_forward, t.nodes[i].role == Role::Router);
            assert_eq!(config.ssh_authorized_keys, vec!["ssh-ed25519 AAAA lab"]);
        }
        let w2 = plan.node_config(&t, 3, "k");
        assert_eq!(w2.routes[0].via.to_string(), "10.32.0.1");
        assert_eq!(w2.interfaces[1].address.to_string(), "10.32.0.13/24");
    }

    #[test]
    fn partition_ruleset_drops_both_directions_and_replaces_old_one() {
        let a: Vec<Ipv4Addr> = vec!["10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()];
        let b: Vec<Ipv4Addr> = vec!["10.0.0.3".parse().unwrap()];
        let rules = partition_ruleset(&a, &b);
        assert!(rules.contains("ip saddr { 10.0.0.1, 10.0.0.2 } ip daddr { 10.0.0.3 } drop"));
        assert!(rules.contains("ip saddr { 10.0.0.3 } ip daddr { 10.0.0.1, 10.0.0.2 } drop"));
        assert!(rules.find("delete table").unwrap() < rules.find("chain forward").unwrap());
    }
}
