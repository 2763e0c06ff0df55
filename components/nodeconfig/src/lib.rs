//! The contract between the host harness (`lab/`) and the guest init (`kubelabd init`).
//!
//! One immutable image is shared by every VM of a lab; what makes a VM *this* node reaches it
//! as a JSON document in QEMU's firmware configuration device:
//!
//! 1. the harness builds a [`NodeConfig`] from the topology and writes it to the lab's state
//!    directory;
//! 2. QEMU is started with `-fw_cfg name=`[`FW_CFG_NAME`]`,file=<that file>`;
//! 3. in the guest, `kubelabd init` loads `qemu_fw_cfg`, reads
//!    [`GUEST_SYSFS_PATH`], parses it with [`NodeConfig::from_json`] (which validates) and
//!    configures hostname, interfaces (matched by MAC address, then renamed), routes,
//!    forwarding and the SSH server from it.
//!
//! The format is versioned by [`NodeConfig::version`]; an init that does not know a version
//! refuses it instead of guessing.
//!
//! A second, optional fw_cfg item, [`FW_CFG_SSH_HOST_KEY`], carries the node's SSH host key
//! ([`host_key`]), kept out of the JSON so that init copies it to dropbear unchanged.

#![warn(missing_docs)]

use std::net::Ipv4Addr;

use ipnetwork::Ipv4Network;
use serde::{Deserialize, Serialize};

/// The fw_cfg item name. QEMU reserves names outside `opt/` and asks for a reverse-domain
/// prefix below it.
pub const FW_CFG_NAME: &str = "opt/io.kubelab/node.json";

/// Where the guest kernel exposes [`FW_CFG_NAME`] once `qemu_fw_cfg` is loaded.
pub const GUEST_SYSFS_PATH: &str = "/sys/firmware/qemu_fw_cfg/by_name/opt/io.kubelab/node.json/raw";

/// The fw_cfg item holding the node's SSH host key, in [`host_key`]'s format. Optional: a
/// guest started without it makes its own host key on the first connection (dropbear `-R`),
/// which a client cannot verify.
pub const FW_CFG_SSH_HOST_KEY: &str = "opt/io.kubelab/ssh_host_ed25519_key";

/// Where the guest kernel exposes [`FW_CFG_SSH_HOST_KEY`].
pub const GUEST_SSH_HOST_KEY_PATH: &str =
    "/sys/firmware/qemu_fw_cfg/by_name/opt/io.kubelab/ssh_host_ed25519_key/raw";

/// The only format version this crate reads and writes.
pub const VERSION: u32 = 1;

/// Lines the guest init writes to the serial console at each boot stage, so the harness can
/// show progress (`kernel`, `userspace`, ...) by reading the console log. Each is written on a
/// line of its own.
pub mod marks {
    /// Init has started as PID 1 (userspace reached).
    pub const USERSPACE: &str = "kubelab-init: userspace";
    /// The node config was read and the network is configured.
    pub const NETWORK_READY: &str = "kubelab-init: network-ready";
    /// The SSH server is listening.
    pub const SSH_STARTED: &str = "kubelab-init: ssh-started";
    /// Init refuses to continue; the rest of the line says why.
    pub const FATAL: &str = "kubelab-init: fatal:";
}

/// The node's SSH host key as it travels through fw_cfg: an ed25519 key in dropbear's key
/// file format, so init writes it to `/etc/dropbear/` unchanged. The harness makes one key
/// pair per node before the boot and keeps the public half, so it can check the guest it
/// reaches is the one it started (no trust on first use), and the guest spends no time on
/// key generation.
///
/// Format (SSH wire encoding): `string "ssh-ed25519"`, `string (seed[32] || public[32])`.
pub mod host_key {
    /// The key type, as SSH names it.
    pub const KEY_TYPE: &str = "ssh-ed25519";
    /// Length of an encoded key: two length-prefixed strings.
    pub const ENCODED_LEN: usize = 4 + KEY_TYPE.len() + 4 + 64;

    /// Encodes an ed25519 key from its 32-byte seed and 32-byte public key.
    pub fn encode(seed: &[u8; 32], public: &[u8; 32]) -> Vec<u8> {
        let mut out = Vec::with_capacity(ENCODED_LEN);
        out.extend_from_slice(&(KEY_TYPE.len() as u32).to_be_bytes());
        out.extend_from_slice(KEY_TYPE.as_bytes());
        out.extend_from_slice(&64u32.to_be_bytes());
        out.extend_from_slice(seed);
        out.extend_from_slice(public);
        out
    }

    /// Checks that `bytes` is an encoded key; says what is wrong otherwise.
    pub fn check(bytes: &[u8]) -> Result<(), String> {
        if bytes.len() != ENCODED_LEN {
            return Err(format!(
                "{} bytes; an ed25519 key in dropbear's format has {ENCODED_LEN}",
                bytes.len()
            ));
        }
        let mut header = Vec::with_capacity(4 + KEY_TYPE.len() + 4);
        header.extend_from_slice(&(KEY_TYPE.len() as u32).to_be_bytes());
        header.extend_from_slice(KEY_TYPE.as_bytes());
        header.extend_from_slice(&64u32.to_be_bytes());
        if !bytes.starts_with(&header) {
            return Err(format!("not an {KEY_TYPE} key in dropbear's format"));
        }
        Ok(())
    }
}

/// Everything that makes one VM of a lab a particular node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Format version; must equal [`VERSION`].
    pub version: u32,
    /// Name of the lab this node belongs to (for logs and the prompt).
    pub lab: String,
    /// Host name of the guest, the node's name in the topology.
    pub hostname: String,
    /// What the node is for; decides which services init starts.
    pub role: Role,
    /// Network interfaces, in the order QEMU attaches them.
    pub interfaces: Vec<Interface>,
    /// Static routes beyond the connected ones.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// Whether the node forwards IPv4 between its interfaces (routers, and later nodes that
    /// route pod traffic).
    #[serde(default)]
    pub ip_forward: bool,
    /// OpenSSH-format public keys allowed to log in as root.
    pub ssh_authorized_keys: Vec<String>,
}

/// The role of a node, as declared in the topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Runs the control plane (store, API server, scheduler, controllers).
    ControlPlane,
    /// Runs workloads.
    Worker,
    /// Only forwards packets between networks.
    Router,
}

/// One NIC of the guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interface {
    /// Name the guest gives the NIC (`eth0`, `mgmt0`, ...).
    pub name: String,
    /// MAC address QEMU gives the NIC, `xx:xx:xx:xx:xx:xx`; how init finds it.
    pub mac: String,
    /// Address and prefix, e.g. `10.1.0.11/24`.
    pub address: Ipv4Network,
    /// Topology network the NIC is attached to (`management` for the harness's own network).
    pub network: String,
    /// True for the harness's management NIC, which carries SSH and nothing else.
    #[serde(default)]
    pub management: bool,
}

/// A static route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Destination network.
    pub destination: Ipv4Network,
    /// Next hop; must lie in the network of one of the node's interfaces.
    pub via: Ipv4Addr,
}

/// Why a [`NodeConfig`] was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not JSON, or not the shape of a `NodeConfig`.
    #[error("node config is not valid JSON for format version {VERSION}")]
    Parse(#[from] serde_json::Error),
    /// A version this build does not understand.
    #[error("node config has format version {found}, this kubelabd reads only version {VERSION}")]
    Version {
        /// The version found in the document.
        found: u32,
    },
    /// A field holds a value that cannot be applied.
    #[error("node config field {field}: {problem}")]
    Invalid {
        /// Dotted path of the field, e.g. `interfaces[1].mac`.
        field: String,
        /// What is wrong with its value.
        problem: String,
    },
}

impl NodeConfig {
    /// Parses and validates a document produced by [`NodeConfig::to_json`].
    pub fn from_json(bytes: &[u8]) -> Result<Self, Error> {
        let config: NodeConfig = serde_json::from_slice(bytes)?;
        config.validate()?;
        Ok(config)
    }

    /// Serializes the config; the harness writes this to the file QEMU hands to the guest.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("NodeConfig always serializes")
    }

    /// Checks everything the guest relies on before touching the system.
    pub fn validate(&self) -> Result<(), Error> {
        if self.version != VERSION {
            return Err(Error::Version {
                found: self.version,
            });
        }
        let invalid = |field: String, problem: String| Err(Error::Invalid { field, problem });
        if !is_hostname(&self.hostname) {
            return invalid(
                "hostname".into(),
                format!("{:?} is not a valid host name", self.hostname),
            );
        }
        for (i, iface) in self.interfaces.iter().enumerate() {
            if iface.name.is_empty() || iface.name.len() > 15 || iface.name.contains('/') {
                return invalid(
                    format!("interfaces[{i}].name"),
                    format!("{:?} is not a valid Linux interface name", iface.name),
                );
            }
            if parse_mac(&iface.mac).is_none() {
                return invalid(
                    format!("interfaces[{i}].mac"),
                    format!("{:?} is not a MAC address (xx:xx:xx:xx:xx:xx)", iface.mac),
                );
            }
            if let Some(j) = self.interfaces[..i]
                .iter()
                .position(|o| o.name == iface.name)
            {
                return invalid(
                    format!("interfaces[{i}].name"),
                    format!("{:?} is also the name of interfaces[{j}]", iface.name),
                );
            }
            if let Some(j) = self.interfaces[..i]
                .iter()
                .position(|o| o.mac.eq_ignore_ascii_case(&iface.mac))
            {
                return invalid(
                    format!("interfaces[{i}].mac"),
                    format!("{} is also the MAC of interfaces[{j}]", iface.mac),
                );
            }
        }
        for (i, route) in self.routes.iter().enumerate() {
            if !self
                .interfaces
                .iter()
                .any(|iface| iface.address.contains(route.via))
            {
                return invalid(
                    format!("routes[{i}].via"),
                    format!(
                        "next hop {} is not on any of the node's networks",
                        route.via
                    ),
                );
            }
        }
        Ok(())
    }
}

/// Parses `xx:xx:xx:xx:xx:xx` (either case) into bytes.
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut out {
        let part = parts.next()?;
        if part.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// RFC 1123 host name: labels of letters, digits and `-`, not starting or ending with `-`.
fn is_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> NodeConfig {
        NodeConfig {
            version: VERSION,
            lab: "minimal".into(),
            hostname: "cp1".into(),
            role: Role::ControlPlane,
            interfaces: vec![
                Interface {
                    name: "mgmt0".into(),
                    mac: "52:54:00:00:00:01".into(),
                    address: "172.30.0.10/24".parse().unwrap(),
                    network: "management".into(),
                    management: true,
                },
                Interface {
                    name: "eth0".into(),
                    mac: "52:54:00:01:00:01".into(),
                    address: "10.1.0.10/24".parse().unwrap(),
                    network: "lan".into(),
                    management: false,
                },
            ],
            routes: vec![Route {
                destination: "10.2.0.0/24".parse().unwrap(),
                via: "10.1.0.1".parse().unwrap(),
            }],
            ip_forward: false,
            ssh_authorized_keys: vec!["ssh-ed25519 AAAA test".into()],
        }
    }

    #[test]
    fn round_trips_through_json() {
        let config = sample();
        assert_eq!(NodeConfig::from_json(&config.to_json()).unwrap(), config);
    }

    #[test]
    fn refuses_unknown_version() {
        let mut config = sample();
        config.version = 2;
        let err = NodeConfig::from_json(&config.to_json()).unwrap_err();
        assert!(matches!(err, Error::Version { found: 2 }), "{err}");
    }

    #[test]
    fn refuses_unknown_field() {
        let mut value: serde_json::Value = serde_json::from_slice(&sample().to_json()).unwrap();
        value["colour"] = "blue".into();
        let err = NodeConfig::from_json(value.to_string().as_bytes()).unwrap_err();
        assert!(err.to_string().contains("not valid JSON"), "{err}");
    }

    #[test]
    fn refuses_bad_mac_and_names_the_field() {
        let mut config = sample();
        config.interfaces[1].mac = "52:54:00:01:00".into();
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("interfaces[1].mac"), "{err}");
    }

    #[test]
    fn refuses_duplicate_interface_names() {
        let mut config = sample();
        config.interfaces[1].name = "mgmt0".into();
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("interfaces[1].name"), "{err}");
    }

    #[test]
    fn refuses_route_via_unreachable_next_hop() {
        let mut config = sample();
        config.routes[0].via = "192.168.7.1".parse().unwrap();
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("routes[0].via"), "{err}");
    }

    #[test]
    fn refuses_bad_hostname() {
        let mut config = sample();
        config.hostname = "-cp1".into();
        assert!(config.validate().is_err());
    }

    #[test]
    fn host_keys_encode_and_check() {
        let key = host_key::encode(&[1; 32], &[2; 32]);
        assert_eq!(key.len(), host_key::ENCODED_LEN);
        assert_eq!(&key[..4], &[0, 0, 0, 11]);
        assert_eq!(&key[4..15], b"ssh-ed25519");
        assert_eq!(&key[15..19], &[0, 0, 0, 64]);
        assert_eq!(&key[19..51], &[1; 32]);
        assert_eq!(&key[51..], &[2; 32]);
        host_key::check(&key).unwrap();
        let err = host_key::check(&key[..80]).unwrap_err();
        assert!(err.contains("80 bytes"), "{err}");
        let mut rsa = key.clone();
        rsa[4..15].copy_from_slice(b"ssh-rsa-xyz");
        assert!(
            host_key::check(&rsa)
                .unwrap_err()
                .contains("not an ssh-ed25519")
        );
    }

    #[test]
    fn parses_macs() {
        assert_eq!(
            parse_mac("52:54:00:AB:cd:01"),
            Some([0x52, 0x54, 0, 0xab, 0xcd, 1])
        );
        assert_eq!(parse_mac("52:54:00:ab:cd:01:02"), None);
        assert_eq!(parse_mac("5254.00ab.cd01"), None);
    }
}
