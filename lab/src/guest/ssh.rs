//! An authenticated SSH session to one guest.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use ssh2::Session;

use kubelab_nodeconfig::host_key;

use super::keys::HostKey;
use super::netns;
use crate::wait::{TimedOut, wait_until};

/// SSH port of the guest's server.
pub const SSH_PORT: u16 = 22;
/// User the harness logs in as.
pub const SSH_USER: &str = "root";
/// Timeout of one TCP connect; the management network is one bridge away.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long [`Guest::exec_streaming`] waits for the socket before it checks the channel
/// again (libssh2 may hold data it has already read from the socket).
const STREAM_POLL: Duration = Duration::from_millis(50);

/// An SSH failure.
#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    /// TCP connect from inside the namespace failed.
    #[error("cannot connect to {addr} in namespace {ns}")]
    Connect {
        /// Namespace.
        ns: String,
        /// Address.
        addr: SocketAddr,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Handshake, authentication or a channel operation failed.
    #[error("SSH to {addr}: {what}")]
    Ssh {
        /// Address.
        addr: SocketAddr,
        /// What was being done.
        what: &'static str,
        /// Underlying error.
        #[source]
        source: ssh2::Error,
    },
    /// Reading or writing channel data failed.
    #[error("SSH to {addr}: {what}")]
    Io {
        /// Address.
        addr: SocketAddr,
        /// What was being done.
        what: &'static str,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The guest presented another host key than the one made for it: not the node the
    /// harness started (or a stale address).
    #[error("SSH to {addr}: host key {found} is not the node's key {expected}; refusing to log in")]
    HostKeyMismatch {
        /// Address.
        addr: SocketAddr,
        /// Fingerprint of the key the harness made for the node.
        expected: String,
        /// Fingerprint of the key the server presented.
        found: String,
    },
    /// The guest never became ready.
    #[error(transparent)]
    Timeout(#[from] TimedOut),
}

/// What the harness needs to log in to a guest, and to know it reached the right one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The lab's private key; its public key is beside it with `.pub` appended.
    pub key: PathBuf,
    /// The host key blob (SSH wire format) the guest must present; `None` accepts any
    /// (a guest booted without a host key from the harness).
    pub host_key: Option<Vec<u8>>,
}

/// The result of a remote command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// Exit status.
    pub status: i32,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
}

impl ExecOutput {
    /// Stdout as text.
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// An authenticated session.
pub struct Guest {
    addr: SocketAddr,
    session: Session,
    /// A second handle on the session's socket, to wait for data while streaming.
    socket: TcpStream,
}

impl Guest {
    /// Connects from inside `ns`, checks the guest's host key and authenticates with the
    /// lab's key.
    pub fn connect(ns: &str, ip: Ipv4Addr, credentials: &Credentials) -> Result<Self, GuestError> {
        let addr = SocketAddr::from((ip, SSH_PORT));
        let tcp = netns::connect_tcp(ns, addr, CONNECT_TIMEOUT).map_err(|source| {
            GuestError::Connect {
                ns: ns.to_owned(),
                addr,
                source,
            }
        })?;
        let ssh = |what| move |source| GuestError::Ssh { addr, what, source };
        let socket = tcp.try_clone().map_err(|source| GuestError::Io {
            addr,
            what: "duplicating the socket",
            source,
        })?;
        let mut session = Session::new().map_err(ssh("creating session"))?;
        session.set_timeout(30_000);
        session.set_tcp_stream(tcp);
        if credentials.host_key.is_some() {
            // Only the key type the harness made; the server has no other anyway.
            session
                .method_pref(ssh2::MethodType::HostKey, host_key::KEY_TYPE)
                .map_err(ssh("choosing the host key type"))?;
        }
        session.handshake().map_err(ssh("handshake"))?;
        if let Some(expected) = &credentials.host_key {
            let found = session.host_key().map(|(blob, _)| blob).unwrap_or_default();
            if found != expected.as_slice() {
                return Err(GuestError::HostKeyMismatch {
                    addr,
                    expected: HostKey::fingerprint(expected),
                    found: HostKey::fingerprint(found),
                });
            }
        }
        let key = &credentials.key;
        let mut public: PathBuf = key.to_owned();
        public.as_mut_os_string().push(".pub");
        session
            .userauth_pubkey_file(SSH_USER, Some(&public), key, None)
            .map_err(ssh("public key authentication"))?;
        Ok(Self {
            addr,
            session,
            socket,
        })
    }

    /// Polls [`Guest::connect`] plus a trivial command until both work or `timeout` passes.
    pub fn wait_ready(
        ns: &str,
        ip: Ipv4Addr,
        credentials: &Credentials,
        timeout: Duration,
    ) -> Result<Self, GuestError> {
        let what = format!("SSH on {ip}");
        Ok(wait_until(
            &what,
            timeout,
            Duration::from_millis(100),
            |_| {
                let guest = Guest::connect(ns, ip, credentials)?;
                let out = guest.exec("true")?;
                if out.status == 0 {
                    Ok(guest)
                } else {
                    Err(GuestError::Io {
                        addr: guest.addr,
                        what: "`true` failed",
                        source: std::io::Error::other(format!("exit status {}", out.status)),
                    })
                }
            },
        )?)
    }

    /// Runs `command` through the guest's shell; returns exit status and output.
    pub fn exec(&self, command: &str) -> Result<ExecOutput, GuestError> {
        self.exec_with_input(command, &[])
    }

    /// Runs `command`, feeding `input` to its stdin.
    pub fn exec_with_input(&self, command: &str, input: &[u8]) -> Result<ExecOutput, GuestError> {
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let status = self.exec_streaming(command, input, &mut stdout, &mut stderr)?;
        Ok(ExecOutput {
            status,
            stdout,
            stderr,
        })
    }

    /// Runs `command`, feeding `input` to its stdin, and copies its stdout and stderr to
    /// `stdout` and `stderr` as the data arrives (each write flushed); returns the exit
    /// status once the command has ended. A sink that fails with `BrokenPipe` gets no more
    /// data, the command still runs to its end; other write errors end the call.
    pub fn exec_streaming(
        &self,
        command: &str,
        input: &[u8],
        stdout: &mut dyn Write,
        stderr: &mut dyn Write,
    ) -> Result<i32, GuestError> {
        let addr = self.addr;
        let ssh = |what| move |source| GuestError::Ssh { addr, what, source };
        let io = |what| move |source| GuestError::Io { addr, what, source };
        let mut channel = self
            .session
            .channel_session()
            .map_err(ssh("opening channel"))?;
        channel.exec(command).map_err(ssh("exec"))?;
        if !input.is_empty() {
            channel.write_all(input).map_err(io("writing stdin"))?;
        }
        channel.send_eof().map_err(ssh("closing stdin"))?;
        // Non-blocking while both streams are read, so neither waits behind the other.
        self.session.set_blocking(false);
        let pumped = self.pump(&mut channel, stdout, stderr);
        self.session.set_blocking(true);
        pumped?;
        channel.wait_close().map_err(ssh("closing channel"))?;
        channel.exit_status().map_err(ssh("exit status"))
    }

    /// Copies both streams of `channel` to the sinks until the guest's EOF (non-blocking
    /// session).
    fn pump(
        &self,
        channel: &mut ssh2::Channel,
        stdout: &mut dyn Write,
        stderr: &mut dyn Write,
    ) -> Result<(), GuestError> {
        let addr = self.addr;
        let io = |what| move |source| GuestError::Io { addr, what, source };
        let mut buf = vec![0u8; 32 * 1024];
        let mut sinks: [(&mut dyn Write, bool); 2] = [(stdout, true), (stderr, true)];
        loop {
            let mut progressed = false;
            for (id, (sink, open)) in sinks.iter_mut().enumerate() {
                let what = if id == 0 {
                    "reading stdout"
                } else {
                    "reading stderr"
                };
                let n = match channel.stream(id as i32).read(&mut buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(io(what)(e)),
                };
                if n == 0 {
                    continue;
                }
                progressed = true;
                if *open {
                    match sink.write_all(&buf[..n]).and_then(|()| sink.flush()) {
                        Ok(()) => {}
                        Err(e) if e.kind() == ErrorKind::BrokenPipe => *open = false,
                        Err(e) => return Err(io("writing the command's output")(e)),
                    }
                }
            }
            // True only once the guest sent EOF and nothing of either stream is left.
            if channel.eof() {
                return Ok(());
            }
            if !progressed {
                self.wait_readable()
                    .map_err(io("waiting for the guest's output"))?;
            }
        }
    }

    /// Waits up to [`STREAM_POLL`] for the session's socket to have data.
    fn wait_readable(&self) -> std::io::Result<()> {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        let timeout = Timespec {
            tv_sec: 0,
            tv_nsec: STREAM_POLL.as_nanos() as i64,
        };
        let mut fds = [PollFd::new(&self.socket, PollFlags::IN)];
        match poll(&mut fds, Some(&timeout)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes `content` to `path` in the guest (mode `mode`, octal), through `cat`, so the
    /// guest needs no SFTP or scp server.
    pub fn write_file(&self, path: &str, content: &[u8], mode: u32) -> Result<(), GuestError> {
        let quoted = shell_quote(path);
        let out = self.exec_with_input(
            &format!("cat > {quoted} && chmod {mode:o} {quoted}"),
            content,
        )?;
        if out.status == 0 {
            Ok(())
        } else {
            Err(GuestError::Io {
                addr: self.addr,
                what: "writing file",
                source: std::io::Error::other(String::from_utf8_lossy(&out.stderr).into_owned()),
            })
        }
    }

    /// Reads `path` from the guest.
    pub fn read_file(&self, path: &str) -> Result<Vec<u8>, GuestError> {
        let out = self.exec(&format!("cat {}", shell_quote(path)))?;
        if out.status == 0 {
            Ok(out.stdout)
        } else {
            Err(GuestError::Io {
                addr: self.addr,
                what: "reading file",
                source: std::io::Error::other(String::from_utf8_lossy(&out.stderr).into_owned()),
            })
        }
    }
}

/// Quotes `s` for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_for_the_shell() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
