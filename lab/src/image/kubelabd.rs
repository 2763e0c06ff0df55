//! Building the guest binary `kubelabd` the reproducible, hermetic way.
//!
//! Reproducible: static (glibc `crt-static`), release profile, `--locked`, with the checkout
//! and cargo-home paths remapped, so the same source gives the same bytes wherever it is
//! checked out. The explicit `--target` keeps the static flag off build scripts and
//! proc-macros, which run on the host.
//!
//! Hermetic: whoever calls it — a shell, `cargo run`, a test under nextest, a benchmark — the
//! child cargo sees the same command line and the same environment, so a second build of the
//! same source is a no-op (cargo's fingerprints include the flags and the environment
//! variables build scripts read; one inherited variable that differs rebuilds everything,
//! minutes under load):
//!
//! 1. the workspace path is canonicalized (`tests/..` and the checkout are one path, so the
//!    remap flags are byte-identical);
//! 2. the build has a target directory of its own, `<workspace>/target/guest` ([`target_dir`]),
//!    never the caller's `CARGO_TARGET_DIR`, so no other build's flags overwrite its outputs;
//! 3. the child's environment is cleared and rebuilt from a fixed list ([`child_env`]): only
//!    where to find tools and toolchains (`PATH`, `HOME`, `CARGO_HOME`, `RUSTUP_HOME`) comes
//!    from the caller; every `CARGO_*`, `RUSTFLAGS`, `RUSTC_WRAPPER`, `RUSTUP_TOOLCHAIN`,
//!    `LD_LIBRARY_PATH`, jobserver variable and so on that cargo, nextest or rustup set for the
//!    caller is dropped;
//! 4. `cargo` is taken from `PATH` (with rustup: the workspace's default toolchain), not from
//!    the caller's `CARGO`.

use std::ffi::OsString;
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

/// The guest build's own target directory in `workspace` (canonical).
pub fn target_dir(workspace: &Path) -> PathBuf {
    workspace.join("target").join("guest")
}

/// Where the finished binary lands for `workspace` (canonical).
pub fn binary_path(workspace: &Path) -> PathBuf {
    target_dir(workspace)
        .join(TARGET)
        .join("release")
        .join("kubelabd")
}

/// The child cargo's whole environment, derived from the caller's through `var` (a lookup
/// such as `std::env::var_os`), sorted by name. Only the tool locations pass through.
pub fn child_env(
    workspace: &Path,
    var: impl Fn(&str) -> Option<OsString>,
) -> Vec<(&'static str, OsString)> {
    let home = var("HOME").unwrap_or_else(|| "/root".into());
    let cargo_home = var("CARGO_HOME").unwrap_or_else(|| Path::new(&home).join(".cargo").into());
    let rustup_home = var("RUSTUP_HOME").unwrap_or_else(|| Path::new(&home).join(".rustup").into());
    let path = var("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    // Longest prefix first: the target dir lies inside the workspace, both remaps could apply
    // and rustc uses the last matching one.
    let flags = [
        "-C".to_string(),
        "target-feature=+crt-static".to_string(),
        format!("--remap-path-prefix={}=/kubelab", workspace.display()),
        format!(
            "--remap-path-prefix={}=/cargo",
            Path::new(&cargo_home).display()
        ),
    ];
    vec![
        ("CARGO_ENCODED_RUSTFLAGS", flags.join("\u{1f}").into()),
        ("CARGO_HOME", cargo_home),
        ("CARGO_TARGET_DIR", target_dir(workspace).into()),
        ("CARGO_TERM_COLOR", "never".into()),
        ("HOME", home),
        ("PATH", path),
        ("RUSTUP_HOME", rustup_home),
    ]
}

/// The `cargo` command that builds kubelabd in `workspace` (canonical), with the environment
/// from `var`.
pub fn command(workspace: &Path, var: impl Fn(&str) -> Option<OsString>) -> Command {
    let mut cmd = Command::new("cargo");
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
        .env_clear()
        .envs(child_env(workspace, var));
    cmd
}

/// Builds `kubelabd` in `workspace` and returns the binary's path.
pub fn build_kubelabd(workspace: &Path) -> Result<PathBuf, Error> {
    let workspace = std::fs::canonicalize(workspace).map_err(|source| Error::Io {
        path: workspace.to_owned(),
        source,
    })?;
    super::run_command(&mut command(&workspace, |name| std::env::var_os(name)))?;
    Ok(binary_path(&workspace))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn explicit_env(cmd: &Command) -> Vec<(OsString, Option<OsString>)> {
        cmd.get_envs()
            .map(|(k, v)| (k.to_owned(), v.map(|v| v.to_owned())))
            .collect()
    }

    #[test]
    fn callers_environment_does_not_reach_the_build() {
        let shell = lookup(&[
            ("HOME", "/root"),
            ("PATH", "/root/.cargo/bin:/usr/bin:/bin"),
        ]);
        // What `cargo run`, nextest and rustup put into a test process's environment.
        let nextest = lookup(&[
            ("HOME", "/root"),
            ("PATH", "/root/.cargo/bin:/usr/bin:/bin"),
            ("CARGO", "/root/.rustup/toolchains/x/bin/cargo"),
            ("CARGO_HOME", "/root/.cargo"),
            ("RUSTUP_HOME", "/root/.rustup"),
            ("CARGO_MANIFEST_DIR", "/w/tests"),
            ("CARGO_PKG_NAME", "kubelab-vmtests"),
            ("CARGO_TARGET_DIR", "/elsewhere"),
            ("RUSTFLAGS", "-C debuginfo=2"),
            ("RUSTC_WRAPPER", "sccache"),
            ("RUSTUP_TOOLCHAIN", "nightly"),
            ("LD_LIBRARY_PATH", "/w/target/debug/deps"),
            ("NEXTEST", "1"),
        ]);
        let workspace = Path::new("/w");
        let a = command(workspace, shell);
        let b = command(workspace, nextest);
        assert_eq!(explicit_env(&a), explicit_env(&b));
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        let env: HashMap<_, _> = child_env(workspace, lookup(&[("HOME", "/h")]))
            .into_iter()
            .collect();
        assert_eq!(env["CARGO_TARGET_DIR"], OsString::from("/w/target/guest"));
        assert_eq!(env["CARGO_HOME"], OsString::from("/h/.cargo"));
        let flags = env["CARGO_ENCODED_RUSTFLAGS"]
            .to_string_lossy()
            .into_owned();
        assert!(
            flags.contains(
                "--remap-path-prefix=/w=/kubelab\u{1f}--remap-path-prefix=/h/.cargo=/cargo"
            ),
            "{flags:?}"
        );
    }

    #[test]
    fn the_build_starts_from_an_empty_environment() {
        let cmd = command(Path::new("/w"), lookup(&[("RUSTFLAGS", "-Cfoo")]));
        // `env_clear` shows in the Debug form as `env -i`: nothing is inherited.
        let shown = format!("{cmd:?}");
        assert!(shown.contains(" env -i "), "{shown}");
        assert!(!shown.contains("-Cfoo"), "{shown}");
        assert_eq!(cmd.get_program(), "cargo");
        assert_eq!(
            binary_path(Path::new("/w")),
            Path::new("/w/target/guest/x86_64-unknown-linux-gnu/release/kubelabd")
        );
    }
}
