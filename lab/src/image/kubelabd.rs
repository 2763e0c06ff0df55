//! Building the guest binary `kubelabd` the reproducible way: static (glibc `crt-static`),
//! release profile, `--locked`, and with the checkout and cargo-home paths remapped, so the
//! same source gives the same bytes wherever it is checked out.
//!
//! The explicit `--target` keeps the static flag off build scripts and proc-macros, which run
//! on the host.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::Error;

/// The host target triple the guest binary is built for.
pub const TARGET: &str = "x86_64-unknown-linux-gnu";

/// The workspace this `kubelab` was built from (the default for `--repo`).
pub fn default_workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("lab/ has a parent directory")
        .to_path_buf()
}

/// Builds `kubelabd` in `workspace` and returns the binary's path.
pub fn build_kubelabd(workspace: &Path) -> Result<PathBuf, Error> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from("/root/.cargo"));
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    // Longest prefix first: when the target dir lies inside the workspace, both remaps apply
    // and rustc uses the last matching one.
    let flags = [
        "-C".to_string(),
        "target-feature=+crt-static".to_string(),
        format!("--remap-path-prefix={}=/kubelab", workspace.display()),
        format!("--remap-path-prefix={}=/cargo", cargo_home.display()),
    ];
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args([
            "build",
            "--release",
            "--locked",
            "-q",
            "-p",
            "kubelabd",
            "--target",
            TARGET,
        ])
        .env_remove("RUSTFLAGS")
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("CARGO_ENCODED_RUSTFLAGS", flags.join("\u{1f}"));
    let shown = format!("{cmd:?}");
    let out = cmd.output().map_err(|source| Error::Spawn {
        command: shown.clone(),
        source,
    })?;
    if !out.status.success() {
        return Err(Error::CommandFailed {
            command: shown,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(target_dir.join(TARGET).join("release").join("kubelabd"))
}
