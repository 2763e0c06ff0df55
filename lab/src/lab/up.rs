//! `kubelab up`: topology file in, running lab out.
//!
//! 1. Load and validate the topology and the image manifest; check the name is free. Nothing
//!    exists yet, so a refusal leaves nothing behind.
//! 2. Create the state directory (the lock), copy the topology in, make the SSH key pair,
//!    choose KVM or TCG.
//! 3. Network: namespace, one bridge per network, the management bridge with the host's
//!    address, a tap per VM NIC. Each resource goes into the journal *before* it is created,
//!    so `down` can remove it even if this process is SIGKILLed right after.
//! 4. One thread per node ([`super::node`]): write its fw_cfg config, start QEMU detached in the namespace,
//!    follow the console for `kernel` and `userspace`, poll SSH until it answers; report each
//!    stage through the progress callback.
//! 5. Save `state.json` with PIDs and boot times. On any failure after step 2 the lab is torn
//!    down (`down::teardown`, under this `up`'s lock) and the error (with the console's last lines) returned.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use crate::guest::keys::{self, HostKey};
use crate::host::Host;
use crate::image::Manifest;
use crate::net::{MGMT_BRIDGE, NetPlan};
use crate::state::{Accel, LabDir, LabState, NodeState, Resource, StateRoot};
use crate::topology::Topology;
use crate::vm::accel::{self, Reason};

use super::LabError;

/// Default time one node may take from QEMU start to SSH ready. Generous: five TCG guests on
/// two shared cores.
pub const DEFAULT_BOOT_TIMEOUT: Duration = Duration::from_secs(120);

/// Default console silence after which a booting node counts as stalled and is reset, once.
/// A boot prints something at least every few seconds even with five TCG guests on two busy
/// cores (the longest gap seen in CI logs of good boots is ~5 s); a stall seen in CI stayed
/// silent for the whole boot timeout.
pub const DEFAULT_STALL_RESET: Duration = Duration::from_secs(30);

/// What `up` needs besides the topology.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// The image directory (holds `manifest.json`).
    pub image_dir: PathBuf,
    /// Lab name overriding the topology's.
    pub name: Option<String>,
    /// Accelerator; `None` runs the KVM trial (or uses its cached verdict).
    pub accel: Option<Accel>,
    /// Per-node boot deadline.
    pub boot_timeout: Duration,
    /// Console silence before SSH after which a node is reset (once; a second stall fails
    /// the boot). `None`: never reset, wait out `boot_timeout`.
    pub stall_reset: Option<Duration>,
}

/// A boot stage of one node, as shown by `up`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NodeStage {
    /// QEMU is being started.
    Starting,
    /// The kernel printed its banner.
    Kernel,
    /// Init runs.
    Userspace,
    /// SSH answers.
    SshReady,
}

impl std::fmt::Display for NodeStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NodeStage::Starting => "starting",
            NodeStage::Kernel => "kernel",
            NodeStage::Userspace => "userspace",
            NodeStage::SshReady => "SSH ready",
        })
    }
}

/// Progress of `up`, for display.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The accelerator was chosen.
    Accel {
        /// Which.
        accel: Accel,
        /// Why.
        reason: Reason,
    },
    /// The namespace, bridges and taps exist.
    Network {
        /// The namespace.
        namespace: String,
    },
    /// A booting node's console was silent for `silent`; it is being reset.
    Stalled {
        /// The node.
        node: String,
        /// How long nothing was printed.
        silent: Duration,
        /// The console's last line before the silence.
        last_line: String,
        /// What the host sees of its QEMU (threads, CPU used while silent, load).
        detail: String,
    },
    /// A node reached a stage, `elapsed` after its QEMU was started.
    Stage {
        /// The node.
        node: String,
        /// The stage.
        stage: NodeStage,
        /// Time since its start.
        elapsed: Duration,
    },
}

/// Boots the lab described by `topology_file`.
pub fn up(
    host: &dyn Host,
    root: &StateRoot,
    topology_file: &std::path::Path,
    options: &UpOptions,
    progress: &(dyn Fn(Event) + Sync),
) -> Result<LabState, LabError> {
    // 1. Everything that can be refused, before anything is created.
    let mut topology = Topology::load(topology_file)?;
    if let Some(name) = &options.name {
        topology.rename(name).map_err(|problem| LabError::BadName {
            name: name.clone(),
            problem,
        })?;
    }
    let manifest = Manifest::load(&options.image_dir).map_err(|source| LabError::Image {
        path: options.image_dir.clone(),
        source,
    })?;
    let name = topology.name.clone();
    let plan = NetPlan::new(&topology);
    let dir = root.lab(&name);
    check_free(host, &dir, &name, &plan.namespace)?;

    // 2. The state directory is the lock; a concurrent `up` of the same name fails here.
    dir.create().map_err(|e| match e {
        crate::state::StateError::Exists { .. } => LabError::AlreadyRunning { name: name.clone() },
        e => e.into(),
    })?;
    // Held until this function returns; a concurrent `up` of the name sees it.
    let _lock = match dir.lock_up() {
        Ok(lock) => lock,
        Err(e) => {
            let _ = dir.remove();
            return Err(e.into());
        }
    };
    tracing::info!(lab = %name, dir = %dir.path().display(), "up");
    match boot(
        host,
        root,
        &dir,
        topology_file,
        &topology,
        &plan,
        &manifest,
        options,
        progress,
    ) {
        Ok(state) => Ok(state),
        Err(err) => {
            tracing::warn!(lab = %name, error = %err, "up failed; tearing the lab down");
            if let Err(down_err) = super::down::teardown(host, root, &name) {
                tracing::error!(lab = %name, error = %down_err, "teardown after failed up");
            }
            Err(err)
        }
    }
}

fn check_free(host: &dyn Host, dir: &LabDir, name: &str, ns: &str) -> Result<(), LabError> {
    if dir.exists() {
        if dir.up_in_progress() {
            return Err(LabError::Starting { name: name.into() });
        }
        let running =
            host.namespace_exists(ns) && dir.load().ok().flatten().is_some_and(|s| s.ready);
        return Err(if running {
            LabError::AlreadyRunning { name: name.into() }
        } else {
            LabError::Leftover {
                name: name.into(),
                dir: dir.path().to_owned(),
            }
        });
    }
    if host.namespace_exists(ns) {
        return Err(LabError::NamespaceTaken { ns: ns.into() });
    }
    Ok(())
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[allow(clippy::too_many_arguments)] // One call site; a struct would only rename these.
fn boot(
    host: &dyn Host,
    root: &StateRoot,
    dir: &LabDir,
    topology_file: &std::path::Path,
    topology: &Topology,
    plan: &NetPlan,
    manifest: &Manifest,
    options: &UpOptions,
    progress: &(dyn Fn(Event) + Sync),
) -> Result<LabState, LabError> {
    std::fs::copy(topology_file, dir.topology()).map_err(|source| {
        crate::state::StateError::Io {
            path: dir.topology(),
            source,
        }
    })?;
    let public_key =
        crate::guest::keys::generate(&dir.ssh_key(), &format!("kubelab-{}", topology.name))?;
    let (accel, reason) = match options.accel {
        Some(a) => (a, Reason::Forced),
        None => accel::choose(root.path(), &options.image_dir, manifest),
    };
    progress(Event::Accel { accel, reason });

    let mut state = LabState {
        name: topology.name.clone(),
        namespace: plan.namespace.clone(),
        topology_file: std::path::absolute(topology_file).unwrap_or_else(|_| topology_file.into()),
        image: options.image_dir.clone(),
        accel,
        started_at: now_unix(),
        ready: false,
        nodes: topology
            .nodes
            .iter()
            .map(|n| NodeState {
                name: n.name.clone(),
                pid: None,
                kernel_s: None,
                userspace_s: None,
                ssh_s: None,
                resets: 0,
            })
            .collect(),
    };
    dir.save(&state)?;

    // 3. Network, write-ahead.
    let ns = &plan.namespace;
    dir.record(&Resource::Namespace { name: ns.clone() })?;
    host.create_namespace(ns)?;
    for (_, bridge) in &plan.bridges {
        dir.record(&Resource::Bridge {
            name: bridge.clone(),
        })?;
        host.add_bridge(ns, bridge)?;
    }
    dir.record(&Resource::Bridge {
        name: MGMT_BRIDGE.into(),
    })?;
    host.add_bridge(ns, MGMT_BRIDGE)?;
    host.add_address(ns, MGMT_BRIDGE, plan.mgmt_host)?;
    for nic in &plan.nics {
        dir.record(&Resource::Tap {
            name: nic.tap.clone(),
        })?;
        host.add_tap(ns, &nic.tap, &nic.bridge, nic.management)?;
    }
    progress(Event::Network {
        namespace: ns.clone(),
    });

    // 4. Nodes in parallel.
    let journal = Mutex::new(());
    let results: Vec<Result<NodeState, LabError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..topology.nodes.len())
            .map(|index| {
                let journal = &journal;
                let public_key = &public_key;
                scope.spawn(move || {
                    super::node::boot_node(
                        host, dir, topology, plan, manifest, options, accel, index, public_key,
                        journal, progress,
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("node boot thread does not panic"))
            .collect()
    });
    let mut first_error = None;
    for (slot, result) in state.nodes.iter_mut().zip(results) {
        match result {
            Ok(node) => *slot = node,
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(err) = first_error {
        return Err(err);
    }
    write_known_hosts(dir, topology, plan)?;

    // 5. Done.
    state.ready = true;
    dir.save(&state)?;
    Ok(state)
}

/// `known_hosts` for OpenSSH (`kubelab ssh`): each node's management address and host key.
fn write_known_hosts(dir: &LabDir, topology: &Topology, plan: &NetPlan) -> Result<(), LabError> {
    let mut text = String::new();
    for node in &topology.nodes {
        let key = HostKey::load(&dir.host_key(&node.name))?;
        let addr = plan.mgmt_address(&node.name).expect("plan has every node");
        text.push_str(&keys::known_hosts_line(&addr.to_string(), &key));
        text.push('\n');
    }
    let path = dir.known_hosts();
    std::fs::write(&path, text).map_err(|source| crate::state::StateError::Io { path, source })?;
    Ok(())
}
