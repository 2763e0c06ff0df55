//! `kubelab down`, `status`, `exec` and `ssh`: commands that reconnect to a running lab
//! through its state directory.

use std::os::unix::process::CommandExt;

use kubelab::guest::keys;
use kubelab::host::SystemHost;
use kubelab::lab::status::status as lab_status;
use kubelab::lab::{Lab, down::down as lab_down};
use kubelab::state::StateRoot;
use kubelab::topology::Role;

use super::CliError;

/// A role as written in topology files.
pub fn role(role: Role) -> &'static str {
    match role {
        Role::ControlPlane => "control-plane",
        Role::Worker => "worker",
        Role::Router => "router",
    }
}

/// `kubelab down LAB`.
pub fn down(lab: &str) -> Result<i32, CliError> {
    let report = lab_down(&SystemHost, &StateRoot::from_env(), lab)?;
    if let Some(pid) = report.stopped_up {
        kubelab::outln!("lab {lab}: stopped the `kubelab up` still running (PID {pid})");
    }
    kubelab::outln!(
        "lab {lab} is down: {} process(es) killed, namespace {}, state removed",
        report.killed.len(),
        if report.namespace_deleted {
            "deleted"
        } else {
            "was already gone"
        }
    );
    Ok(0)
}

/// `kubelab status [LAB]`.
pub fn status(lab: Option<&str>) -> Result<i32, CliError> {
    let root = StateRoot::from_env();
    let names = match lab {
        Some(name) => vec![name.to_owned()],
        None => root.labs(),
    };
    if names.is_empty() {
        kubelab::outln!("no labs (state in {})", root.path().display());
        return Ok(0);
    }
    for name in names {
        match lab_status(&SystemHost, &root, &name) {
            Ok(s) => {
                kubelab::outln!(
                    "lab {}: {}, accelerator {}, namespace {}",
                    s.name,
                    if s.ready {
                        "ready"
                    } else {
                        "starting or interrupted"
                    },
                    s.accel,
                    if s.namespace { "present" } else { "MISSING" },
                );
                kubelab::outln!(
                    "  {:<12} {:<14} {:<13} {:>8} {:<15} ADDRESSES",
                    "NODE",
                    "ROLE",
                    "VM",
                    "PID",
                    "MGMT"
                );
                for n in s.nodes {
                    kubelab::outln!(
                        "  {:<12} {:<14} {:<13} {:>8} {:<15} {}",
                        n.name,
                        n.role,
                        n.vm,
                        n.pid.map_or("-".into(), |p| p.to_string()),
                        n.mgmt,
                        n.addresses.join(" ")
                    );
                }
            }
            // One broken lab does not hide the others.
            Err(e) if lab.is_none() => kubelab::outln!("lab {name}: {}", super::chain(&e)),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(0)
}

/// `kubelab exec LAB NODE -- CMD...`: output streamed through, exit code passed through.
pub fn exec(lab: &str, node: &str, command: &[String]) -> Result<i32, CliError> {
    let lab = Lab::open(&StateRoot::from_env(), lab)?;
    let guest = lab.ssh(node)?;
    // One argument is taken as a shell command line; several are quoted word by word.
    let line = if command.len() == 1 {
        command[0].clone()
    } else {
        command
            .iter()
            .map(|w| kubelab::guest::shell_quote(w))
            .collect::<Vec<_>>()
            .join(" ")
    };
    // Output is passed on as it arrives, each stream to its own; a closed stdout (`| head`)
    // drops the rest of the output, not the command.
    let status =
        guest.exec_streaming(&line, &[], &mut std::io::stdout(), &mut std::io::stderr())?;
    Ok(status)
}

/// `kubelab ssh LAB NODE`: replaces this process with OpenSSH run inside the namespace. The
/// node must present the host key `up` made for it (the lab's `known_hosts`); labs from
/// before host keys were made accept any key.
pub fn ssh(lab: &str, node: &str) -> Result<i32, CliError> {
    let lab = Lab::open(&StateRoot::from_env(), lab)?;
    let ip = lab.mgmt_address(node)?;
    let key = lab.dir.ssh_key();
    keys::public_key(&key)?;
    let known_hosts = lab.dir.known_hosts();
    let host_checking: Vec<String> = if known_hosts.exists() {
        vec![
            "StrictHostKeyChecking=yes".into(),
            format!("UserKnownHostsFile={}", known_hosts.display()),
            "HostKeyAlgorithms=ssh-ed25519".into(),
        ]
    } else {
        vec![
            "StrictHostKeyChecking=no".into(),
            "UserKnownHostsFile=/dev/null".into(),
        ]
    };
    let mut cmd = std::process::Command::new("ip");
    cmd.args(["netns", "exec", &lab.plan.namespace, "ssh"])
        .arg("-i")
        .arg(&key);
    for option in host_checking
        .iter()
        .map(String::as_str)
        .chain(["LogLevel=ERROR"])
    {
        cmd.args(["-o", option]);
    }
    let err = cmd.arg(format!("root@{ip}")).exec();
    Err(format!("cannot start ssh: {err}").into())
}
