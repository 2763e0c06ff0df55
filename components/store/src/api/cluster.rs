//! etcd's Cluster service: member list, add, remove, promote.

use etcd_client::proto::{
    PbClusterService, PbMember, PbMemberAddRequest, PbMemberAddResponse, PbMemberListRequest,
    PbMemberListResponse, PbMemberPromoteRequest, PbMemberPromoteResponse, PbMemberRemoveRequest,
    PbMemberRemoveResponse, PbMemberUpdateRequest, PbMemberUpdateResponse,
};
use tonic::{Request, Response, Status};

use super::{Api, status_of_node};
use crate::config::parse_url;

impl Api {
    /// Every member of the applied membership, voters first, with what each published.
    fn members(&self) -> Vec<PbMember> {
        self.node.read(|d| {
            let m = d.membership.membership();
            let voters: Vec<u64> = m.voter_ids().collect();
            let mut out = Vec::new();
            for (id, node) in m.nodes() {
                let attrs = d.mvcc.members().get(id).cloned().unwrap_or_default();
                out.push(PbMember {
                    id: *id,
                    name: attrs.name,
                    peer_ur_ls: node.peer_urls.clone(),
                    client_ur_ls: attrs.client_urls,
                    is_learner: !voters.contains(id),
                });
            }
            out.sort_by_key(|m| m.is_learner);
            out
        })
    }
}

#[tonic::async_trait]
impl PbClusterService for Api {
    async fn member_add(
        &self,
        req: Request<PbMemberAddRequest>,
    ) -> Result<Response<PbMemberAddResponse>, Status> {
        let req = req.into_inner();
        if req.peer_ur_ls.is_empty() {
            return Err(Status::invalid_argument(
                "etcdserver: member add needs peer URLs",
            ));
        }
        if let Some(bad) = req.peer_ur_ls.iter().find(|u| parse_url(u).is_none()) {
            return Err(Status::invalid_argument(format!(
                "etcdserver: peer URL {bad:?} is not http://host:port"
            )));
        }
        let id = self
            .node
            .member_add(req.peer_ur_ls.clone(), req.is_learner)
            .await
            .map_err(status_of_node)?;
        let member = PbMember {
            id,
            name: String::new(),
            peer_ur_ls: req.peer_ur_ls,
            client_ur_ls: vec![],
            is_learner: req.is_learner,
        };
        Ok(Response::new(PbMemberAddResponse {
            header: self.current_header(),
            member: Some(member),
            members: self.members(),
        }))
    }

    async fn member_remove(
        &self,
        req: Request<PbMemberRemoveRequest>,
    ) -> Result<Response<PbMemberRemoveResponse>, Status> {
        self.node
            .member_remove(req.into_inner().id)
            .await
            .map_err(status_of_node)?;
        Ok(Response::new(PbMemberRemoveResponse {
            header: self.current_header(),
            members: self.members(),
        }))
    }

    async fn member_update(
        &self,
        _req: Request<PbMemberUpdateRequest>,
    ) -> Result<Response<PbMemberUpdateResponse>, Status> {
        Err(Status::unimplemented(
            "member update is not supported: remove the member and add it with its new peer URLs",
        ))
    }

    async fn member_list(
        &self,
        req: Request<PbMemberListRequest>,
    ) -> Result<Response<PbMemberListResponse>, Status> {
        if req.into_inner().linearizable {
            self.node.read_barrier().await.map_err(status_of_node)?;
        }
        Ok(Response::new(PbMemberListResponse {
            header: self.current_header(),
            members: self.members(),
        }))
    }

    async fn member_promote(
        &self,
        req: Request<PbMemberPromoteRequest>,
    ) -> Result<Response<PbMemberPromoteResponse>, Status> {
        self.node
            .member_promote(req.into_inner().id)
            .await
            .map_err(status_of_node)?;
        Ok(Response::new(PbMemberPromoteResponse {
            header: self.current_header(),
            members: self.members(),
        }))
    }
}
