//! `kubelabd store`: one member of the etcd-compatible store, with etcd's flags.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use kubelab_store::{ClusterState, Config};

/// Flags of `kubelabd store`, named as etcd's.
#[derive(Args, Debug)]
pub struct StoreArgs {
    /// Human-readable name of this member.
    #[arg(long, default_value = "default")]
    name: String,
    /// Directory of the Raft log and snapshots.
    #[arg(long, default_value = "default.kubelab-store")]
    data_dir: PathBuf,
    /// URLs to serve the etcd v3 API on (comma-separated).
    #[arg(long, default_value = "http://127.0.0.1:2379", value_delimiter = ',')]
    listen_client_urls: Vec<String>,
    /// Client URLs to advertise (default: the listen URLs).
    #[arg(long, value_delimiter = ',')]
    advertise_client_urls: Vec<String>,
    /// URLs to serve the peer (Raft) transport on.
    #[arg(long, default_value = "http://127.0.0.1:2380", value_delimiter = ',')]
    listen_peer_urls: Vec<String>,
    /// Peer URLs to advertise (default: the listen peer URLs).
    #[arg(long, value_delimiter = ',')]
    initial_advertise_peer_urls: Vec<String>,
    /// Initial members, `name=http://host:port,...` (default: this member alone).
    #[arg(long, default_value = "")]
    initial_cluster: String,
    /// `new` to bootstrap a cluster, `existing` to join one (after `etcdctl member add`).
    #[arg(long, value_enum, default_value = "new")]
    initial_cluster_state: State,
    /// Heartbeat interval, milliseconds.
    #[arg(long, default_value_t = 100)]
    heartbeat_interval: u64,
    /// Minimum election timeout, milliseconds (the maximum is 1.5 times this).
    #[arg(long, default_value_t = 250)]
    election_timeout: u64,
    /// Applied entries between snapshots.
    #[arg(long, default_value_t = 10_000)]
    snapshot_count: u64,
    /// Largest request accepted, bytes.
    #[arg(long, default_value_t = 1536 * 1024)]
    max_request_bytes: usize,
    /// Watch progress notification interval, milliseconds.
    #[arg(long, default_value_t = 600_000)]
    progress_notify_interval: u64,
    /// Async runtime of the member. `multi-thread` (default): one worker per core. `current-thread`:
    /// one thread runs every task, so a write's task hand-offs cost no cross-thread wake-ups —
    /// measured on a 2-core host shared by 3 members: 1-client puts ~10% faster, but 100-client
    /// puts ~25% slower with a worse p99, as one core serves all clients (docs/store.md). For a
    /// member whose load is one client at a time.
    #[arg(long, value_enum, default_value = "multi-thread")]
    runtime: Runtime,
}

/// Which tokio runtime a member runs on.
#[derive(ValueEnum, Clone, Copy, Debug)]
enum Runtime {
    CurrentThread,
    MultiThread,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum State {
    New,
    Existing,
}

impl StoreArgs {
    fn into_config(self) -> Config {
        let mut c = Config::single(&self.name, self.data_dir);
        c.listen_client_urls = self.listen_client_urls;
        c.advertise_client_urls = self.advertise_client_urls;
        c.listen_peer_urls = self.listen_peer_urls;
        c.initial_advertise_peer_urls = self.initial_advertise_peer_urls;
        c.initial_cluster = self.initial_cluster;
        c.initial_cluster_state = match self.initial_cluster_state {
            State::New => ClusterState::New,
            State::Existing => ClusterState::Existing,
        };
        c.heartbeat_interval_ms = self.heartbeat_interval;
        c.election_timeout_ms = self.election_timeout;
        c.snapshot_count = self.snapshot_count;
        c.max_request_bytes = self.max_request_bytes;
        c.progress_notify_interval_ms = self.progress_notify_interval;
        c
    }
}

/// Runs a store member until SIGINT or SIGTERM.
pub fn run(args: StoreArgs) -> anyhow::Result<()> {
    // Logging to stderr, `RUST_LOG` to filter (default info); a no-op if main already set it up.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = args.runtime;
    let config = args.into_config();
    config.validate().context("invalid flags")?;
    let rt = match runtime {
        // Every task of the member on this thread: a hand-off between tasks (gRPC handler,
        // proposer, Raft core, replication, state machine) is a local queue push, not a
        // cross-thread wake-up. The log writer and the blocking pool are threads of their own.
        // (No `block_in_place` anywhere in the store, which this runtime would not allow.)
        Runtime::CurrentThread => tokio::runtime::Builder::new_current_thread(),
        Runtime::MultiThread => tokio::runtime::Builder::new_multi_thread(),
    }
    .enable_all()
    .build()?;
    rt.block_on(async move {
        let shutdown = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("install SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            tracing::info!("shutting down");
        };
        kubelab_store::run(config, shutdown)
            .await
            .context("store member failed")
    })
}
