//! `RecordingHost`: a fake [`Host`] for unit tests. It records every operation, keeps the
//! namespaces and "processes" it pretends to have, checks that each resource was journaled
//! before it was created, and can be told to fail one operation.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ipnetwork::Ipv4Network;
use kubelab_nodeconfig::marks;

use super::{Host, HostError, QemuLaunch};
use crate::guest::Credentials;
use crate::state::{Resource, StateRoot};

#[derive(Default)]
struct Inner {
    ops: Vec<String>,
    namespaces: BTreeSet<String>,
    /// pid -> the PID file path it was started with (stands in for its command line).
    processes: BTreeMap<u32, PathBuf>,
    next_pid: u32,
    violations: Vec<String>,
    /// QMP socket -> (serial log, boots left before one reaches SSH).
    consoles: BTreeMap<PathBuf, (PathBuf, u32)>,
}

/// The fake host.
pub struct RecordingHost {
    root: StateRoot,
    inner: Mutex<Inner>,
    /// Fail the first operation whose record starts with this.
    pub fail_on: Option<String>,
    /// Make started QEMUs die at once (boot failure).
    pub qemu_dies: bool,
    /// How many boots of each VM stall (stop after init's userspace mark, printing nothing
    /// more) before one reaches SSH; each `reset_vm` starts the next boot.
    pub stalled_boots: u32,
}

impl RecordingHost {
    /// A fake whose journal checks look under `root`.
    pub fn new(root: &StateRoot) -> Self {
        Self {
            root: root.clone(),
            inner: Mutex::new(Inner {
                next_pid: 1000,
                ..Inner::default()
            }),
            fail_on: None,
            qemu_dies: false,
            stalled_boots: 0,
        }
    }

    /// Every operation so far.
    pub fn ops(&self) -> Vec<String> {
        self.inner.lock().unwrap().ops.clone()
    }

    /// Namespaces that exist.
    pub fn namespaces(&self) -> BTreeSet<String> {
        self.inner.lock().unwrap().namespaces.clone()
    }

    /// PIDs of live fake processes.
    pub fn processes(&self) -> Vec<u32> {
        self.inner
            .lock()
            .unwrap()
            .processes
            .keys()
            .copied()
            .collect()
    }

    /// Pretends someone else made namespace `ns`.
    pub fn inner_create_foreign(&self, ns: &str) {
        self.inner.lock().unwrap().namespaces.insert(ns.into());
    }

    /// Resources created without being journaled first.
    pub fn violations(&self) -> Vec<String> {
        self.inner.lock().unwrap().violations.clone()
    }

    fn op(&self, record: String, ns: &str, expect: Option<Resource>) -> Result<(), HostError> {
        let mut inner = self.inner.lock().unwrap();
        if let Some(resource) = expect {
            let lab = ns.strip_prefix(crate::net::NAMESPACE_PREFIX).unwrap_or(ns);
            let journal = self.root.lab(lab).journal().unwrap_or_default();
            if !journal.contains(&resource) {
                inner.violations.push(record.clone());
            }
        }
        let fail = self
            .fail_on
            .as_deref()
            .is_some_and(|f| record.starts_with(f))
            && !inner.ops.iter().any(|o| o.starts_with("FAILED "));
        if fail {
            inner.ops.push(format!("FAILED {record}"));
            return Err(HostError::Command {
                command: record,
                stderr: "injected failure".into(),
            });
        }
        inner.ops.push(record);
        Ok(())
    }
}

fn arg_after<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == flag)
        .map(|i| args[i + 1].as_str())
}

impl Host for RecordingHost {
    fn namespace_exists(&self, ns: &str) -> bool {
        self.inner.lock().unwrap().namespaces.contains(ns)
    }

    fn create_namespace(&self, ns: &str) -> Result<(), HostError> {
        self.op(
            format!("netns add {ns}"),
            ns,
            Some(Resource::Namespace { name: ns.into() }),
        )?;
        self.inner.lock().unwrap().namespaces.insert(ns.into());
        Ok(())
    }

    fn delete_namespace(&self, ns: &str) -> Result<(), HostError> {
        self.op(format!("netns del {ns}"), ns, None)?;
        self.inner.lock().unwrap().namespaces.remove(ns);
        Ok(())
    }

    fn add_bridge(&self, ns: &str, bridge: &str) -> Result<(), HostError> {
        self.op(
            format!("bridge {bridge}"),
            ns,
            Some(Resource::Bridge {
                name: bridge.into(),
            }),
        )
    }

    fn add_tap(&self, ns: &str, tap: &str, bridge: &str, isolated: bool) -> Result<(), HostError> {
        self.op(
            format!("tap {tap} master {bridge} isolated={isolated}"),
            ns,
            Some(Resource::Tap { name: tap.into() }),
        )
    }

    fn add_address(&self, ns: &str, dev: &str, addr: Ipv4Network) -> Result<(), HostError> {
        self.op(format!("addr {addr} dev {dev}"), ns, None)
    }

    fn nft(&self, ns: &str, ruleset: &str) -> Result<(), HostError> {
        self.op(format!("nft {ruleset}"), ns, None)
    }

    fn namespace_pids(&self, _ns: &str) -> Vec<u32> {
        Vec::new()
    }

    fn start_qemu(&self, ns: &str, launch: &QemuLaunch) -> Result<u32, HostError> {
        let name = arg_after(&launch.args, "-name")
            .and_then(|n| n.split(',').next())
            .unwrap_or("?")
            .to_owned();
        let node = name.rsplit('/').next().unwrap_or("?").to_owned();
        let pidfile = launch.pidfile.clone();
        self.op(
            format!("qemu {name}"),
            ns,
            Some(Resource::Qemu {
                node,
                pidfile: pidfile.clone(),
            }),
        )?;
        let console = arg_after(&launch.args, "-chardev")
            .and_then(|c| c.split(",path=").nth(1))
            .expect("console chardev");
        let qmp = arg_after(&launch.args, "-qmp")
            .and_then(|q| q.strip_prefix("unix:")?.split(',').next());
        std::fs::write(console, fake_boot(self.stalled_boots == 0)).unwrap();
        let mut inner = self.inner.lock().unwrap();
        if let Some(qmp) = qmp {
            inner.consoles.insert(
                qmp.into(),
                (console.into(), self.stalled_boots.saturating_sub(1)),
            );
        }
        inner.next_pid += 1;
        let pid = inner.next_pid;
        std::fs::write(&pidfile, pid.to_string()).unwrap();
        if !self.qemu_dies {
            inner.processes.insert(pid, pidfile);
        }
        Ok(pid)
    }

    fn is_ours(&self, pid: u32, marker: &Path) -> bool {
        self.inner
            .lock()
            .unwrap()
            .processes
            .get(&pid)
            .is_some_and(|p| p.starts_with(marker))
    }

    fn kill(&self, pid: u32) -> Result<(), HostError> {
        let mut inner = self.inner.lock().unwrap();
        inner.ops.push(format!("kill {pid}"));
        inner.processes.remove(&pid);
        Ok(())
    }

    fn reset_vm(&self, qmp: &Path) -> Result<(), HostError> {
        let mut inner = self.inner.lock().unwrap();
        inner.ops.push(format!("reset {}", qmp.display()));
        let (console, stalls_left) = inner.consoles.get_mut(qmp).expect("a started VM");
        let mut log = std::fs::OpenOptions::new()
            .append(true)
            .open(&*console)
            .unwrap();
        std::io::Write::write_all(&mut log, fake_boot(*stalls_left == 0).as_bytes()).unwrap();
        *stalls_left = stalls_left.saturating_sub(1);
        Ok(())
    }

    fn ssh_ready(
        &self,
        _ns: &str,
        _ip: Ipv4Addr,
        _credentials: &Credentials,
    ) -> Result<(), String> {
        Ok(())
    }
}

/// The console of one fake boot: the kernel banner and init's marks, up to SSH unless it
/// stalls after the userspace mark.
fn fake_boot(reaches_ssh: bool) -> String {
    let mut text = format!("Linux version 6.1\n{}\n", marks::USERSPACE);
    if reaches_ssh {
        text.push_str(marks::SSH_STARTED);
        text.push('\n');
    }
    text
}
