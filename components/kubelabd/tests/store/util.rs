//! Harness: `kubelabd store` member processes on per-test loopback ports, killed by PID on drop,
//! and the one polling primitive every wait goes through.

use std::fs::File;
use std::future::Future;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use etcd_client::{Client, ConnectOptions};

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

/// A free loopback port below the ephemeral range (see `kubelab_store::ports`).
fn free_port() -> u16 {
    kubelab_store::ports::unused_loopback_port().expect("a free loopback port")
}

/// One member slot: its ports, data dir and (while running) its process.
pub struct Member {
    pub name: String,
    pub dir: PathBuf,
    pub client_port: u16,
    pub peer_port: u16,
    pub child: Option<Child>,
}

impl Member {
    pub fn client_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }
    pub fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer_port)
    }
}

/// Member processes of one cluster.
pub struct Procs {
    pub tmp: tempfile::TempDir,
    pub members: Vec<Member>,
    pub initial_cluster: String,
    /// Extra flags for every member (e.g. `--runtime current-thread`).
    pub extra_args: Vec<String>,
}

impl Procs {
    /// Starts `n` members of a new cluster.
    pub fn start(n: usize) -> anyhow::Result<Self> {
        Self::start_with(n, &[])
    }

    /// Starts `n` members of a new cluster, each with `extra_args` added to its flags.
    pub fn start_with(n: usize, extra_args: &[&str]) -> anyhow::Result<Self> {
        let tmp = tempfile::tempdir()?;
        let mut p = Procs {
            tmp,
            members: Vec::new(),
            initial_cluster: String::new(),
            extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
        };
        for _ in 0..n {
            p.add_slot();
        }
        for i in 0..n {
            p.spawn(i, "new")?;
        }
        Ok(p)
    }

    /// Adds a member slot and its `name=peerURL` to the initial cluster.
    pub fn add_slot(&mut self) -> usize {
        let i = self.members.len();
        let m = Member {
            name: format!("p{i}"),
            dir: self.tmp.path().join(format!("p{i}")),
            client_port: free_port(),
            peer_port: free_port(),
            child: None,
        };
        if !self.initial_cluster.is_empty() {
            self.initial_cluster.push(',');
        }
        self.initial_cluster
            .push_str(&format!("{}={}", m.name, m.peer_url()));
        self.members.push(m);
        i
    }

    /// Starts member `i`'s process (`state`: `new` or `existing`).
    pub fn spawn(&mut self, i: usize, state: &str) -> anyhow::Result<()> {
        let log = self.tmp.path().join(format!("p{i}.log"));
        let log = File::options().create(true).append(true).open(&log)?;
        let m = &self.members[i];
        let child = Command::new(env!("CARGO_BIN_EXE_kubelabd"))
            .arg("store")
            .args(["--name", &m.name])
            .arg("--data-dir")
            .arg(&m.dir)
            .args(["--listen-client-urls", &m.client_url()])
            .args(["--listen-peer-urls", &m.peer_url()])
            .args(["--initial-cluster", &self.initial_cluster])
            .args(["--initial-cluster-state", state])
            .args(["--heartbeat-interval", "100", "--election-timeout", "300"])
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("spawning kubelabd store")?;
        self.members[i].child = Some(child);
        Ok(())
    }

    /// Kills member `i`'s process with SIGKILL (a crash) and reaps it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// An etcd client of member `i`.
    pub async fn client(&self, i: usize) -> anyhow::Result<Client> {
        let opts = ConnectOptions::new()
            .with_timeout(Duration::from_secs(5))
            .with_connect_timeout(Duration::from_secs(1));
        Ok(Client::connect([self.members[i].client_url()], Some(opts)).await?)
    }

    /// The index of the leader, as reported by every running member's status.
    pub async fn leader(&self) -> anyhow::Result<usize> {
        wait_until("an agreed leader", Duration::from_secs(15), || async {
            let mut leader = None;
            for (i, m) in self.members.iter().enumerate() {
                if m.child.is_none() {
                    continue;
                }
                let st = self.client(i).await?.status().await?;
                if st.leader() == 0 {
                    bail!("member {i} knows no leader");
                }
                if leader.is_some_and(|l| l != st.leader()) {
                    bail!("members disagree on the leader");
                }
                leader = Some(st.leader());
            }
            let leader = leader.context("no running member")?;
            for (i, m) in self.members.iter().enumerate() {
                if m.child.is_some()
                    && self
                        .client(i)
                        .await?
                        .status()
                        .await?
                        .header()
                        .map(|h| h.member_id())
                        == Some(leader)
                {
                    return Ok(i);
                }
            }
            bail!("the leader is not a running member")
        })
        .await
    }

    /// A member's log, for failure messages.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.tmp.path().join(format!("p{i}.log"))).unwrap_or_default()
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}
