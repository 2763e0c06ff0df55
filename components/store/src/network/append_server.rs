//! The peer listener: one port, two protocols, told apart by a connection's first bytes.
//!
//! 1. [`serve_peer_port`] accepts every connection (Nagle off) and hands it to a short task
//!    that peeks (does not consume) its first bytes.
//! 2. [`frame::MAGIC`](super::frame::MAGIC) → the AppendEntries transport: [`serve_append`]
//!    runs one task for the connection. openraft's [`Raft::stream_append`] reads the decoded
//!    requests straight off the socket (in its own pipeline task) and submits each to the Raft
//!    core; this task writes the replies back in order as they resolve. No per-request task.
//! 3. Anything else (the HTTP/2 client preface of the gRPC peer service, or junk) goes to the
//!    tonic server through a channel of accepted connections.
//!
//! A frame over [`MAX_PEER_MESSAGE`](super::MAX_PEER_MESSAGE) or a body that is not an
//! `AppendEntriesRequest` ends the input: the requests before it are answered, the bad one is
//! never handed to Raft, a warning names the peer, and the connection is closed; the member
//! keeps serving. The trust model is the peer port's: no authentication, peers are on a trusted
//! network (as for the gRPC peer service and etcd's plain-HTTP peer URLs).
//!
//! [`Raft::stream_append`]: openraft::Raft::stream_append

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_util::codec::{FramedRead, FramedWrite};

use super::frame::{AppendReply, MAGIC, Sniffed, codec, decode_body, encode_body, sniff};
use crate::node::Node;
use crate::types::TypeConfig;

/// How long a new connection may take to send its first bytes before it is dropped.
const SNIFF_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts on `listener` until `stop` turns true; returns the stream of HTTP/2 connections for
/// tonic (`serve_with_incoming_shutdown`). The accept loop runs in its own task.
pub(crate) fn serve_peer_port(
    listener: TcpListener,
    node: Arc<Node>,
    stop: watch::Receiver<bool>,
) -> tokio_stream::wrappers::ReceiverStream<std::io::Result<TcpStream>> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(accept_loop(listener, node, stop, tx));
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

async fn accept_loop(
    listener: TcpListener,
    node: Arc<Node>,
    mut stop: watch::Receiver<bool>,
    grpc: mpsc::Sender<std::io::Result<TcpStream>>,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            a = listener.accept() => a,
        };
        let (conn, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: keep the listener, try again shortly.
                tracing::warn!(error = %e, "accepting a peer connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Err(e) = conn.set_nodelay(true) {
            tracing::debug!(%peer, error = %e, "peer connection lost before setup");
            continue;
        }
        let (node, stop, grpc) = (node.clone(), stop.clone(), grpc.clone());
        tokio::spawn(async move {
            match tokio::time::timeout(SNIFF_TIMEOUT, classify(&conn)).await {
                Ok(Ok(Sniffed::Append)) => serve_append(conn, peer, node, stop).await,
                Ok(Ok(_)) => {
                    let _ = grpc.send(Ok(conn)).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "peer connection lost"),
                Err(_) => tracing::debug!(%peer, "peer connection sent nothing; closed"),
            }
        });
    }
}

/// Peeks until the first bytes say which protocol the connection speaks.
async fn classify(conn: &TcpStream) -> std::io::Result<Sniffed> {
    let mut buf = [0u8; 32];
    loop {
        let n = conn.peek(&mut buf[..MAGIC.len()]).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        match sniff(&buf[..n]) {
            Sniffed::NeedMore => {
                // The magic arrived split (rare: it is written in one go); peek returns at
                // once while data is buffered, so wait a little for the rest.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            s => return Ok(s),
        }
    }
}

/// Serves one AppendEntries connection until the peer closes it, a bad frame arrives, an append
/// error or a fatal error is answered, or the member stops.
pub(crate) async fn serve_append(
    mut conn: TcpStream,
    peer: SocketAddr,
    node: Arc<Node>,
    mut stop: watch::Receiver<bool>,
) {
    let mut magic = [0u8; 32];
    if let Err(e) = conn.read_exact(&mut magic[..MAGIC.len()]).await {
        tracing::debug!(%peer, error = %e, "AppendEntries connection lost");
        return;
    }
    tracing::debug!(%peer, "AppendEntries connection");
    let (r, w) = conn.into_split();
    // (last index, entries) of each request handed to Raft, for the timing marks of replies.
    let received: Arc<Mutex<VecDeque<(u64, usize)>>> = Arc::default();
    let input = {
        let received = received.clone();
        futures::stream::unfold(Some(FramedRead::new(r, codec())), move |read| {
            let received = received.clone();
            async move {
                let mut read = read?;
                let req = match read.next().await? {
                    Ok(body) => {
                        decode_body::<openraft::raft::AppendEntriesRequest<TypeConfig>>(&body)
                            .map_err(|e| e.to_string())
                    }
                    Err(e) => Err(e.to_string()),
                };
                match req {
                    Ok(req) => {
                        let last = req.entries.last().map_or(0, |e| e.log_id.index);
                        let n = req.entries.len();
                        crate::timing::mark("ae_recv", last, n);
                        received.lock().expect("timing queue").push_back((last, n));
                        Some((req, Some(read)))
                    }
                    Err(error) => {
                        tracing::warn!(
                            %peer,
                            %error,
                            "refused an AppendEntries frame; closing the connection"
                        );
                        None
                    }
                }
            }
        })
    };
    // The input ends when the member stops, too, so openraft's reading task does not linger.
    let input = input.take_until({
        let mut stop = stop.clone();
        async move {
            let _ = stop.wait_for(|s| *s).await;
        }
    });
    let replies = node.raft.stream_append(input);
    let mut replies = std::pin::pin!(replies);
    let mut write = FramedWrite::new(w, codec());
    loop {
        let reply: AppendReply = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            r = replies.next() => match r {
                Some(r) => r,
                None => break,
            },
        };
        let last_call = !matches!(reply, Ok(Ok(_)));
        let (last, n) = received
            .lock()
            .expect("timing queue")
            .pop_front()
            .unwrap_or((0, 0));
        let body = match encode_body(&reply) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(%peer, error = %e, "encoding an AppendEntries reply");
                break;
            }
        };
        if let Err(e) = write.send(body).await {
            tracing::debug!(%peer, error = %e, "AppendEntries connection lost");
            return;
        }
        crate::timing::mark("ae_done", last, n);
        if last_call {
            break;
        }
    }
    tracing::debug!(%peer, "AppendEntries connection closed");
}
