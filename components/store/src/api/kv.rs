//! etcd's KV service: Range, Put, DeleteRange, Txn, Compact.

use etcd_client::proto::{
    PbCompactionRequest, PbCompactionResponse, PbDeleteRequest, PbDeleteResponse, PbKvService,
    PbPutRequest, PbPutResponse, PbRangeRequest, PbRangeResponse, PbRangeStreamResponse,
    PbTxnRequest, PbTxnResponse,
};
use tonic::{Request, Response, Status};

use super::{Api, status_of_apply, status_of_node};
use crate::types::{Outcome, Request as Cmd};

impl Api {
    /// Proposes a command and returns its applied outcome and revision.
    async fn propose(&self, cmd: Cmd) -> Result<(Outcome, i64), Status> {
        let resp = self.node.write(cmd).await.map_err(status_of_node)?;
        let outcome = resp.result.map_err(status_of_apply)?;
        Ok((outcome, resp.revision))
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
        let req = req.into_inner();
        let serializable = req.serializable;
        let range = self.range_from_pb(req)?;
        if !serializable {
            self.node.read_barrier().await.map_err(status_of_node)?;
        }
        let (result, rev) = self
            .node
            .read(|d| (d.mvcc.range(&range), d.mvcc.revision()));
        Ok(Response::new(
            self.range_to_pb(result.map_err(status_of_apply)?, rev),
        ))
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
        let txn = self.txn_from_pb(req.into_inner())?;
        match self.propose(Cmd::Txn(txn)).await? {
            (Outcome::Txn(t), rev) => Ok(Response::new(self.txn_to_pb(t, rev))),
            (o, _) => Err(unexpected(o)),
        }
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
