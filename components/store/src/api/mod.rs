//! The etcd v3 gRPC API (KV, Watch, Lease, Cluster, Maintenance) on tonic.
//!
//! The server traits come from the `etcd-client` crate's `build-server` feature (the etcd
//! protos, package `etcdserverpb`, so real `etcdctl` and every etcd client talk to us). Handlers
//! validate and convert protobuf requests into the store's own types (`convert.rs`), call the
//! [`Node`](crate::node::Node), and map typed errors to the gRPC codes and messages etcd uses
//! (`status_of_*`), so clients recognise e.g. "compacted" exactly as with etcd.

mod cluster;
mod convert;
mod kv;
mod lease;
mod maintenance;
mod watch;

use std::sync::Arc;
use std::time::Duration;

use etcd_client::proto::{
    PbClusterServer, PbKvServer, PbLeaseServer, PbMaintenanceServer, PbResponseHeader,
    PbWatchServer,
};
use tonic::Status;
use tonic::service::Routes;

use crate::node::{Node, NodeError};
use crate::types::ApplyError;

/// Most operations one txn may carry (etcd's `--max-txn-ops` default).
const MAX_TXN_OPS: usize = 128;

/// Shared by the services: the node and the limits.
#[derive(Clone)]
pub(crate) struct Api {
    node: Arc<Node>,
    max_request_bytes: usize,
    progress_notify: Duration,
}

impl Api {
    fn header(&self, revision: i64) -> Option<PbResponseHeader> {
        Some(PbResponseHeader {
            cluster_id: self.node.read(|d| d.mvcc.cluster_id()),
            member_id: self.node.id,
            revision,
            raft_term: self.node.term(),
        })
    }

    fn current_header(&self) -> Option<PbResponseHeader> {
        self.header(self.node.read(|d| d.mvcc.revision()))
    }
}

pub use kv::DirectKv;

/// The direct Range entry of a member (see [`DirectKv`]), with the same limits as its
/// services.
pub(crate) fn direct_kv(
    node: Arc<Node>,
    max_request_bytes: usize,
    progress_notify: Duration,
) -> DirectKv {
    DirectKv::new(Api {
        node,
        max_request_bytes,
        progress_notify,
    })
}

/// The etcd v3 services of a member, ready to serve on a client listener.
pub(crate) fn routes(
    node: Arc<Node>,
    max_request_bytes: usize,
    progress_notify: Duration,
) -> Routes {
    let api = Api {
        node,
        max_request_bytes,
        progress_notify,
    };
    let max_msg = max_message(max_request_bytes);
    Routes::new(PbKvServer::new(api.clone()).max_decoding_message_size(max_msg))
        .add_service(PbWatchServer::new(api.clone()).max_decoding_message_size(max_msg))
        .add_service(PbLeaseServer::new(api.clone()))
        .add_service(PbClusterServer::new(api.clone()))
        .add_service(PbMaintenanceServer::new(api))
}

/// The largest gRPC message the services decode: the largest request plus some overhead for
/// gRPC framing, as etcd allows. [`DirectKv`]'s txn applies the same bound.
pub(crate) fn max_message(max_request_bytes: usize) -> usize {
    max_request_bytes + 512 * 1024
}

/// The gRPC status etcd returns for a node-level error.
pub(crate) fn status_of_node(e: NodeError) -> Status {
    match e {
        NodeError::LeaseNotFound | NodeError::MemberNotFound => Status::not_found(e.to_string()),
        NodeError::MemberExists => Status::failed_precondition(e.to_string()),
        _ => Status::unavailable(e.to_string()),
    }
}

/// The gRPC status etcd returns for an apply error.
pub(crate) fn status_of_apply(e: ApplyError) -> Status {
    match e {
        ApplyError::Compacted | ApplyError::FutureRevision => Status::out_of_range(e.to_string()),
        ApplyError::LeaseNotFound => Status::not_found(e.to_string()),
        ApplyError::LeaseExists => Status::failed_precondition(e.to_string()),
        ApplyError::KeyNotFound | ApplyError::DuplicateKey => {
            Status::invalid_argument(e.to_string())
        }
        ApplyError::Abandoned => Status::unavailable(e.to_string()),
    }
}

fn empty_key() -> Status {
    Status::invalid_argument("etcdserver: key is not provided")
}

fn too_large() -> Status {
    Status::invalid_argument("etcdserver: request is too large")
}
