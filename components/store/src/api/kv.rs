//! etcd's KV service: Range, Put, DeleteRange, Txn, Compact.
//!
//! Range and Txn also have direct entries ([`Api::range_direct`], [`Api::txn_direct`],
//! exposed through [`DirectKv`]) for a client in the same process: the same code as the gRPC
//! handlers, without the protobuf encode/decode and tonic's codec in between.

use etcd_client::proto::{
    PbCompactionRequest, PbCompactionResponse, PbDeleteRequest, PbDeleteResponse, PbKvService,
    PbPutRequest, PbPutResponse, PbRangeRequest, PbRangeResponse, PbRangeStreamResponse,
    PbTxnRequest, PbTxnResponse,
};
use tonic::{Request, Response, Status};

use super::{Api, max_message, status_of_apply, status_of_node};
use crate::types::{Outcome, Request as Cmd};

impl Api {
    /// Proposes a command and returns its applied outcome and revision.
    async fn propose(&self, cmd: Cmd) -> Result<(Outcome, i64), Status> {
        let resp = self.node.write(cmd).await.map_err(status_of_node)?;
        let outcome = resp.result.map_err(status_of_apply)?;
        Ok((outcome, resp.revision))
    }
}

impl Api {
    /// The Range call itself, shared by the gRPC handler and
    /// [`crate::RunningStore::range`]: validate, wait for the linearizable read point unless
    /// `serializable`, read the MVCC state at the requested revision. Errors are the gRPC
    /// statuses etcd answers with (e.g. `OutOfRange` "mvcc: required revision has been
    /// compacted").
    pub(crate) async fn range_direct(
        &self,
        req: PbRangeRequest,
    ) -> Result<PbRangeResponse, Status> {
        let serializable = req.serializable;
        let range = self.range_from_pb(req)?;
        if !serializable {
            self.node.read_barrier().await.map_err(status_of_node)?;
        }
        let (result, rev) = self
            .node
            .read(|d| (d.mvcc.range(&range), d.mvcc.revision()));
        Ok(self.range_to_pb(result.map_err(status_of_apply)?, rev))
    }
}

impl Api {
    /// The Txn call itself, shared by the gRPC handler and [`DirectKv::txn`]: validate
    /// (operation count, empty keys, request size), propose through Raft, answer with the
    /// applied outcome at its revision. A request the gRPC service would refuse to decode for
    /// its size is refused here with the same status (tonic's `OutOfRange`), so both paths
    /// accept exactly the same requests.
    pub(crate) async fn txn_direct(&self, req: PbTxnRequest) -> Result<PbTxnResponse, Status> {
        let txn = self.txn_from_pb(req)?;
        match self.propose(Cmd::Txn(txn)).await? {
            (Outcome::Txn(t), rev) => Ok(self.txn_to_pb(t, rev)),
            (o, _) => Err(unexpected(o)),
        }
    }

    /// The status tonic's decoder answers a message over the services' limit with (the
    /// direct entries skip the decoder, so they check the request's encoded size here).
    fn check_message_size(&self, req: &impl prost::Message) -> Result<(), Status> {
        let len = req.encoded_len();
        let limit = max_message(self.max_request_bytes);
        if len > limit {
            return Err(Status::out_of_range(format!(
                "Error, decoded message length too large: found {len} bytes, the limit is: \
                 {limit} bytes"
            )));
        }
        Ok(())
    }
}

fn unexpected(o: Outcome) -> Status {
    Status::internal(format!("unexpected outcome {o:?}"))
}

#[tonic::async_trait]
impl PbKvService for Api {
    async fn range(
        &self,
        req: Request<PbRangeRequest>,
    ) -> Result<Response<PbRangeResponse>, Status> {
        self.range_direct(req.into_inner()).await.map(Response::new)
    }

    type RangeStreamStream =
        futures::stream::BoxStream<'static, Result<PbRangeStreamResponse, Status>>;

    async fn range_stream(
        &self,
        _req: Request<PbRangeRequest>,
    ) -> Result<Response<Self::RangeStreamStream>, Status> {
        Err(Status::unimplemented(
            "RangeStream is not served; use Range",
        ))
    }

    async fn put(&self, req: Request<PbPutRequest>) -> Result<Response<PbPutResponse>, Status> {
        crate::timing::mark("grpc_put", 0, 0);
        let put = self.put_from_pb(req.into_inner())?;
        let r = match self.propose(Cmd::Put(put)).await? {
            (Outcome::Put(prev), rev) => Ok(Response::new(self.put_to_pb(prev, rev))),
            (o, _) => Err(unexpected(o)),
        };
        crate::timing::mark("grpc_reply", 0, 0);
        r
    }

    async fn delete_range(
        &self,
        req: Request<PbDeleteRequest>,
    ) -> Result<Response<PbDeleteResponse>, Status> {
        let del = self.delete_from_pb(req.into_inner())?;
        match self.propose(Cmd::DeleteRange(del)).await? {
            (Outcome::Delete(n, prev), rev) => Ok(Response::new(self.delete_to_pb(n, prev, rev))),
            (o, _) => Err(unexpected(o)),
        }
    }

    async fn txn(&self, req: Request<PbTxnRequest>) -> Result<Response<PbTxnResponse>, Status> {
        self.txn_direct(req.into_inner()).await.map(Response::new)
    }

    async fn compact(
        &self,
        req: Request<PbCompactionRequest>,
    ) -> Result<Response<PbCompactionResponse>, Status> {
        let rev = req.into_inner().revision;
        match self.propose(Cmd::Compact(rev)).await? {
            (Outcome::Compacted, rev) => Ok(Response::new(PbCompactionResponse {
                header: self.header(rev),
            })),
            (o, _) => Err(unexpected(o)),
        }
    }
}

/// A member's KV Range and Txn for a client in the same process (the API server's embedded
/// store): exactly what the gRPC `Range` and `Txn` handlers run — same validation, same
/// linearizable read (read index round unless `serializable`), same Raft proposal for a txn,
/// same MVCC read or apply, same error statuses — with request and response handed over as
/// values instead of being protobuf-encoded, sent through tonic's codec and decoded again.
/// Cheap to clone. Watches, leases and the other services stay on gRPC
/// ([`crate::RunningStore::in_process_api`]).
#[derive(Clone)]
pub struct DirectKv {
    api: Api,
}

impl DirectKv {
    pub(crate) fn new(api: Api) -> DirectKv {
        DirectKv { api }
    }

    /// Runs a Range request; the error is the status the gRPC service would answer with.
    pub async fn range(&self, req: PbRangeRequest) -> Result<PbRangeResponse, Status> {
        self.api.range_direct(req).await
    }

    /// Runs a Txn request (compares, then the success or failure operations, in one Raft
    /// entry); the error is the status the gRPC service would answer with, including its
    /// refusal of a message over the size limit.
    pub async fn txn(&self, req: PbTxnRequest) -> Result<PbTxnResponse, Status> {
        self.api.check_message_size(&req)?;
        self.api.txn_direct(req).await
    }
}
