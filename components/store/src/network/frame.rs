//! Wire format of the lean AppendEntries transport (see `append.rs` and `append_server.rs`).
//!
//! A connection on the peer port starts with [`MAGIC`]; everything else that arrives there is
//! the gRPC peer service's HTTP/2 (whose client preface is `PRI * HTTP/2.0…`). After the magic,
//! both directions carry frames: a 4-byte big-endian length, then that many bytes of
//! MessagePack — on the way out one `AppendEntriesRequest` each, on the way back one
//! [`AppendReply`] per request, in request order. A frame longer than [`MAX_PEER_MESSAGE`] is
//! refused by the codec before its body is read.

use bytes::Bytes;
use serde::{Serialize, de::DeserializeOwned};
use tokio_util::codec::LengthDelimitedCodec;

use super::{CodecError, MAX_PEER_MESSAGE};
use crate::types::TypeConfig;

/// The first bytes a client of the AppendEntries transport sends. Not a prefix of the HTTP/2
/// client preface (which starts with `PRI`), so the peer listener can tell the two apart.
pub const MAGIC: &[u8] = b"kubelab-append/1\n";

/// What the follower answers per request: openraft's stream result, or its fatal error (the
/// follower's Raft stopped), after which the follower closes the connection.
pub(crate) type AppendReply =
    Result<openraft::raft::StreamAppendResult<TypeConfig>, openraft::error::Fatal<TypeConfig>>;

/// The length-delimited codec both sides use, capped at [`MAX_PEER_MESSAGE`].
pub(crate) fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(4)
        .max_frame_length(MAX_PEER_MESSAGE)
        .new_codec()
}

/// Encodes one frame body.
pub(crate) fn encode_body<T: Serialize>(v: &T) -> Result<Bytes, CodecError> {
    Ok(Bytes::from(rmp_serde::to_vec(v)?))
}

/// Decodes one frame body.
pub(crate) fn decode_body<T: DeserializeOwned>(b: &[u8]) -> Result<T, CodecError> {
    Ok(rmp_serde::from_slice(b)?)
}

/// What the first bytes of a connection to the peer port say it is.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Sniffed {
    /// The AppendEntries transport ([`MAGIC`] complete).
    Append,
    /// Anything else: handed to the gRPC server, which speaks (or refuses) HTTP/2.
    Grpc,
    /// Too few bytes yet to tell.
    NeedMore,
}

/// Classifies a connection by the bytes seen so far (peeked, not consumed).
pub(crate) fn sniff(first: &[u8]) -> Sniffed {
    let n = first.len().min(MAGIC.len());
    if first[..n] != MAGIC[..n] {
        Sniffed::Grpc
    } else if n == MAGIC.len() {
        Sniffed::Append
    } else {
        Sniffed::NeedMore
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use openraft::raft::{AppendEntriesRequest, StreamAppendError};
    use tokio_util::codec::{Decoder, Encoder};

    use crate::types::{Entry, LogId, Vote};

    fn log_id(term: u64, index: u64) -> LogId {
        LogId::new(
            openraft::impls::leader_id_adv::LeaderId { term, node_id: 1 },
            index,
        )
    }

    #[test]
    fn the_magic_and_the_http2_preface_are_told_apart() {
        assert_eq!(sniff(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), Sniffed::Grpc);
        assert_eq!(sniff(b""), Sniffed::NeedMore);
        assert_eq!(sniff(&MAGIC[..5]), Sniffed::NeedMore);
        assert_eq!(sniff(MAGIC), Sniffed::Append);
        let mut more = MAGIC.to_vec();
        more.extend_from_slice(&[0, 0, 0, 3]);
        assert_eq!(sniff(&more), Sniffed::Append);
        assert_eq!(
            sniff(b"kubelab-appenX"),
            Sniffed::Grpc,
            "diverges from the magic"
        );
        assert_eq!(sniff(b"GET / HTTP/1.1\r\n"), Sniffed::Grpc);
    }

    #[test]
    fn requests_and_replies_round_trip_through_frames() {
        let req = AppendEntriesRequest::<TypeConfig> {
            vote: Vote::new_committed(3, 1),
            prev_log_id: Some(log_id(3, 9)),
            leader_commit: Some(log_id(3, 8)),
            entries: vec![Entry {
                log_id: log_id(3, 10),
                payload: openraft::EntryPayload::Blank,
            }],
        };
        let replies: Vec<AppendReply> = vec![
            Ok(Ok(Some(log_id(3, 10)))),
            Ok(Ok(None)),
            Ok(Err(StreamAppendError::Conflict(log_id(2, 9)))),
            Ok(Err(StreamAppendError::HigherVote(Vote::new(4, 2)))),
        ];
        let mut c = codec();
        let mut wire = BytesMut::new();
        c.encode(encode_body(&req).unwrap(), &mut wire).unwrap();
        for r in &replies {
            c.encode(encode_body(r).unwrap(), &mut wire).unwrap();
        }
        // Split in the middle of a frame: nothing is returned until the rest arrives.
        let mut first = wire.split_to(7);
        assert!(c.decode(&mut first).unwrap().is_none());
        first.unsplit(wire);
        let mut wire = first;
        let got: AppendEntriesRequest<TypeConfig> =
            decode_body(&c.decode(&mut wire).unwrap().unwrap()).unwrap();
        assert_eq!(got.vote, req.vote);
        assert_eq!(got.prev_log_id, req.prev_log_id);
        assert_eq!(got.leader_commit, req.leader_commit);
        assert_eq!(got.entries.len(), 1);
        assert_eq!(got.entries[0].log_id, log_id(3, 10));
        for want in &replies {
            let got: AppendReply = decode_body(&c.decode(&mut wire).unwrap().unwrap()).unwrap();
            assert_eq!(&got, want);
        }
        assert!(wire.is_empty());
    }

    #[test]
    fn an_oversize_length_is_refused_before_the_body_arrives() {
        let mut c = codec();
        let mut wire = BytesMut::new();
        wire.extend_from_slice(&((MAX_PEER_MESSAGE as u32) + 1).to_be_bytes());
        wire.extend_from_slice(b"abc");
        let err = c.decode(&mut wire).expect_err("over the cap");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
    }

    #[test]
    fn garbage_does_not_decode_as_a_request() {
        let r = decode_body::<AppendEntriesRequest<TypeConfig>>(b"\xc1\xff garbage");
        assert!(r.is_err());
    }
}
