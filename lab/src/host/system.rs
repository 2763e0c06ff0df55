//! [`SystemHost`]: the real [`Host`], by running `ip`, `bridge` and `nft` inside the lab's
//! namespace (`ip -n NS ...`, `ip netns exec NS nft ...`) and QEMU through `ip netns exec`.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};

use ipnetwork::Ipv4Network;

use super::{Host, HostError, QemuLaunch};
use crate::guest::Credentials;

/// The QEMU binary.
pub const QEMU: &str = "qemu-system-x86_64";

/// The real host.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemHost;

fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<String, HostError> {
    let command = format!("{program} {}", args.join(" "));
    tracing::debug!(%command, "run");
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| HostError::Spawn {
            program: program.to_owned(),
            source,
        })?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A failed write shows up as the command's own error below.
        let _ = pipe.write_all(text.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|source| HostError::Spawn {
            program: program.to_owned(),
            source,
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(HostError::Command {
            command,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

impl Host for SystemHost {
    fn namespace_exists(&self, ns: &str) -> bool {
        Path::new("/run/netns").join(ns).exists()
    }

    fn create_namespace(&self, ns: &str) -> Result<(), HostError> {
        run("ip", &["netns", "add", ns], None)?;
        run("ip", &["-n", ns, "link", "set", "lo", "up"], None).map(drop)
    }

    fn delete_namespace(&self, ns: &str) -> Result<(), HostError> {
        if !self.namespace_exists(ns) {
            return Ok(());
        }
        run("ip", &["netns", "delete", ns], None).map(drop)
    }

    fn add_bridge(&self, ns: &str, bridge: &str) -> Result<(), HostError> {
        run(
            "ip",
            &["-n", ns, "link", "add", bridge, "type", "bridge"],
            None,
        )?;
        // No STP and no forwarding delay: ports forward as soon as they are up.
        run(
            "ip",
            &[
                "-n",
                ns,
                "link",
                "set",
                bridge,
                "type",
                "bridge",
                "stp_state",
                "0",
                "forward_delay",
                "0",
            ],
            None,
        )?;
        run("ip", &["-n", ns, "link", "set", bridge, "up"], None).map(drop)
    }

    fn add_tap(&self, ns: &str, tap: &str, bridge: &str, isolated: bool) -> Result<(), HostError> {
        run("ip", &["-n", ns, "tuntap", "add", tap, "mode", "tap"], None)?;
        run(
            "ip",
            &["-n", ns, "link", "set", tap, "master", bridge],
            None,
        )?;
        if isolated {
            run(
                "bridge",
                &["-n", ns, "link", "set", "dev", tap, "isolated", "on"],
                None,
            )?;
        }
        run("ip", &["-n", ns, "link", "set", tap, "up"], None).map(drop)
    }

    fn add_address(&self, ns: &str, dev: &str, addr: Ipv4Network) -> Result<(), HostError> {
        run(
            "ip",
            &["-n", ns, "addr", "add", &addr.to_string(), "dev", dev],
            None,
        )
        .map(drop)
    }

    fn nft(&self, ns: &str, ruleset: &str) -> Result<(), HostError> {
        run(
            "ip",
            &["netns", "exec", ns, "nft", "-f", "-"],
            Some(ruleset),
        )
        .map(drop)
    }

    fn namespace_pids(&self, ns: &str) -> Vec<u32> {
        if !self.namespace_exists(ns) {
            return Vec::new();
        }
        run("ip", &["netns", "pids", ns], None)
            .map(|out| {
                out.split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn start_qemu(&self, ns: &str, launch: &QemuLaunch) -> Result<u32, HostError> {
        let mut args = vec!["netns", "exec", ns, QEMU];
        args.extend(launch.args.iter().map(String::as_str));
        // With -daemonize the command returns once QEMU is initialized (or has failed).
        run("ip", &args, None)?;
        std::fs::read_to_string(&launch.pidfile)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| HostError::PidFile {
                path: launch.pidfile.clone(),
            })
    }

    fn is_ours(&self, pid: u32, marker: &Path) -> bool {
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            return false;
        };
        // A zombie has an empty command line; it is gone for our purposes.
        let marker = marker.as_os_str().as_encoded_bytes();
        !marker.is_empty() && cmdline.windows(marker.len()).any(|w| w == marker)
    }

    fn is_exiting(&self, pid: u32) -> bool {
        let empty_cmdline =
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.is_empty());
        empty_cmdline && crate::vm::process_alive(pid)
    }

    fn kill(&self, pid: u32) -> Result<(), HostError> {
        let raw = i32::try_from(pid).map_err(|_| HostError::Signal {
            pid,
            source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
        })?;
        let target = rustix::process::Pid::from_raw(raw).ok_or(HostError::Signal {
            pid,
            source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
        })?;
        match rustix::process::kill_process(target, rustix::process::Signal::KILL) {
            Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
            Err(e) => Err(HostError::Signal {
                pid,
                source: e.into(),
            }),
        }
    }

    fn reset_vm(&self, qmp: &Path) -> Result<(), HostError> {
        let err = |source| HostError::Qmp {
            socket: qmp.to_owned(),
            source: Box::new(source),
        };
        let mut client = crate::vm::qmp::QmpClient::connect(qmp).map_err(err)?;
        client.system_reset().map_err(err)?;
        // A VM QEMU stopped (an I/O error, or paused by hand) stays stopped across a reset.
        if !client.status().map_err(err)?.running {
            client.cont().map_err(err)?;
        }
        Ok(())
    }

    fn describe_vm(&self, pid: u32, qmp: &Path) -> String {
        let status = match crate::vm::qmp::QmpClient::connect(qmp).and_then(|mut c| c.status()) {
            Ok(status) => format!("  QEMU run state: {}", status.state),
            Err(e) => format!("  QEMU run state: unknown ({})", error_chain(&e)),
        };
        format!("{status}\n{}", crate::vm::describe_process(pid))
    }

    fn cpu_seconds(&self, pid: u32) -> Option<f64> {
        crate::vm::cpu_seconds(pid)
    }

    fn ssh_ready(&self, ns: &str, ip: Ipv4Addr, credentials: &Credentials) -> Result<(), String> {
        let guest =
            crate::guest::Guest::connect(ns, ip, credentials).map_err(|e| error_chain(&e))?;
        match guest.exec("true") {
            Ok(out) if out.status == 0 => Ok(()),
            Ok(out) => Err(format!("`true` exited with {}", out.status)),
            Err(e) => Err(error_chain(&e)),
        }
    }
}

/// An error and its sources on one line, `a: b: c`.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
