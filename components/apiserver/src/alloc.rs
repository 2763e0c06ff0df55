//! Service ClusterIP and NodePort allocation, safe across concurrent requests and servers.
//!
//! Each allocated value is a marker key in the store (`/registry/ranges/<pool>/<value>`)
//! created in the same transaction as the Service (see `storage::Marker`). Two creates that
//! pick the same value cannot both commit: the second transaction's "marker absent" compare
//! fails and the handler picks again. [`Allocator::pick`] chooses a free value by reading the
//! pool's markers and starting at a random offset, so concurrent creates rarely collide.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use ipnetwork::Ipv4Network;

use crate::config::PortRange;
use crate::error::ApiError;
use crate::registry::Pool;
use crate::storage::{Store, keys};

/// The pools' ranges.
#[derive(Debug, Clone)]
pub struct Allocator {
    ips: Ipv4Network,
    ports: PortRange,
}

impl Pool {
    /// Marker pool name.
    pub fn key_name(self) -> &'static str {
        match self {
            Pool::ServiceIp => "serviceips",
            Pool::NodePort => "servicenodeports",
        }
    }
}

impl Allocator {
    /// An allocator over these ranges.
    pub fn new(ips: Ipv4Network, ports: PortRange) -> Allocator {
        Allocator { ips, ports }
    }

    /// The size of a pool and the value at an index.
    fn size(&self, pool: Pool) -> u64 {
        match pool {
            // Network and broadcast addresses are never handed out.
            Pool::ServiceIp => u64::from(self.ips.size()).saturating_sub(2),
            Pool::NodePort => u64::from(self.ports.last - self.ports.first) + 1,
        }
    }

    fn value_at(&self, pool: Pool, index: u64) -> String {
        match pool {
            Pool::ServiceIp => {
                Ipv4Addr::from(u32::from(self.ips.network()) + 1 + index as u32).to_string()
            }
            Pool::NodePort => (u64::from(self.ports.first) + index).to_string(),
        }
    }

    /// Checks that a requested value is inside the pool; names the field if not.
    pub fn check(&self, pool: Pool, field: &str, value: &str) -> Result<(), ApiError> {
        let ok = match pool {
            Pool::ServiceIp => value.parse::<Ipv4Addr>().is_ok_and(|ip| {
                self.ips.contains(ip) && ip != self.ips.network() && ip != self.ips.broadcast()
            }),
            Pool::NodePort => value
                .parse::<u16>()
                .is_ok_and(|p| p >= self.ports.first && p <= self.ports.last),
        };
        if ok {
            return Ok(());
        }
        let range = match pool {
            Pool::ServiceIp => self.ips.to_string(),
            Pool::NodePort => format!("{}-{}", self.ports.first, self.ports.last),
        };
        Err(ApiError::Invalid {
            kind: "Service".into(),
            group: String::new(),
            name: String::new(),
            causes: vec![crate::error::Cause::invalid(
                field,
                value,
                &format!(
                    "provided value is not in the valid range. The range of valid values is {range}"
                ),
            )],
        })
    }

    /// Picks a value that no marker holds and that is not in `avoid`.
    pub async fn pick(
        &self,
        store: &Store,
        pool: Pool,
        avoid: &HashSet<String>,
    ) -> Result<String, ApiError> {
        let prefix = keys::marker_prefix(pool.key_name());
        let taken: HashSet<String> = store
            .keys_with_prefix(&prefix)
            .await?
            .into_iter()
            .filter_map(|k| k.strip_prefix(&prefix).map(str::to_string))
            .collect();
        let size = self.size(pool);
        let start = u64::from(uuid::Uuid::new_v4().as_u128() as u32) % size.max(1);
        for i in 0..size {
            let v = self.value_at(pool, (start + i) % size);
            if !taken.contains(&v) && !avoid.contains(&v) {
                return Ok(v);
            }
        }
        Err(ApiError::RangeFull(format!(
            "no free value left in the {} pool",
            pool.key_name()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_checks() {
        let a = Allocator::new(
            "10.96.0.0/30".parse().unwrap(),
            "30000-30001".parse().unwrap(),
        );
        assert_eq!(a.size(Pool::ServiceIp), 2);
        assert_eq!(a.value_at(Pool::ServiceIp, 0), "10.96.0.1");
        assert_eq!(a.value_at(Pool::NodePort, 1), "30001");
        assert!(
            a.check(Pool::ServiceIp, "spec.clusterIP", "10.96.0.2")
                .is_ok()
        );
        assert!(
            a.check(Pool::ServiceIp, "spec.clusterIP", "10.96.0.3")
                .is_err()
        );
        assert!(
            a.check(Pool::ServiceIp, "spec.clusterIP", "10.97.0.1")
                .is_err()
        );
        assert!(
            a.check(Pool::NodePort, "spec.ports[0].nodePort", "29999")
                .is_err()
        );
        let err = a
            .check(Pool::NodePort, "spec.ports[0].nodePort", "x")
            .unwrap_err();
        assert_eq!(err.code(), 422);
    }
}
