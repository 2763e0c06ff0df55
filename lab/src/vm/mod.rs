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

/// One line per thread of process `pid` (`name state=S wchan=...`) plus the host's load
/// average and dirty/writeback memory: what the host can tell about a guest that went
/// silent (a vCPU thread in `D` on a write, an idle `S` vCPU waiting for an interrupt, a
/// starved host). Empty parts are left out; never fails.
pub fn describe_process(pid: u32) -> String {
    let mut lines = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        let mut tasks: Vec<_> = tasks.flatten().map(|t| t.path()).collect();
        tasks.sort();
        for task in tasks {
            let read = |f: &str| std::fs::read_to_string(task.join(f)).unwrap_or_default();
            let stat = read("stat");
            let Some((_, rest)) = stat.rsplit_once(')') else {
                continue;
            };
            let state = rest.split_whitespace().next().unwrap_or("?");
            let wchan = read("wchan");
            let wchan = if wchan.is_empty() || wchan == "0" {
                "-"
            } else {
                wchan.as_str()
            };
            let cpu = read("schedstat")
                .split_whitespace()
                .next()
                .and_then(|ns| ns.parse::<u64>().ok())
                .map_or(String::from("?"), |ns| format!("{:.2}", ns as f64 / 1e9));
            lines.push(format!(
                "  thread {} ({}): state={state} wchan={wchan} cpu={cpu}s",
                task.file_name().unwrap_or_default().to_string_lossy(),
                read("comm").trim(),
            ));
        }
    }
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        lines.push(format!("  host load average: {}", load.trim()));
    }
    if let Ok(meminfo) = std::fs::read_to_string("/proc/meminfo") {
        let fields: Vec<String> = meminfo
            .lines()
            .filter(|l| l.starts_with("Dirty:") || l.starts_with("Writeback:"))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        if !fields.is_empty() {
            lines.push(format!("  host memory: {}", fields.join(", ")));
        }
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_every_thread_of_a_process_and_the_host() {
        let me = std::process::id();
        let (started, wait) = std::sync::mpsc::channel();
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        // The thread names itself on start; it reports once running, then blocks.
        let worker = std::thread::Builder::new()
            .name("describe-me".into())
            .spawn(move || {
                started.send(()).unwrap();
                let _ = stopped.recv();
            })
            .unwrap();
        wait.recv().unwrap();
        let text = describe_process(me);
        drop(stop);
        worker.join().unwrap();
        assert!(text.contains("(describe-me): state="), "{text}");
        assert!(text.contains(" wchan=") && text.contains(" cpu="), "{text}");
        assert!(text.contains("host load average: "), "{text}");
        assert!(text.contains("Dirty: "), "{text}");
        // A process that does not exist has no threads, only the host's lines.
        assert!(!describe_process(u32::MAX).contains("thread "));
    }

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
