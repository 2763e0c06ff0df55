//! SSH keys of a lab, made with `ssh-keygen` (ed25519, no passphrase) in the state dir:
//!
//! - the lab's key pair, with which the harness logs in to every node ([`generate`]);
//! - one host key pair per node ([`generate_host_key`]): the private half goes to the guest
//!   through fw_cfg in dropbear's format ([`kubelab_nodeconfig::host_key`]), the public half
//!   stays with the harness, which accepts no other key from that node ([`HostKey::blob`]) and
//!   writes a `known_hosts` file for OpenSSH ([`known_hosts_line`]).
//!
//! OpenSSH's private key file (`openssh-key-v1`, unencrypted) is parsed here, not by a
//! library: a few length-prefixed fields in base64.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use kubelab_nodeconfig::host_key;

/// A key file that could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// `ssh-keygen` could not run or failed.
    #[error("ssh-keygen for {}: {problem}", path.display())]
    Keygen {
        /// The key it was asked to write.
        path: PathBuf,
        /// What went wrong (its stderr, or why it did not start).
        problem: String,
    },
    /// Reading or writing a key file failed.
    #[error("key file {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A key file does not have the expected format.
    #[error("key file {}: {problem}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

fn run_keygen(path: &Path, comment: &str) -> Result<(), KeyError> {
    let keygen = |problem: String| KeyError::Keygen {
        path: path.to_owned(),
        problem,
    };
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .output()
        .map_err(|e| {
            keygen(format!(
                "cannot run it ({e}); scripts/setup-host installs it"
            ))
        })?;
    if !out.status.success() {
        return Err(keygen(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ));
    }
    Ok(())
}

fn read(path: &Path) -> Result<String, KeyError> {
    std::fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: path.to_owned(),
        source,
    })
}

fn pub_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".pub");
    p.into()
}

/// Creates `path` and `path.pub`; returns the public key line.
pub fn generate(path: &Path, comment: &str) -> Result<String, KeyError> {
    run_keygen(path, comment)?;
    public_key(path)
}

/// Reads the public key line of the pair at `path`.
pub fn public_key(path: &Path) -> Result<String, KeyError> {
    Ok(read(&pub_path(path))?.trim().to_owned())
}

/// A node's host key, as the harness keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKey {
    /// The OpenSSH public key line (`ssh-ed25519 AAAA... comment`).
    pub line: String,
    /// The public key blob in SSH wire format, as a server presents it in the handshake.
    pub blob: Vec<u8>,
}

impl HostKey {
    /// Reads the public half of the host key pair at `path` (from `path.pub`).
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let public = pub_path(path);
        let line = read(&public)?.trim().to_owned();
        let blob = public_blob(&line).map_err(|problem| KeyError::Format {
            path: public,
            problem,
        })?;
        Ok(Self { line, blob })
    }

    /// SHA256 fingerprint as OpenSSH prints it (`SHA256:...`), for messages.
    pub fn fingerprint(blob: &[u8]) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(blob);
        let text = base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest);
        format!("SHA256:{text}")
    }
}

/// Makes node host key pair `path` (OpenSSH format, `path.pub`) and the guest's copy of the
/// private key in dropbear's format at `dropbear`; returns the public half.
pub fn generate_host_key(path: &Path, dropbear: &Path, comment: &str) -> Result<HostKey, KeyError> {
    run_keygen(path, comment)?;
    let encoded = dropbear_key(&read(path)?).map_err(|problem| KeyError::Format {
        path: path.to_owned(),
        problem,
    })?;
    std::fs::write(dropbear, encoded).map_err(|source| KeyError::Io {
        path: dropbear.to_owned(),
        source,
    })?;
    HostKey::load(path)
}

/// The public key blob of an OpenSSH public key line (`type base64 [comment]`).
pub fn public_blob(line: &str) -> Result<Vec<u8>, String> {
    let mut words = line.split_whitespace();
    let (Some(kind), Some(data)) = (words.next(), words.next()) else {
        return Err("not an OpenSSH public key line (`type base64 comment`)".into());
    };
    let blob = BASE64
        .decode(data)
        .map_err(|e| format!("public key is not base64: {e}"))?;
    let mut r = Reader(&blob);
    let inner = r.string()?;
    if inner != kind.as_bytes() {
        return Err(format!(
            "the line says {kind} but the key inside is another type"
        ));
    }
    Ok(blob)
}

/// Converts an unencrypted OpenSSH ed25519 private key file to dropbear's key format.
pub fn dropbear_key(openssh_pem: &str) -> Result<Vec<u8>, String> {
    const BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";
    const END: &str = "-----END OPENSSH PRIVATE KEY-----";
    let body = openssh_pem
        .split_once(BEGIN)
        .and_then(|(_, rest)| rest.split_once(END))
        .map(|(body, _)| body.split_whitespace().collect::<String>())
        .ok_or("not an OpenSSH private key (no BEGIN/END OPENSSH PRIVATE KEY lines)")?;
    let bytes = BASE64
        .decode(body)
        .map_err(|e| format!("private key is not base64: {e}"))?;
    let mut r = Reader(
        bytes
            .strip_prefix(b"openssh-key-v1\0")
            .ok_or("no openssh-key-v1 header")?,
    );
    let (cipher, kdf) = (r.string()?, r.string()?);
    if cipher != b"none" || kdf != b"none" {
        return Err("the key is encrypted; make it with an empty passphrase".into());
    }
    r.string()?; // kdf options
    if r.u32()? != 1 {
        return Err("the file holds more than one key".into());
    }
    r.string()?; // public key blob, repeated in the private section
    let mut private = Reader(r.string()?);
    if private.u32()? != private.u32()? {
        return Err("check integers differ (damaged or encrypted key)".into());
    }
    let kind = private.string()?;
    if kind != host_key::KEY_TYPE.as_bytes() {
        return Err(format!(
            "key type is {}, expected {}",
            String::from_utf8_lossy(kind),
            host_key::KEY_TYPE
        ));
    }
    let public: [u8; 32] = private
        .string()?
        .try_into()
        .map_err(|_| "ed25519 public key is not 32 bytes")?;
    let secret = private.string()?;
    if secret.len() != 64 || secret[32..] != public {
        return Err("ed25519 private key is not seed || public key".into());
    }
    let seed: [u8; 32] = secret[..32].try_into().expect("checked length");
    Ok(host_key::encode(&seed, &public))
}

/// Reads SSH wire-format fields.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn u32(&mut self) -> Result<u32, String> {
        let (head, rest) = self
            .0
            .split_first_chunk::<4>()
            .ok_or("key data ends early")?;
        self.0 = rest;
        Ok(u32::from_be_bytes(*head))
    }

    fn string(&mut self) -> Result<&'a [u8], String> {
        let len = self.u32()? as usize;
        if self.0.len() < len {
            return Err("key data ends early".into());
        }
        let (s, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(s)
    }
}

/// A `known_hosts` line for OpenSSH: `addr key-type base64`.
pub fn known_hosts_line(addr: &str, key: &HostKey) -> String {
    let mut words = key.line.split_whitespace();
    let kind = words.next().unwrap_or_default();
    let data = words.next().unwrap_or_default();
    format!("{addr} {kind} {data}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn have_keygen() -> bool {
        if Command::new("ssh-keygen").arg("-?").output().is_err() {
            eprintln!("skipped: ssh-keygen is not installed (scripts/setup-host installs it)");
            return false;
        }
        true
    }

    #[test]
    fn generates_an_ed25519_pair() {
        if !have_keygen() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let key = tmp.path().join("id_ed25519");
        let public = generate(&key, "kubelab-test").unwrap();
        assert!(public.starts_with("ssh-ed25519 "), "{public}");
        assert!(public.ends_with("kubelab-test"), "{public}");
        assert!(key.exists());
    }

    #[test]
    fn host_key_converts_to_dropbear_and_matches_its_public_half() {
        if !have_keygen() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("ssh_host_ed25519_key");
        let dropbear = tmp.path().join("dropbear");
        let key = generate_host_key(&path, &dropbear, "n1").unwrap();
        let encoded = std::fs::read(&dropbear).unwrap();
        host_key::check(&encoded).unwrap();
        // The public key inside the dropbear file is the one the harness pins.
        let blob_pub = &key.blob[key.blob.len() - 32..];
        assert_eq!(&encoded[encoded.len() - 32..], blob_pub);
        assert_eq!(&key.blob[..15], b"\0\0\0\x0bssh-ed25519");
        // ssh-keygen's own fingerprint of the file agrees with ours.
        let out = Command::new("ssh-keygen")
            .args(["-l", "-E", "sha256", "-f"])
            .arg(&path)
            .output()
            .unwrap();
        let listed = String::from_utf8_lossy(&out.stdout);
        assert!(
            listed.contains(&HostKey::fingerprint(&key.blob)),
            "{listed} vs {}",
            HostKey::fingerprint(&key.blob)
        );
        assert_eq!(
            known_hosts_line("10.0.0.1", &key),
            format!(
                "10.0.0.1 ssh-ed25519 {}",
                key.line.split_whitespace().nth(1).unwrap()
            )
        );
    }

    #[test]
    fn refuses_what_is_not_an_unencrypted_ed25519_key() {
        assert!(dropbear_key("hello").unwrap_err().contains("BEGIN"));
        let pem = |body: &str| {
            format!(
                "-----BEGIN OPENSSH PRIVATE KEY-----\n{body}\n-----END OPENSSH PRIVATE KEY-----\n"
            )
        };
        assert!(dropbear_key(&pem("!!!")).unwrap_err().contains("base64"));
        let not_v1 = BASE64.encode(b"something else");
        assert!(dropbear_key(&pem(&not_v1)).unwrap_err().contains("header"));
        let mut encrypted = b"openssh-key-v1\0".to_vec();
        for field in [&b"aes256-ctr"[..], b"bcrypt"] {
            encrypted.extend_from_slice(&(field.len() as u32).to_be_bytes());
            encrypted.extend_from_slice(field);
        }
        let err = dropbear_key(&pem(&BASE64.encode(encrypted))).unwrap_err();
        assert!(err.contains("encrypted"), "{err}");
        assert!(public_blob("ssh-ed25519").is_err());
        let mut ed = host_key::encode(&[0; 32], &[0; 32])[..15].to_vec();
        ed.extend_from_slice(&32u32.to_be_bytes());
        ed.extend_from_slice(&[9; 32]);
        let data = BASE64.encode(&ed);
        assert_eq!(public_blob(&format!("ssh-ed25519 {data} x")).unwrap(), ed);
        let err = public_blob(&format!("ssh-rsa {data}")).unwrap_err();
        assert!(err.contains("another type"), "{err}");
        assert!(
            public_blob("ssh-ed25519 %%%")
                .unwrap_err()
                .contains("base64")
        );
    }
}
