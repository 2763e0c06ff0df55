//! Virtual machines: the QEMU command line of a node ([`qemu`]), control over QMP ([`qmp`]),
//! boot progress read from the serial console log ([`console`]), the KVM-or-TCG decision
//! ([`accel`]) and the host's TSC rate that TCG guests on `microvm` are told ([`tsc`]).
//!
//! A VM is one detached QEMU process started inside the lab namespace with `-daemonize`, so it
//! outlives the command that started it. Its QMP socket, serial log and PID file live in the
//! node's state directory; any later command reconnects to the socket.

pub mod accel;
pub mod console;
pub mod qemu;
pub mod qmp;
pub mod tsc;

/// Whether process `pid` exists and is not a zombie. Daemonized QEMUs are reparented to PID 1,
/// which in containers does not always reap them; a zombie has exited for every purpose here.
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesized command name: "pid (comm) S ...".
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// CPU seconds process `pid` has used so far, all its threads (`/proc/PID/task/*/schedstat`,
/// nanoseconds on a CPU); `None` once it is gone. For a QEMU at SSH-ready this is what its
/// boot cost: on a busy host the wall time grows, this hardly does (the boot benchmarks).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let mut ns = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        let stat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
        ns += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(ns as f64 / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_seconds_grows_with_work_and_is_none_for_a_gone_process() {
        let me = std::process::id();
        let before = cpu_seconds(me).expect("this process has a schedstat");
        // Busy for at least 50 ms of CPU.
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let after = cpu_seconds(me).unwrap();
        assert!(after > before, "{before} -> {after}");
        // PIDs above pid_max never exist.
        assert_eq!(cpu_seconds(u32::MAX), None);
    }
}
