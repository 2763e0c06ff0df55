//! Starting and stopping a member: open the data dir, bind listeners, start Raft, serve.
//!
//! [`start`] runs the steps in order and fails before serving anything if one fails: validate
//! the config; bind the peer and client listeners (port 0 resolves here, so the advertised URLs
//! are real); open the log (integrity-checked) and the last snapshot; start openraft; bootstrap
//! the initial membership if this is a fresh member of a `new` cluster; serve the peer service
//! and the etcd API; start the leader duties and publish this member's name and client URLs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{InitializeError, RaftError};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;

use crate::config::{ClusterState, Config, ConfigError, member_id, parse_url};
use crate::lease::Lessor;
use crate::log_store::{LogStore, OpenError};
use crate::network::{self, Network};
use crate::node::Node;
use crate::state_machine::{LoadError, StateMachineStore};
use crate::types::{NodeId, PeerNode, Raft};

/// Why a member could not start (or stop cleanly).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid.
    #[error("invalid store configuration")]
    Config(#[from] ConfigError),
    /// The data dir cannot be created.
    #[error("creating data dir {path}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A listener cannot be bound.
    #[error("binding {url}")]
    Bind {
        /// The URL.
        url: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The Raft log cannot be opened.
    #[error(transparent)]
    Log(#[from] OpenError),
    /// The state machine snapshot cannot be loaded.
    #[error(transparent)]
    State(#[from] LoadError),
    /// Persisting the member id failed.
    #[error("writing the member id to the raft log")]
    NodeId(#[source] std::io::Error),
    /// openraft rejected the configuration.
    #[error("raft configuration")]
    RaftConfig(#[from] openraft::ConfigError),
    /// openraft failed to start.
    #[error("starting raft")]
    Raft(#[from] openraft::error::Fatal<crate::types::TypeConfig>),
    /// Bootstrapping the initial membership failed.
    #[error("bootstrapping the initial cluster")]
    Initialize(
        #[from] RaftError<crate::types::TypeConfig, InitializeError<crate::types::TypeConfig>>,
    ),
}

/// A running member. Drop does not stop it; call [`RunningStore::shutdown`].
pub struct RunningStore {
    node: Arc<Node>,
    client_urls: Vec<String>,
    peer_urls: Vec<String>,
    stop: watch::Sender<bool>,
    servers: Vec<JoinHandle<()>>,
    tasks: Vec<JoinHandle<()>>,
    log_closed: Option<tokio::sync::oneshot::Receiver<()>>,
    max_request_bytes: usize,
    progress_notify: Duration,
}

impl RunningStore {
    /// The URLs the etcd v3 API is served on (`http://127.0.0.1:PORT`).
    pub fn client_urls(&self) -> &[String] {
        &self.client_urls
    }

    /// The etcd v3 services of this member as an in-process gRPC service: the same services
    /// (and limits) as on its client listeners, called without HTTP/2 or TCP in between, for
    /// a client in the same process (the API server's embedded store). Requests go through
    /// tonic's codec exactly as over the network; only the transport is skipped.
    pub fn in_process_api(&self) -> tonic::service::Routes {
        crate::api::routes(
            self.node.clone(),
            self.max_request_bytes,
            self.progress_notify,
        )
    }

    /// A handle on this member's KV Range and Txn without the gRPC codec (see
    /// [`crate::DirectKv`]): for a client in the same process (the API server's embedded store).
    pub fn direct_kv(&self) -> crate::DirectKv {
        crate::api::direct_kv(
            self.node.clone(),
            self.max_request_bytes,
            self.progress_notify,
        )
    }

    /// Runs one KV Range directly: what the gRPC `Range` handler runs, same results and
    /// same error statuses, without encoding the response (see [`crate::DirectKv`]).
    pub async fn range(
        &self,
        req: etcd_client::proto::PbRangeRequest,
    ) -> Result<etcd_client::proto::PbRangeResponse, tonic::Status> {
        self.direct_kv().range(req).await
    }

    /// The advertised peer URLs.
    pub fn peer_urls(&self) -> &[String] {
        &self.peer_urls
    }

    /// This member's id (as in `etcdctl member list`).
    pub fn member_id(&self) -> NodeId {
        self.node.id
    }

    /// The leader this member currently knows of.
    pub fn leader_id(&self) -> Option<NodeId> {
        self.node.leader().map(|(id, _)| id)
    }

    /// The Raft handle (metrics, waits) for tests and diagnostics.
    pub fn raft(&self) -> &Raft {
        &self.node.raft
    }

    /// Stops serving, stops Raft, and waits until the data dir is closed.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for t in self.tasks.drain(..) {
            t.abort();
        }
        // Graceful stop waits for open streams (watches); give them a moment, then cut them.
        for s in self.servers.drain(..) {
            let abort = s.abort_handle();
            if tokio::time::timeout(Duration::from_secs(1), s)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        if let Err(e) = self.node.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
        let node = self.node;
        drop(node);
        if let Some(closed) = self.log_closed.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), closed).await;
        }
    }
}

async fn bind(urls: &[String]) -> Result<Vec<(TcpListener, SocketAddr)>, Error> {
    let mut out = Vec::new();
    for url in urls {
        let addr = parse_url(url).expect("validated URL");
        let l = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind {
                url: url.clone(),
                source,
            })?;
        let a = l.local_addr().map_err(|source| Error::Bind {
            url: url.clone(),
            source,
        })?;
        out.push((l, a));
    }
    Ok(out)
}

fn urls_of(bound: &[(TcpListener, SocketAddr)]) -> Vec<String> {
    bound.iter().map(|(_, a)| format!("http://{a}")).collect()
}

/// Starts a member; returns once it serves (it may not have a leader yet).
pub async fn start(config: Config) -> Result<RunningStore, Error> {
    config.validate()?;
    let dir = config.data_dir.clone();
    std::fs::create_dir_all(&dir).map_err(|source| Error::DataDir {
        path: dir.clone(),
        source,
    })?;
    let peers = bind(&config.listen_peer_urls).await?;
    let clients = bind(&config.listen_client_urls).await?;
    let peer_urls = if config.initial_advertise_peer_urls.is_empty() {
        urls_of(&peers)
    } else {
        config.initial_advertise_peer_urls.clone()
    };
    let client_urls = if config.advertise_client_urls.is_empty() {
        urls_of(&clients)
    } else {
        config.advertise_client_urls.clone()
    };

    // The snapshot first: if it is corrupt, the log database is never opened.
    let sm = StateMachineStore::open(&dir.join("snap"))?;
    let mut log = LogStore::open(&dir.join("raft-log"))?;
    let mut log_closed = log.closed();
    let urls = (peer_urls, client_urls);
    match start_member(config, log, sm, peers, clients, urls).await {
        Ok(mut store) => {
            store.log_closed = log_closed;
            Ok(store)
        }
        Err(e) => {
            // Let the log database close before reporting, so a retry can open it again.
            if let Some(closed) = log_closed.take() {
                let _ = tokio::time::timeout(Duration::from_secs(10), closed).await;
            }
            Err(e)
        }
    }
}

type Bound = Vec<(TcpListener, SocketAddr)>;

async fn start_member(
    config: Config,
    log: LogStore,
    sm: StateMachineStore,
    peers: Bound,
    clients: Bound,
    (peer_urls, client_urls): (Vec<String>, Vec<String>),
) -> Result<RunningStore, Error> {
    let dir = config.data_dir.clone();
    let fresh = log.is_fresh();
    let id = match log.stored_node_id()? {
        Some(id) => id,
        None => {
            let id = member_id(&peer_urls);
            log.store_node_id(id).await.map_err(Error::NodeId)?;
            id
        }
    };

    let raft_config = openraft::Config {
        cluster_name: "kubelab-store".into(),
        heartbeat_interval: config.heartbeat_interval_ms,
        election_timeout_min: config.election_timeout_ms,
        election_timeout_max: config.election_timeout_ms * 3 / 2,
        install_snapshot_timeout: 5_000,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(config.snapshot_count),
        max_in_snapshot_log_to_keep: config.snapshot_count.min(5_000),
        purge_batch_size: 256,
        // One AppendEntries must fit in a heartbeat interval (openraft's RPC timeout for it):
        // a new leader probes each follower's log at the middle of its own and sends up to
        // this many entries from there; entries are batches of up to 512 writes, so 1000 of
        // them (tens of MB) never arrived in time and failover after a busy run took 4-5 s.
        max_payload_entries: 32,
        // A restarted leader always stands for election again: the commit index on disk is
        // persisted lazily and may lag what was acknowledged (see also `LogStore::open`).
        enable_leader_restore: Some(false),
        ..Default::default()
    }
    .validate()?;
    let net = Network::default();
    let shared = sm.shared();
    let raft = Raft::new(id, Arc::new(raft_config), net.clone(), log, sm).await?;

    let node = Arc::new(Node {
        id,
        name: config.name.clone(),
        raft: raft.clone(),
        sm: shared,
        net,
        lessor: Lessor::default(),
        client_urls: client_urls.clone(),
        peer_urls: peer_urls.clone(),
        min_lease_ttl: ((config.election_timeout_ms * 3).div_ceil(2)).div_ceil(1000) as i64,
        data_dir: dir.clone(),
        proposer: crate::node::Proposer::start(raft.clone()),
        read_indexer: crate::node::ReadIndexer::start(raft.clone()),
        session: crate::node::WriteSession::new(),
    });

    if fresh && config.initial_cluster_state == ClusterState::New {
        let members = config.initial_members()?;
        let mut initial = std::collections::BTreeMap::new();
        if members.is_empty() {
            initial.insert(
                id,
                PeerNode {
                    peer_urls: peer_urls.clone(),
                },
            );
        } else {
            for urls in members.into_values() {
                initial.insert(member_id(&urls), PeerNode { peer_urls: urls });
            }
        }
        match node.raft.initialize(initial).await {
            Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
            Err(e) => {
                let _ = node.raft.shutdown().await;
                return Err(e.into());
            }
        }
    }

    let (stop, stop_rx) = watch::channel(false);
    let mut servers = Vec::new();
    for (listener, addr) in peers {
        let svc = network::server::service(node.clone());
        let stop = stopped(stop_rx.clone());
        // One port, two protocols: AppendEntries connections are served apart, the rest
        // (HTTP/2) comes to tonic (see `network/append_server.rs`).
        let grpc = network::append_server::serve_peer_port(listener, node.clone(), stop_rx.clone());
        servers.push(tokio::spawn(async move {
            let r = tonic::transport::Server::builder()
                .tcp_nodelay(true)
                .add_service(svc)
                .serve_with_incoming_shutdown(grpc, stop)
                .await;
            if let Err(e) = r {
                tracing::error!(%addr, error = %e, "peer server failed");
            }
        }));
    }
    let progress = Duration::from_millis(config.progress_notify_interval_ms);
    for (listener, addr) in clients {
        let routes = crate::api::routes(node.clone(), config.max_request_bytes, progress);
        let stop = stopped(stop_rx.clone());
        servers.push(tokio::spawn(async move {
            let r = tonic::transport::Server::builder()
                .tcp_nodelay(true)
                .add_routes(routes)
                .serve_with_incoming_shutdown(incoming(listener), stop)
                .await;
            if let Err(e) = r {
                tracing::error!(%addr, error = %e, "client server failed");
            }
        }));
    }
    let tasks = vec![
        tokio::spawn(node.clone().leader_duties()),
        tokio::spawn({
            let n = node.clone();
            async move { n.publish().await }
        }),
    ];
    tracing::info!(
        member = %format!("{id:x}"),
        name = %config.name,
        client = ?client_urls,
        peer = ?peer_urls,
        "store member started"
    );
    Ok(RunningStore {
        node,
        client_urls,
        peer_urls,
        stop,
        servers,
        tasks,
        log_closed: None,
        max_request_bytes: config.max_request_bytes,
        progress_notify: progress,
    })
}

/// Accepted connections with Nagle's algorithm off. tonic's `tcp_nodelay` only applies to
/// listeners it binds itself; without this, small gRPC responses (heartbeat acks, read
/// results) waited for the peer's delayed ACK: ~40 ms per linearizable read round.
fn incoming(
    listener: TcpListener,
) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use futures::StreamExt;
    TcpListenerStream::new(listener).map(|conn| {
        let conn = conn?;
        conn.set_nodelay(true)?;
        Ok(conn)
    })
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Runs a member until `shutdown` resolves, then stops it.
pub async fn run(
    config: Config,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), Error> {
    let store = start(config).await?;
    shutdown.await;
    store.shutdown().await;
    Ok(())
}
