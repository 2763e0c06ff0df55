//! API server configuration: where the store is (an embedded single-member kubelab store, or
//! external etcd-API endpoints), which ranges Services draw from, and how
//! clients are served and identified ([`SecurityConfig`]).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnetwork::Ipv4Network;
use serde::Deserialize;

/// A bad configuration value, naming the field.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// No store endpoint and no embedded store.
    #[error(
        "etcd_servers: at least one store endpoint is required (e.g. http://127.0.0.1:2379), or set embedded_store to embed one"
    )]
    NoStore,
    /// Both an embedded store and external endpoints.
    #[error(
        "embedded_store and etcd_servers exclude each other: drop --etcd-servers to embed a store, or --store-data-dir to use the external one"
    )]
    BothStores,
    /// An endpoint that is not an http(s) URL.
    #[error("etcd_servers: {0:?} is not an http:// or https:// URL")]
    BadEndpoint(String),
    /// The service range is too large to be a service range.
    #[error(
        "service_cluster_ip_range: {0} is larger than a /8; use a prefix of /8 or longer (10.96.0.0/12 is usual)"
    )]
    RangeTooLarge(Ipv4Network),
    /// The service range is too small to allocate from.
    #[error(
        "service_cluster_ip_range: {0} has fewer than 4 addresses; use a prefix of /30 or shorter"
    )]
    RangeTooSmall(Ipv4Network),
    /// A node-port range that is empty or out of bounds.
    #[error("service_node_port_range: {first}-{last} must be a non-empty range within 1-65535")]
    BadPortRange {
        /// First port.
        first: u16,
        /// Last port.
        last: u16,
    },
    /// A zero limit or interval.
    #[error("{0}: must be greater than zero")]
    Zero(&'static str),
    /// A `--tls-sans` entry that is neither an IP address nor a DNS name.
    #[error(
        "tls_sans: {0:?} is neither an IP address nor a DNS name (letters, digits, '-', '.', optionally a leading '*.')"
    )]
    BadSan(String),
    /// An empty ServiceAccount issuer.
    #[error(
        "service_account_issuer: must not be empty (kube's usual value is https://kubernetes.default.svc.cluster.local)"
    )]
    NoIssuer,
}

/// An inclusive port range (`30000-32767`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortRange {
    /// First port.
    pub first: u16,
    /// Last port.
    pub last: u16,
}

impl std::str::FromStr for PortRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, b) = s
            .split_once('-')
            .ok_or_else(|| format!("{s:?} is not a port range like 30000-32767"))?;
        let parse = |p: &str| {
            p.trim()
                .parse::<u16>()
                .map_err(|_| format!("{p:?} in {s:?} is not a port number"))
        };
        Ok(PortRange {
            first: parse(a)?,
            last: parse(b)?,
        })
    }
}

/// Everything `run` needs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// External store endpoints (etcd v3 API: real etcd or a kubelab store cluster), e.g.
    /// `http://127.0.0.1:2379`. Empty when [`Config::embedded_store`] is set.
    #[serde(default)]
    pub etcd_servers: Vec<String>,
    /// Data dir of a single-member kubelab store embedded in this process (client and peer
    /// on loopback ephemeral ports), started before and stopped after serving.
    #[serde(default)]
    pub embedded_store: Option<PathBuf>,
    /// Where Service ClusterIPs come from.
    pub service_cluster_ip_range: Ipv4Network,
    /// Where Service NodePorts come from.
    pub service_node_port_range: PortRange,
    /// Largest request body accepted (bytes); larger gets 413. Kubernetes uses 3 MiB.
    pub max_request_bytes: usize,
    /// Longest a watch stays open when the client gives no `timeoutSeconds`.
    #[serde(with = "secs")]
    pub max_watch: Duration,
    /// How often a watch that asked for bookmarks gets one.
    #[serde(with = "secs")]
    pub bookmark_interval: Duration,
    /// `--etcd-compaction-interval`: how often the store is compacted to the revision seen
    /// at the previous tick (see `compactor`); zero disables.
    #[serde(with = "secs", default = "default_compaction")]
    pub etcd_compaction_interval: Duration,
    /// `--honor-table-limit`: page Table lists (`as=Table`, what `kubectl get` asks for) by
    /// their `limit` as kube-apiserver does. Off by default: a Table list is streamed whole
    /// whatever its `limit` (the API lets a server not support `limit`), because kubectl's
    /// client-side rate limiter (QPS 5, burst 10) otherwise adds ~0.2 s per page beyond the
    /// tenth — about 2 s to `kubectl get pods -A` over 10,000 pods (docs/apiserver.md).
    #[serde(default)]
    pub honor_table_limit: bool,
    /// TLS, authentication and the files they use.
    pub security: SecurityConfig,
}

fn default_compaction() -> Duration {
    crate::compactor::DEFAULT_INTERVAL
}

/// How the server is reached and how callers are identified (kube-apiserver's flags).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityConfig {
    /// `--cert-dir`: the cluster CA, serving certificate and ServiceAccount key, created at
    /// first start (see `pki`).
    pub cert_dir: PathBuf,
    /// `--tls-sans`: extra names (IPs or DNS names) for the serving certificate.
    #[serde(default)]
    pub tls_sans: Vec<String>,
    /// `--advertise-address`: the address clients are told to use (a serving SAN; discovery).
    #[serde(default)]
    pub advertise_address: Option<IpAddr>,
    /// `--client-ca-file`: CA bundle client certificates are verified against, instead of the
    /// cluster CA.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// `--token-auth-file`: static bearer tokens (CSV `token,user,uid,"group1,group2"`).
    #[serde(default)]
    pub token_auth_file: Option<PathBuf>,
    /// `--service-account-key-file`: ECDSA P-256 PKCS#8 key signing and verifying
    /// ServiceAccount tokens; default `<cert_dir>/sa.key`, created at first start.
    #[serde(default)]
    pub service_account_key_file: Option<PathBuf>,
    /// `--service-account-issuer`: the `iss` of ServiceAccount tokens (also the API audience).
    pub service_account_issuer: String,
    /// `--insecure-plain-http-loopback`: serve plain HTTP (no TLS, so no client
    /// certificates; bearer tokens still authenticate). Refused unless the listener is on a
    /// loopback address. For tests and benchmarks only.
    #[serde(default)]
    pub plain_http: bool,
    /// `--kubeconfig-out`: write an admin kubeconfig (CA data, a `kubernetes-admin` client
    /// certificate in `system:masters`) here once the server is ready.
    #[serde(default)]
    pub admin_kubeconfig: Option<PathBuf>,
}

impl SecurityConfig {
    /// Defaults: TLS, cert dir as given, kube's usual issuer.
    pub fn new(cert_dir: impl Into<PathBuf>) -> SecurityConfig {
        SecurityConfig {
            cert_dir: cert_dir.into(),
            tls_sans: Vec::new(),
            advertise_address: None,
            client_ca_file: None,
            token_auth_file: None,
            service_account_key_file: None,
            service_account_issuer: crate::authn::serviceaccount::DEFAULT_ISSUER.to_string(),
            plain_http: false,
            admin_kubeconfig: None,
        }
    }

    /// Checks the fields that can be checked without touching files.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for san in &self.tls_sans {
            let dns_ok = {
                let name = san.strip_prefix("*.").unwrap_or(san);
                !name.is_empty()
                    && name.len() <= 253
                    && name.split('.').all(|l| {
                        !l.is_empty()
                            && l.len() <= 63
                            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    })
            };
            if san.parse::<IpAddr>().is_err() && !dns_ok {
                return Err(ConfigError::BadSan(san.clone()));
            }
        }
        if self.service_account_issuer.trim().is_empty() {
            return Err(ConfigError::NoIssuer);
        }
        Ok(())
    }
}

mod secs {
    use serde::Deserialize;
    use std::time::Duration;

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

impl Config {
    /// Defaults as Kubernetes ships them, for the given external store and cert dir.
    pub fn new(etcd_servers: Vec<String>, cert_dir: impl Into<PathBuf>) -> Config {
        Config {
            etcd_servers,
            embedded_store: None,
            service_cluster_ip_range: Ipv4Network::new([10, 96, 0, 0].into(), 12)
                .expect("constant network is valid"),
            service_node_port_range: PortRange {
                first: 30000,
                last: 32767,
            },
            max_request_bytes: 3 * 1024 * 1024,
            max_watch: Duration::from_secs(1800),
            bookmark_interval: Duration::from_secs(60),
            etcd_compaction_interval: crate::compactor::DEFAULT_INTERVAL,
            honor_table_limit: false,
            security: SecurityConfig::new(cert_dir),
        }
    }

    /// Defaults with a store embedded in this process, its data in `store_data_dir`.
    pub fn embedded(store_data_dir: impl Into<PathBuf>, cert_dir: impl Into<PathBuf>) -> Config {
        Config {
            embedded_store: Some(store_data_dir.into()),
            ..Config::new(Vec::new(), cert_dir)
        }
    }

    /// Checks every field; run before anything is started.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match (&self.embedded_store, self.etcd_servers.is_empty()) {
            (Some(_), false) => return Err(ConfigError::BothStores),
            (None, true) => return Err(ConfigError::NoStore),
            _ => {}
        }
        for e in &self.etcd_servers {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(ConfigError::BadEndpoint(e.clone()));
            }
        }
        if self.service_cluster_ip_range.prefix() < 8 {
            return Err(ConfigError::RangeTooLarge(self.service_cluster_ip_range));
        }
        if self.service_cluster_ip_range.prefix() > 30 {
            return Err(ConfigError::RangeTooSmall(self.service_cluster_ip_range));
        }
        let p = self.service_node_port_range;
        if p.first == 0 || p.first > p.last {
            return Err(ConfigError::BadPortRange {
                first: p.first,
                last: p.last,
            });
        }
        if self.max_request_bytes == 0 {
            return Err(ConfigError::Zero("max_request_bytes"));
        }
        if self.max_watch.is_zero() {
            return Err(ConfigError::Zero("max_watch"));
        }
        if self.bookmark_interval.is_zero() {
            return Err(ConfigError::Zero("bookmark_interval"));
        }
        self.security.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_field() {
        let mut c = Config::new(vec!["http://127.0.0.1:2379".into()], "/tmp/pki");
        assert!(c.validate().is_ok());
        c.etcd_servers = vec!["127.0.0.1:2379".into()];
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .starts_with("etcd_servers")
        );
        c.etcd_servers.clear();
        assert_eq!(c.validate(), Err(ConfigError::NoStore));
        let mut c = Config::embedded("/tmp/store", "/tmp/pki");
        assert!(c.validate().is_ok());
        c.etcd_servers = vec!["http://x".into()];
        assert_eq!(c.validate(), Err(ConfigError::BothStores));
        let mut c = Config::new(vec!["http://x".into()], "/tmp/pki");
        c.service_cluster_ip_range = "10.0.0.0/31".parse().unwrap();
        assert!(matches!(c.validate(), Err(ConfigError::RangeTooSmall(_))));
        c.service_cluster_ip_range = "0.0.0.0/0".parse().unwrap();
        assert!(matches!(c.validate(), Err(ConfigError::RangeTooLarge(_))));
        let mut c = Config::new(vec!["http://x".into()], "/tmp/pki");
        c.service_node_port_range = "32000-31000".parse().unwrap();
        assert!(matches!(
            c.validate(),
            Err(ConfigError::BadPortRange { .. })
        ));
        assert!("30000".parse::<PortRange>().is_err());
        let mut c = Config::new(vec!["http://x".into()], "/tmp/pki");
        c.security.tls_sans = vec!["api.example.org".into(), "10.0.0.1".into(), "*.lab".into()];
        assert!(c.validate().is_ok());
        c.security.tls_sans = vec!["bad name".into()];
        assert!(matches!(c.validate(), Err(ConfigError::BadSan(_))));
    }
}
