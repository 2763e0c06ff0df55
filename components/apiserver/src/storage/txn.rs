//! Transactions: the one call every write of the storage layer goes through (create, update,
//! delete, with their guards and markers), for all three backends.
//!
//! [`Kv::txn`] runs an etcd client [`Txn`] and answers with the client's [`TxnResponse`]
//! either way, so `Store::create_guarded`, `Store::update` and `Store::delete` (compares,
//! failure branch, explaining a failed compare) are one code path:
//!
//! - [`Kv::Grpc`]: the etcd v3 `Txn` over gRPC — a real etcd, a kubelab store cluster,
//!   or the embedded member through its in-process gRPC services.
//! - [`Kv::Direct`]: the embedded member's Txn called directly
//!   ([`kubelab_store::DirectKv::txn`]): the same handler code (validation, Raft proposal,
//!   apply, error statuses, the size limit) without the protobuf encode of the request here,
//!   tonic's codec both ways and the decode of the response in the store and here. Errors
//!   arrive as the same `tonic::Status` the gRPC path turns into
//!   [`etcd_client::Error::GRpcStatus`], so their mapping is shared too.

use etcd_client::proto::PbTxnRequest;
use etcd_client::{Txn, TxnResponse};

use super::range::Kv;

impl Kv {
    /// Runs one transaction.
    pub async fn txn(&self, txn: Txn) -> Result<TxnResponse, etcd_client::Error> {
        match self {
            Kv::Grpc(kv) => kv.as_ref().clone().txn(txn).await,
            Kv::Direct(direct) => {
                super::range::direct_call("txn", direct.txn(PbTxnRequest::from(txn)))
                    .await
                    .map(TxnResponse)
            }
        }
    }
}

#[cfg(test)]
mod tests;
