//! The SSH server: dropbear, root login by key only, on port 22 of every address.
//!
//! Host key: the image is shared by all VMs and must not carry one. The harness makes an
//! ed25519 key per node and hands it in through fw_cfg
//! ([`kubelab_nodeconfig::FW_CFG_SSH_HOST_KEY`], already in dropbear's format): init copies
//! it to `/etc/dropbear/` and dropbear uses only that key (`-r`), so the harness can check it
//! reaches the node it started and nothing is generated at boot. Without that item dropbear
//! makes its own keys on the first connection (`-R`), for the key type that client
//! negotiates only (ed25519 or ECDSA for OpenSSH and libssh2); a client that only accepts RSA
//! would wait seconds for an RSA key under TCG.

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use kubelab_nodeconfig::{GUEST_SSH_HOST_KEY_PATH, NodeConfig, host_key};

use super::supervise::Service;
use super::{Context, Error};

const DROPBEAR: &str = "/usr/sbin/dropbear";
/// Where Debian's dropbear keeps (and with `-R` creates) its host keys.
const KEY_DIR: &str = "/etc/dropbear";
/// The host key handed in by the harness, once copied.
const HOST_KEY: &str = "/etc/dropbear/dropbear_ed25519_host_key";

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

/// Writes root's authorized keys and makes the host key directory; installs the host key
/// from fw_cfg if there is one. Returns whether there was (see [`dropbear_service`]).
pub fn prepare(config: &NodeConfig) -> Result<bool, Error> {
    let ssh_dir = Path::new("/root/.ssh");
    std::fs::create_dir_all(ssh_dir).ctx(|| "creating /root/.ssh".into())?;
    std::fs::set_permissions(ssh_dir, std::fs::Permissions::from_mode(0o700))
        .ctx(|| "chmod /root/.ssh".into())?;
    let keys = ssh_dir.join("authorized_keys");
    std::fs::write(&keys, authorized_keys(config)).ctx(|| "writing authorized_keys".into())?;
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600))
        .ctx(|| "chmod authorized_keys".into())?;
    std::fs::create_dir_all(KEY_DIR).ctx(|| format!("creating {KEY_DIR}"))?;
    install_host_key(Path::new(GUEST_SSH_HOST_KEY_PATH), Path::new(HOST_KEY))
}

/// Copies the host key from `from` (fw_cfg) to `to` with mode 0600 after checking its
/// format; `Ok(false)` when there is no key to copy.
pub fn install_host_key(from: &Path, to: &Path) -> Result<bool, Error> {
    let key = match std::fs::read(from) {
        Ok(key) => key,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e).ctx(|| format!("reading {}", from.display())),
    };
    host_key::check(&key).map_err(|problem| Error::HostKey {
        path: from.to_owned(),
        problem,
    })?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(to)
        .ctx(|| format!("creating {}", to.display()))?;
    std::io::Write::write_all(&mut file, &key).ctx(|| format!("writing {}", to.display()))?;
    Ok(true)
}

/// dropbear in the foreground (`-F`), logging to stderr = the console (`-E`), no password
/// logins at all (`-s`), port 22 on every address; with the harness's host key only (`-r`)
/// if `has_host_key`, else host keys created on demand (`-R`).
pub fn dropbear_service(has_host_key: bool) -> Service {
    let port = PORT.to_string();
    let mut args: Vec<String> = ["-F", "-E", "-s", "-p", &port].map(String::from).to_vec();
    if has_host_key {
        args.extend(["-r".to_string(), HOST_KEY.to_string()]);
    } else {
        args.push("-R".to_string());
    }
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
        for has_key in [true, false] {
            let s = dropbear_service(has_key);
            assert!(s.args.contains(&"-s".to_string()));
            assert!(s.args.windows(2).any(|w| w == ["-p", "22"]));
        }
    }

    #[test]
    fn dropbear_uses_the_harness_key_when_there_is_one() {
        let with = dropbear_service(true);
        assert!(with.args.windows(2).any(|w| w == ["-r", HOST_KEY]));
        assert!(!with.args.contains(&"-R".to_string()));
        let without = dropbear_service(false);
        assert!(
            without.args.contains(&"-R".to_string()),
            "host keys made per boot"
        );
        assert!(!without.args.contains(&"-r".to_string()));
    }

    #[test]
    fn host_key_is_checked_and_installed_private() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let from = tmp.path().join("raw");
        let to = tmp.path().join("key");
        assert!(
            !install_host_key(&from, &to).unwrap(),
            "no fw_cfg item: no key"
        );
        assert!(!to.exists());
        let key = host_key::encode(&[7; 32], &[8; 32]);
        std::fs::write(&from, &key).unwrap();
        assert!(install_host_key(&from, &to).unwrap());
        assert_eq!(std::fs::read(&to).unwrap(), key);
        let mode = std::fs::metadata(&to).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::write(&from, b"ssh-rsa AAAA").unwrap();
        let err = install_host_key(&from, &to).unwrap_err().to_string();
        assert!(
            err.contains("SSH host key") && err.contains("12 bytes"),
            "{err}"
        );
    }
}
