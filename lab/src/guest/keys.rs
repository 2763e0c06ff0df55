//! The lab's SSH key pair, made with `ssh-keygen` (ed25519, no passphrase) in the state dir.

use std::path::Path;
use std::process::Command;

/// Creates `path` and `path.pub`; returns the public key line.
pub fn generate(path: &Path, comment: &str) -> std::io::Result<String> {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .output()?;
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "ssh-keygen failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    public_key(path)
}

/// Reads the public key line of the pair at `path`.
pub fn public_key(path: &Path) -> std::io::Result<String> {
    let mut pubpath = path.as_os_str().to_owned();
    pubpath.push(".pub");
    Ok(std::fs::read_to_string(pubpath)?.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_an_ed25519_pair() {
        if Command::new("ssh-keygen").arg("-?").output().is_err() {
            eprintln!("skipped: ssh-keygen is not installed (scripts/setup-host installs it)");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let key = tmp.path().join("id_ed25519");
        let public = generate(&key, "kubelab-test").unwrap();
        assert!(public.starts_with("ssh-ed25519 "), "{public}");
        assert!(public.ends_with("kubelab-test"), "{public}");
        assert!(key.exists());
    }
}
