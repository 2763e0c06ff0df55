//! QMP control of one VM through the `qapi` crate: a short-lived connection per command
//! (QEMU accepts one QMP client at a time, and the lab's commands are separate processes).

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use qapi::{Qmp, qmp};

/// How long one QMP exchange may take before the VM is considered unresponsive. QEMU answers
/// QMP from its main loop even when the guest is paused or hung, so this is generous.
pub const QMP_TIMEOUT: Duration = Duration::from_secs(10);

/// A QMP failure.
#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    /// The socket could not be reached (QEMU not running, or not ours).
    #[error("cannot connect to QMP socket {}", path.display())]
    Connect {
        /// The socket.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The exchange failed or QEMU refused the command.
    #[error("QMP command {command} failed on {}", path.display())]
    Command {
        /// The command.
        command: &'static str,
        /// The socket.
        path: PathBuf,
        /// What QEMU or the transport said.
        #[source]
        source: qapi::ExecuteError,
    },
}

/// The VM's run state as QMP reports it (`running`, `paused`, `shutdown`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Whether the vCPUs run.
    pub running: bool,
    /// QEMU's run state name.
    pub state: String,
}

/// A connected QMP session.
pub struct QmpClient {
    path: PathBuf,
    qmp: Qmp<qapi::Stream<std::io::BufReader<UnixStream>, UnixStream>>,
}

impl QmpClient {
    /// Connects and negotiates capabilities.
    pub fn connect(path: &Path) -> Result<Self, QmpError> {
        let connect_err = |source| QmpError::Connect {
            path: path.to_owned(),
            source,
        };
        let stream = UnixStream::connect(path).map_err(connect_err)?;
        stream
            .set_read_timeout(Some(QMP_TIMEOUT))
            .map_err(connect_err)?;
        stream
            .set_write_timeout(Some(QMP_TIMEOUT))
            .map_err(connect_err)?;
        let reader = std::io::BufReader::new(stream.try_clone().map_err(connect_err)?);
        let mut qmp = Qmp::new(qapi::Stream::new(reader, stream));
        qmp.handshake().map_err(|source| QmpError::Command {
            command: "qmp_capabilities",
            path: path.to_owned(),
            source,
        })?;
        Ok(Self {
            path: path.to_owned(),
            qmp,
        })
    }

    fn run<C: qapi::Command>(&mut self, name: &'static str, command: C) -> Result<C::Ok, QmpError> {
        tracing::debug!(socket = %self.path.display(), command = name, "qmp");
        self.qmp
            .execute(&command)
            .map_err(|source| QmpError::Command {
                command: name,
                path: self.path.clone(),
                source,
            })
    }

    /// `query-status`.
    pub fn status(&mut self) -> Result<Status, QmpError> {
        let info = self.run("query-status", qmp::query_status {})?;
        let state = serde_json::to_value(info.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "unknown".into());
        Ok(Status {
            running: info.running,
            state,
        })
    }

    /// `query-kvm`: whether this QEMU runs on KVM.
    pub fn kvm_enabled(&mut self) -> Result<bool, QmpError> {
        Ok(self.run("query-kvm", qmp::query_kvm {})?.enabled)
    }

    /// `stop`: pause the vCPUs.
    pub fn stop(&mut self) -> Result<(), QmpError> {
        self.run("stop", qmp::stop {}).map(drop)
    }

    /// `cont`: resume the vCPUs.
    pub fn cont(&mut self) -> Result<(), QmpError> {
        self.run("cont", qmp::cont {}).map(drop)
    }

    /// `system_reset`: hard reset, like the reset button.
    pub fn system_reset(&mut self) -> Result<(), QmpError> {
        self.run("system_reset", qmp::system_reset {}).map(drop)
    }

    /// `system_powerdown`: ACPI power button; the guest shuts down cleanly.
    pub fn system_powerdown(&mut self) -> Result<(), QmpError> {
        self.run("system_powerdown", qmp::system_powerdown {})
            .map(drop)
    }

    /// `set_link`: cut (`up = false`) or restore one NIC, named by its netdev id.
    pub fn set_link(&mut self, name: &str, up: bool) -> Result<(), QmpError> {
        self.run(
            "set_link",
            qmp::set_link {
                name: name.to_owned(),
                up,
            },
        )
        .map(drop)
    }

    /// `quit`: QEMU exits at once (hard kill of the VM). The reply may be lost as QEMU closes
    /// the socket; a transport error after sending counts as success.
    pub fn quit(mut self) -> Result<(), QmpError> {
        match self.qmp.execute(&qmp::quit {}) {
            Ok(_) | Err(qapi::ExecuteError::Io(_)) => Ok(()),
            Err(source) => Err(QmpError::Command {
                command: "quit",
                path: self.path,
                source,
            }),
        }
    }
}
