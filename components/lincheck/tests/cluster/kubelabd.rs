//! The store itself: three `kubelabd store` processes on loopback, same workload and faults.

use std::path::PathBuf;
use std::process::Command;

use kubelab_lincheck::runner::Flavor;

use crate::util::check_cluster;

/// `$KUBELABD` if set; else builds `kubelabd` into this test's own target directory (a
/// workspace test run does not build other packages' binaries) and returns its path.
fn kubelabd() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("KUBELABD") {
        return Ok(PathBuf::from(p));
    }
    // This test runs from <target>/<profile>/deps/.
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .ok_or_else(|| anyhow::anyhow!("unexpected test location {}", exe.display()))?;
    let target_dir = profile_dir
        .parent()
        .ok_or_else(|| anyhow::anyhow!("unexpected test location {}", exe.display()))?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let status = Command::new(cargo)
        .current_dir(&workspace)
        .args(["build", "--quiet", "-p", "kubelabd", "--target-dir"])
        .arg(target_dir)
        .status()?;
    anyhow::ensure!(
        status.success(),
        "cargo build -p kubelabd failed ({status})"
    );
    // `cargo build` without --release puts it in debug/ whatever profile ran the tests.
    Ok(target_dir.join("debug").join("kubelabd"))
}

#[test]
fn kubelabd_store_three_members_under_faults_is_linearizable() -> anyhow::Result<()> {
    check_cluster(Flavor::Kubelabd {
        binary: kubelabd()?,
    })
}
