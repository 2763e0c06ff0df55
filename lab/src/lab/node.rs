//! One node's part of `up`, run on a thread of its own: its fw_cfg config and host key,
//! QEMU started detached in the lab namespace (recorded in the journal before and after),
//! then the serial console followed for the `kernel` and `userspace` stages and SSH polled
//! once init says dropbear listens. Each stage goes to the progress callback as it is seen;
//! the result is the node's PID and boot times, or a boot error with the console's tail.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::guest::Credentials;
use crate::guest::keys;
use crate::host::Host;
use crate::image::Manifest;
use crate::net::NetPlan;
use crate::state::{Accel, LabDir, NodeState, Resource};
use crate::topology::Topology;
use crate::vm::console::{self, Stage};
use crate::vm::qemu::VmSpec;
use crate::wait::wait_until;

use super::LabError;
use super::up::{Event, NodeStage, UpOptions};

/// How often one boot may be reset after a stall before it fails.
const MAX_STALL_RESETS: u32 = 1;

/// Boots node `index` of `topology` and waits until it answers SSH.
#[allow(clippy::too_many_arguments)] // Per-thread context of `boot`.
pub(super) fn boot_node(
    host: &dyn Host,
    dir: &LabDir,
    topology: &Topology,
    plan: &NetPlan,
    manifest: &Manifest,
    options: &UpOptions,
    accel: Accel,
    index: usize,
    public_key: &str,
    journal: &Mutex<()>,
    progress: &(dyn Fn(Event) + Sync),
) -> Result<NodeState, LabError> {
    let node = &topology.nodes[index];
    let name = node.name.clone();
    let io = |path: PathBuf| move |source| crate::state::StateError::Io { path, source };
    let node_dir = dir.node_dir(&name);
    std::fs::create_dir_all(&node_dir).map_err(io(node_dir.clone()))?;
    let config = plan.node_config(topology, index, public_key);
    let config_path = dir.node_config(&name);
    std::fs::write(&config_path, config.to_json()).map_err(io(config_path.clone()))?;
    // The node's host key: made here, handed in through fw_cfg, pinned when connecting.
    let host_key = keys::generate_host_key(
        &dir.host_key(&name),
        &dir.host_key_dropbear(&name),
        &format!("{}/{name}", topology.name),
    )?;

    let spec = VmSpec {
        name: format!("{}/{}", topology.name, name),
        image_dir: &options.image_dir,
        manifest,
        vcpus: node.vcpus,
        memory_mib: node.memory_mib,
        nics: plan.node_nics(&name).collect(),
        accel,
        node_config: config_path,
        host_key: Some(dir.host_key_dropbear(&name)),
        qmp_socket: dir.qmp_socket(&name),
        serial_log: dir.serial_log(&name),
        pidfile: dir.pidfile(&name),
    };
    let launch = spec.launch();
    let started = Instant::now();
    let emit = |stage| {
        progress(Event::Stage {
            node: name.clone(),
            stage,
            elapsed: started.elapsed(),
        })
    };
    emit(NodeStage::Starting);
    {
        let _guard = journal.lock().unwrap_or_else(|e| e.into_inner());
        dir.record(&Resource::Qemu {
            node: name.clone(),
            pidfile: launch.pidfile.clone(),
        })?;
    }
    let pid = host.start_qemu(&plan.namespace, &launch)?;
    {
        let _guard = journal.lock().unwrap_or_else(|e| e.into_inner());
        dir.record(&Resource::QemuPid {
            node: name.clone(),
            pid,
        })?;
    }
    tracing::info!(node = %name, pid, "qemu started");

    let mut result = NodeState {
        name: name.clone(),
        pid: Some(pid),
        kernel_s: None,
        userspace_s: None,
        ssh_s: None,
        resets: 0,
    };
    let mgmt = plan.mgmt_address(&name).expect("plan has every node");
    let credentials = Credentials {
        key: dir.ssh_key(),
        host_key: Some(host_key.blob),
    };
    let log = dir.serial_log(&name);
    let boot_error = |reason: String| LabError::Boot {
        node: name.clone(),
        reason,
        log: log.clone(),
        console: console::tail(&log, 20),
    };
    let mut shown = NodeStage::Starting;
    let qmp = dir.qmp_socket(&name);
    // Console growth, for the stall watchdog: its length, when it last grew, and QEMU's CPU
    // time then.
    let mut console_len = 0u64;
    let mut grew_at = Instant::now();
    let mut cpu_at_growth = host.cpu_seconds(pid);
    // Ok(None): ready. Ok(Some(reason)): give up now. Err: not yet, poll again.
    let waited = wait_until(
        &format!("node {name} to answer SSH"),
        options.boot_timeout,
        Duration::from_millis(50),
        |_| -> Result<Option<String>, String> {
            let seen = console::scan_file(&log);
            if let Some(fatal) = seen.fatal {
                return Ok(Some(format!("init gave up: {fatal}")));
            }
            if !host.is_ours(pid, dir.path()) {
                return Ok(Some("QEMU exited".into()));
            }
            let stage = match seen.stage {
                Stage::Starting => NodeStage::Starting,
                Stage::Kernel => NodeStage::Kernel,
                _ => NodeStage::Userspace,
            };
            for s in [NodeStage::Kernel, NodeStage::Userspace] {
                if stage >= s && shown < s {
                    shown = s;
                    let at = started.elapsed().as_secs_f64();
                    match s {
                        NodeStage::Kernel => result.kernel_s = Some(at),
                        _ => result.userspace_s = Some(at),
                    }
                    emit(s);
                }
            }
            let len = std::fs::metadata(&log).map_or(0, |m| m.len());
            if len != console_len {
                console_len = len;
                grew_at = Instant::now();
                cpu_at_growth = host.cpu_seconds(pid);
            } else if seen.stage < Stage::SshStarted
                && let Some(after) = options.stall_reset
                && grew_at.elapsed() >= after
            {
                let silent = grew_at.elapsed();
                let cpu = match (cpu_at_growth, host.cpu_seconds(pid)) {
                    (Some(then), Some(now)) => {
                        format!("  QEMU used {:.2} s of CPU while silent\n", now - then)
                    }
                    _ => String::new(),
                };
                let detail = format!("{cpu}{}", host.describe_vm(pid, &qmp));
                let last_line = console::tail(&log, 5)
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                if result.resets >= MAX_STALL_RESETS {
                    return Ok(Some(format!(
                        "stalled again after {} reset(s): no console output for {:.0}s; \
                         what the host sees:\n{detail}",
                        result.resets,
                        silent.as_secs_f64()
                    )));
                }
                tracing::warn!(node = %name, silent_s = silent.as_secs_f64(), %last_line, %detail, "boot stalled; resetting the VM");
                progress(Event::Stalled {
                    node: name.clone(),
                    silent,
                    last_line,
                    detail,
                });
                if let Err(e) = host.reset_vm(&qmp) {
                    return Ok(Some(format!(
                        "stalled, and the reset failed: {}",
                        crate::host::system::error_chain(&e)
                    )));
                }
                result.resets += 1;
                grew_at = Instant::now();
            }
            // SSH is tried only once init says dropbear listens: a connection tried earlier,
            // before the guest's NIC has its address, waits for the host's ARP retry (1 s)
            // or TCP's SYN retransmission (1 s) even after the guest is ready.
            if seen.stage < Stage::SshStarted {
                return Err(format!("console shows {}", seen.stage));
            }
            host.ssh_ready(&plan.namespace, mgmt, &credentials)
                .map(|()| None)
        },
    );
    match waited {
        Ok(None) => {}
        Ok(Some(reason)) => return Err(boot_error(reason)),
        Err(timeout) => return Err(boot_error(timeout.to_string())),
    }
    result.ssh_s = Some(started.elapsed().as_secs_f64());
    emit(NodeStage::SshReady);
    Ok(result)
}
