//! The SSH server: dropbear, root login by key only, on port 22 of every address.
//!
//! Host keys are made fresh on every boot, since the image is shared by all VMs and must not
//! carry a key. dropbear makes them itself (`-R`) on the first connection, for the key type
//! that client negotiates only (ed25519 or ECDSA for OpenSSH and libssh2: milliseconds), so
//! the boot does not wait for key generation (two `dropbearkey` runs cost ~0.4 s of a TCG
//! boot). A client that only accepts RSA would wait seconds for an RSA key under TCG.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use kubelab_nodeconfig::NodeConfig;

use super::supervise::Service;
use super::{Context, Error};

const DROPBEAR: &str = "/usr/sbin/dropbear";
/// Where Debian's dropbear keeps (and with `-R` creates) its host keys.
const KEY_DIR: &str = "/etc/dropbear";

/// The port dropbear listens on.
pub const PORT: u16 = 22;

/// The `authorized_keys` text for `config`: one key per line.
pub fn authorized_keys(config: &NodeConfig) -> String {
    config
        .ssh_authorized_keys
        .iter()
        .map(|k| format!("{}\n", k.trim()))
        .collect()
}

/// Writes root's authorized keys and makes the host key directory.
pub fn prepare(config: &NodeConfig) -> Result<(), Error> {
    let ssh_dir = Path::new("/root/.ssh");
    std::fs::create_dir_all(ssh_dir).ctx(|| "creating /root/.ssh".into())?;
    std::fs::set_permissions(ssh_dir, std::fs::Permissions::from_mode(0o700))
        .ctx(|| "chmod /root/.ssh".into())?;
    let keys = ssh_dir.join("authorized_keys");
    std::fs::write(&keys, authorized_keys(config)).ctx(|| "writing authorized_keys".into())?;
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600))
        .ctx(|| "chmod authorized_keys".into())?;
    std::fs::create_dir_all(KEY_DIR).ctx(|| format!("creating {KEY_DIR}"))?;
    Ok(())
}

/// dropbear in the foreground (`-F`), logging to stderr = the console (`-E`), no password
/// logins at all (`-s`), host keys created on demand (`-R`), port 22 on every address.
pub fn dropbear_service() -> Service {
    let port = PORT.to_string();
    let args = ["-F", "-E", "-s", "-R", "-p", &port]
        .map(String::from)
        .to_vec();
    Service {
        name: "dropbear".into(),
        program: DROPBEAR.into(),
        args,
    }
}

/// Whether `/proc/net/tcp` text shows a socket listening on `port`.
pub fn listening_in(proc_net_tcp: &str, port: u16) -> bool {
    let want = format!(":{port:04X}");
    proc_net_tcp.lines().skip(1).any(|line| {
        let mut fields = line.split_whitespace();
        let local = fields.nth(1).unwrap_or("");
        let state = fields.nth(1).unwrap_or("");
        local.ends_with(&want) && state == "0A"
    })
}

/// Waits until dropbear listens, so [`kubelab_nodeconfig::marks::SSH_STARTED`] is true when
/// printed.
pub fn wait_listening(deadline: Duration) -> Result<(), Error> {
    let ok = super::wait_until(deadline, || {
        ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|f| {
            std::fs::read_to_string(f)
                .map(|t| listening_in(&t, PORT))
                .unwrap_or(false)
        })
    });
    if ok {
        Ok(())
    } else {
        Err(Error::Timeout(format!(
            "dropbear is not listening on port {PORT} after {} s",
            deadline.as_secs()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_listening_socket_by_port_and_state() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:1F90 0100007F:D2C4 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0
";
        assert!(listening_in(text, 22));
        assert!(!listening_in(text, 8080), "established, not listening");
        assert!(!listening_in(text, 2222));
    }

    #[test]
    fn dropbear_refuses_passwords() {
        let s = dropbear_service();
        assert!(s.args.contains(&"-s".to_string()));
        assert!(
            s.args.contains(&"-R".to_string()),
            "host keys made per boot"
        );
        assert!(s.args.windows(2).any(|w| w == ["-p", "22"]));
    }
}
