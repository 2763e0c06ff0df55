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
    /// The snapshot being received: from which leader, which snapshot, the bytes so far.
    receiving: Mutex<Option<Receiving>>,
}

struct Receiving {
    vote: Vote,
    meta: SnapshotMeta,
    data: Vec<u8>,
}

/// The tonic service to mount on the peer listener.
pub(crate) fn service(node: Arc<Node>) -> PeerServer<PeerService> {
    PeerServer::new(PeerService {
        node,
        receiving: Mutex::new(None),
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
        let rpc = decode(req.get_ref()).map_err(bad)?;
        reply(&self.node.raft.append_entries(rpc).await)
    }

    async fn vote(&self, req: Request<Payload>) -> Result<Response<Payload>, Status> {
        let rpc = decode(req.get_ref()).map_err(bad)?;
        reply(&self.node.raft.vote(rpc).await)
    }

    async fn install_snapshot(&self, req: Request<Payload>) -> Result<Response<Payload>, Status> {
        let chunk: SnapshotChunk = decode(req.get_ref()).map_err(bad)?;
        let Some(done) = self.take_chunk(chunk)? else {
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

impl PeerService {
    /// Adds a snapshot chunk to the transfer in progress (the first chunk starts a new one);
    /// returns the whole snapshot after the last chunk.
    fn take_chunk(&self, chunk: SnapshotChunk) -> Result<Option<Receiving>, Status> {
        let mut slot = self.receiving.lock().expect("snapshot receive lock");
        if chunk.offset == 0 {
            *slot = Some(Receiving {
                vote: chunk.vote,
                meta: chunk.meta.clone(),
                data: Vec::new(),
            });
        }
        let Some(r) = slot.as_mut() else {
            return Err(Status::failed_precondition(format!(
                "snapshot chunk at offset {} without a transfer in progress",
                chunk.offset
            )));
        };
        if r.vote != chunk.vote || r.meta != chunk.meta || r.data.len() as u64 != chunk.offset {
            let at = r.data.len();
            *slot = None;
            return Err(Status::failed_precondition(format!(
                "snapshot chunk at offset {} does not continue the transfer in progress (at {at})",
                chunk.offset
            )));
        }
        r.data.extend_from_slice(&chunk.data);
        Ok(if chunk.done { slot.take() } else { None })
    }
}
