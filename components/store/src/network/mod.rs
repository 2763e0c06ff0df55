//! The peer transport: openraft RPCs and leader forwarding, on one peer port.
//!
//! Two protocols share the peer listener (`append_server.rs` tells them apart by a
//! connection's first bytes):
//! - **AppendEntries** (the write path's critical hop) goes over a lean transport of its own:
//!   openraft's `stream_append` on one plain TCP connection per replication target,
//!   length-delimited MessagePack frames, replies in order on the same socket, pipelined
//!   (`frame.rs`, `append.rs`, `append_server.rs`).
//! - **Everything else** — vote, snapshot, forwarded requests (and unary AppendEntries, which
//!   openraft does not use while `stream_append` is implemented) — is a small gRPC service of
//!   our own: a Rust type encoded with MessagePack inside a `Payload` (see `proto/peer.proto`);
//!   gRPC (tonic, HTTP/2) provides framing, connection reuse and timeouts.
//!
//! Outgoing: [`Network`] is openraft's network factory and also the client for
//! [`ForwardRequest`]s (a follower sends writes, read-index and lease requests to the leader).
//! Incoming: `server.rs` decodes, hands to openraft or to the local [`crate::node::Node`], and
//! encodes the reply. Nothing outside this module sees tonic types of the peer service.
//! Snapshots: openraft 0.10 hands the transport a whole snapshot (`full_snapshot`); it goes in
//! [`SNAPSHOT_CHUNK`]-sized `InstallSnapshot` calls, which the receiver reassembles before
//! handing the snapshot to openraft (`install_full_snapshot`).

mod append;
pub(crate) mod append_server;
mod frame;
pub(crate) mod server;

pub use append::AppendError;
/// The first bytes of an AppendEntries connection on the peer port (tests and tools that probe
/// the port need them).
pub use frame::MAGIC as APPEND_MAGIC;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use openraft::error::{
    Fatal, NetworkError, RPCError, RaftError, RemoteError, ReplicationClosed, StreamingError,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, StreamAppendResult, VoteRequest,
    VoteResponse,
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use tonic::transport::{Channel, Endpoint};

use crate::node::NodeError;
use crate::types::{NodeId, PeerNode, Request, Response, Snapshot, SnapshotMeta, TypeConfig, Vote};

/// Generated peer service code.
#[allow(missing_docs, clippy::all)]
pub(crate) mod proto {
    tonic::include_proto!("kubelab.store.peer");
}

use proto::Payload;
use proto::peer_client::PeerClient;

/// Largest peer message: an append batch or a snapshot chunk.
pub(crate) const MAX_PEER_MESSAGE: usize = 64 * 1024 * 1024;

/// Bytes of a snapshot per `InstallSnapshot` call: openraft 0.10 hands the transport the whole
/// snapshot; we send it in chunks so no message nears [`MAX_PEER_MESSAGE`] and each call's
/// timeout covers a bounded amount of data.
pub(crate) const SNAPSHOT_CHUNK: usize = 4 * 1024 * 1024;

/// One piece of a snapshot sent to a follower. The receiver (`server.rs`) appends chunks in
/// order and, with `done`, hands the whole snapshot to openraft.
#[derive(Serialize, Deserialize, Debug)]
pub(crate) struct SnapshotChunk {
    /// The sending leader's vote.
    pub vote: Vote,
    /// The snapshot's metadata (identifies the transfer).
    pub meta: SnapshotMeta,
    /// Where `data` starts in the snapshot.
    pub offset: u64,
    /// The bytes.
    #[serde(with = "serde_bytes_vec")]
    pub data: Vec<u8>,
    /// Whether this is the last chunk.
    pub done: bool,
}

/// Splits a snapshot into the chunks [`RaftNetworkV2::full_snapshot`] sends, in order: at least
/// one (an empty snapshot is one empty, final chunk), each at most `size` bytes.
pub(crate) fn snapshot_chunks<'a>(
    vote: &'a Vote,
    meta: &'a SnapshotMeta,
    bytes: &'a [u8],
    size: usize,
) -> impl Iterator<Item = SnapshotChunk> + 'a {
    let n = bytes.len().div_ceil(size).max(1);
    (0..n).map(move |i| {
        let start = i * size;
        let end = (start + size).min(bytes.len());
        SnapshotChunk {
            vote: *vote,
            meta: meta.clone(),
            offset: start as u64,
            data: bytes[start..end].to_vec(),
            done: i + 1 == n,
        }
    })
}

/// The reply to a [`SnapshotChunk`]: `None` for a chunk taken, the follower's response after
/// the last one, or openraft's fatal error.
pub(crate) type SnapshotReply = Result<Option<SnapshotResponse<TypeConfig>>, Fatal<TypeConfig>>;

/// MessagePack `bin` for chunk bytes (serde would otherwise encode a `Vec<u8>` as an array).
mod serde_bytes_vec {
    use serde::{Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
        }
        d.deserialize_byte_buf(V)
    }
}

/// A request a member forwards to the leader.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub enum ForwardRequest {
    /// Propose a write.
    Write(Request),
    /// Confirm leadership and return the index a linearizable read must wait for.
    ReadIndex,
    /// Refresh a lease; returns its TTL.
    LeaseKeepAlive(i64),
    /// A lease's remaining and granted TTL.
    LeaseTimeToLive(i64),
    /// Add a member (peer URLs, as learner?).
    MemberAdd(Vec<String>, bool),
    /// Remove a member.
    MemberRemove(NodeId),
    /// Promote a learner.
    MemberPromote(NodeId),
}

impl ForwardRequest {
    /// Whether sending it again after an unknown outcome is harmless: a write tagged to apply
    /// at most once, a read index, a lease refresh or TTL query.
    pub fn safe_to_resend(&self) -> bool {
        match self {
            ForwardRequest::Write(w) => matches!(w, Request::Once { .. }),
            ForwardRequest::ReadIndex
            | ForwardRequest::LeaseKeepAlive(_)
            | ForwardRequest::LeaseTimeToLive(_) => true,
            ForwardRequest::MemberAdd(..)
            | ForwardRequest::MemberRemove(_)
            | ForwardRequest::MemberPromote(_) => false,
        }
    }
}

/// The leader's reply to a [`ForwardRequest`].
#[derive(Serialize, Deserialize, Debug, Clone)]
pub enum ForwardResponse {
    /// A write's response.
    Write(Response),
    /// The log index to wait for.
    ReadIndex(u64),
    /// The lease's TTL after refresh.
    LeaseKeepAlive(i64),
    /// Remaining and granted TTL.
    LeaseTimeToLive(i64, i64),
    /// A member change done; the new member's id.
    Member(NodeId),
}

/// Errors of the peer transport.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The peer URL is not a valid endpoint.
    #[error("peer URL {0:?} is invalid")]
    BadUrl(String),
    /// The member has no peer URL.
    #[error("member {0} has no peer URL")]
    NoUrl(NodeId),
    /// The gRPC call failed.
    #[error("peer call to {url} failed: {status}")]
    Call {
        /// The peer.
        url: String,
        /// The gRPC status.
        status: tonic::Status,
    },
    /// Encoding or decoding a message failed.
    #[error("peer message codec")]
    Codec(#[from] CodecError),
}

/// Encoding or decoding a peer message failed.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// Encoding.
    #[error("encoding a peer message")]
    Encode(#[from] rmp_serde::encode::Error),
    /// Decoding.
    #[error("decoding a peer message")]
    Decode(#[from] rmp_serde::decode::Error),
}

impl PeerError {
    /// Whether the call failed before the request left this member (no connection could be
    /// made), so the peer certainly did not act on it and it may be retried elsewhere.
    pub fn not_sent(&self) -> bool {
        match self {
            PeerError::BadUrl(_) | PeerError::NoUrl(_) => true,
            PeerError::Call { status, .. } => {
                status.code() == tonic::Code::Unavailable && {
                    let mut msg = status.message().to_ascii_lowercase();
                    let mut src = std::error::Error::source(status);
                    while let Some(e) = src {
                        msg.push_str(&e.to_string().to_ascii_lowercase());
                        src = e.source();
                    }
                    msg.contains("connect")
                }
            }
            PeerError::Codec(_) => false,
        }
    }
}

pub(crate) fn encode<T: Serialize>(v: &T) -> Result<Payload, CodecError> {
    Ok(Payload {
        data: rmp_serde::to_vec(v)?,
    })
}

pub(crate) fn decode<T: DeserializeOwned>(p: &Payload) -> Result<T, CodecError> {
    Ok(rmp_serde::from_slice(&p.data)?)
}

/// Connections to peers, one HTTP/2 channel per peer URL, shared by Raft and forwarding.
#[derive(Clone, Default)]
pub struct Network {
    channels: Arc<Mutex<HashMap<String, PeerClient<Channel>>>>,
}

impl Network {
    fn client(&self, url: &str) -> Result<PeerClient<Channel>, PeerError> {
        let mut map = self.channels.lock().expect("peer channels lock");
        if let Some(c) = map.get(url) {
            return Ok(c.clone());
        }
        let ep = Endpoint::from_shared(url.to_string())
            .map_err(|_| PeerError::BadUrl(url.into()))?
            .connect_timeout(Duration::from_millis(500))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(5))
            .keep_alive_timeout(Duration::from_secs(5));
        let c = PeerClient::new(ep.connect_lazy())
            .max_decoding_message_size(MAX_PEER_MESSAGE)
            .max_encoding_message_size(MAX_PEER_MESSAGE);
        map.insert(url.to_string(), c.clone());
        Ok(c)
    }

    /// Sends a [`ForwardRequest`] to the member at `node`, waiting at most `timeout`.
    pub async fn forward(
        &self,
        node: &PeerNode,
        req: &ForwardRequest,
        timeout: Duration,
    ) -> Result<Result<ForwardResponse, NodeError>, PeerError> {
        let url = node.peer_urls.first().ok_or(PeerError::NoUrl(0))?;
        let mut c = self.client(url)?;
        let mut r = tonic::Request::new(encode(req)?);
        r.set_timeout(timeout);
        let reply = c.forward(r).await.map_err(|status| PeerError::Call {
            url: url.clone(),
            status,
        })?;
        Ok(decode(reply.get_ref())?)
    }
}

/// One peer, as openraft sees it.
pub struct PeerConn {
    target: NodeId,
    url: Option<String>,
    net: Network,
    /// The AppendEntries connection of this openraft network instance (one per replication
    /// stream or heartbeat worker).
    append: append::AppendConn,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerConn;

    async fn new_client(&mut self, target: NodeId, node: &PeerNode) -> PeerConn {
        let url = node.peer_urls.first().cloned();
        PeerConn {
            target,
            append: append::AppendConn::new(target, url.clone()),
            url,
            net: self.clone(),
        }
    }
}

type RpcErr = RPCError<TypeConfig>;

impl PeerConn {
    /// One call; the remote answers `Result<Resp, E>` (openraft's error on the remote side).
    async fn call<Req, Resp, E>(
        &self,
        method: Method,
        req: &Req,
        timeout: Duration,
    ) -> Result<Result<Resp, E>, RpcErr>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: DeserializeOwned,
    {
        let url = self.url.as_deref().ok_or_else(|| {
            RPCError::Unreachable(Unreachable::new(&PeerError::NoUrl(self.target)))
        })?;
        let mut client = self
            .net
            .client(url)
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
        let mut r =
            tonic::Request::new(encode(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?);
        r.set_timeout(timeout);
        let reply = match method {
            Method::Append => client.append_entries(r).await,
            Method::Vote => client.vote(r).await,
            Method::Snapshot => client.install_snapshot(r).await,
        };
        let reply = reply.map_err(|status| {
            let unreachable = status.code() == tonic::Code::Unavailable;
            let e = PeerError::Call {
                url: url.to_string(),
                status,
            };
            if unreachable {
                RPCError::Unreachable(Unreachable::new(&e))
            } else {
                RPCError::Network(NetworkError::new(&e))
            }
        })?;
        decode(reply.get_ref()).map_err(|e| RPCError::Network(NetworkError::new(&e)))
    }

    /// An openraft RPC. The only error openraft 0.10 answers these with is `Fatal` (the peer's
    /// Raft stopped): to the caller that peer is unreachable until it restarts.
    async fn raft_call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        method: Method,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RpcErr> {
        let res: Result<Resp, RaftError<TypeConfig>> =
            self.call(method, req, option.hard_ttl()).await?;
        res.map_err(|e| {
            let e = RemoteError::<TypeConfig, _>::new(self.target, e);
            RPCError::Unreachable(Unreachable::new(&e))
        })
    }
}

#[derive(Clone, Copy)]
enum Method {
    Append,
    Vote,
    Snapshot,
}

impl RaftNetworkV2<TypeConfig> for PeerConn {
    type SnapshotData = crate::types::SnapshotData;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RpcErr> {
        let last = rpc.entries.last().map_or(0, |e| e.log_id.index);
        let n = rpc.entries.len();
        crate::timing::mark("ae_send", last, n);
        let r = self.raft_call(Method::Append, &rpc, &option).await;
        crate::timing::mark("ae_reply", last, n);
        r
    }

    /// AppendEntries go over the lean transport (`append.rs`), not the gRPC service.
    fn stream_append<'s, S>(
        &'s mut self,
        input: S,
        option: RPCOption,
    ) -> BoxFuture<'s, Result<BoxStream<'s, Result<StreamAppendResult<TypeConfig>, RpcErr>>, RpcErr>>
    where
        S: futures::Stream<Item = AppendEntriesRequest<TypeConfig>> + Send + Unpin + 'static,
    {
        self.append.stream(input, option)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RpcErr> {
        self.raft_call(Method::Vote, &rpc, &option).await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl std::future::Future<Output = ReplicationClosed> + openraft::OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let bytes = snapshot.snapshot.into_inner();
        let mut cancel = std::pin::pin!(cancel);
        for chunk in snapshot_chunks(&vote, &snapshot.meta, &bytes, SNAPSHOT_CHUNK) {
            let done = chunk.done;
            let call = self.call::<_, Option<SnapshotResponse<TypeConfig>>, Fatal<TypeConfig>>(
                Method::Snapshot,
                &chunk,
                option.hard_ttl(),
            );
            let reply = tokio::select! {
                closed = &mut cancel => return Err(StreamingError::Closed(closed)),
                r = call => r,
            };
            let reply = match reply {
                Ok(r) => r,
                Err(RPCError::Unreachable(e)) => return Err(StreamingError::Unreachable(e)),
                Err(RPCError::Timeout(e)) => return Err(StreamingError::Timeout(e)),
                Err(e) => return Err(StreamingError::Network(NetworkError::new(&e))),
            };
            match reply {
                Ok(Some(resp)) if done => return Ok(resp),
                Ok(None) if !done => {}
                Ok(_) => {
                    return Err(StreamingError::Network(NetworkError::from_string(
                        "the follower answered a snapshot chunk out of turn",
                    )));
                }
                Err(fatal) => return Err(StreamingError::Network(NetworkError::new(&fatal))),
            }
        }
        Err(StreamingError::Network(NetworkError::from_string(
            "a snapshot transfer ended without a final chunk",
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refused_connection_counts_as_not_sent() {
        // A port that was free a moment ago: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let node = PeerNode {
            peer_urls: vec![format!("http://127.0.0.1:{port}")],
        };
        let err = Network::default()
            .forward(&node, &ForwardRequest::ReadIndex, Duration::from_secs(2))
            .await
            .expect_err("nothing listens there");
        assert!(
            err.not_sent(),
            "a refused connection must be retryable: {err}"
        );
        let timeout = PeerError::Call {
            url: "http://x:1".into(),
            status: tonic::Status::deadline_exceeded("Timeout expired"),
        };
        assert!(
            !timeout.not_sent(),
            "a timed-out call may have been acted on"
        );
    }
}
