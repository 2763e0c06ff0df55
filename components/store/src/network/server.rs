//! The receiving side of the peer transport: decode, hand to openraft or the local node, encode.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::proto::Payload;
use super::proto::peer_server::{Peer, PeerServer};
use super::{CodecError, ForwardRequest, MAX_PEER_MESSAGE, decode, encode};
use crate::node::Node;

/// The peer gRPC service of one member.
pub(crate) struct PeerService {
    node: Arc<Node>,
}

/// The tonic service to mount on the peer listener.
pub(crate) fn service(node: Arc<Node>) -> PeerServer<PeerService> {
    PeerServer::new(PeerService { node })
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
        let rpc = decode(req.get_ref()).map_err(bad)?;
        reply(&self.node.raft.install_snapshot(rpc).await)
    }

    async fn forward(&self, req: Request<Payload>) -> Result<Response<Payload>, Status> {
        let fwd: ForwardRequest = decode(req.get_ref()).map_err(bad)?;
        reply(&self.node.handle_forward(fwd).await)
    }
}
