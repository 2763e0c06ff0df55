//! Transactions: the one call every write of the storage layer goes through (create, update,
//! delete, with their guards and markers), for all three backends.
//!
//! [`Writer::txn`] runs an etcd client [`Txn`] and answers with the client's [`TxnResponse`]
//! either way, so `Store::create_guarded`, `Store::update` and `Store::delete` (compares,
//! failure branch, explaining a failed compare) are one code path:
//!
//! - [`Writer::Grpc`]: the etcd v3 `Txn` over gRPC — a real etcd, a kubelab store cluster,
//!   or the embedded member through its in-process gRPC services.
//! - [`Writer::Direct`]: the embedded member's Txn called directly
//!   ([`kubelab_store::DirectKv::txn`]): the same handler code (validation, Raft proposal,
//!   apply, error statuses, the size limit) without the protobuf encode of the request here,
//!   tonic's codec both ways and the decode of the response in the store and here. Errors
//!   arrive as the same `tonic::Status` the gRPC path turns into
//!   [`etcd_client::Error::GRpcStatus`], so their mapping is shared too.

use etcd_client::proto::PbTxnRequest;
use etcd_client::{KvClient, Txn, TxnResponse};

/// Where transactions go.
#[derive(Clone)]
pub(crate) enum Writer {
    /// The etcd v3 KV service over gRPC.
    Grpc(Box<KvClient>),
    /// The embedded member's Txn, called in process without the codec.
    Direct(kubelab_store::DirectKv),
}

impl Writer {
    /// Runs one transaction.
    pub async fn txn(&self, txn: Txn) -> Result<TxnResponse, etcd_client::Error> {
        match self {
            Writer::Grpc(kv) => kv.as_ref().clone().txn(txn).await,
            Writer::Direct(direct) => {
                super::range::direct_call("txn", direct.txn(PbTxnRequest::from(txn)))
                    .await
                    .map(TxnResponse)
            }
        }
    }
}

#[cfg(test)]
mod tests;
