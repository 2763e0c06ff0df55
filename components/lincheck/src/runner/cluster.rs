//! A cluster of store member processes on loopback, owned by PID and killed in `Drop`.
//!
//! Both real etcd and `kubelabd store` take the same etcd-style flags (`--name --data-dir
//! --listen-client-urls --advertise-client-urls --listen-peer-urls
//! --initial-advertise-peer-urls --initial-cluster`), so one launcher serves both; a
//! [`Flavor`] only says which binary to run and what it needs on top. Every member gets its
//! own data directory under one temporary directory (removed on drop) and its stdout/stderr in
//! `<member>.log` beside it, kept when the directory is persisted for a failure.

use std::fs::File;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use rustix::process::{Pid, Signal, kill_process};

use super::RunnerError;
use super::fault::FaultDriver;

/// Which store implementation to launch.
#[derive(Debug, Clone)]
pub enum Flavor {
    /// Real etcd (`/usr/bin/etcd` from Debian `etcd-server`).
    Etcd {
        /// The `etcd` binary.
        binary: PathBuf,
    },
    /// `kubelabd store`.
    Kubelabd {
        /// The `kubelabd` binary.
        binary: PathBuf,
    },
}

impl Flavor {
    fn command(&self, token: &str) -> Command {
        match self {
            Flavor::Etcd { binary } => {
                let mut c = Command::new(binary);
                c.args([
                    "--initial-cluster-state",
                    "new",
                    "--initial-cluster-token",
                    token,
                ]);
                c
            }
            Flavor::Kubelabd { binary } => {
                let mut c = Command::new(binary);
                c.arg("store");
                c
            }
        }
    }

    /// A short name for logs and reports.
    pub fn name(&self) -> &'static str {
        match self {
            Flavor::Etcd { .. } => "etcd",
            Flavor::Kubelabd { .. } => "kubelabd-store",
        }
    }
}

/// One member process.
#[derive(Debug)]
struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    data_dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

/// A running cluster; see the module docs.
#[derive(Debug)]
pub struct ProcessCluster {
    flavor: Flavor,
    dir: tempfile::TempDir,
    members: Vec<Member>,
    initial_cluster: String,
}

/// Ports that were free a moment ago: bound together on port 0, then released for the member.
fn free_ports(n: usize) -> Result<Vec<u16>, RunnerError> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(RunnerError::Ports)?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<_, _>>()
        .map_err(RunnerError::Ports)
}

impl ProcessCluster {
    /// Starts `size` members of `flavor` on fresh loopback ports and data directories.
    /// Does not wait for them to be ready (see [`super::wait_healthy`]).
    pub fn start(flavor: Flavor, size: usize) -> Result<Self, RunnerError> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("lincheck-{}-", flavor.name()))
            .tempdir()
            .map_err(RunnerError::TempDir)?;
        let ports = free_ports(2 * size)?;
        let members: Vec<Member> = (0..size)
            .map(|i| Member {
                name: format!("m{i}"),
                client_port: ports[2 * i],
                peer_port: ports[2 * i + 1],
                data_dir: dir.path().join(format!("m{i}.data")),
                log: dir.path().join(format!("m{i}.log")),
                child: None,
            })
            .collect();
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = ProcessCluster {
            flavor,
            dir,
            members,
            initial_cluster,
        };
        for i in 0..size {
            cluster.spawn(i)?;
        }
        Ok(cluster)
    }

    fn spawn(&mut self, i: usize) -> Result<(), RunnerError> {
        let token = self
            .dir
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        let m = &self.members[i];
        let client = format!("http://127.0.0.1:{}", m.client_port);
        let peer = format!("http://127.0.0.1:{}", m.peer_port);
        let log = File::options()
            .create(true)
            .append(true)
            .open(&m.log)
            .map_err(|source| RunnerError::Log {
                path: m.log.clone(),
                source,
            })?;
        let log2 = log.try_clone().map_err(|source| RunnerError::Log {
            path: m.log.clone(),
            source,
        })?;
        let mut cmd = self.flavor.command(token.as_deref().unwrap_or("lincheck"));
        cmd.arg("--name")
            .arg(&m.name)
            .arg("--data-dir")
            .arg(&m.data_dir)
            .arg("--listen-client-urls")
            .arg(&client)
            .arg("--advertise-client-urls")
            .arg(&client)
            .arg("--listen-peer-urls")
            .arg(&peer)
            .arg("--initial-advertise-peer-urls")
            .arg(&peer)
            .arg("--initial-cluster")
            .arg(&self.initial_cluster)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        // If the runner dies without dropping the cluster (killed by a test timeout), the
        // kernel kills the members too instead of leaving them listening.
        // SAFETY: the closure runs between fork and exec and only makes one prctl syscall,
        // which is async-signal-safe; it touches no memory shared with the parent.
        unsafe {
            cmd.pre_exec(|| {
                rustix::process::set_parent_process_death_signal(Some(Signal::KILL))
                    .map_err(std::io::Error::from)
            });
        }
        let child = cmd.spawn().map_err(|source| RunnerError::Spawn {
            binary: format!("{cmd:?}"),
            source,
        })?;
        tracing::info!(member = %m.name, pid = child.id(), client = %client, "member started");
        self.members[i].child = Some(child);
        Ok(())
    }

    fn signal(&mut self, i: usize, sig: Signal) -> Result<(), RunnerError> {
        let m = &self.members[i];
        let child = m.child.as_ref().ok_or(RunnerError::NotRunning {
            member: m.name.clone(),
        })?;
        kill_process(Pid::from_child(child), sig).map_err(|e| RunnerError::Signal {
            member: m.name.clone(),
            source: e.into(),
        })
    }

    /// Which store this cluster runs.
    pub fn flavor(&self) -> &Flavor {
        &self.flavor
    }

    /// The client URLs, one per member.
    pub fn endpoints(&self) -> Vec<String> {
        (0..self.members.len()).map(|i| self.endpoint(i)).collect()
    }

    /// The PID of a running member.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.members[i].child.as_ref().map(Child::id)
    }

    /// Where the members' data directories and logs are.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Copies every member's log into `to` (as `<member>.log`), for a failure's artifacts.
    pub fn copy_logs(&self, to: &Path) -> std::io::Result<()> {
        for m in &self.members {
            if m.log.exists() {
                std::fs::copy(&m.log, to.join(format!("{}.log", m.name)))?;
            }
        }
        Ok(())
    }

    /// The last `lines` lines of every member's log, for failure reports.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        for m in &self.members {
            let text = std::fs::read_to_string(&m.log).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            out.push_str(&format!(
                "--- {} ({}) last {lines} lines ---\n",
                m.name,
                m.log.display()
            ));
            for l in &all[all.len().saturating_sub(lines)..] {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }
}

impl FaultDriver for ProcessCluster {
    fn size(&self) -> usize {
        self.members.len()
    }

    fn endpoint(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.members[i].client_port)
    }

    fn kill(&mut self, i: usize) -> Result<(), RunnerError> {
        self.signal(i, Signal::KILL)?;
        if let Some(mut child) = self.members[i].child.take() {
            // SIGKILL cannot be ignored, so this wait is bounded.
            let _ = child.wait();
        }
        tracing::info!(member = %self.members[i].name, "member killed (SIGKILL)");
        Ok(())
    }

    fn restart(&mut self, i: usize) -> Result<(), RunnerError> {
        if self.members[i].child.is_some() {
            return Err(RunnerError::AlreadyRunning {
                member: self.members[i].name.clone(),
            });
        }
        self.spawn(i)
    }

    fn pause(&mut self, i: usize) -> Result<(), RunnerError> {
        self.signal(i, Signal::STOP)?;
        tracing::info!(member = %self.members[i].name, "member paused (SIGSTOP)");
        Ok(())
    }

    fn resume(&mut self, i: usize) -> Result<(), RunnerError> {
        self.signal(i, Signal::CONT)?;
        tracing::info!(member = %self.members[i].name, "member resumed (SIGCONT)");
        Ok(())
    }
}

impl Drop for ProcessCluster {
    fn drop(&mut self) {
        for m in &mut self.members {
            if let Some(mut child) = m.child.take() {
                // SIGKILL also ends a stopped process; then reap it.
                let _ = kill_process(Pid::from_child(&child), Signal::KILL);
                let _ = child.wait();
            }
        }
    }
}
