//! The cert dir (`--cert-dir`): the cluster CA, the serving certificate and the
//! ServiceAccount signing key, created at first start and reused afterwards.
//!
//! Files (kubeadm's names; keys are PKCS#8 PEM, mode 0600; certificates PEM, 0644):
//!
//! | file | what |
//! |---|---|
//! | `ca.crt`, `ca.key` | the cluster CA (ECDSA P-256, 10 years); signs the serving and client certificates |
//! | `apiserver.crt`, `apiserver.key` | the serving certificate (1 year), SANs from [`ServingNames`] |
//! | `sa.key`, `sa.pub` | ECDSA P-256 key signing ServiceAccount tokens (ES256), and its public half |
//!
//! [`load_or_create`] flow: each pair is created when both files are missing, loaded and
//! checked when both exist, and refused when only one exists. A file that does not parse, a
//! key that does not match its certificate, a serving certificate not signed by `ca.crt`,
//! expired, or lacking a required SAN is a [`PkiError`] naming the file and what to do —
//! never silently replaced, since replacing the CA would invalidate every credential issued.

pub mod files;
pub mod groups;
pub mod inspect;
pub mod issue;

use std::path::{Path, PathBuf};

use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256, PublicKeyData as _};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub use issue::{Ca, Issued, ServingNames, Validity};

/// Common name of a generated cluster CA (kubeadm's).
pub const CA_NAME: &str = "kubernetes";

/// A problem with the cert dir or a certificate operation.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A file could not be read or written.
    #[error("{path}: cannot read or write")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file does not hold what it should.
    #[error("{path}: {what}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// One file of a certificate/key pair exists without the other.
    #[error(
        "{present} exists but {missing} does not: restore {missing}, or remove {present} to have a new pair generated"
    )]
    HalfPair {
        /// The file that exists.
        present: PathBuf,
        /// The file that is missing.
        missing: PathBuf,
    },
    /// A key does not belong to its certificate.
    #[error(
        "{key} does not match the public key of {cert}: restore the matching key, or remove both to have a new pair generated"
    )]
    KeyMismatch {
        /// The certificate.
        cert: PathBuf,
        /// The key.
        key: PathBuf,
    },
    /// The CA file is not a CA certificate.
    #[error("{0}: not a CA certificate (basicConstraints CA:TRUE is missing)")]
    NotCa(PathBuf),
    /// The serving certificate was not issued by the cluster CA.
    #[error(
        "{cert} is not signed by {ca}: remove {cert} and its key to have them re-issued by this CA"
    )]
    NotIssuedByCa {
        /// The certificate.
        cert: PathBuf,
        /// The CA certificate.
        ca: PathBuf,
    },
    /// A certificate is outside its validity window.
    #[error(
        "{path}: valid only from {not_before} to {not_after}: remove it and its key to have them re-issued"
    )]
    NotValidNow {
        /// The certificate.
        path: PathBuf,
        /// Start of validity.
        not_before: String,
        /// End of validity.
        not_after: String,
    },
    /// The serving certificate does not name every address clients use.
    #[error(
        "{path} lacks the subject alternative names {missing:?} this server needs (bind/advertise address, --tls-sans): remove it and apiserver.key to have them re-issued with the current names"
    )]
    MissingNames {
        /// The certificate.
        path: PathBuf,
        /// Names required but absent.
        missing: Vec<String>,
    },
    /// A user or group name that cannot go into a certificate.
    #[error("cannot issue a certificate: {0}")]
    BadName(String),
    /// An issued certificate failed its own check.
    #[error("{0}")]
    Verify(String),
    /// Generating a key or certificate failed.
    #[error("cannot generate {what}")]
    Generate {
        /// What was being generated.
        what: String,
        /// Why.
        #[source]
        source: rcgen::Error,
    },
}

/// The file names of a cert dir.
#[derive(Debug, Clone)]
pub struct CertDir(PathBuf);

impl CertDir {
    /// A cert dir at `path`.
    pub fn new(path: impl Into<PathBuf>) -> CertDir {
        CertDir(path.into())
    }
    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
    /// `ca.crt`.
    pub fn ca_crt(&self) -> PathBuf {
        self.0.join("ca.crt")
    }
    /// `ca.key`.
    pub fn ca_key(&self) -> PathBuf {
        self.0.join("ca.key")
    }
    /// `apiserver.crt`.
    pub fn serving_crt(&self) -> PathBuf {
        self.0.join("apiserver.crt")
    }
    /// `apiserver.key`.
    pub fn serving_key(&self) -> PathBuf {
        self.0.join("apiserver.key")
    }
    /// `sa.key`.
    pub fn sa_key(&self) -> PathBuf {
        self.0.join("sa.key")
    }
    /// `sa.pub`.
    pub fn sa_pub(&self) -> PathBuf {
        self.0.join("sa.pub")
    }
}

/// Everything the cert dir provides to a running server.
#[derive(Debug)]
pub struct Pki {
    /// The directory.
    pub dir: CertDir,
    /// The cluster CA.
    pub ca: Ca,
    /// Serving certificate chain (leaf first).
    pub serving_chain: Vec<CertificateDer<'static>>,
    /// Serving key.
    pub serving_key: PrivateKeyDer<'static>,
}

/// Which files of a pair exist.
fn pair_state(a: &Path, b: &Path) -> Result<bool, PkiError> {
    match (a.exists(), b.exists()) {
        (false, false) => Ok(false),
        (true, true) => Ok(true),
        (true, false) => Err(PkiError::HalfPair {
            present: a.into(),
            missing: b.into(),
        }),
        (false, true) => Err(PkiError::HalfPair {
            present: b.into(),
            missing: a.into(),
        }),
    }
}

/// Parses a PEM private key file.
pub fn read_key(path: &Path) -> Result<KeyPair, PkiError> {
    files::check_key_mode(path);
    KeyPair::from_pem(&files::read(path)?).map_err(|e| PkiError::Parse {
        path: path.into(),
        what: format!("not a PKCS#8 PEM private key of a supported type ({e})"),
    })
}

/// Reads a certificate file and its key, checking that they belong together.
fn read_pair(
    crt: &Path,
    key: &Path,
) -> Result<
    (
        String,
        Vec<CertificateDer<'static>>,
        inspect::CertInfo,
        KeyPair,
    ),
    PkiError,
> {
    let pem = files::read(crt)?;
    let chain = files::certificates(crt, &pem)?;
    let info = inspect::inspect(&chain[0]).map_err(|what| PkiError::Parse {
        path: crt.into(),
        what,
    })?;
    let key_pair = read_key(key)?;
    if key_pair.subject_public_key_info() != info.public_key_info {
        return Err(PkiError::KeyMismatch {
            cert: crt.into(),
            key: key.into(),
        });
    }
    Ok((pem, chain, info, key_pair))
}

fn check_validity(path: &Path, info: &inspect::CertInfo) -> Result<(), PkiError> {
    let now = jiff::Timestamp::now().as_second();
    if now < info.not_before || now > info.not_after {
        return Err(PkiError::NotValidNow {
            path: path.into(),
            not_before: inspect::show_time(info.not_before),
            not_after: inspect::show_time(info.not_after),
        });
    }
    Ok(())
}

/// Loads the cluster CA of an existing cert dir (both files must exist).
pub fn load_ca(dir: &CertDir) -> Result<Ca, PkiError> {
    let (crt, key) = (dir.ca_crt(), dir.ca_key());
    if !pair_state(&crt, &key)? {
        return Err(PkiError::Io {
            path: crt,
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no cluster CA here; start the API server with this --cert-dir first",
            ),
        });
    }
    let (pem, chain, info, key_pair) = read_pair(&crt, &key)?;
    if !info.is_ca {
        return Err(PkiError::NotCa(crt));
    }
    check_validity(&crt, &info)?;
    let first = chain
        .into_iter()
        .next()
        .expect("certificates() returns at least one");
    Ca::from_parts(pem, first, key_pair).map_err(|e| PkiError::Parse {
        path: crt,
        what: format!("cannot use as an issuer ({e})"),
    })
}

fn create_dir(dir: &Path) -> Result<(), PkiError> {
    use std::os::unix::fs::DirBuilderExt as _;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| PkiError::Io {
            path: dir.into(),
            source,
        })
}

/// Creates what is missing in the cert dir and loads everything; see the module doc.
pub fn load_or_create(dir: &CertDir, names: &ServingNames) -> Result<Pki, PkiError> {
    create_dir(dir.path())?;
    if !pair_state(&dir.ca_crt(), &dir.ca_key())? {
        let (ca, key_pem) = Ca::generate(CA_NAME)?;
        files::write(&dir.ca_key(), key_pem.as_bytes(), files::KEY_MODE)?;
        files::write(&dir.ca_crt(), ca.cert_pem().as_bytes(), files::CERT_MODE)?;
        tracing::info!(path = %dir.ca_crt().display(), "generated the cluster CA");
    }
    let ca = load_ca(dir)?;

    let (crt, key) = (dir.serving_crt(), dir.serving_key());
    if !pair_state(&crt, &key)? {
        let issued = ca.issue_serving(names)?;
        files::write(&key, issued.key_pem.as_bytes(), files::KEY_MODE)?;
        let chain = format!("{}{}", issued.cert_pem, ca.cert_pem());
        files::write(&crt, chain.as_bytes(), files::CERT_MODE)?;
        tracing::info!(path = %crt.display(), dns = ?names.dns, ips = ?names.ips, "issued the serving certificate");
    }
    let (_, chain, info, _) = read_pair(&crt, &key)?;
    if !inspect::signed_by(&chain[0], ca.cert_der()) {
        return Err(PkiError::NotIssuedByCa {
            cert: crt,
            ca: dir.ca_crt(),
        });
    }
    check_validity(&crt, &info)?;
    let missing = names.missing_from(&info.dns_names, &info.ip_addresses);
    if !missing.is_empty() {
        return Err(PkiError::MissingNames { path: crt, missing });
    }
    let serving_key = PrivateKeyDer::from_pem_file(&key).map_err(|e| PkiError::Parse {
        path: key.clone(),
        what: format!("not a PEM private key ({e})"),
    })?;
    Ok(Pki {
        dir: dir.clone(),
        ca,
        serving_chain: chain,
        serving_key,
    })
}

/// Creates the default ServiceAccount signing key `sa.key` (and `sa.pub`) if missing, and
/// returns its path; an existing `sa.key` must be an ECDSA P-256 key.
pub fn ensure_service_account_key(dir: &CertDir) -> Result<PathBuf, PkiError> {
    let path = dir.sa_key();
    if !path.exists() {
        let key = KeyPair::generate().map_err(|source| PkiError::Generate {
            what: "the ServiceAccount signing key".into(),
            source,
        })?;
        files::write(&path, key.serialize_pem().as_bytes(), files::KEY_MODE)?;
        files::write(
            &dir.sa_pub(),
            key.public_key_pem().as_bytes(),
            files::CERT_MODE,
        )?;
        tracing::info!(path = %path.display(), "generated the ServiceAccount signing key");
    }
    let key = read_key(&path)?;
    if key.algorithm() != &PKCS_ECDSA_P256_SHA256 {
        return Err(PkiError::Parse {
            path,
            what: "the ServiceAccount signing key must be an ECDSA P-256 key (ES256)".into(),
        });
    }
    if !dir.sa_pub().exists() {
        files::write(
            &dir.sa_pub(),
            key.public_key_pem().as_bytes(),
            files::CERT_MODE,
        )?;
    }
    Ok(path)
}

#[cfg(test)]
mod tests;
