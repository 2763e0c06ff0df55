//! Membership operations of a member: add, remove, promote (on the leader), and publishing this
//! member's own name and client URLs.

use std::collections::BTreeSet;
use std::time::Duration;

use openraft::ChangeMembers;

use super::{Node, NodeError, client_write_err, member_id_of};
use crate::config::member_id;
use crate::network::ForwardRequest;
use crate::types::{NodeId, PeerNode, Request};

impl Node {
    /// Adds a member by peer URLs; returns its id.
    pub async fn member_add(
        &self,
        peer_urls: Vec<String>,
        learner: bool,
    ) -> Result<NodeId, NodeError> {
        let fwd = ForwardRequest::MemberAdd(peer_urls.clone(), learner);
        self.on_leader(
            fwd,
            || self.member_add_local(peer_urls.clone(), learner),
            member_id_of,
        )
        .await
    }

    pub(super) async fn member_add_local(
        &self,
        peer_urls: Vec<String>,
        learner: bool,
    ) -> Result<NodeId, Option<NodeError>> {
        let id = member_id(&peer_urls);
        let exists = self.read(|d| d.membership.membership().get_node(&id).is_some());
        if exists {
            return Err(Some(NodeError::MemberExists));
        }
        self.raft
            .add_learner(id, PeerNode { peer_urls }, false)
            .await
            .map_err(client_write_err)?;
        self.write_local(Request::MemberAdded { id, learner })
            .await?;
        Ok(id)
    }

    /// Removes a member.
    pub async fn member_remove(&self, id: NodeId) -> Result<NodeId, NodeError> {
        self.on_leader(
            ForwardRequest::MemberRemove(id),
            || self.member_remove_local(id),
            member_id_of,
        )
        .await
    }

    pub(super) async fn member_remove_local(
        &self,
        id: NodeId,
    ) -> Result<NodeId, Option<NodeError>> {
        let (voter, known) = self.read(|d| {
            let m = d.membership.membership();
            (m.voter_ids().any(|v| v == id), m.get_node(&id).is_some())
        });
        if !known {
            return Err(Some(NodeError::MemberNotFound));
        }
        let ids = BTreeSet::from([id]);
        let change = if voter {
            ChangeMembers::RemoveVoters(ids)
        } else {
            ChangeMembers::RemoveNodes(ids)
        };
        self.raft
            .change_membership(change, false)
            .await
            .map_err(client_write_err)?;
        // The leader may have removed itself; the bookkeeping write then goes to the next one.
        if self.write_local(Request::MemberRemoved(id)).await.is_err() {
            let _ = self.write(Request::MemberRemoved(id)).await;
        }
        Ok(id)
    }

    /// Promotes a learner to voter.
    pub async fn member_promote(&self, id: NodeId) -> Result<NodeId, NodeError> {
        self.on_leader(
            ForwardRequest::MemberPromote(id),
            || self.member_promote_local(id),
            member_id_of,
        )
        .await
    }

    pub(super) async fn member_promote_local(
        &self,
        id: NodeId,
    ) -> Result<NodeId, Option<NodeError>> {
        let learner = self.read(|d| d.membership.membership().learner_ids().any(|l| l == id));
        if !learner {
            return Err(Some(NodeError::MemberNotFound));
        }
        self.raft
            .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
            .await
            .map_err(client_write_err)?;
        self.write_local(Request::MemberPromoted(id)).await?;
        Ok(id)
    }

    /// Announces this member's name and client URLs, retrying until it is committed.
    pub async fn publish(&self) {
        let req = Request::PublishMember {
            id: self.id,
            name: self.name.clone(),
            client_urls: self.client_urls.clone(),
        };
        loop {
            match self.write(req.clone()).await {
                Ok(_) => return,
                Err(NodeError::Stopped) => return,
                Err(e) => tracing::debug!(error = %e, "publishing member attributes; retrying"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
