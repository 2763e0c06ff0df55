//! The lab's state directory: how every command after `up` finds the lab again, and how
//! `down` finds everything to remove even when `up` was killed half-way.
//!
//! Layout of `<root>/<lab>/` (root is `/var/lib/kubelab/labs`, or `$KUBELAB_STATE_DIR`):
//!
//! ```text
//! journal.jsonl     write-ahead list of resources, one JSON Resource a line; a line is
//!                   written and fsync'd *before* the resource is created
//! topology.toml     copy of the topology file the lab was started from
//! state.json        what `up` learnt (accelerator, PIDs, boot times), replaced atomically
//! id_ed25519{,.pub} the lab's SSH key pair
//! known_hosts       every node's management address and host key (for `kubelab ssh`)
//! up.lock           flock'd by the running `up` (or `down`); the `up`'s PID
//! nodes/<node>/     node.json and ssh_host_ed25519_key.dropbear (fw_cfg), the host key
//!                   pair ssh_host_ed25519_key{,.pub}, qmp.sock, serial.log, qemu.pid
//! ```
//!
//! Creating the directory claims the name: `create_dir` fails if another `up` of the same
//! name got there first. `up.lock` then tells a running `up` (it holds an `flock` on the file
//! and wrote its PID into it) apart from leftover state, and lets `down` stop that `up`
//! ([`lock`]).

use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub mod lock;

/// Default root of all lab state directories.
pub const DEFAULT_ROOT: &str = "/var/lib/kubelab/labs";
/// Environment variable that overrides [`DEFAULT_ROOT`] (tests, unprivileged experiments).
pub const ROOT_ENV: &str = "KUBELAB_STATE_DIR";

/// A state-directory operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading or writing a file failed.
    #[error("state file {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A state file does not parse (written by another version, or damaged).
    #[error("state file {} is damaged", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// A lab of this name already has a state directory.
    #[error("lab state directory {} already exists", path.display())]
    Exists {
        /// The directory.
        path: PathBuf,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Something a lab creates on the host, recorded before it is created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Resource {
    /// The lab's network namespace.
    Namespace {
        /// Its name.
        name: String,
    },
    /// A bridge inside the namespace.
    Bridge {
        /// Its name.
        name: String,
    },
    /// A tap inside the namespace.
    Tap {
        /// Its name.
        name: String,
    },
    /// A QEMU about to be started; its PID will be in `pidfile`.
    Qemu {
        /// The node.
        node: String,
        /// Where QEMU writes its PID.
        pidfile: PathBuf,
    },
    /// A QEMU that was started.
    QemuPid {
        /// The node.
        node: String,
        /// Its PID.
        pid: u32,
    },
}

/// Which accelerator the lab's VMs run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    /// Hardware virtualization.
    Kvm,
    /// QEMU's software emulation.
    Tcg,
}

impl std::fmt::Display for Accel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        })
    }
}

/// What `up` learnt about the lab, for `status` and later commands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabState {
    /// Lab name.
    pub name: String,
    /// Network namespace name.
    pub namespace: String,
    /// The topology file `up` was given.
    pub topology_file: PathBuf,
    /// The image directory the VMs boot.
    pub image: PathBuf,
    /// Accelerator in use.
    pub accel: Accel,
    /// Seconds since the epoch when `up` started.
    pub started_at: u64,
    /// True once `up` finished with every node SSH-ready.
    pub ready: bool,
    /// Per-node state, in topology order.
    pub nodes: Vec<NodeState>,
}

/// Per-node state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeState {
    /// Node name.
    pub name: String,
    /// QEMU's PID, once started.
    pub pid: Option<u32>,
    /// Seconds from `up` starting this node to the kernel's first console line.
    pub kernel_s: Option<f64>,
    /// ... to init's userspace mark.
    pub userspace_s: Option<f64>,
    /// ... to SSH answering.
    pub ssh_s: Option<f64>,
    /// How often `up` reset the VM because its boot stalled (console silent).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub resets: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The root holding every lab's state directory.
#[derive(Debug, Clone)]
pub struct StateRoot {
    path: PathBuf,
}

impl StateRoot {
    /// `$KUBELAB_STATE_DIR`, else [`DEFAULT_ROOT`].
    pub fn from_env() -> Self {
        let path = std::env::var_os(ROOT_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT));
        Self { path }
    }

    /// A root at `path`.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The root directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The state directory of lab `name` (which may not exist).
    pub fn lab(&self, name: &str) -> LabDir {
        LabDir {
            path: self.path.join(name),
        }
    }

    /// Names of every lab with a state directory, sorted.
    pub fn labs(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.path)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().into_string().ok())
            // Dot directories are scratch space (the accelerator trial), not labs.
            .filter(|name| !name.starts_with('.'))
            .collect();
        names.sort();
        names
    }
}

/// One lab's state directory.
#[derive(Debug, Clone)]
pub struct LabDir {
    path: PathBuf,
}

impl LabDir {
    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether it exists.
    pub fn exists(&self) -> bool {
        self.path.is_dir()
    }

    /// Creates the directory; fails with [`StateError::Exists`] if it is there already.
    pub fn create(&self) -> Result<(), StateError> {
        if let Some(parent) = self.path.parent() {
            fs::create_dir_all(parent).map_err(io(parent))?;
        }
        match fs::create_dir(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(StateError::Exists {
                path: self.path.clone(),
            }),
            Err(e) => Err(io(&self.path)(e)),
        }
    }

    /// Removes the directory and everything in it.
    pub fn remove(&self) -> Result<(), StateError> {
        match fs::remove_dir_all(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(&self.path)(e)),
        }
    }

    fn journal_path(&self) -> PathBuf {
        self.path.join("journal.jsonl")
    }

    /// Appends `resource` to the journal and syncs it to disk; call before creating it.
    pub fn record(&self, resource: &Resource) -> Result<(), StateError> {
        let path = self.journal_path();
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        let mut line = serde_json::to_vec(resource).expect("Resource always serializes");
        line.push(b'\n');
        file.write_all(&line).map_err(io(&path))?;
        file.sync_data().map_err(io(&path))
    }

    /// Every recorded resource, oldest first. A torn last line (killed mid-write) is skipped:
    /// its resource was never created, because recording comes first.
    pub fn journal(&self) -> Result<Vec<Resource>, StateError> {
        let path = self.journal_path();
        let file = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&path)(e)),
        };
        let mut out = Vec::new();
        for line in BufReader::new(file).lines() {
            let line = line.map_err(io(&path))?;
            if let Ok(resource) = serde_json::from_str(&line) {
                out.push(resource);
            }
        }
        Ok(out)
    }

    fn state_path(&self) -> PathBuf {
        self.path.join("state.json")
    }

    /// Replaces `state.json` atomically (write to a temporary file, then rename).
    pub fn save(&self, state: &LabState) -> Result<(), StateError> {
        let path = self.state_path();
        let tmp = self.path.join("state.json.tmp");
        let bytes = serde_json::to_vec_pretty(state).expect("LabState always serializes");
        fs::write(&tmp, bytes).map_err(io(&tmp))?;
        fs::rename(&tmp, &path).map_err(io(&path))
    }

    /// Reads `state.json`; `None` if `up` never got as far as writing it.
    pub fn load(&self) -> Result<Option<LabState>, StateError> {
        let path = self.state_path();
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| StateError::Corrupt { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// The copy of the topology file.
    pub fn topology(&self) -> PathBuf {
        self.path.join("topology.toml")
    }

    /// The lab's private SSH key (public key: same path plus `.pub`).
    pub fn ssh_key(&self) -> PathBuf {
        self.path.join("id_ed25519")
    }

    /// Directory of one node's files.
    pub fn node_dir(&self, node: &str) -> PathBuf {
        self.path.join("nodes").join(node)
    }

    /// The node's QMP socket.
    pub fn qmp_socket(&self, node: &str) -> PathBuf {
        self.node_dir(node).join("qmp.sock")
    }

    /// The node's serial console log.
    pub fn serial_log(&self, node: &str) -> PathBuf {
        self.node_dir(node).join("serial.log")
    }

    /// The node's QEMU PID file.
    pub fn pidfile(&self, node: &str) -> PathBuf {
        self.node_dir(node).join("qemu.pid")
    }

    /// The node's fw_cfg config file.
    pub fn node_config(&self, node: &str) -> PathBuf {
        self.node_dir(node).join("node.json")
    }

    /// The node's SSH host key pair (OpenSSH format; public key: same path plus `.pub`).
    pub fn host_key(&self, node: &str) -> PathBuf {
        self.node_dir(node).join("ssh_host_ed25519_key")
    }

    /// The node's host key in dropbear's format: the fw_cfg file the guest gets.
    pub fn host_key_dropbear(&self, node: &str) -> PathBuf {
        self.node_dir(node).join("ssh_host_ed25519_key.dropbear")
    }

    /// `known_hosts` with every node's management address and host key, for OpenSSH.
    pub fn known_hosts(&self) -> PathBuf {
        self.path.join("known_hosts")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_is_exclusive() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = StateRoot::at(tmp.path()).lab("a");
        dir.create().unwrap();
        assert!(matches!(dir.create(), Err(StateError::Exists { .. })));
    }

    #[test]
    fn journal_round_trips_and_skips_torn_line() {
        let tmp = tempfile::tempdir().unwrap();
        let root = StateRoot::at(tmp.path());
        let dir = root.lab("a");
        dir.create().unwrap();
        let a = Resource::Namespace {
            name: "kubelab-a".into(),
        };
        let b = Resource::QemuPid {
            node: "cp1".into(),
            pid: 42,
        };
        dir.record(&a).unwrap();
        dir.record(&b).unwrap();
        // A write cut short by SIGKILL.
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.journal_path())
            .unwrap();
        f.write_all(b"{\"kind\":\"tap\",\"na").unwrap();
        assert_eq!(dir.journal().unwrap(), vec![a, b]);
        std::fs::create_dir(tmp.path().join(".accel-trial-1")).unwrap();
        assert_eq!(root.labs(), vec!["a".to_string()]);
    }

    #[test]
    fn state_saves_atomically_and_loads() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = StateRoot::at(tmp.path()).lab("a");
        dir.create().unwrap();
        assert_eq!(dir.load().unwrap(), None);
        let state = LabState {
            name: "a".into(),
            namespace: "kubelab-a".into(),
            topology_file: "t.toml".into(),
            image: "/img".into(),
            accel: Accel::Tcg,
            started_at: 1,
            ready: false,
            nodes: vec![],
        };
        dir.save(&state).unwrap();
        assert_eq!(dir.load().unwrap(), Some(state));
        assert!(!dir.path().join("state.json.tmp").exists());
        dir.remove().unwrap();
        assert!(!dir.exists());
    }
}
