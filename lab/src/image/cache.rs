//! The cache directory: verified packages (`<cache>/debs/<sha256>.deb`), scratch
//! directories of running builds (`<cache>/tmp/build-<pid>-*`), and small file helpers that
//! name the path in every error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::lock::LockedPackage;
use super::{Error, apt};

/// Makes every package of `packages` available as a verified file in `debs_dir`, named by
/// its sha256, downloading the missing ones. Returns name -> path.
pub fn fetch(
    packages: &[&LockedPackage],
    debs_dir: &Path,
    scratch: &Path,
) -> Result<BTreeMap<String, PathBuf>, Error> {
    mkdir(debs_dir)?;
    let mut out = BTreeMap::new();
    let mut missing = Vec::new();
    for package in packages {
        let path = debs_dir.join(format!("{}.deb", package.sha256));
        if path.exists() {
            match package.verify(&read(&path)?) {
                Ok(()) => {
                    out.insert(package.name.clone(), path);
                    continue;
                }
                Err(err) => {
                    // A damaged cache entry: drop it and download again.
                    tracing::warn!(package = %package.name, error = %err, "cached .deb is damaged; fetching it again");
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        missing.push(*package);
    }
    if missing.is_empty() {
        return Ok(out);
    }
    let download = scratch.join("download");
    mkdir(&download)?;
    tracing::info!(count = missing.len(), "downloading packages with apt-get");
    let files = apt::download(&missing, &download)?;
    for (package, file) in missing.iter().zip(files) {
        package.verify(&read(&file)?)?;
        let path = debs_dir.join(format!("{}.deb", package.sha256));
        // Rename within one filesystem when possible, so the cache never holds a partial file.
        let staged = debs_dir.join(format!(
            ".{}.{}.partial",
            package.sha256,
            std::process::id()
        ));
        std::fs::copy(&file, &staged).map_err(|source| Error::Io {
            path: staged.clone(),
            source,
        })?;
        std::fs::rename(&staged, &path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        out.insert(package.name.clone(), path);
    }
    Ok(out)
}

/// Removes scratch directories left by builds whose process is gone (killed mid-build).
pub fn remove_stale_scratch(tmp_root: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp_root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix("build-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = pid
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            tracing::info!(dir = %entry.path().display(), "removing scratch dir of a dead build");
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

pub fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

pub fn write(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    std::fs::write(path, bytes).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    set_mode(path, 0o644)
}

pub fn mkdir(path: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

pub fn set_mode(path: &Path, mode: u32) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|source| {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    })
}
