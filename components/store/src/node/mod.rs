//! One member: its Raft handle, state machine and peers, and the operations the client API needs
//! — written so that a caller never cares which member is the leader.
//!
//! - Writes: [`Node::write`] proposes through openraft; on a follower, openraft answers
//!   "forward to leader" and the request goes to the leader over the peer transport. Every write
//!   is tagged with this member's session and a sequence number (`session.rs`), and the state
//!   machine applies a tagged write at most once (`mvcc/sessions.rs`). So when the leader dies
//!   mid-call (connection reset, no answer within [`FORWARD_ATTEMPT`]), the write is sent again
//!   to the next leader instead of leaving the client with an unknown outcome. The member that
//!   took the request answers once it applied the write itself (read-your-writes, as etcd).
//! - Linearizable reads: [`Node::read_barrier`] gets a read index from the leader (a
//!   leadership confirmation with a quorum, shared by concurrent readers: `read_index.rs`) and
//!   waits until this member applied up to it. Serializable reads skip it.
//! - Writes are grouped into batch entries by `propose.rs` (one fsync for many clients).
//! - Leases and members: keep-alive, time-to-live and membership changes run on the leader.
//! - [`Node::leader_duties`] runs forever: lease expiry and learner promotion while leader.

mod leases;
mod members;
mod propose;
mod read_index;
mod session;

pub(crate) use propose::Proposer;
pub(crate) use read_index::ReadIndexer;
pub(crate) use session::WriteSession;

use openraft::async_runtime::watch::WatchReceiver;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, ForwardToLeader, RaftError};
use serde::{Deserialize, Serialize};

use crate::lease::Lessor;
use crate::network::{ForwardRequest, ForwardResponse, Network};
use crate::state_machine::{Shared, SmData};
use crate::types::{NodeId, PeerNode, Raft, Request, Response, TypeConfig};

/// How long a client request may wait for a leader, a commit or a read index (etcd: ~5 s).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest wait for one forwarded attempt of a request that is safe to send again (a tagged
/// write, a read index, a lease refresh); a leader that is frozen or cut off is then given up
/// for the next one, well within the request timeout.
pub const FORWARD_ATTEMPT: Duration = Duration::from_secs(1);

/// Why a member could not serve a request. Travels between members, and maps to etcd's gRPC
/// errors in `api/`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    /// No leader is known within the request timeout.
    #[error("etcdserver: no leader")]
    NoLeader,
    /// The request did not complete in time; it may or may not have been applied.
    #[error("etcdserver: request timed out")]
    Timeout,
    /// This member stopped (shutdown or a storage failure).
    #[error("etcdserver: server stopped")]
    Stopped,
    /// A forwarded request reached a member that is no longer leader.
    #[error("etcdserver: leader changed")]
    NotLeader,
    /// The leader could not be reached; the request's outcome is unknown.
    #[error("etcdserver: request timed out, forwarding to the leader failed: {0}")]
    Forward(String),
    /// Unknown lease.
    #[error("etcdserver: requested lease not found")]
    LeaseNotFound,
    /// Unknown member.
    #[error("etcdserver: member not found")]
    MemberNotFound,
    /// A member with these peer URLs exists.
    #[error("etcdserver: Peer URLs already exists")]
    MemberExists,
    /// A membership change was refused (e.g. another change in progress).
    #[error("etcdserver: unhealthy cluster: {0}")]
    Membership(String),
}

/// A running member.
pub struct Node {
    /// This member's id.
    pub id: NodeId,
    /// This member's name.
    pub name: String,
    /// The Raft handle.
    pub raft: Raft,
    /// The state machine, shared with readers.
    pub sm: Arc<Shared>,
    /// Peer connections.
    pub net: Network,
    /// Lease deadlines (leader only).
    pub lessor: Lessor,
    /// Advertised client URLs.
    pub client_urls: Vec<String>,
    /// Advertised peer URLs.
    pub peer_urls: Vec<String>,
    /// Shortest lease TTL granted, seconds (etcd: 1.5 election timeouts).
    pub min_lease_ttl: i64,
    /// The data dir (for size reporting).
    pub data_dir: std::path::PathBuf,
    /// Groups concurrent writes into one log entry.
    pub(crate) proposer: Proposer,
    /// Shares leadership confirmations among concurrent linearizable reads.
    pub(crate) read_indexer: ReadIndexer,
    /// Tags writes so that each is applied at most once.
    pub(crate) session: session::WriteSession,
}

impl Node {
    /// Reads the state machine.
    pub fn read<T>(&self, f: impl FnOnce(&SmData) -> T) -> T {
        f(&self.sm.data.read().expect("state lock"))
    }

    /// The leader this member knows of.
    pub fn leader(&self) -> Option<(NodeId, PeerNode)> {
        let m = self.raft.metrics();
        let m = m.borrow_watched();
        let id = m.current_leader?;
        let node = m.membership_config.membership().get_node(&id)?.clone();
        Some((id, node))
    }

    /// Bytes used on disk by the log (its chunk files) and the snapshot.
    pub fn db_size(&self) -> u64 {
        let size = |p: std::path::PathBuf| std::fs::metadata(p).map_or(0, |m| m.len());
        let log: u64 = std::fs::read_dir(self.data_dir.join("raft-log"))
            .map(|d| d.flatten().map(|e| size(e.path())).sum())
            .unwrap_or(0);
        log + size(self.data_dir.join("snap/snapshot.bin"))
    }

    /// The current Raft term.
    pub fn term(&self) -> u64 {
        self.raft.metrics().borrow_watched().current_term
    }

    /// Waits (up to the deadline) until some leader is known.
    async fn wait_leader(&self, deadline: Instant) -> Result<(NodeId, PeerNode), NodeError> {
        let mut rx = self.raft.metrics();
        loop {
            if let Some(l) = self.leader() {
                return Ok(l);
            }
            if rx.borrow_watched().running_state.is_err() {
                return Err(NodeError::Stopped);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(NodeError::NoLeader);
            }
            let _ = tokio::time::timeout(left.min(Duration::from_millis(100)), rx.changed()).await;
        }
    }

    /// Runs a request on the leader: locally when this member leads (`local` returns
    /// `Err(None)` when openraft says it is not leader), else forwarded. Retries while the leader
    /// is moving, until the request timeout.
    pub(super) async fn on_leader<T, F, Fut>(
        &self,
        fwd: ForwardRequest,
        local: F,
        unwrap: fn(ForwardResponse) -> Option<T>,
    ) -> Result<T, NodeError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, Option<NodeError>>>,
    {
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        let resend = fwd.safe_to_resend();
        loop {
            let (leader, node) = self.wait_leader(deadline).await?;
            let left = deadline.saturating_duration_since(Instant::now());
            let result = if leader == self.id {
                // A leader cut off from its quorum may never commit: give up at the deadline
                // (the outcome is then unknown to the client, as with etcd's timeout).
                match tokio::time::timeout(left, local()).await {
                    Ok(r) => r,
                    Err(_) => Err(Some(NodeError::Timeout)),
                }
            } else {
                let attempt = if resend {
                    left.min(FORWARD_ATTEMPT)
                } else {
                    left
                };
                match self.net.forward(&node, &fwd, attempt).await {
                    Ok(Ok(resp)) => return unwrap(resp).ok_or(NodeError::Stopped),
                    Ok(Err(NodeError::NotLeader)) => Err(None),
                    // The leader stopped or timed out: another one may take it.
                    Ok(Err(NodeError::Stopped | NodeError::Timeout)) if resend => Err(None),
                    Ok(Err(e)) => Err(Some(e)),
                    // The leader is unreachable (likely dead): wait for the next one.
                    Err(e) if e.not_sent() => Err(None),
                    // The outcome is unknown, but sending it again cannot apply it twice.
                    Err(e) if resend => {
                        tracing::debug!(leader, error = %e, "forwarding failed; sending again");
                        Err(None)
                    }
                    Err(e) => Err(Some(NodeError::Forward(e.to_string()))),
                }
            };
            match result {
                Ok(v) => return Ok(v),
                Err(Some(e)) => return Err(e),
                Err(None) => {
                    // Not leader (any more): the request was not taken; wait for news and retry.
                    if Instant::now() >= deadline {
                        return Err(NodeError::NoLeader);
                    }
                    let mut rx = self.raft.metrics();
                    let _ = tokio::time::timeout(Duration::from_millis(50), rx.changed()).await;
                }
            }
        }
    }

    /// Proposes a write and returns its applied response.
    pub async fn write(&self, req: Request) -> Result<Response, NodeError> {
        let ticket = self.session.begin();
        let req = self.session.tag(&ticket, req);
        let fwd = ForwardRequest::Write(req.clone());
        let resp = self
            .on_leader(
                fwd,
                || self.write_local(req.clone()),
                |r| match r {
                    ForwardResponse::Write(w) => Some(w),
                    _ => None,
                },
            )
            .await?;
        self.wait_applied_revision(resp.revision).await;
        Ok(resp)
    }

    /// Waits (up to the request timeout) until this member applied `revision`, so a client that
    /// wrote through a follower reads its own write there even with a serializable read — as
    /// etcd, where the receiving member answers only after applying the entry itself. A
    /// follower that is slow to apply delays the answer, never loses or fails the write.
    async fn wait_applied_revision(&self, revision: i64) {
        let deadline = tokio::time::Instant::now() + REQUEST_TIMEOUT;
        let mut rx = self.raft.metrics();
        while self.read(|d| d.mvcc.revision()) < revision {
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => {
                    tracing::warn!(revision, "answered a write before applying it locally");
                    return;
                }
            }
        }
    }

    pub(super) async fn write_local(&self, req: Request) -> Result<Response, Option<NodeError>> {
        self.proposer.propose(req).await
    }

    /// Waits until this member's state reflects every write acknowledged before the call.
    pub async fn read_barrier(&self) -> Result<(), NodeError> {
        let index = self
            .on_leader(
                ForwardRequest::ReadIndex,
                || self.read_index_local(),
                |r| match r {
                    ForwardResponse::ReadIndex(i) => Some(i),
                    _ => None,
                },
            )
            .await?;
        self.raft
            .wait(Some(REQUEST_TIMEOUT))
            .applied_index_at_least(Some(index), "linearizable read")
            .await
            .map(|_| ())
            .map_err(|_| NodeError::Timeout)
    }

    pub(super) async fn read_index_local(&self) -> Result<u64, Option<NodeError>> {
        // As openraft's `ensure_linearizable`, with the leadership round shared by readers.
        let index = self.read_indexer.read_index().await?;
        self.raft
            .wait(Some(REQUEST_TIMEOUT))
            .applied_index_at_least(Some(index), "read index")
            .await
            .map_err(|_| Some(NodeError::Timeout))?;
        Ok(index)
    }

    /// Serves a request another member forwarded, as leader.
    pub async fn handle_forward(&self, req: ForwardRequest) -> Result<ForwardResponse, NodeError> {
        let not_leader = |e: Option<NodeError>| e.unwrap_or(NodeError::NotLeader);
        match req {
            ForwardRequest::Write(w) => self
                .write_local(w)
                .await
                .map(ForwardResponse::Write)
                .map_err(not_leader),
            ForwardRequest::ReadIndex => self
                .read_index_local()
                .await
                .map(ForwardResponse::ReadIndex)
                .map_err(not_leader),
            ForwardRequest::LeaseKeepAlive(id) => self
                .keep_alive_local(id)
                .await
                .map(ForwardResponse::LeaseKeepAlive)
                .map_err(not_leader),
            ForwardRequest::LeaseTimeToLive(id) => self
                .time_to_live_local(id)
                .await
                .map(|(r, g)| ForwardResponse::LeaseTimeToLive(r, g))
                .map_err(not_leader),
            ForwardRequest::MemberAdd(urls, learner) => self
                .member_add_local(urls, learner)
                .await
                .map(ForwardResponse::Member)
                .map_err(not_leader),
            ForwardRequest::MemberRemove(id) => self
                .member_remove_local(id)
                .await
                .map(ForwardResponse::Member)
                .map_err(not_leader),
            ForwardRequest::MemberPromote(id) => self
                .member_promote_local(id)
                .await
                .map(ForwardResponse::Member)
                .map_err(not_leader),
        }
    }

    pub(crate) fn is_leader(&self) -> bool {
        self.raft.metrics().borrow_watched().current_leader == Some(self.id)
    }
}

fn member_id_of(r: ForwardResponse) -> Option<NodeId> {
    match r {
        ForwardResponse::Member(id) => Some(id),
        _ => None,
    }
}

pub(crate) fn client_write_err(
    e: RaftError<TypeConfig, ClientWriteError<TypeConfig>>,
) -> Option<NodeError> {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(ForwardToLeader { .. })) => None,
        // A membership change is not resent (it is not tagged to apply once): outcome unknown.
        RaftError::APIError(ClientWriteError::LogEntryDiscarded(_)) => Some(NodeError::Timeout),
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            Some(NodeError::Membership(e.to_string()))
        }
        RaftError::APIError(ClientWriteError::PreconditionFailed(e)) => {
            Some(NodeError::Membership(e.to_string()))
        }
        RaftError::Fatal(_) => Some(NodeError::Stopped),
    }
}
