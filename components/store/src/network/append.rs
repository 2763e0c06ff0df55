//! The sending side of the lean AppendEntries transport: openraft's `stream_append` over one
//! plain TCP connection per replication target.
//!
//! openraft's replication task (and, separately, its heartbeat worker) calls
//! [`AppendConn::stream`] with a stream of `AppendEntriesRequest`s. Each request is encoded and
//! written to the socket by that same task — no channel buffer task, no HTTP/2 connection task —
//! and the replies, which the follower sends in request order on the same socket, are read back
//! as the returned stream's items. Requests are pipelined: the next one is written while earlier
//! replies are outstanding.
//!
//! The connection is made on the first call and kept while sessions end cleanly (input done,
//! every reply read). Anything else — an I/O error, a reply that does not decode, no progress
//! within the RPC timeout, an append error after which the follower closes, a session dropped
//! with replies outstanding — drops it, and the next call connects again. A connect failure is
//! `Unreachable` (openraft backs off); a failure on an open connection is a `NetworkError`.

use std::collections::VecDeque;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{SinkExt, Stream, StreamExt};
use openraft::error::{NetworkError, RPCError, RemoteError, Unreachable};
use openraft::network::RPCOption;
use openraft::raft::{AppendEntriesRequest, StreamAppendResult};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::Instant;
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};

use super::frame::{AppendReply, MAGIC, codec, decode_body, encode_body};
use crate::types::{NodeId, TypeConfig};

type RpcErr = RPCError<TypeConfig>;
type Item = Result<StreamAppendResult<TypeConfig>, RpcErr>;

/// Why the AppendEntries transport to a peer failed.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The peer URL has no `host:port` to connect to.
    #[error("peer URL {0:?} has no host:port")]
    BadUrl(String),
    /// Connecting (or sending the magic) failed or timed out.
    #[error("connecting to {addr} for AppendEntries")]
    Connect {
        /// `host:port`.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Reading or writing a frame failed.
    #[error("AppendEntries connection to {addr}")]
    Io {
        /// `host:port`.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The follower closed the connection with replies outstanding.
    #[error("{addr} closed the AppendEntries connection with {outstanding} replies outstanding")]
    Closed {
        /// `host:port`.
        addr: String,
        /// Requests without a reply.
        outstanding: usize,
    },
    /// No reply within the RPC timeout.
    #[error("no AppendEntries reply from {addr} within {timeout:?}")]
    Timeout {
        /// `host:port`.
        addr: String,
        /// The timeout.
        timeout: Duration,
    },
    /// A request or reply did not encode/decode.
    #[error("AppendEntries message to/from {addr}")]
    Codec {
        /// `host:port`.
        addr: String,
        /// Why.
        #[source]
        source: super::CodecError,
    },
}

/// One open connection: framed halves.
struct Conn {
    read: FramedRead<OwnedReadHalf, LengthDelimitedCodec>,
    write: FramedWrite<OwnedWriteHalf, LengthDelimitedCodec>,
}

/// The AppendEntries transport to one peer, owned by one openraft network instance.
pub(crate) struct AppendConn {
    target: NodeId,
    /// `host:port` of the peer listener.
    addr: Option<String>,
    url: Option<String>,
    conn: Option<Conn>,
}

impl AppendConn {
    /// For the peer at `url` (its first peer URL; `None` if it has none).
    pub(crate) fn new(target: NodeId, url: Option<String>) -> Self {
        let addr = url
            .as_deref()
            .and_then(crate::config::parse_url)
            .map(str::to_string);
        AppendConn {
            target,
            addr,
            url,
            conn: None,
        }
    }

    async fn connect(addr: &str, timeout: Duration) -> Result<Conn, std::io::Error> {
        let go = async {
            let mut s = TcpStream::connect(addr).await?;
            s.set_nodelay(true)?;
            s.write_all(MAGIC).await?;
            Ok::<_, std::io::Error>(s)
        };
        let s = tokio::time::timeout(timeout, go).await.map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")
        })??;
        let (r, w) = s.into_split();
        Ok(Conn {
            read: FramedRead::new(r, codec()),
            write: FramedWrite::new(w, codec()),
        })
    }

    /// openraft's `stream_append`: connects if needed, then returns the stream of replies.
    pub(crate) fn stream<'s, S>(
        &'s mut self,
        input: S,
        option: RPCOption,
    ) -> BoxFuture<'s, Result<BoxStream<'s, Item>, RpcErr>>
    where
        S: Stream<Item = AppendEntriesRequest<TypeConfig>> + Send + Unpin + 'static,
    {
        Box::pin(async move {
            let Some(addr) = self.addr.clone() else {
                let e = AppendError::BadUrl(self.url.clone().unwrap_or_default());
                return Err(RPCError::Unreachable(Unreachable::new(&e)));
            };
            let ttl = option.hard_ttl();
            if self.conn.is_none() {
                let conn = Self::connect(&addr, option.soft_ttl())
                    .await
                    .map_err(|source| {
                        let e = AppendError::Connect {
                            addr: addr.clone(),
                            source,
                        };
                        RPCError::Unreachable(Unreachable::new(&e))
                    })?;
                tracing::debug!(target = self.target, %addr, "AppendEntries connection open");
                self.conn = Some(conn);
            }
            let session = Session {
                conn: self.conn.take(),
                slot: &mut self.conn,
                target: self.target,
                addr,
                input,
                input_done: false,
                sent: VecDeque::new(),
                ttl,
                deadline: None,
            };
            let s: BoxStream<'s, Item> =
                Box::pin(futures::stream::unfold(session, |mut s| async move {
                    s.next_item().await.map(|i| (i, s))
                }));
            Ok(s)
        })
    }
}

/// One `stream_append` call. Holds the connection while it runs and puts it back in `slot`
/// only when it ends cleanly; dropped any other way, the connection closes with it.
struct Session<'s, S> {
    conn: Option<Conn>,
    slot: &'s mut Option<Conn>,
    target: NodeId,
    addr: String,
    input: S,
    input_done: bool,
    /// (last index, entries) of each request without a reply yet, oldest first.
    sent: VecDeque<(u64, usize)>,
    ttl: Duration,
    /// When the oldest outstanding reply is overdue (reset by every reply).
    deadline: Option<Instant>,
}

impl<S> Session<'_, S>
where
    S: Stream<Item = AppendEntriesRequest<TypeConfig>> + Unpin,
{
    /// Ends the session with `e`: the connection is dropped.
    fn fail(&mut self, e: AppendError) -> Option<Item> {
        tracing::debug!(target = self.target, error = %e, "AppendEntries stream failed");
        self.conn = None;
        Some(Err(RPCError::Network(NetworkError::new(&e))))
    }

    async fn next_item(&mut self) -> Option<Item> {
        loop {
            let conn = self.conn.as_mut()?;
            if self.input_done && self.sent.is_empty() {
                *self.slot = self.conn.take();
                return None;
            }
            let deadline = self.deadline.unwrap_or_else(Instant::now);
            tokio::select! {
                biased;
                frame = conn.read.next(), if !self.sent.is_empty() => {
                    return self.on_reply(frame);
                }
                () = tokio::time::sleep_until(deadline), if !self.sent.is_empty() => {
                    let e = AppendError::Timeout { addr: self.addr.clone(), timeout: self.ttl };
                    return self.fail(e);
                }
                req = self.input.next(), if !self.input_done => {
                    let Some(req) = req else {
                        self.input_done = true;
                        continue;
                    };
                    let last = req.entries.last().map_or(0, |e| e.log_id.index);
                    let n = req.entries.len();
                    let body = match encode_body(&req) {
                        Ok(b) => b,
                        Err(source) => {
                            return self.fail(AppendError::Codec { addr: self.addr.clone(), source });
                        }
                    };
                    crate::timing::mark("ae_send", last, n);
                    let sent = tokio::time::timeout(self.ttl, conn.write.send(body)).await;
                    let err = match sent {
                        Ok(Ok(())) => None,
                        Ok(Err(e)) => Some(e),
                        Err(_) => Some(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "write timed out",
                        )),
                    };
                    if let Some(source) = err {
                        return self.fail(AppendError::Io { addr: self.addr.clone(), source });
                    }
                    if self.sent.is_empty() {
                        self.deadline = Some(Instant::now() + self.ttl);
                    }
                    self.sent.push_back((last, n));
                }
            }
        }
    }

    fn on_reply(&mut self, frame: Option<std::io::Result<bytes::BytesMut>>) -> Option<Item> {
        let addr = self.addr.clone();
        let body = match frame {
            Some(Ok(b)) => b,
            Some(Err(source)) => return self.fail(AppendError::Io { addr, source }),
            None => {
                let outstanding = self.sent.len();
                return self.fail(AppendError::Closed { addr, outstanding });
            }
        };
        let reply: AppendReply = match decode_body(&body) {
            Ok(r) => r,
            Err(source) => return self.fail(AppendError::Codec { addr, source }),
        };
        let (last, n) = self.sent.pop_front().expect("a reply is outstanding");
        crate::timing::mark("ae_reply", last, n);
        self.deadline = Some(Instant::now() + self.ttl);
        match reply {
            Ok(Ok(matching)) => Some(Ok(Ok(matching))),
            Ok(Err(append_err)) => {
                // The follower ends its side after an append error; so do we.
                self.conn = None;
                Some(Ok(Err(append_err)))
            }
            Err(fatal) => {
                self.conn = None;
                let e = RemoteError::<TypeConfig, _>::new(self.target, fatal);
                Some(Err(RPCError::Unreachable(Unreachable::new(&e))))
            }
        }
    }
}
