//! Network configuration from the [`NodeConfig`]: hostname, `lo`, each interface (found by
//! MAC address, renamed to its configured name, addressed, brought up), static routes and
//! IPv4 forwarding.
//!
//! [`plan`] turns the config and the links the kernel has into a list of [`NetOp`]s (pure,
//! unit-tested); [`configure`] performs them through [`NetSys`], which the guest implements
//! with classic `ioctl`s ([`super::ioctl::Ioctl`]) and the tests with a recording fake.

use std::net::Ipv4Addr;
use std::time::Duration;

use ipnetwork::Ipv4Network;
use kubelab_nodeconfig::{NodeConfig, parse_mac};

/// One step of network configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetOp {
    /// Rename a (down) link.
    Rename {
        /// Current name.
        from: String,
        /// New name.
        to: String,
    },
    /// Give a link its address and prefix.
    Address {
        /// Link name.
        link: String,
        /// Address with prefix.
        address: Ipv4Network,
    },
    /// Bring a link up.
    Up {
        /// Link name.
        link: String,
    },
    /// Add a route via a next hop.
    Route {
        /// Destination network.
        destination: Ipv4Network,
        /// Next hop.
        via: Ipv4Addr,
    },
}

/// Why the network could not be configured.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// No NIC has the MAC address the config names.
    #[error(
        "interface {name}: no NIC with MAC {mac} (the guest has: {present}); does QEMU's -device virtio-net-pci,mac=... match the node config?"
    )]
    MissingNic {
        /// Configured name.
        name: String,
        /// Configured MAC.
        mac: String,
        /// What the guest has, `name=mac` pairs.
        present: String,
    },
    /// A system call failed.
    #[error("{op}: {source}")]
    Sys {
        /// The operation, e.g. `rename eth0 -> mgmt0`.
        op: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// The host side effects network configuration needs.
pub trait NetSys {
    /// Every link: name and MAC address.
    fn links(&mut self) -> std::io::Result<Vec<(String, [u8; 6])>>;
    /// Performs one operation.
    fn apply(&mut self, op: &NetOp) -> std::io::Result<()>;
    /// Sets the host name.
    fn set_hostname(&mut self, name: &str) -> std::io::Result<()>;
    /// Turns IPv4 forwarding on or off.
    fn set_ip_forward(&mut self, on: bool) -> std::io::Result<()>;
}

/// The operations that make `links` look like `config` says, in a safe order: links that
/// need a new name first get a temporary one (so swapping `eth0`/`eth1` works, and a link
/// nobody configured is moved out of a wanted name's way), then addresses, `up`, routes.
pub fn plan(config: &NodeConfig, links: &[(String, [u8; 6])]) -> Result<Vec<NetOp>, NetError> {
    let mut current: Vec<(String, [u8; 6])> = links.to_vec();
    let mut ops = Vec::new();
    let mut matched: Vec<(usize, &str)> = Vec::new(); // (index in current, wanted name)
    for iface in &config.interfaces {
        let mac = parse_mac(&iface.mac).expect("validated by NodeConfig::validate");
        let Some(index) = current.iter().position(|(_, m)| *m == mac) else {
            let present = links
                .iter()
                .map(|(n, m)| format!("{n}={}", format_mac(m)))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(NetError::MissingNic {
                name: iface.name.clone(),
                mac: iface.mac.clone(),
                present: if present.is_empty() {
                    "no NICs".into()
                } else {
                    present
                },
            });
        };
        matched.push((index, iface.name.as_str()));
    }
    let wanted: Vec<&str> = matched.iter().map(|(_, n)| *n).collect();
    let mut rename = |current: &mut Vec<(String, [u8; 6])>, index: usize, to: String| {
        ops.push(NetOp::Rename {
            from: current[index].0.clone(),
            to: to.clone(),
        });
        current[index].0 = to;
    };
    // Phase 1: every link in the way or to be renamed gets a temporary name.
    let mut temp = 0;
    for index in 0..current.len() {
        let own = matched.iter().find(|(i, _)| *i == index).map(|(_, n)| *n);
        let name = current[index].0.clone();
        let in_the_way = own.is_none() && wanted.contains(&name.as_str());
        let needs_rename = own.is_some_and(|n| n != name);
        if in_the_way || needs_rename {
            let to = loop {
                let candidate = format!("kltmp{temp}");
                temp += 1;
                if !current.iter().any(|(n, _)| *n == candidate) {
                    break candidate;
                }
            };
            rename(&mut current, index, to);
        }
    }
    // Phase 2: final names.
    for (index, name) in &matched {
        if current[*index].0 != *name {
            rename(&mut current, *index, name.to_string());
        }
    }
    ops.push(NetOp::Address {
        link: "lo".into(),
        address: Ipv4Network::new(Ipv4Addr::LOCALHOST, 8).expect("valid prefix"),
    });
    ops.push(NetOp::Up { link: "lo".into() });
    for iface in &config.interfaces {
        ops.push(NetOp::Address {
            link: iface.name.clone(),
            address: iface.address,
        });
        ops.push(NetOp::Up {
            link: iface.name.clone(),
        });
    }
    for route in &config.routes {
        ops.push(NetOp::Route {
            destination: route.destination,
            via: route.via,
        });
    }
    Ok(ops)
}

/// Configures hostname, links, routes and forwarding. Waits (briefly) for every configured
/// NIC to appear, since drivers probe asynchronously.
pub fn configure(config: &NodeConfig, sys: &mut impl NetSys) -> Result<(), NetError> {
    let sys_err = |op: String| move |source| NetError::Sys { op, source };
    sys.set_hostname(&config.hostname)
        .map_err(sys_err(format!("sethostname {}", config.hostname)))?;
    let macs: Vec<[u8; 6]> = config
        .interfaces
        .iter()
        .filter_map(|i| parse_mac(&i.mac))
        .collect();
    super::wait_until(Duration::from_secs(3), || {
        sys.links()
            .map(|links| macs.iter().all(|m| links.iter().any(|(_, l)| l == m)))
            .unwrap_or(false)
    });
    let links = sys.links().map_err(sys_err("listing links".into()))?;
    for op in plan(config, &links)? {
        tracing::debug!(?op, "network");
        sys.apply(&op).map_err(sys_err(format!("{op:?}")))?;
    }
    sys.set_ip_forward(config.ip_forward)
        .map_err(sys_err("setting ip_forward".into()))?;
    Ok(())
}

fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubelab_nodeconfig::{Interface, Role, Route, VERSION};

    fn iface(name: &str, mac: &str, addr: &str) -> Interface {
        Interface {
            name: name.into(),
            mac: mac.into(),
            address: addr.parse().unwrap(),
            network: "n".into(),
            management: false,
        }
    }

    fn config(interfaces: Vec<Interface>) -> NodeConfig {
        NodeConfig {
            version: VERSION,
            lab: "t".into(),
            hostname: "w1".into(),
            role: Role::Worker,
            interfaces,
            routes: vec![Route {
                destination: "10.2.0.0/24".parse().unwrap(),
                via: "10.1.0.1".parse().unwrap(),
            }],
            ip_forward: true,
            ssh_authorized_keys: vec![],
        }
    }

    const A: [u8; 6] = [0x52, 0x54, 0, 0, 0, 1];
    const B: [u8; 6] = [0x52, 0x54, 0, 0, 0, 2];

    /// Records every call, and keeps link names as the kernel would.
    #[derive(Default)]
    struct Recording {
        links: Vec<(String, [u8; 6])>,
        ops: Vec<NetOp>,
        hostname: Option<String>,
        forward: Option<bool>,
    }

    impl NetSys for Recording {
        fn links(&mut self) -> std::io::Result<Vec<(String, [u8; 6])>> {
            Ok(self.links.clone())
        }
        fn apply(&mut self, op: &NetOp) -> std::io::Result<()> {
            if let NetOp::Rename { from, to } = op {
                if self.links.iter().any(|(n, _)| n == to) {
                    return Err(std::io::Error::from_raw_os_error(libc::EEXIST));
                }
                let link = self.links.iter_mut().find(|(n, _)| n == from).unwrap();
                link.0 = to.clone();
            }
            self.ops.push(op.clone());
            Ok(())
        }
        fn set_hostname(&mut self, name: &str) -> std::io::Result<()> {
            self.hostname = Some(name.into());
            Ok(())
        }
        fn set_ip_forward(&mut self, on: bool) -> std::io::Result<()> {
            self.forward = Some(on);
            Ok(())
        }
    }

    #[test]
    fn swaps_names_through_temporaries_and_configures_everything() {
        let cfg = config(vec![
            iface("eth1", "52:54:00:00:00:01", "10.1.0.11/24"),
            iface("eth0", "52:54:00:00:00:02", "172.30.0.11/24"),
        ]);
        let mut sys = Recording {
            links: vec![
                ("eth0".into(), A),
                ("eth1".into(), B),
                ("lo".into(), [0; 6]),
            ],
            ..Default::default()
        };
        configure(&cfg, &mut sys).unwrap();
        assert_eq!(sys.hostname.as_deref(), Some("w1"));
        assert_eq!(sys.forward, Some(true));
        let mut names: Vec<_> = sys.links.clone();
        names.sort();
        assert_eq!(
            names,
            [
                ("eth0".to_string(), B),
                ("eth1".to_string(), A),
                ("lo".to_string(), [0; 6])
            ]
        );
        assert!(sys.ops.contains(&NetOp::Address {
            link: "eth1".into(),
            address: "10.1.0.11/24".parse().unwrap()
        }));
        // Routes come after every link is up.
        let last_up = sys
            .ops
            .iter()
            .rposition(|o| matches!(o, NetOp::Up { .. }))
            .unwrap();
        let route = sys
            .ops
            .iter()
            .position(|o| matches!(o, NetOp::Route { .. }))
            .unwrap();
        assert!(route > last_up);
    }

    #[test]
    fn moves_an_unconfigured_link_out_of_the_way() {
        let cfg = config(vec![iface("eth0", "52:54:00:00:00:02", "10.1.0.11/24")]);
        let links = vec![("eth0".to_string(), A), ("eth1".to_string(), B)];
        let ops = plan(&cfg, &links).unwrap();
        assert_eq!(
            ops[..3],
            [
                NetOp::Rename {
                    from: "eth0".into(),
                    to: "kltmp0".into()
                },
                NetOp::Rename {
                    from: "eth1".into(),
                    to: "kltmp1".into()
                },
                NetOp::Rename {
                    from: "kltmp1".into(),
                    to: "eth0".into()
                },
            ]
        );
    }

    #[test]
    fn leaves_correctly_named_links_alone() {
        let cfg = config(vec![iface("eth0", "52:54:00:00:00:01", "10.1.0.11/24")]);
        let ops = plan(&cfg, &[("eth0".to_string(), A)]).unwrap();
        assert!(
            !ops.iter().any(|o| matches!(o, NetOp::Rename { .. })),
            "{ops:?}"
        );
    }

    #[test]
    fn missing_nic_names_interface_mac_and_what_exists() {
        let cfg = config(vec![iface("mgmt0", "52:54:00:00:00:09", "10.1.0.11/24")]);
        let err = plan(&cfg, &[("eth0".to_string(), A)])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("mgmt0") && err.contains("52:54:00:00:00:09"),
            "{err}"
        );
        assert!(err.contains("eth0=52:54:00:00:00:01"), "{err}");
    }
}
