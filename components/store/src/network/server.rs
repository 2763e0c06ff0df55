//! The receiving side of the peer transport: decode, hand to openraft or the local node, encode.

use std::sync::{Arc, Mutex};

use tonic::{Request, Response, Status};

use super::proto::Payload;
use super::proto::peer_server::{Peer, PeerServer};
use super::{
    CodecError, ForwardRequest, MAX_PEER_MESSAGE, SnapshotChunk, SnapshotReply, decode, encode,
};
use crate::node::Node;
use crate::types::{Snapshot, SnapshotMeta, Vote};

/// The peer gRPC service of one member.
pub(crate) struct PeerService {
    node: Arc<Node>,
    /// The snapshot being received.
    receiving: Mutex<Reassembly>,
}

/// A snapshot put back together from its chunks: from which leader, which snapshot, the bytes
/// so far. A chunk at offset 0 starts a new transfer (a leader retrying after a failure); any
/// other chunk must continue the current one exactly, else the transfer is dropped and the
/// leader, told so, starts over.
#[derive(Default)]
pub(crate) struct Reassembly {
    current: Option<Receiving>,
}

#[derive(Debug)]
pub(crate) struct Receiving {
    vote: Vote,
    meta: SnapshotMeta,
    data: Vec<u8>,
}

impl Reassembly {
    /// Takes one chunk; returns the whole snapshot after the last one.
    pub(crate) fn take(&mut self, chunk: SnapshotChunk) -> Result<Option<Receiving>, String> {
        if chunk.offset == 0 {
            self.current = Some(Receiving {
                vote: chunk.vote,
                meta: chunk.meta.clone(),
                data: Vec::new(),
            });
        }
        let Some(r) = self.current.as_mut() else {
            return Err(format!(
                "snapshot chunk at offset {} without a transfer in progress",
                chunk.offset
            ));
        };
        if r.vote != chunk.vote || r.meta != chunk.meta || r.data.len() as u64 != chunk.offset {
            let at = r.data.len();
            self.current = None;
            return Err(format!(
                "snapshot chunk at offset {} does not continue the transfer in progress (at {at})",
                chunk.offset
            ));
        }
        r.data.extend_from_slice(&chunk.data);
        Ok(if chunk.done {
            self.current.take()
        } else {
            None
        })
    }
}

/// The tonic service to mount on the peer listener.
pub(crate) fn service(node: Arc<Node>) -> PeerServer<PeerService> {
    PeerServer::new(PeerService {
        node,
        receiving: Mutex::new(Reassembly::default()),
    })
    .max_decoding_message_size(MAX_PEER_MESSAGE)
    .max_encoding_message_size(MAX_PEER_MESSAGE)
}

fn bad(e: CodecError) -> Status {
    Status::invalid_argument(format!("peer message: {e}"))
}

fn reply<T: serde::Serialize>(v: &T) -> Result<Response<Payload>, Status> {
    encode(v)
        .map(Response::new)
        .map_err(|e| Status::internal(e.to_string()))
}

#[tonic::async_trait]
impl Peer for PeerService {
    async fn append_entries(&self, req: Request<Payload>) -> Result<Response<Payload>, Status> {
        let rpc: openraft::raft::AppendEntriesRequest<crate::types::TypeConfig> =
            decode(req.get_ref()).map_err(bad)?;
        let last = rpc.entries.last().map_or(0, |e| e.log_id.index);
        let n = rpc.entries.len();
        crate::timing::mark("ae_recv", last, n);
        let r = reply(&self.node.raft.append_entries(rpc).await);
        crate::timing::mark("ae_done", last, n);
        r
    }

    async fn vote(&self, req: Request<Payload>) -> Result<Response<Payload>, Status> {
        let rpc = decode(req.get_ref()).map_err(bad)?;
        reply(&self.node.raft.vote(rpc).await)
    }

    async fn install_snapshot(&self, req: Request<Payload>) -> Result<Response<Payload>, Status> {
        let chunk: SnapshotChunk = decode(req.get_ref()).map_err(bad)?;
        let taken = self
            .receiving
            .lock()
            .expect("snapshot receive lock")
            .take(chunk)
            .map_err(Status::failed_precondition)?;
        let Some(done) = taken else {
            return reply::<SnapshotReply>(&Ok(None));
        };
        let vote = done.vote;
        let snapshot = Snapshot {
            meta: done.meta,
            snapshot: std::io::Cursor::new(done.data),
        };
        let r: SnapshotReply = self
            .node
            .raft
            .install_full_snapshot(vote, snapshot)
            .await
            .map(Some);
        reply(&r)
    }

    async fn forward(&self, req: Request<Payload>) -> Result<Response<Payload>, Status> {
        let fwd: ForwardRequest = decode(req.get_ref()).map_err(bad)?;
        reply(&self.node.handle_forward(fwd).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::snapshot_chunks;

    fn meta(index: u64) -> SnapshotMeta {
        SnapshotMeta {
            last_log_id: Some(crate::types::LogId::new(
                openraft::impls::leader_id_adv::LeaderId {
                    term: 1,
                    node_id: 1,
                },
                index,
            )),
            ..Default::default()
        }
    }

    #[test]
    fn chunks_put_back_together_give_the_snapshot() {
        let vote = Vote::new_committed(2, 1);
        let bytes: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        let m = meta(7);
        let chunks: Vec<_> = snapshot_chunks(&vote, &m, &bytes, 300).collect();
        assert_eq!(chunks.len(), 4, "1000 bytes in chunks of 300");
        assert!(chunks.iter().take(3).all(|c| !c.done) && chunks[3].done);
        let mut r = Reassembly::default();
        let mut whole = None;
        for c in chunks {
            whole = r.take(c).expect("in order");
        }
        let whole = whole.expect("complete after the last chunk");
        assert_eq!(whole.data, bytes);
        assert_eq!(whole.meta, m);

        let empty: Vec<_> = snapshot_chunks(&vote, &m, &[], 300).collect();
        assert_eq!(empty.len(), 1, "an empty snapshot is still sent");
        let got = r.take(empty.into_iter().next().unwrap()).unwrap();
        assert_eq!(got.map(|g| g.data.len()), Some(0));
    }

    #[test]
    fn a_gap_or_a_foreign_chunk_drops_the_transfer_and_offset_0_restarts_it() {
        let vote = Vote::new_committed(2, 1);
        let bytes = vec![7u8; 900];
        let (m, other) = (meta(7), meta(9));
        let chunks: Vec<_> = snapshot_chunks(&vote, &m, &bytes, 300).collect();
        let mut r = Reassembly::default();
        let orphan = snapshot_chunks(&vote, &m, &bytes, 300).nth(1).unwrap();
        assert!(r.take(orphan).is_err(), "no transfer in progress");

        let mut it = chunks.into_iter();
        assert!(r.take(it.next().unwrap()).unwrap().is_none());
        let _lost = it.next().unwrap();
        let err = r
            .take(it.next().unwrap())
            .expect_err("offset 600 after 300 bytes");
        assert!(err.contains("600"), "{err}");
        let next = snapshot_chunks(&vote, &m, &bytes, 300).nth(1).unwrap();
        assert!(r.take(next).is_err(), "the broken transfer was dropped");

        let mut fresh = snapshot_chunks(&vote, &m, &bytes, 300);
        assert!(r.take(fresh.next().unwrap()).unwrap().is_none());
        let foreign = snapshot_chunks(&vote, &other, &bytes, 300).nth(1).unwrap();
        assert!(r.take(foreign).is_err(), "a chunk of another snapshot");
        let mut again = snapshot_chunks(&vote, &m, &bytes, 300);
        let mut last = None;
        for c in again.by_ref() {
            last = r.take(c).unwrap();
        }
        assert_eq!(last.expect("restarted transfer completes").data, bytes);
    }
}
