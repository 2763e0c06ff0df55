//! Shared read-index rounds: concurrent linearizable reads confirm leadership together.
//!
//! Each read needs the leader to confirm, with a quorum, that it still leads (openraft's
//! `get_read_log_id` sends a round of heartbeats). Readers queue here; one round runs at a time
//! and serves every reader that queued *before it started* — a reader arriving during a round
//! waits for the next one, so the confirmation always happens after the read arrived, which is
//! what linearizability needs.

use openraft::ReadPolicy;
use openraft::error::{LinearizableReadError, RaftError};
use tokio::sync::{mpsc, oneshot};

use super::NodeError;
use crate::types::Raft;

/// A round's result: the log index a read must wait for, `Err(None)` if this member is not
/// the leader or missed its quorum (ask again), `Err(Some(e))` otherwise.
pub(crate) type ReadIndexResult = Result<u64, Option<NodeError>>;

/// The queue of readers waiting for a leadership confirmation.
pub(crate) struct ReadIndexer {
    tx: mpsc::UnboundedSender<oneshot::Sender<ReadIndexResult>>,
}

impl ReadIndexer {
    /// Starts the round task for `raft`.
    pub(crate) fn start(raft: Raft) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(raft, rx));
        Self { tx }
    }

    /// Waits for the next leadership confirmation round; returns its read index.
    pub(crate) async fn read_index(&self) -> ReadIndexResult {
        let (done, rx) = oneshot::channel();
        self.tx.send(done).map_err(|_| Some(NodeError::Stopped))?;
        rx.await.map_err(|_| Some(NodeError::Stopped))?
    }
}

async fn run(raft: Raft, mut rx: mpsc::UnboundedReceiver<oneshot::Sender<ReadIndexResult>>) {
    while let Some(first) = rx.recv().await {
        let mut waiting = vec![first];
        while let Ok(more) = rx.try_recv() {
            waiting.push(more);
        }
        // ReadIndex: a quorum acknowledges a heartbeat sent after the round started (no
        // leader lease, no reliance on clocks).
        let result = match raft.get_read_log_id(ReadPolicy::ReadIndex).await {
            Ok((read_log_id, _applied)) => Ok(read_log_id.index()),
            Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(_))) => Err(None),
            // Heartbeats to the quorum were slow or lost (a loaded host, a paused follower):
            // a read index can always be asked again, until the request deadline.
            Err(RaftError::APIError(LinearizableReadError::QuorumNotEnough(_))) => Err(None),
            Err(RaftError::Fatal(_)) => Err(Some(NodeError::Stopped)),
        };
        for w in waiting {
            let _ = w.send(result.clone());
        }
    }
}
