//! Range reads: the one call every read of the storage layer goes through (gets, list
//! batches, counts, revision checks), for all three backends.
//!
//! A [`RangeRequest`] says what to read; [`Kv::range`] runs it and answers with the etcd
//! client's [`GetResponse`] either way, so the callers (`Store::get`, `ListCursor`, ...) are
//! one code path:
//!
//! - [`Kv::Grpc`]: the etcd v3 `Range` over gRPC — a real etcd, a kubelab store cluster,
//!   or the embedded member through its in-process gRPC services.
//! - [`Kv::Direct`]: the embedded member's Range called directly
//!   ([`kubelab_store::DirectKv`]): the same handler code (linearizable read, MVCC read,
//!   error statuses) without the protobuf encode in the store, tonic's codec and the decode
//!   here — about 45 % of a list's server CPU before (docs/benchmarks.md, "List CPU, part 3").
//!   Errors arrive as the same `tonic::Status` the gRPC path turns into
//!   [`etcd_client::Error::GRpcStatus`], so the mapping to [`super::StorageError`]
//!   (compacted → 410, future revision) is shared too.
//!
//! Transactions (every write) take the same two paths (`storage/txn.rs`); watches and
//! compaction always take gRPC.

use std::time::Duration;

use etcd_client::proto::PbRangeRequest;
use etcd_client::{GetOptions, GetResponse, KvClient};

/// How long a direct range may take (the gRPC client's request timeout, `connect_options`).
const DIRECT_TIMEOUT: Duration = Duration::from_secs(30);

/// One range read (the fields of etcd's `RangeRequest` the API server uses).
#[derive(Debug, Clone, Default)]
pub(crate) struct RangeRequest {
    /// First key (or the only key, when `end` is empty).
    pub key: Vec<u8>,
    /// End of the range, exclusive; empty for the single key `key`.
    pub end: Vec<u8>,
    /// At most this many key-values; 0 for all.
    pub limit: i64,
    /// Read at this revision; 0 for the latest.
    pub revision: i64,
    /// Read the member's applied state without a read-index round.
    pub serializable: bool,
    /// Only the count (and the header's revision).
    pub count_only: bool,
    /// Keys without values.
    pub keys_only: bool,
}

impl RangeRequest {
    /// The single key `key`.
    pub fn key(key: impl Into<Vec<u8>>) -> RangeRequest {
        RangeRequest {
            key: key.into(),
            ..RangeRequest::default()
        }
    }

    /// Every key in `[key, end)`.
    pub fn span(key: impl Into<Vec<u8>>, end: Vec<u8>) -> RangeRequest {
        RangeRequest {
            key: key.into(),
            end,
            ..RangeRequest::default()
        }
    }

    fn options(&self) -> GetOptions {
        let mut o = GetOptions::new()
            .with_limit(self.limit)
            .with_revision(self.revision);
        if !self.end.is_empty() {
            o = o.with_range(self.end.clone());
        }
        if self.serializable {
            o = o.with_serializable();
        }
        if self.count_only {
            o = o.with_count_only();
        }
        if self.keys_only {
            o = o.with_keys_only();
        }
        o
    }

    fn into_pb(self) -> PbRangeRequest {
        PbRangeRequest {
            key: self.key,
            range_end: self.end,
            limit: self.limit,
            revision: self.revision,
            serializable: self.serializable,
            keys_only: self.keys_only,
            count_only: self.count_only,
            ..PbRangeRequest::default()
        }
    }
}

/// Where the storage layer's range reads and transactions go (`txn.rs` adds [`Kv::txn`]).
#[derive(Clone)]
pub(crate) enum Kv {
    /// The etcd v3 KV service over gRPC.
    Grpc(Box<KvClient>),
    /// The embedded member's Range and Txn, called in process without the codec.
    Direct(kubelab_store::DirectKv),
}

impl Kv {
    /// Runs one range read.
    pub async fn range(&self, req: RangeRequest) -> Result<GetResponse, etcd_client::Error> {
        match self {
            Kv::Grpc(kv) => {
                let options = req.options();
                kv.as_ref().clone().get(req.key, Some(options)).await
            }
            Kv::Direct(direct) => direct_call("range", direct.range(req.into_pb()))
                .await
                .map(GetResponse),
        }
    }
}

/// Awaits one direct call on the embedded member (`what` names it in the timeout error), with
/// the gRPC client's request timeout, and turns its `tonic::Status` into the error the gRPC
/// path gives, so both paths share one error mapping.
pub(crate) async fn direct_call<T>(
    what: &str,
    call: impl std::future::Future<Output = Result<T, tonic::Status>>,
) -> Result<T, etcd_client::Error> {
    match tokio::time::timeout(DIRECT_TIMEOUT, call).await {
        Ok(r) => r.map_err(etcd_client::Error::GRpcStatus),
        Err(_) => Err(etcd_client::Error::GRpcStatus(
            tonic::Status::deadline_exceeded(format!(
                "embedded store {what} took over {DIRECT_TIMEOUT:?}"
            )),
        )),
    }
}

#[cfg(test)]
mod tests;
