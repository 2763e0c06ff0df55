//! Real etcd 3.4 must pass: this validates the runner and the checkers themselves.

use kubelab_lincheck::runner::Flavor;

use crate::util::{check_cluster, which};

#[test]
fn etcd_three_members_under_faults_is_linearizable() -> anyhow::Result<()> {
    let Some(binary) = which("etcd") else {
        println!("SKIP: `etcd` not on PATH (Debian etcd-server; scripts/setup-host installs it)");
        return Ok(());
    };
    check_cluster(Flavor::Etcd { binary })
}
