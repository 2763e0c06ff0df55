//! Lease operations of a member: grant, keep-alive and time-to-live run on the leader (whose
//! [`Lessor`](crate::lease::Lessor) holds the deadlines); the leader's duty loop revokes
//! expired leases and promotes caught-up learners.

use openraft::async_runtime::watch::WatchReceiver;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Node, NodeError};
use crate::network::{ForwardRequest, ForwardResponse};
use crate::types::{NodeId, Request, Response};

impl Node {
    /// Refreshes a lease on the leader; returns its TTL.
    pub async fn keep_alive(&self, id: i64) -> Result<i64, NodeError> {
        self.on_leader(
            ForwardRequest::LeaseKeepAlive(id),
            || self.keep_alive_local(id),
            |r| match r {
                ForwardResponse::LeaseKeepAlive(t) => Some(t),
                _ => None,
            },
        )
        .await
    }

    pub(super) async fn keep_alive_local(&self, id: i64) -> Result<i64, Option<NodeError>> {
        if !self.is_leader() {
            return Err(None);
        }
        // Keep-alive must not revive a lease the leader already expired: read applied state.
        self.read_index_local().await?;
        let ttl = self.read(|d| d.mvcc.leases().get(&id).map(|l| l.ttl));
        let ttl = ttl.ok_or(Some(NodeError::LeaseNotFound))?;
        self.lessor.refresh(id, ttl, Instant::now());
        Ok(ttl)
    }

    /// A lease's remaining and granted TTL, from the leader.
    pub async fn time_to_live(&self, id: i64) -> Result<(i64, i64), NodeError> {
        self.on_leader(
            ForwardRequest::LeaseTimeToLive(id),
            || self.time_to_live_local(id),
            |r| match r {
                ForwardResponse::LeaseTimeToLive(a, b) => Some((a, b)),
                _ => None,
            },
        )
        .await
    }

    pub(super) async fn time_to_live_local(
        &self,
        id: i64,
    ) -> Result<(i64, i64), Option<NodeError>> {
        if !self.is_leader() {
            return Err(None);
        }
        self.read_index_local().await?;
        let ttl = self.read(|d| d.mvcc.leases().get(&id).map(|l| l.ttl));
        let ttl = ttl.ok_or(Some(NodeError::LeaseNotFound))?;
        Ok((
            self.lessor.remaining(id, Instant::now()).unwrap_or(ttl),
            ttl,
        ))
    }

    /// Grants a lease (choosing an id when `id` is 0); returns (id, ttl).
    pub async fn lease_grant(&self, id: i64, ttl: i64) -> Result<(i64, Response), NodeError> {
        let ttl = ttl.max(self.min_lease_ttl);
        let (id, resp) = if id != 0 {
            (id, self.write(Request::LeaseGrant { id, ttl }).await?)
        } else {
            // A chosen id may (rarely) collide with an existing lease: choose again.
            let mut tries = 0;
            loop {
                let id = self.new_lease_id();
                let resp = self.write(Request::LeaseGrant { id, ttl }).await?;
                tries += 1;
                if resp.result != Err(crate::types::ApplyError::LeaseExists) || tries == 5 {
                    break (id, resp);
                }
            }
        };
        if self.is_leader() {
            self.lessor.refresh(id, ttl, Instant::now());
        }
        Ok((id, resp))
    }

    fn new_lease_id(&self) -> i64 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        // Member id in the high bits, time in the low ones: unique across members, like etcd.
        let id = ((self.id & 0xffff) << 47 | (nanos & ((1 << 47) - 1))) as i64;
        id.max(1)
    }

    /// While leader: expires leases and promotes caught-up learners. Runs until the Raft stops.
    pub async fn leader_duties(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if self.raft.metrics().borrow_watched().running_state.is_err() {
                return;
            }
            if !self.is_leader() {
                self.lessor.clear();
                continue;
            }
            let expired = self.read(|d| self.lessor.expired(d.mvcc.leases(), Instant::now()));
            for id in expired {
                let me = self.clone();
                tokio::spawn(async move {
                    tracing::info!(lease = id, "lease expired; revoking");
                    if me.write_local(Request::LeaseRevoke(id)).await.is_err() {
                        me.lessor.revoke_failed(id);
                    }
                });
            }
            self.promote_caught_up().await;
        }
    }

    pub(super) async fn promote_caught_up(&self) {
        let pending: Vec<NodeId> = self.read(|d| {
            let m = d.membership.membership();
            m.learner_ids()
                .filter(|id| d.mvcc.members().get(id).is_some_and(|a| a.promote_pending))
                .collect()
        });
        if pending.is_empty() {
            return;
        }
        let (last, matched) = {
            let m = self.raft.metrics();
            let m = m.borrow_watched();
            (
                m.last_log_index.unwrap_or(0),
                m.replication.clone().unwrap_or_default(),
            )
        };
        for id in pending {
            let caught_up = matched
                .get(&id)
                .and_then(|l| l.as_ref())
                .is_some_and(|l| l.index + 100 >= last);
            if caught_up {
                tracing::info!(member = id, "learner caught up; promoting to voter");
                if let Err(e) = self.member_promote_local(id).await {
                    tracing::warn!(member = id, error = ?e, "promotion failed; will retry");
                }
            }
        }
    }
}
