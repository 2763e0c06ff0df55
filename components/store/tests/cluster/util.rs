//! Test harness: members of a store started in this process on loopback ports allocated per
//! test, etcd clients against them, and the one polling primitive every wait goes through.

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use etcd_client::{Client, ConnectOptions};
use kubelab_store::{ClusterState, Config, RunningStore};

/// Polls `f` until it returns `Ok`, or fails with the last error after `timeout`.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() >= deadline => {
                return Err(e.context(format!("timed out after {timeout:?} waiting for {what}")));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// A free loopback port below the ephemeral range, so no client socket of a parallel test can
/// take it before the member binds it (see `kubelab_store::ports`).
pub fn free_port() -> u16 {
    kubelab_store::ports::unused_loopback_port().expect("a free loopback port")
}

/// Installs a test log subscriber once (`RUST_LOG` to see it).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// The configuration of one member slot in a cluster.
#[derive(Clone)]
pub struct Slot {
    pub name: String,
    pub dir: PathBuf,
    pub client_port: u16,
    /// The advertised peer port (in `--initial-cluster`).
    pub peer_port: u16,
    /// Where the member itself listens for peers, when that differs from `peer_port` (a test
    /// proxy sits on `peer_port`, see `transport.rs`).
    pub listen_peer_port: Option<u16>,
}

impl Slot {
    pub fn client_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }
    pub fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer_port)
    }
}

/// Members of one cluster in this process. Every member is shut down on drop.
pub struct Cluster {
    pub tmp: tempfile::TempDir,
    pub slots: Vec<Slot>,
    pub members: Vec<Option<RunningStore>>,
    pub initial_cluster: String,
    pub snapshot_count: u64,
}

impl Cluster {
    /// Starts `n` members as a new cluster.
    pub async fn start(n: usize, snapshot_count: u64) -> anyhow::Result<Self> {
        Self::start_with(n, snapshot_count, false).await
    }

    /// Starts `n` members; with `proxied`, each listens for peers on a port of its own while
    /// advertising `peer_port`, where the test puts a proxy before starting them.
    pub async fn start_with(n: usize, snapshot_count: u64, proxied: bool) -> anyhow::Result<Self> {
        Self::start_hooked(n, snapshot_count, proxied, |_| async { Ok(()) }).await
    }

    /// As [`Cluster::start_with`], calling `before_members` with the slots before any member
    /// starts (to set up proxies on the advertised peer ports).
    pub async fn start_hooked<F, Fut>(
        n: usize,
        snapshot_count: u64,
        proxied: bool,
        before_members: F,
    ) -> anyhow::Result<Self>
    where
        F: FnOnce(Vec<Slot>) -> Fut,
        Fut: Future<Output = anyhow::Result<()>>,
    {
        init_tracing();
        let tmp = tempfile::tempdir()?;
        let slots: Vec<Slot> = (0..n)
            .map(|i| Slot {
                name: format!("m{i}"),
                dir: tmp.path().join(format!("m{i}")),
                client_port: free_port(),
                peer_port: free_port(),
                listen_peer_port: None,
            })
            .collect();
        let initial_cluster = slots
            .iter()
            .map(|s| format!("{}={}", s.name, s.peer_url()))
            .collect::<Vec<_>>()
            .join(",");
        let slots: Vec<Slot> = slots
            .into_iter()
            .map(|s| Slot {
                listen_peer_port: proxied.then(free_port),
                ..s
            })
            .collect();
        before_members(slots.clone()).await?;
        let mut c = Cluster {
            tmp,
            slots,
            members: Vec::new(),
            initial_cluster,
            snapshot_count,
        };
        for i in 0..n {
            let m = c.start_slot(i, ClusterState::New).await?;
            c.members.push(Some(m));
        }
        Ok(c)
    }

    pub fn config(&self, i: usize, state: ClusterState) -> Config {
        let s = &self.slots[i];
        let mut cfg = Config::single(&s.name, &s.dir);
        cfg.listen_client_urls = vec![s.client_url()];
        match s.listen_peer_port {
            None => cfg.listen_peer_urls = vec![s.peer_url()],
            Some(p) => {
                cfg.listen_peer_urls = vec![format!("http://127.0.0.1:{p}")];
                cfg.initial_advertise_peer_urls = vec![s.peer_url()];
            }
        }
        cfg.initial_cluster = self.initial_cluster.clone();
        cfg.initial_cluster_state = state;
        cfg.heartbeat_interval_ms = 100;
        cfg.election_timeout_ms = 300;
        cfg.snapshot_count = self.snapshot_count;
        cfg.progress_notify_interval_ms = 500;
        cfg
    }

    async fn start_slot(&self, i: usize, state: ClusterState) -> anyhow::Result<RunningStore> {
        kubelab_store::start(self.config(i, state))
            .await
            .with_context(|| format!("starting member {}", self.slots[i].name))
    }

    /// (Re)starts member `i` from its data dir.
    pub async fn restart(&mut self, i: usize) -> anyhow::Result<()> {
        let m = self.start_slot(i, ClusterState::New).await?;
        self.members[i] = Some(m);
        Ok(())
    }

    /// Adds a slot for a member that will join with `--initial-cluster-state existing`.
    pub fn add_slot(&mut self) -> usize {
        let i = self.slots.len();
        let slot = Slot {
            name: format!("m{i}"),
            dir: self.tmp.path().join(format!("m{i}")),
            client_port: free_port(),
            peer_port: free_port(),
            listen_peer_port: None,
        };
        self.initial_cluster
            .push_str(&format!(",{}={}", slot.name, slot.peer_url()));
        self.slots.push(slot);
        self.members.push(None);
        i
    }

    pub async fn join(&mut self, i: usize) -> anyhow::Result<()> {
        let m = self.start_slot(i, ClusterState::Existing).await?;
        self.members[i] = Some(m);
        Ok(())
    }

    /// Stops member `i` (gracefully: its listeners close, as a killed process's would).
    pub async fn stop(&mut self, i: usize) {
        if let Some(m) = self.members[i].take() {
            m.shutdown().await;
        }
    }

    /// The index of the member all running members agree is leader.
    pub async fn leader(&self) -> anyhow::Result<usize> {
        wait_until("an agreed leader", Duration::from_secs(10), || async {
            let mut ids = self.members.iter().flatten().map(|m| m.leader_id());
            let first = ids.next().flatten().context("no leader yet")?;
            if !ids.all(|l| l == Some(first)) {
                bail!("members disagree on the leader");
            }
            self.members
                .iter()
                .position(|m| m.as_ref().is_some_and(|m| m.member_id() == first))
                .context("leader is not a running member")
        })
        .await
    }

    /// An etcd client of member `i`.
    pub async fn client(&self, i: usize) -> anyhow::Result<Client> {
        let opts = ConnectOptions::new()
            .with_timeout(Duration::from_secs(5))
            .with_connect_timeout(Duration::from_secs(2));
        Ok(Client::connect([self.slots[i].client_url()], Some(opts)).await?)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Stop every member even when a test failed half-way; Drop cannot await, so run the
        // shutdowns on a helper thread with its own runtime.
        let members: Vec<RunningStore> = self.members.iter_mut().filter_map(Option::take).collect();
        if members.is_empty() {
            return;
        }
        let handle = tokio::runtime::Handle::try_current();
        let stop = async move {
            for m in members {
                m.shutdown().await;
            }
        };
        match handle {
            Ok(h) => {
                let _ = std::thread::scope(|s| s.spawn(|| h.block_on(stop)).join());
            }
            Err(_) => {
                let rt = tokio::runtime::Runtime::new().expect("runtime");
                rt.block_on(stop);
            }
        }
    }
}
