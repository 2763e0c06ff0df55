//! Reading and writing the files of the cert dir: PEM certificates and keys, written
//! atomically (temp file + rename) with the mode the content calls for (keys 0600).

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

use super::PkiError;

/// Mode of private key files: readable by the owner only, as Kubernetes writes them.
pub const KEY_MODE: u32 = 0o600;
/// Mode of certificate files.
pub const CERT_MODE: u32 = 0o644;

/// Writes `bytes` to `path` atomically with `mode`.
pub fn write(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PkiError> {
    let io = |source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = tmp_path(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io)?;
    // The mode given to open() is filtered by the umask; set it exactly.
    f.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Reads a file that must exist.
pub fn read(path: &Path) -> Result<String, PkiError> {
    std::fs::read_to_string(path).map_err(|source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Every `CERTIFICATE` block of a PEM file (at least one).
pub fn certificates(path: &Path, text: &str) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    let certs = CertificateDer::pem_slice_iter(text.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PkiError::Parse {
            path: path.to_path_buf(),
            what: format!("not a PEM certificate file ({e})"),
        })?;
    if certs.is_empty() {
        return Err(PkiError::Parse {
            path: path.to_path_buf(),
            what: "no CERTIFICATE block found".into(),
        });
    }
    Ok(certs)
}

/// PEM text of one DER block (64-column base64 lines).
pub fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Warns when a key file can be read by others than its owner.
pub fn check_key_mode(path: &Path) {
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "private key file is readable by group or others; chmod 600 it");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_keys_with_owner_only_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.key");
        write(&p, b"secret", KEY_MODE).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(read(&p).unwrap(), "secret");
        assert!(!tmp_path(&p).exists());
    }

    #[test]
    fn garbage_is_a_parse_error_naming_the_file() {
        let p = Path::new("/x/ca.crt");
        let e = certificates(p, "hello").unwrap_err().to_string();
        assert!(e.contains("/x/ca.crt"), "{e}");
    }
}
