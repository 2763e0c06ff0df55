//! Reading the files of a verified `.deb`: `dpkg-deb --fsys-tarfile` (the ordinary tool,
//! whatever compression the package uses) streams the data tarball, which is walked with the
//! `tar` crate. Maintainer scripts are never run; only file contents, modes and link targets
//! are taken.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use super::Error;

/// One entry of a package's data tarball, path relative to `/` without `./`.
pub enum Entry {
    /// A directory.
    Dir {
        /// Path.
        path: String,
        /// Permission bits.
        mode: u32,
    },
    /// A regular file.
    File {
        /// Path.
        path: String,
        /// Permission bits.
        mode: u32,
        /// Contents.
        data: Vec<u8>,
    },
    /// A symbolic link.
    Symlink {
        /// Path.
        path: String,
        /// Link target.
        target: String,
    },
    /// A hard link to a regular file visited earlier (sent after all other entries, so the
    /// caller can copy the target it already holds).
    HardLink {
        /// Path.
        path: String,
        /// Path of the file it links to.
        target: String,
    },
}

/// Calls `visit` for every entry of `deb`'s data tarball, in archive order. `want` is asked
/// first for regular files, so that unwanted contents are not read into memory.
pub fn for_each_entry(
    deb: &Path,
    mut want: impl FnMut(&str) -> bool,
    mut visit: impl FnMut(Entry) -> Result<(), Error>,
) -> Result<(), Error> {
    let command = format!("dpkg-deb --fsys-tarfile {}", deb.display());
    let mut child = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| Error::Spawn {
            command: command.clone(),
            source,
        })?;
    let stdout = child.stdout.take().expect("piped");
    let result = walk(stdout, deb, &mut want, &mut visit);
    // Reap the child whatever happened; a read error usually means dpkg-deb failed.
    let out = child.wait_with_output().map_err(|source| Error::Spawn {
        command: command.clone(),
        source,
    })?;
    if !out.status.success() {
        return Err(Error::CommandFailed {
            command,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    result
}

fn walk(
    stream: impl Read,
    deb: &Path,
    want: &mut impl FnMut(&str) -> bool,
    visit: &mut impl FnMut(Entry) -> Result<(), Error>,
) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: deb.to_path_buf(),
        source,
    };
    let mut archive = tar::Archive::new(stream);
    let mut hard_links: Vec<(String, String)> = Vec::new();
    for entry in archive.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        let raw = entry.path().map_err(io)?.to_string_lossy().into_owned();
        let path = raw
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string();
        if path.is_empty() || path == "." {
            continue;
        }
        let mode = entry.header().mode().map_err(io)? & 0o7777;
        match entry.header().entry_type() {
            tar::EntryType::Directory => visit(Entry::Dir { path, mode })?,
            tar::EntryType::Regular | tar::EntryType::Continuous if want(&path) => {
                let mut data = Vec::with_capacity(entry.size() as usize);
                entry.read_to_end(&mut data).map_err(io)?;
                visit(Entry::File { path, mode, data })?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(io)?
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_default();
                visit(Entry::Symlink { path, target })?;
            }
            tar::EntryType::Link if want(&path) => {
                let target = entry
                    .link_name()
                    .map_err(io)?
                    .map(|t| t.to_string_lossy().trim_start_matches("./").to_string())
                    .unwrap_or_default();
                hard_links.push((path, target));
            }
            // Unwanted files; packages carry no devices or fifos worth shipping in a guest.
            _ => {}
        }
    }
    for (path, target) in hard_links {
        visit(Entry::HardLink { path, target })?;
    }
    Ok(())
}
