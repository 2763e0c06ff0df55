//! etcd's Maintenance service: Status (what `etcdctl endpoint status` shows) and an empty alarm
//! list; the rest answers Unimplemented.

use etcd_client::proto::{
    PbAlarmRequest, PbAlarmResponse, PbDefragmentRequest, PbDefragmentResponse, PbDowngradeRequest,
    PbDowngradeResponse, PbHashKvRequest, PbHashKvResponse, PbHashRequest, PbHashResponse,
    PbMaintenanceService, PbMoveLeaderRequest, PbMoveLeaderResponse, PbSnapshotRequest,
    PbSnapshotResponse, PbStatusRequest, PbStatusResponse,
};
use openraft::async_runtime::watch::WatchReceiver;
use tonic::{Request, Response, Status};

use super::Api;

/// The etcd API version this store speaks (what `endpoint status` prints as VERSION).
pub(crate) const API_VERSION: &str = "3.4.0";

#[tonic::async_trait]
impl PbMaintenanceService for Api {
    async fn alarm(
        &self,
        _req: Request<PbAlarmRequest>,
    ) -> Result<Response<PbAlarmResponse>, Status> {
        Ok(Response::new(PbAlarmResponse {
            header: self.current_header(),
            alarms: vec![],
        }))
    }

    async fn status(
        &self,
        _req: Request<PbStatusRequest>,
    ) -> Result<Response<PbStatusResponse>, Status> {
        let m = self.node.raft.metrics().borrow_watched().clone();
        let is_learner = !m
            .membership_config
            .membership()
            .voter_ids()
            .any(|v| v == self.node.id);
        let db_size = self.node.db_size() as i64;
        let mut errors = Vec::new();
        if let Err(e) = &m.running_state {
            errors.push(e.to_string());
        }
        if m.current_leader.is_none() {
            errors.push("etcdserver: no leader".into());
        }
        Ok(Response::new(PbStatusResponse {
            header: self.current_header(),
            version: API_VERSION.into(),
            db_size,
            leader: m.current_leader.unwrap_or(0),
            raft_index: m.last_log_index.unwrap_or(0),
            raft_term: m.current_term,
            raft_applied_index: m.last_applied.map_or(0, |l| l.index),
            errors,
            db_size_in_use: db_size,
            is_learner,
            ..Default::default()
        }))
    }

    async fn defragment(
        &self,
        _req: Request<PbDefragmentRequest>,
    ) -> Result<Response<PbDefragmentResponse>, Status> {
        Err(Status::unimplemented(
            "defragment is not needed: the log engine compacts in the background",
        ))
    }

    async fn hash(&self, _req: Request<PbHashRequest>) -> Result<Response<PbHashResponse>, Status> {
        Err(Status::unimplemented("hash is not supported"))
    }

    async fn hash_kv(
        &self,
        _req: Request<PbHashKvRequest>,
    ) -> Result<Response<PbHashKvResponse>, Status> {
        Err(Status::unimplemented("hash kv is not supported"))
    }

    type SnapshotStream = futures::stream::BoxStream<'static, Result<PbSnapshotResponse, Status>>;

    async fn snapshot(
        &self,
        _req: Request<PbSnapshotRequest>,
    ) -> Result<Response<Self::SnapshotStream>, Status> {
        Err(Status::unimplemented("snapshot download is not supported"))
    }

    async fn move_leader(
        &self,
        _req: Request<PbMoveLeaderRequest>,
    ) -> Result<Response<PbMoveLeaderResponse>, Status> {
        Err(Status::unimplemented("move leader is not supported"))
    }

    async fn downgrade(
        &self,
        _req: Request<PbDowngradeRequest>,
    ) -> Result<Response<PbDowngradeResponse>, Status> {
        Err(Status::unimplemented("downgrade is not supported"))
    }
}
