//! `kubelabd init`: the guest's PID 1.
//!
//! The kernel starts it as `/init` from the initramfs. In order:
//!
//! 1. **initramfs stage** ([`mounts`], [`modules`]): mount `/proc`, `/sys`, `/dev`; load the
//!    modules the initramfs carries (virtio, squashfs, overlay); mount the read-only squashfs
//!    root disk under a tmpfs overlay; delete the initramfs files and switch root into the
//!    overlay (same process, no exec).
//! 2. **root stage**: mount `/run`, `/dev/pts`; load the root filesystem's modules (NICs,
//!    fw_cfg, power button); read and validate the [`NodeConfig`] from fw_cfg; set hostname,
//!    interfaces, routes, forwarding ([`net`]); write the SSH key and start dropbear ([`ssh`]).
//! 3. **supervision** ([`supervise`]): reap every child, restart crashed services with
//!    backoff, and on the ACPI power button, `poweroff`/`reboot` or a signal, shut down
//!    cleanly ([`power`]).
//!
//! Each stage prints a [`marks`] line on the console. Anything that stops the boot prints
//! [`marks::FATAL`] with the reason and powers the VM off — never a hang or a kernel panic.
//!
//! Host side effects sit behind small traits where the logic around them is worth testing
//! ([`net::NetSys`]); the rest is thin wrappers over system calls, exercised by the VM tests.

mod console;
mod ioctl;
mod modules;
mod mounts;
mod net;
mod power;
mod ssh;
mod supervise;

use std::path::Path;
use std::time::Duration;

use kubelab_nodeconfig::{GUEST_SYSFS_PATH, NodeConfig, marks};

pub use console::{fatal_and_power_off, mark};

/// Where the initramfs and the root filesystem keep kernel modules.
const MODULES_DIR: &str = "/lib/modules";

/// Why init cannot go on. Printed after [`marks::FATAL`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call or file operation failed.
    #[error("{what}: {source}")]
    Sys {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Something expected did not appear in time.
    #[error("{0}")]
    Timeout(String),
    /// The node config is missing or invalid.
    #[error("node config {GUEST_SYSFS_PATH}: {0}")]
    Config(String),
    /// The SSH host key handed in through fw_cfg is not usable.
    #[error("SSH host key {}: {problem}; the harness writes it with kubelab_nodeconfig::host_key::encode", path.display())]
    HostKey {
        /// The fw_cfg file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The network could not be configured as the node config asks.
    #[error(transparent)]
    Net(#[from] net::NetError),
}

/// Attaches what was being done to an I/O error.
pub(crate) trait Context<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, Error>;
}

impl<T> Context<T> for std::io::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, Error> {
        self.map_err(|source| Error::Sys {
            what: what(),
            source,
        })
    }
}

impl<T> Context<T> for rustix::io::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, Error> {
        self.map_err(|errno| Error::Sys {
            what: what(),
            source: errno.into(),
        })
    }
}

/// True when this process was started by the kernel as `/init` (argv[0] named `init`).
pub fn invoked_as_init() -> bool {
    std::env::args_os()
        .next()
        .map(|a| Path::new(&a).file_name() == Some("init".as_ref()))
        .unwrap_or(false)
}

/// Runs init; never returns. Refuses to run as anything but PID 1, so a mistaken
/// `kubelabd init` on a host does nothing.
pub fn run() -> ! {
    if std::process::id() != 1 {
        eprintln!("kubelabd init: must run as PID 1 (the guest's init); refusing");
        std::process::exit(2);
    }
    console::install_panic_hook();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .with_max_level(tracing::Level::INFO)
        .init();
    mark(marks::USERSPACE);
    match boot() {
        Ok(supervisor) => supervise::run(supervisor),
        Err(err) => fatal_and_power_off(&err.to_string()),
    }
}

/// Stages 1 and 2: everything up to a running SSH server.
fn boot() -> Result<supervise::Supervisor, Error> {
    mounts::mount_early()?;
    tracing::info!(uptime = uptime(), "init started");
    // Signals are taken over before any child exists, so no SIGCHLD is ever lost.
    let signals = power::Signals::block()?;
    let release = rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned();
    let modules_dir = Path::new(MODULES_DIR).join(&release);
    modules::load_all(&modules_dir)?;
    tracing::info!(uptime = uptime(), "initramfs modules loaded");
    let cmdline =
        std::fs::read_to_string("/proc/cmdline").ctx(|| "reading /proc/cmdline".into())?;
    mounts::switch_to_overlay_root(&mounts::RootSpec::from_cmdline(&cmdline))?;
    tracing::info!(uptime = uptime(), "switched to the overlay root");

    mounts::mount_late()?;
    modules::load_all(&modules_dir)?;
    tracing::info!(uptime = uptime(), "root filesystem modules loaded");
    let config = read_config()?;
    tracing::info!(hostname = %config.hostname, lab = %config.lab, role = ?config.role, "node config read");
    net::configure(&config, &mut ioctl::Ioctl::new()?)?;
    mark(marks::NETWORK_READY);
    tracing::info!(uptime = uptime(), "network configured");

    let mut supervisor = supervise::Supervisor::new(signals, power::InputDevices::open());
    let has_host_key = ssh::prepare(&config)?;
    supervisor.start(ssh::dropbear_service(has_host_key));
    ssh::wait_listening(Duration::from_secs(5))?;
    mark(marks::SSH_STARTED);
    tracing::info!(uptime = uptime(), "ssh listening");
    Ok(supervisor)
}

/// Seconds since the kernel started, for the stage logs (boot speed is measured from them).
fn uptime() -> f64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// Reads the node config from fw_cfg; it appears once `qemu_fw_cfg` has probed.
fn read_config() -> Result<NodeConfig, Error> {
    let path = Path::new(GUEST_SYSFS_PATH);
    let found = wait_until(Duration::from_secs(2), || path.exists());
    if !found {
        return Err(Error::Config(format!(
            "missing: start QEMU with -fw_cfg name={},file=<node.json>",
            kubelab_nodeconfig::FW_CFG_NAME
        )));
    }
    let bytes = std::fs::read(path).ctx(|| format!("reading {GUEST_SYSFS_PATH}"))?;
    NodeConfig::from_json(&bytes).map_err(|err| {
        let mut text = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(s) = source {
            text.push_str(&format!(": {s}"));
            source = s.source();
        }
        Error::Config(text)
    })
}

/// The one polling primitive: calls `ready` every few milliseconds until it returns true or
/// `deadline` passes; returns whether it became ready.
pub(crate) fn wait_until(deadline: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    loop {
        if ready() {
            return true;
        }
        if start.elapsed() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
