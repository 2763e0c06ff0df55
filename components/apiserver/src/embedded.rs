//! The embedded store: a single-member kubelab store in the API server's process, so
//! `kubelabd apiserver` needs nothing else to start (the default).
//!
//! Flow: [`start`] runs `kubelab_store::start` with [`kubelab_store::Config::single`] (client
//! and peer listeners on loopback ephemeral ports, data in the configured dir), waits until
//! the member has elected itself leader, and hands back its client URL; the server then talks
//! to it through the etcd v3 API exactly as to real etcd or a store cluster — one code path.
//! Only the transport differs: the server's client calls the member's gRPC services in
//! process ([`EmbeddedStore::in_process_api`]: tonic's codec, no HTTP/2 framing, no loopback
//! TCP, no connection tasks), and its range reads (gets, list batches) and transactions
//! (creates, updates, deletes) skip the codec too: they call the member's Range and Txn
//! handlers directly ([`EmbeddedStore::direct_kv`]), the same code the gRPC service runs. The member's client URL still serves `etcdctl` and others.
//! [`crate::run`] calls [`EmbeddedStore::shutdown`] after serving stops (SIGTERM/ctrl-c), on
//! a failed start too, so the Raft log and state machine are closed cleanly.

use std::path::Path;
use std::time::{Duration, Instant};

/// How long the single member may take to elect itself.
const LEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the embedded store did not start.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// The store refused to start (data dir, listeners, Raft log).
    #[error("cannot start the embedded store in {dir}")]
    Start {
        /// The data dir.
        dir: String,
        /// Why.
        #[source]
        source: Box<kubelab_store::Error>,
    },
    /// It started but never became leader.
    #[error("the embedded store in {0} elected no leader within {LEADER_TIMEOUT:?}")]
    NoLeader(String),
}

/// A running embedded store.
pub struct EmbeddedStore {
    store: kubelab_store::RunningStore,
}

impl EmbeddedStore {
    /// Its etcd v3 API endpoints (`http://127.0.0.1:PORT`).
    pub fn endpoints(&self) -> Vec<String> {
        self.store.client_urls().to_vec()
    }

    /// Its etcd v3 services as an in-process gRPC service (see
    /// [`crate::storage::Store::connect_in_process`]).
    pub fn in_process_api(&self) -> tonic::service::Routes {
        self.store.in_process_api()
    }

    /// Its KV Range and Txn without the gRPC codec (see
    /// [`crate::storage::Store::with_direct_kv`]).
    pub fn direct_kv(&self) -> kubelab_store::DirectKv {
        self.store.direct_kv()
    }

    /// Stops serving and closes the data dir.
    pub async fn shutdown(self) {
        self.store.shutdown().await;
        tracing::info!("embedded store stopped");
    }
}

/// Starts the single member with its data in `data_dir` and waits for its leadership.
pub async fn start(data_dir: &Path) -> Result<EmbeddedStore, EmbeddedError> {
    let dir = data_dir.display().to_string();
    let config = kubelab_store::Config::single("apiserver", data_dir);
    let store = kubelab_store::start(config)
        .await
        .map_err(|source| EmbeddedError::Start {
            dir: dir.clone(),
            source: Box::new(source),
        })?;
    let deadline = Instant::now() + LEADER_TIMEOUT;
    while store.leader_id() != Some(store.member_id()) {
        if Instant::now() > deadline {
            store.shutdown().await;
            return Err(EmbeddedError::NoLeader(dir));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tracing::info!(data_dir = %dir, endpoints = ?store.client_urls(), "embedded store ready");
    Ok(EmbeddedStore { store })
}
