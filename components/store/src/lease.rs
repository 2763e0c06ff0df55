//! Lease expiry, the leader's job (as in etcd's lessor).
//!
//! Leases and their keys are replicated state (`mvcc`); *when* a lease expires is not: only the
//! leader keeps a deadline per lease, on its own monotonic clock. A new leader starts every
//! lease's deadline afresh at "now + TTL" (etcd's "promote"), so a failover only ever extends
//! leases. Keep-alives reach the leader (followers forward them) and push a deadline out.
//! `node.rs` ticks [`Lessor::expired`] while leader and proposes a revoke for each expired lease.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::mvcc::Lease;

/// The leader's lease deadlines.
#[derive(Default)]
pub struct Lessor {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    deadlines: HashMap<i64, Instant>,
    revoking: HashSet<i64>,
}

impl Lessor {
    /// Forgets every deadline (this member is not the leader).
    pub fn clear(&self) {
        let mut i = self.inner.lock().expect("lessor lock");
        i.deadlines.clear();
        i.revoking.clear();
    }

    /// Syncs deadlines with the replicated leases (new ones get now + TTL, gone ones are
    /// dropped) and returns the expired leases not yet being revoked, marking them as such.
    pub fn expired(&self, leases: &BTreeMap<i64, Lease>, now: Instant) -> Vec<i64> {
        let mut i = self.inner.lock().expect("lessor lock");
        i.deadlines.retain(|id, _| leases.contains_key(id));
        i.revoking.retain(|id| leases.contains_key(id));
        let mut out = Vec::new();
        for (id, lease) in leases {
            let d = *i
                .deadlines
                .entry(*id)
                .or_insert_with(|| now + ttl(lease.ttl));
            if d <= now && i.revoking.insert(*id) {
                out.push(*id);
            }
        }
        out
    }

    /// Lets a failed revoke be retried at the next tick.
    pub fn revoke_failed(&self, id: i64) {
        self.inner.lock().expect("lessor lock").revoking.remove(&id);
    }

    /// Pushes a lease's deadline to now + TTL (keep-alive or grant).
    pub fn refresh(&self, id: i64, ttl_secs: i64, now: Instant) {
        self.inner
            .lock()
            .expect("lessor lock")
            .deadlines
            .insert(id, now + ttl(ttl_secs));
    }

    /// Seconds left before the lease expires, if this leader tracks it.
    pub fn remaining(&self, id: i64, now: Instant) -> Option<i64> {
        let i = self.inner.lock().expect("lessor lock");
        i.deadlines
            .get(&id)
            .map(|d| d.saturating_duration_since(now).as_secs_f64().ceil() as i64)
    }
}

fn ttl(secs: i64) -> Duration {
    Duration::from_secs(secs.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leases(ids: &[(i64, i64)]) -> BTreeMap<i64, Lease> {
        ids.iter()
            .map(|(id, ttl)| {
                (
                    *id,
                    Lease {
                        ttl: *ttl,
                        ..Default::default()
                    },
                )
            })
            .collect()
    }

    #[test]
    fn leases_expire_after_ttl_once_and_keep_alive_extends() {
        let l = Lessor::default();
        let t0 = Instant::now();
        let ls = leases(&[(1, 2), (2, 5)]);
        assert!(l.expired(&ls, t0).is_empty());
        assert_eq!(l.remaining(1, t0), Some(2));
        l.refresh(2, 5, t0 + Duration::from_secs(3));
        assert_eq!(l.expired(&ls, t0 + Duration::from_secs(3)), vec![1]);
        assert!(
            l.expired(&ls, t0 + Duration::from_secs(4)).is_empty(),
            "revoke in flight"
        );
        l.revoke_failed(1);
        assert_eq!(
            l.expired(&ls, t0 + Duration::from_secs(4)),
            vec![1],
            "retried"
        );
        // Lease 2 was kept alive at t0+3 for 5 s.
        assert!(!l.expired(&ls, t0 + Duration::from_secs(7)).contains(&2));
        assert!(l.expired(&ls, t0 + Duration::from_secs(8)).contains(&2));
    }

    #[test]
    fn a_new_leader_starts_every_deadline_afresh() {
        let l = Lessor::default();
        let t0 = Instant::now();
        let ls = leases(&[(1, 2)]);
        l.expired(&ls, t0);
        l.clear();
        // Became leader again much later: the lease gets a full TTL from now.
        let later = t0 + Duration::from_secs(60);
        assert!(l.expired(&ls, later).is_empty());
        assert_eq!(l.remaining(1, later), Some(2));
    }
}
