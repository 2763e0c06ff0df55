//! Boot progress from the serial console log: which stages a guest has reached, found by
//! scanning the log QEMU writes for the kernel's banner and the init's marks
//! ([`kubelab_nodeconfig::marks`]).

use std::path::Path;

use kubelab_nodeconfig::marks;

/// How far a guest has booted, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// QEMU runs, nothing on the console yet.
    Starting,
    /// The kernel printed its banner.
    Kernel,
    /// `kubelabd init` runs as PID 1.
    Userspace,
    /// Init configured the network.
    Network,
    /// Init started the SSH server.
    SshStarted,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stage::Starting => "starting",
            Stage::Kernel => "kernel",
            Stage::Userspace => "userspace",
            Stage::Network => "network",
            Stage::SshStarted => "ssh-started",
        })
    }
}

/// What the console log says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleState {
    /// Furthest stage reached.
    pub stage: Stage,
    /// The rest of a fatal init line, if init gave up.
    pub fatal: Option<String>,
}

/// Scans console text.
pub fn scan(text: &str) -> ConsoleState {
    let mut stage = Stage::Starting;
    let mut fatal = None;
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        let reached = if line.contains("Linux version ") {
            Stage::Kernel
        } else if line.contains(marks::USERSPACE) {
            Stage::Userspace
        } else if line.contains(marks::NETWORK_READY) {
            Stage::Network
        } else if line.contains(marks::SSH_STARTED) {
            Stage::SshStarted
        } else {
            if let Some(pos) = line.find(marks::FATAL) {
                fatal = Some(line[pos + marks::FATAL.len()..].trim().to_owned());
            }
            continue;
        };
        stage = stage.max(reached);
    }
    ConsoleState { stage, fatal }
}

/// Scans a console log file; a missing file means nothing was printed yet.
pub fn scan_file(path: &Path) -> ConsoleState {
    let bytes = std::fs::read(path).unwrap_or_default();
    scan(&String::from_utf8_lossy(&bytes))
}

/// The last `n` lines of a console log, to show when a boot fails.
pub fn tail(path: &Path, n: usize) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_in_order_and_fatal() {
        assert_eq!(scan("").stage, Stage::Starting);
        let mut log = String::from("SeaBIOS\r\n[    0.000000] Linux version 6.1.0-28-amd64\r\n");
        assert_eq!(scan(&log).stage, Stage::Kernel);
        log.push_str(&format!("{}\n", marks::USERSPACE));
        assert_eq!(scan(&log).stage, Stage::Userspace);
        log.push_str(&format!(
            "{}\n{}\n",
            marks::NETWORK_READY,
            marks::SSH_STARTED
        ));
        assert_eq!(
            scan(&log),
            ConsoleState {
                stage: Stage::SshStarted,
                fatal: None
            }
        );
        log.push_str(&format!("{} no node config\n", marks::FATAL));
        assert_eq!(scan(&log).fatal.as_deref(), Some("no node config"));
    }
}
