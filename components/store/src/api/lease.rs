//! etcd's Lease service: grant, revoke, keep-alive (a stream), time-to-live, list.

use etcd_client::proto::{
    PbLeaseGrantRequest, PbLeaseGrantResponse, PbLeaseKeepAliveRequest, PbLeaseKeepAliveResponse,
    PbLeaseLeasesRequest, PbLeaseLeasesResponse, PbLeaseRevokeRequest, PbLeaseRevokeResponse,
    PbLeaseService, PbLeaseStatus, PbLeaseTimeToLiveRequest, PbLeaseTimeToLiveResponse,
};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::{Api, status_of_apply, status_of_node};
use crate::node::NodeError;
use crate::types::Request as Cmd;

#[tonic::async_trait]
impl PbLeaseService for Api {
    async fn lease_grant(
        &self,
        req: Request<PbLeaseGrantRequest>,
    ) -> Result<Response<PbLeaseGrantResponse>, Status> {
        let req = req.into_inner();
        if req.id < 0 {
            return Err(Status::invalid_argument(
                "etcdserver: lease id must be positive",
            ));
        }
        let (id, resp) = self
            .node
            .lease_grant(req.id, req.ttl)
            .await
            .map_err(status_of_node)?;
        let ttl = match resp.result.map_err(status_of_apply)? {
            crate::types::Outcome::LeaseGranted(ttl) => ttl,
            o => return Err(Status::internal(format!("unexpected outcome {o:?}"))),
        };
        Ok(Response::new(PbLeaseGrantResponse {
            header: self.header(resp.revision),
            id,
            ttl,
            error: String::new(),
        }))
    }

    async fn lease_revoke(
        &self,
        req: Request<PbLeaseRevokeRequest>,
    ) -> Result<Response<PbLeaseRevokeResponse>, Status> {
        let id = req.into_inner().id;
        let resp = self
            .node
            .write(Cmd::LeaseRevoke(id))
            .await
            .map_err(status_of_node)?;
        resp.result.map_err(status_of_apply)?;
        Ok(Response::new(PbLeaseRevokeResponse {
            header: self.header(resp.revision),
        }))
    }

    type LeaseKeepAliveStream = ReceiverStream<Result<PbLeaseKeepAliveResponse, Status>>;

    async fn lease_keep_alive(
        &self,
        req: Request<Streaming<PbLeaseKeepAliveRequest>>,
    ) -> Result<Response<Self::LeaseKeepAliveStream>, Status> {
        let mut inbound = req.into_inner();
        let (tx, rx) = mpsc::channel(16);
        let api = self.clone();
        tokio::spawn(async move {
            while let Some(Ok(req)) = inbound.next().await {
                let reply = match api.node.keep_alive(req.id).await {
                    Ok(ttl) => Ok(ttl),
                    // etcd answers a keep-alive of an unknown (expired) lease with TTL 0.
                    Err(NodeError::LeaseNotFound) => Ok(0),
                    Err(e) => Err(status_of_node(e)),
                };
                let msg = reply.map(|ttl| PbLeaseKeepAliveResponse {
                    header: api.current_header(),
                    id: req.id,
                    ttl,
                });
                let fatal = msg.is_err();
                if tx.send(msg).await.is_err() || fatal {
                    return;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn lease_time_to_live(
        &self,
        req: Request<PbLeaseTimeToLiveRequest>,
    ) -> Result<Response<PbLeaseTimeToLiveResponse>, Status> {
        let req = req.into_inner();
        let (ttl, granted_ttl) = match self.node.time_to_live(req.id).await {
            Ok(t) => t,
            // etcd reports an unknown lease as TTL -1, not as an error.
            Err(NodeError::LeaseNotFound) => (-1, 0),
            Err(e) => return Err(status_of_node(e)),
        };
        let keys = if req.keys && ttl >= 0 {
            self.node.read(|d| {
                d.mvcc
                    .leases()
                    .get(&req.id)
                    .map(|l| l.keys.iter().cloned().collect())
                    .unwrap_or_default()
            })
        } else {
            Vec::new()
        };
        Ok(Response::new(PbLeaseTimeToLiveResponse {
            header: self.current_header(),
            id: req.id,
            ttl,
            granted_ttl,
            keys,
        }))
    }

    async fn lease_leases(
        &self,
        _req: Request<PbLeaseLeasesRequest>,
    ) -> Result<Response<PbLeaseLeasesResponse>, Status> {
        self.node.read_barrier().await.map_err(status_of_node)?;
        let leases = self.node.read(|d| {
            d.mvcc
                .leases()
                .keys()
                .map(|id| PbLeaseStatus { id: *id })
                .collect()
        });
        Ok(Response::new(PbLeaseLeasesResponse {
            header: self.current_header(),
            leases,
        }))
    }
}
