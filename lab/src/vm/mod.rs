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
