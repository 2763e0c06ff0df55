//! A member's configuration, in etcd's terms (`--name`, `--data-dir`, `--initial-cluster`, ...).
//!
//! [`Config::validate`] runs before anything is created; [`member_id`] derives a member's Raft id
//! from its peer URLs so every member computes the same ids from `--initial-cluster`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::types::NodeId;

/// Whether this member bootstraps a new cluster or joins an existing one.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ClusterState {
    /// Bootstrap with `initial_cluster` as the first membership.
    #[default]
    New,
    /// Join a running cluster that already added this member (`etcdctl member add`).
    Existing,
}

/// Configuration of one store member.
#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Human-readable member name; must appear in `initial_cluster` when that is set.
    pub name: String,
    /// Directory of the Raft log (`raft-log/`, a fjall database) and snapshots (`snap/`); created if missing.
    pub data_dir: PathBuf,
    /// URLs to serve the etcd v3 API on (`http://127.0.0.1:2379`; port 0 picks a free port).
    pub listen_client_urls: Vec<String>,
    /// Client URLs told to others (member list); empty = the bound listen URLs.
    #[serde(default)]
    pub advertise_client_urls: Vec<String>,
    /// URLs to serve the peer (Raft) transport on (port 0 picks a free port).
    pub listen_peer_urls: Vec<String>,
    /// Peer URLs told to others; empty = the bound listen peer URLs.
    #[serde(default)]
    pub initial_advertise_peer_urls: Vec<String>,
    /// `name=peerURL,...` of every initial member; empty = a single-member cluster of this one.
    #[serde(default)]
    pub initial_cluster: String,
    /// `new` to bootstrap, `existing` to join.
    #[serde(default)]
    pub initial_cluster_state: ClusterState,
    /// Leader heartbeat, milliseconds (etcd: 100).
    #[serde(default = "default_heartbeat")]
    pub heartbeat_interval_ms: u64,
    /// Minimum election timeout, milliseconds; the maximum is 1.5 times this. A follower
    /// campaigns once the leader lease (the maximum) plus a random timeout in [min, max) passed
    /// without a heartbeat (checked every 1.5 heartbeats), so a dead leader is replaced after
    /// about 2.5-3.5 times this: 0.6-0.9 s by default (etcd's 1000 ms default: 1-2 s).
    #[serde(default = "default_election")]
    pub election_timeout_ms: u64,
    /// Applied entries between snapshots (etcd's `--snapshot-count`).
    #[serde(default = "default_snapshot_count")]
    pub snapshot_count: u64,
    /// Largest request accepted, bytes (etcd's `--max-request-bytes`, 1.5 MiB).
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: usize,
    /// Interval of watch progress notifications, milliseconds (etcd: 10 minutes).
    #[serde(default = "default_progress_notify")]
    pub progress_notify_interval_ms: u64,
}

fn default_heartbeat() -> u64 {
    100
}
fn default_election() -> u64 {
    250
}
fn default_snapshot_count() -> u64 {
    10_000
}
fn default_max_request_bytes() -> usize {
    1536 * 1024
}
fn default_progress_notify() -> u64 {
    600_000
}

/// A configuration error, naming the field and value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A required field is empty.
    #[error("{field}: must not be empty")]
    Empty {
        /// The field.
        field: &'static str,
    },
    /// A URL is not `http://host:port`.
    #[error("{field}: {value:?} is not a URL of the form http://host:port")]
    BadUrl {
        /// The field.
        field: &'static str,
        /// The value.
        value: String,
    },
    /// An `initial_cluster` entry is not `name=url`.
    #[error("initial-cluster: entry {0:?} is not name=http://host:port")]
    BadClusterEntry(String),
    /// This member's name is missing from `initial_cluster`.
    #[error("initial-cluster: no entry for this member's name {0:?}; add {0}=<its peer URL>")]
    NameNotInCluster(String),
    /// Timing values that cannot work.
    #[error(
        "heartbeat-interval {heartbeat} ms must be positive and below election-timeout \
         {election} ms (etcd recommends election >= 5 x heartbeat)"
    )]
    Timing {
        /// Heartbeat, ms.
        heartbeat: u64,
        /// Election, ms.
        election: u64,
    },
    /// A numeric limit is zero.
    #[error("{field}: must be positive")]
    Zero {
        /// The field.
        field: &'static str,
    },
}

impl Config {
    /// A single-member store for embedding: client and peer on loopback port 0.
    pub fn single(name: &str, data_dir: impl Into<PathBuf>) -> Self {
        Self {
            name: name.into(),
            data_dir: data_dir.into(),
            listen_client_urls: vec!["http://127.0.0.1:0".into()],
            advertise_client_urls: vec![],
            listen_peer_urls: vec!["http://127.0.0.1:0".into()],
            initial_advertise_peer_urls: vec![],
            initial_cluster: String::new(),
            initial_cluster_state: ClusterState::New,
            heartbeat_interval_ms: default_heartbeat(),
            election_timeout_ms: default_election(),
            snapshot_count: default_snapshot_count(),
            max_request_bytes: default_max_request_bytes(),
            progress_notify_interval_ms: default_progress_notify(),
        }
    }

    /// Checks every field before anything is created.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.name.is_empty() {
            return Err(ConfigError::Empty { field: "name" });
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::Empty { field: "data-dir" });
        }
        check_urls("listen-client-urls", &self.listen_client_urls, true)?;
        check_urls("advertise-client-urls", &self.advertise_client_urls, false)?;
        check_urls("listen-peer-urls", &self.listen_peer_urls, true)?;
        check_urls(
            "initial-advertise-peer-urls",
            &self.initial_advertise_peer_urls,
            false,
        )?;
        let cluster = self.initial_members()?;
        if !cluster.is_empty() && !cluster.contains_key(&self.name) {
            return Err(ConfigError::NameNotInCluster(self.name.clone()));
        }
        if self.heartbeat_interval_ms == 0 || self.heartbeat_interval_ms >= self.election_timeout_ms
        {
            return Err(ConfigError::Timing {
                heartbeat: self.heartbeat_interval_ms,
                election: self.election_timeout_ms,
            });
        }
        for (field, v) in [
            ("snapshot-count", self.snapshot_count),
            ("max-request-bytes", self.max_request_bytes as u64),
            ("progress-notify-interval", self.progress_notify_interval_ms),
        ] {
            if v == 0 {
                return Err(ConfigError::Zero { field });
            }
        }
        Ok(())
    }

    /// `initial_cluster` parsed: name → peer URLs (a name may repeat for several URLs).
    pub fn initial_members(&self) -> Result<BTreeMap<String, Vec<String>>, ConfigError> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for entry in self
            .initial_cluster
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let (name, url) = entry
                .split_once('=')
                .ok_or_else(|| ConfigError::BadClusterEntry(entry.into()))?;
            if name.is_empty() || parse_url(url).is_none() {
                return Err(ConfigError::BadClusterEntry(entry.into()));
            }
            out.entry(name.into()).or_default().push(url.into());
        }
        Ok(out)
    }
}

fn check_urls(field: &'static str, urls: &[String], required: bool) -> Result<(), ConfigError> {
    if required && urls.is_empty() {
        return Err(ConfigError::Empty { field });
    }
    for u in urls {
        if parse_url(u).is_none() {
            return Err(ConfigError::BadUrl {
                field,
                value: u.clone(),
            });
        }
    }
    Ok(())
}

/// Splits `http://host:port` into the socket address text `host:port`.
pub(crate) fn parse_url(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("http://")?.trim_end_matches('/');
    let (host, port) = rest.rsplit_once(':')?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return None;
    }
    Some(rest)
}

/// A member's Raft id from its peer URLs (sorted, hashed), as etcd derives member ids.
/// Never 0 and below 2^63, so it also fits etcd's `int64` uses.
pub fn member_id(peer_urls: &[String]) -> NodeId {
    let mut urls: Vec<&str> = peer_urls.iter().map(String::as_str).collect();
    urls.sort_unstable();
    let d = Sha256::digest(urls.join(",").as_bytes());
    let id = u64::from_be_bytes(d[..8].try_into().expect("8 bytes")) >> 1;
    id.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> Config {
        let mut c = Config::single("a", "/tmp/x");
        c.initial_cluster = "a=http://127.0.0.1:1,b=http://127.0.0.1:2,c=http://127.0.0.1:3".into();
        c
    }

    #[test]
    fn validate_names_the_bad_field_and_value() {
        assert_eq!(three().validate(), Ok(()));
        let mut c = three();
        c.name = "z".into();
        assert_eq!(c.validate(), Err(ConfigError::NameNotInCluster("z".into())));
        let mut c = three();
        c.listen_client_urls = vec!["127.0.0.1:2379".into()];
        let e = c.validate().unwrap_err();
        assert!(
            e.to_string().contains("listen-client-urls")
                && e.to_string().contains("127.0.0.1:2379")
        );
        let mut c = three();
        c.initial_cluster = "a=http://x:1,bogus".into();
        assert_eq!(
            c.validate(),
            Err(ConfigError::BadClusterEntry("bogus".into()))
        );
        let mut c = three();
        c.heartbeat_interval_ms = 600;
        assert!(matches!(c.validate(), Err(ConfigError::Timing { .. })));
    }

    #[test]
    fn member_ids_are_stable_order_independent_and_distinct() {
        let a = member_id(&["http://127.0.0.1:1".into(), "http://127.0.0.1:9".into()]);
        let b = member_id(&["http://127.0.0.1:9".into(), "http://127.0.0.1:1".into()]);
        assert_eq!(a, b);
        assert_ne!(a, member_id(&["http://127.0.0.1:2".into()]));
        assert!(a > 0 && a < (1 << 63));
    }
}
