//! Group proposals: many concurrent client writes become one Raft log entry.
//!
//! Why: every log entry costs a group commit (one fsync) on the leader and on the followers,
//! plus an AppendEntries round, however many clients wait. The proposer queues writes; whenever
//! a slot is free (at most [`IN_FLIGHT`] entries proposed and not yet applied) it takes
//! everything queued — up to [`MAX_BATCH`] requests or [`MAX_BATCH_BYTES`] — and proposes it as
//! one [`Request::Batch`] entry, then hands each caller its own response. With one client a
//! batch is one request (proposed as is); with many, one fsync serves them all. The state
//! machine applies a batch's requests in order, each with its own revision, so clients and
//! watchers see exactly what separate entries would give. (openraft 0.10 no longer waits for
//! the leader's flush before replicating, so a single entry's leader and follower fsyncs
//! overlap; batching still saves the per-entry costs under load.)
//!
//! Hand-offs: the entry carries a [`Callback`] responder; openraft calls it in the state
//! machine's apply, and it frees the slot and sends each caller its response right there — no
//! task per batch waiting on openraft's reply channel to relay it (one task wake-up less per
//! write, and no `spawn` per batch). A caller still passes its request through the batching
//! task: letting an idle member's caller submit directly saved ~4 µs of a ~1.1 ms write
//! (measured, `docs/store.md`), not worth a second path.

use std::sync::Arc;

use openraft::error::ClientWriteError;
use openraft::raft::ClientWriteResult;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use super::NodeError;
use crate::types::{Callback, Outcome, Raft, Request, Response, TypeConfig};

/// Entries proposed and not yet applied: one being flushed by the leader, others queued
/// behind it in openraft, so the next batch is ready when the disk is.
const IN_FLIGHT: usize = 3;
/// Most requests in one entry.
const MAX_BATCH: usize = 512;
/// Most (approximate) bytes in one entry: well under the peer message limit.
const MAX_BATCH_BYTES: usize = 8 * 1024 * 1024;

/// What a proposal returns: the response, or `Err(None)` if this member is not the leader
/// (the request was not taken), or `Err(Some(e))`.
pub(crate) type ProposeResult = Result<Response, Option<NodeError>>;

struct Pending {
    req: Request,
    done: oneshot::Sender<ProposeResult>,
}

/// The queue in front of openraft's `client_write_ff`.
pub(crate) struct Proposer {
    tx: mpsc::UnboundedSender<Pending>,
}

impl Proposer {
    /// Starts the batching task for `raft`.
    pub(crate) fn start(raft: Raft) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(raft, rx));
        Self { tx }
    }

    /// Proposes one write and waits for its applied response.
    pub(crate) async fn propose(&self, req: Request) -> ProposeResult {
        let (done, rx) = oneshot::channel();
        crate::timing::mark("propose", 0, 0);
        self.tx
            .send(Pending { req, done })
            .map_err(|_| Some(NodeError::Stopped))?;
        rx.await.map_err(|_| Some(NodeError::Stopped))?
    }
}

async fn run(raft: Raft, mut rx: mpsc::UnboundedReceiver<Pending>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(first) = rx.recv().await {
        // Wait for a slot first: requests arriving meanwhile join this batch.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut size = first.req.approx_size();
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH && size < MAX_BATCH_BYTES {
            match rx.try_recv() {
                Ok(p) => {
                    size += p.req.approx_size();
                    batch.push(p);
                }
                Err(_) => break,
            }
        }
        tracing::trace!(requests = batch.len(), bytes = size, "proposing a batch");
        submit(&raft, batch, slot).await;
    }
}

/// Who waits for an entry's result.
enum Waiting {
    One(oneshot::Sender<ProposeResult>),
    Many(Vec<oneshot::Sender<ProposeResult>>),
}

/// Proposes `batch` as one entry (a lone request as is). Returns once the Raft core has the
/// entry; `slot` is freed and the callers answered when openraft completes it. If the core has
/// stopped, the responder is dropped with the message and the callers see `Stopped`.
async fn submit(raft: &Raft, mut batch: Vec<Pending>, slot: OwnedSemaphorePermit) {
    let (req, waiting) = if batch.len() == 1 {
        let p = batch.pop().expect("one request");
        (p.req, Waiting::One(p.done))
    } else {
        let (reqs, dones) = batch.into_iter().map(|p| (p.req, p.done)).unzip();
        (Request::Batch(reqs), Waiting::Many(dones))
    };
    let resend = safe_to_resend(&req);
    crate::timing::mark("client_write", 0, 0);
    let responder = Callback::new(move |result: ClientWriteResult<TypeConfig>| {
        crate::timing::mark("written", 0, 0);
        drop(slot);
        deliver(waiting, outcome(result, resend));
    });
    if raft.client_write_ff(req, Some(responder)).await.is_err() {
        tracing::debug!("the Raft core stopped; proposal dropped");
    }
}

fn deliver(waiting: Waiting, result: ProposeResult) {
    let dones = match waiting {
        Waiting::One(done) => {
            let _ = done.send(result);
            return;
        }
        Waiting::Many(dones) => dones,
    };
    match result {
        Ok(Response {
            result: Ok(Outcome::Batch(responses)),
            ..
        }) if responses.len() == dones.len() => {
            for (done, resp) in dones.into_iter().zip(responses) {
                let _ = done.send(Ok(resp));
            }
        }
        Ok(other) => {
            tracing::error!(response = ?other, "a batch entry was applied without per-request responses");
            for done in dones {
                let _ = done.send(Err(Some(NodeError::Stopped)));
            }
        }
        Err(e) => {
            for done in dones {
                let _ = done.send(Err(e.clone()));
            }
        }
    }
}

/// Whether proposing `req` again cannot apply it twice (exactly-once tagged writes).
fn safe_to_resend(req: &Request) -> bool {
    match req {
        Request::Once { .. } => true,
        Request::Batch(reqs) => reqs.iter().all(safe_to_resend),
        _ => false,
    }
}

/// What openraft's result means to the caller.
fn outcome(result: ClientWriteResult<TypeConfig>, resend: bool) -> ProposeResult {
    match result {
        Ok(r) => Ok(r.data),
        Err(ClientWriteError::ForwardToLeader(_)) => Err(None),
        // Our entry was replaced by a new leader's log: it may still commit through that
        // leader. A tagged write is sent again (the state machine applies it at most once);
        // anything else gets etcd's "timed out" (outcome unknown).
        Err(ClientWriteError::LogEntryDiscarded(_)) if resend => Err(None),
        Err(ClientWriteError::LogEntryDiscarded(_)) => Err(Some(NodeError::Timeout)),
        Err(ClientWriteError::ChangeMembershipError(e)) => {
            Err(Some(NodeError::Membership(e.to_string())))
        }
        Err(ClientWriteError::PreconditionFailed(e)) => {
            // We never attach preconditions; openraft answering one is a bug worth seeing.
            tracing::error!(error = %e, "openraft refused a write on a precondition we did not set");
            Err(Some(NodeError::Stopped))
        }
    }
}
