//! Talking to Debian through its ordinary client, apt.
//!
//! - [`resolve`] (for `kubelab image lock`): the closure of the recipe's roots as apt would
//!   install it on an empty system (a separate, empty dpkg status file and no recommends),
//!   then name, version, file, size and sha256 of each member from apt's Packages index
//!   (`apt-cache show NAME=VERSION`).
//! - [`download`] (for builds): `apt-get download NAME=VERSION...` into a scratch directory.
//!   The caller verifies every file against the lock before using it.
//!
//! No mirror is named anywhere: apt uses the host's configured sources.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::lock::{LOCK_FORMAT, Lock, LockedPackage};
use super::recipe::Recipe;
use super::{Error, run_command as run};

/// Resolves `recipe` into a lock with apt.
pub fn resolve(recipe: &Recipe) -> Result<Lock, Error> {
    let scratch = tempfile::tempdir().map_err(|source| Error::Io {
        path: std::env::temp_dir(),
        source,
    })?;
    let status = scratch.path().join("status");
    std::fs::write(&status, b"").map_err(|source| Error::Io {
        path: status.clone(),
        source,
    })?;
    let state = format!("Dir::State::status={}", status.display());

    // 1. The closure of the roots, as on an empty system.
    let mut sim = Command::new("apt-get");
    sim.args(["-s", "-q", "-o", &state])
        .args([
            "-o",
            "Dir::Cache::pkgcache=",
            "-o",
            "Dir::Cache::srcpkgcache=",
        ])
        .args([
            "-o",
            "Debug::NoLocking=1",
            "-o",
            "APT::Install-Recommends=false",
        ])
        .arg("install")
        .args(&recipe.packages.roots);
    let text = run(&mut sim)?;
    let mut wanted: BTreeMap<String, String> = parse_inst_lines(&text).into_iter().collect();

    // 2. The concrete kernel package behind the requested (meta)package.
    let kernel = concrete_kernel(&recipe.kernel.package)?;
    wanted.insert(kernel.0.clone(), kernel.1.clone());

    // 3. Index data for every member.
    let mut show = Command::new("apt-cache");
    show.arg("show")
        .args(wanted.iter().map(|(n, v)| format!("{n}={v}")));
    let stanzas = parse_stanzas(&run(&mut show)?);
    let mut found: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for stanza in stanzas {
        let (Some(name), Some(version)) = (stanza.get("Package"), stanza.get("Version")) else {
            continue;
        };
        if wanted.get(name) == Some(version) {
            // The same version may be listed by two suites; the first stanza is as good.
            found.entry(name.clone()).or_insert(stanza);
        }
    }
    let names: BTreeSet<&str> = found.keys().map(String::as_str).collect();
    let provides: BTreeMap<String, String> = found
        .iter()
        .flat_map(|(name, s)| {
            relation_names(s.get("Provides").map(String::as_str).unwrap_or(""))
                .into_iter()
                .flatten()
                .map(move |p| (p, name.clone()))
        })
        .collect();
    let mut packages = Vec::new();
    for (name, version) in &wanted {
        let stanza = found.get(name).ok_or_else(|| Error::AptUnresolved {
            package: format!("{name}={version}"),
            problem: "apt-cache show has no stanza for it".into(),
        })?;
        let field = |key: &str| {
            stanza
                .get(key)
                .cloned()
                .ok_or_else(|| Error::AptUnresolved {
                    package: format!("{name}={version}"),
                    problem: format!("its index stanza has no {key} field"),
                })
        };
        let mut depends = BTreeSet::new();
        if name != &kernel.0 {
            for key in ["Pre-Depends", "Depends"] {
                for alternatives in
                    relation_names(stanza.get(key).map(String::as_str).unwrap_or(""))
                {
                    // The alternative apt chose is the one that is in the closure.
                    if let Some(dep) = alternatives.iter().find_map(|a| {
                        names
                            .contains(a.as_str())
                            .then(|| a.clone())
                            .or_else(|| provides.get(a).cloned())
                    }) {
                        depends.insert(dep);
                    }
                }
            }
        }
        packages.push(LockedPackage {
            name: name.clone(),
            version: version.clone(),
            architecture: field("Architecture")?,
            filename: field("Filename")?,
            size: field("Size")?.parse().map_err(|_| Error::AptUnresolved {
                package: format!("{name}={version}"),
                problem: "its Size field is not a number".into(),
            })?,
            sha256: field("SHA256")?,
            depends: depends.into_iter().collect(),
        });
    }
    Ok(Lock {
        format: LOCK_FORMAT,
        kernel_request: recipe.kernel.package.clone(),
        kernel: kernel.0,
        roots: recipe.packages.roots.clone(),
        packages,
    })
}

/// Follows a kernel metapackage (`linux-image-amd64`) to the concrete image package it
/// depends on with an exact version; a concrete package resolves to itself.
fn concrete_kernel(package: &str) -> Result<(String, String), Error> {
    let mut show = Command::new("apt-cache");
    show.args(["show", "--no-all-versions", package]);
    let stanzas = parse_stanzas(&run(&mut show)?);
    let stanza = stanzas.first().ok_or_else(|| Error::AptUnresolved {
        package: package.into(),
        problem: "apt-cache show found nothing (run `apt-get update`?)".into(),
    })?;
    let version = stanza.get("Version").cloned().unwrap_or_default();
    let depends = stanza.get("Depends").map(String::as_str).unwrap_or("");
    for relation in depends.split(',') {
        let relation = relation.trim();
        if let Some((dep, rest)) = relation.split_once(" (= ")
            && dep.starts_with("linux-image-")
        {
            return Ok((dep.to_string(), rest.trim_end_matches(')').to_string()));
        }
    }
    Ok((package.to_string(), version))
}

/// Downloads `packages` into `dir` with `apt-get download` and returns each one's path, in
/// the same order. Nothing is verified here.
pub fn download(packages: &[&LockedPackage], dir: &Path) -> Result<Vec<PathBuf>, Error> {
    if packages.is_empty() {
        return Ok(Vec::new());
    }
    let mut cmd = Command::new("apt-get");
    cmd.current_dir(dir)
        .args(["download", "-q", "-o", "APT::Sandbox::User=root"])
        .args(packages.iter().map(|p| p.spec()));
    run(&mut cmd).map_err(|err| match err {
        Error::CommandFailed { stderr, .. } => Error::AptUnresolved {
            package: packages
                .iter()
                .map(|p| p.spec())
                .collect::<Vec<_>>()
                .join(" "),
            problem: format!(
                "apt-get download failed: {stderr}. Without package lists run `apt-get update`; \
                 if a pinned version has left the archive, run `kubelab image lock` and commit \
                 the new images/debian.lock"
            ),
        },
        other => other,
    })?;
    packages
        .iter()
        .map(|p| {
            // apt names the file NAME_VERSION_ARCH.deb with the epoch colon URL-encoded.
            let path = dir.join(format!(
                "{}_{}_{}.deb",
                p.name,
                p.version.replace(':', "%3a"),
                p.architecture
            ));
            if path.exists() {
                Ok(path)
            } else {
                Err(Error::AptUnresolved {
                    package: p.spec(),
                    problem: format!("apt-get download did not produce {}", path.display()),
                })
            }
        })
        .collect()
}

/// `Inst NAME (VERSION SUITES [ARCH])` lines of `apt-get -s install`.
fn parse_inst_lines(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("Inst ")?;
            let (name, rest) = rest.split_once(" (")?;
            let version = rest.split_whitespace().next()?;
            Some((name.to_string(), version.to_string()))
        })
        .collect()
}

/// Deb822 stanzas (`Key: value` with indented continuation lines), blank-line separated.
fn parse_stanzas(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut out = Vec::new();
    let mut current: BTreeMap<String, String> = BTreeMap::new();
    let mut last_key: Option<String> = None;
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            last_key = None;
        } else if line.starts_with([' ', '\t']) {
            if let Some(value) = last_key.as_ref().and_then(|k| current.get_mut(k)) {
                value.push('\n');
                value.push_str(line.trim());
            }
        } else if let Some((key, value)) = line.split_once(':') {
            current.insert(key.to_string(), value.trim().to_string());
            last_key = Some(key.to_string());
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// The names in a relation field (`a (>= 1) | b:any, c`), one list of alternatives per
/// comma-separated relation.
fn relation_names(field: &str) -> Vec<Vec<String>> {
    field
        .split(',')
        .map(|relation| {
            relation
                .split('|')
                .filter_map(|alt| {
                    let name = alt.split_whitespace().next()?;
                    let name = name.split(':').next()?;
                    (!name.is_empty()).then(|| name.to_string())
                })
                .collect::<Vec<_>>()
        })
        .filter(|alts| !alts.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_simulated_install_lines() {
        let text = "Reading package lists...\n\
            Inst libc6 (2.36-9+deb12u14 Debian:12.15/oldstable [amd64])\n\
            Conf libc6 (2.36-9+deb12u14 Debian:12.15/oldstable [amd64])\n\
            Inst busybox-static (1:1.35.0-4+deb12u1+b1 Debian:12.15/oldstable [amd64]) []\n";
        assert_eq!(
            parse_inst_lines(text),
            [
                ("libc6".to_string(), "2.36-9+deb12u14".to_string()),
                (
                    "busybox-static".to_string(),
                    "1:1.35.0-4+deb12u1+b1".to_string()
                ),
            ]
        );
    }

    #[test]
    fn parses_stanzas_with_continuations() {
        let text = "Package: a\nVersion: 1\nDescription: x\n more\n\nPackage: b\nVersion: 2\n";
        let stanzas = parse_stanzas(text);
        assert_eq!(stanzas.len(), 2);
        assert_eq!(stanzas[0]["Description"], "x\nmore");
        assert_eq!(stanzas[1]["Package"], "b");
    }

    #[test]
    fn splits_relations_into_alternatives() {
        assert_eq!(
            relation_names("libc6 (>= 2.34), debconf (>= 0.5) | debconf-2.0, perl:any"),
            [
                vec!["libc6".to_string()],
                vec!["debconf".to_string(), "debconf-2.0".to_string()],
                vec!["perl".to_string()],
            ]
        );
        assert!(relation_names("").is_empty());
    }
}
