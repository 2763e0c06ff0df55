//! The benchmark client end to end against a real 3-member etcd: every phase produces
//! numbers, the leader kill is measured, `compare` reads the JSON back. Speed is not asserted
//! (it is measured by `scripts/bench-store`); only that the plumbing measures something.

use std::process::Command;
use std::time::Duration;

use kubelab_lincheck::runner::{Flavor, ProcessCluster, wait_healthy};

#[test]
fn bench_measures_every_phase_against_etcd() -> anyhow::Result<()> {
    let Some(etcd) = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("etcd"))
            .find(|p| p.is_file())
    }) else {
        println!("SKIP: `etcd` not on PATH (Debian etcd-server; scripts/setup-host installs it)");
        return Ok(());
    };
    let cluster = ProcessCluster::start(Flavor::Etcd { binary: etcd }, 3)?;
    let endpoints = cluster.endpoints();
    tokio::runtime::Runtime::new()?.block_on(wait_healthy(&endpoints, Duration::from_secs(60)))?;
    let dir = tempfile::tempdir()?;
    let json = dir.path().join("etcd.json");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_etcd-bench"));
    cmd.args([
        "run",
        "--label",
        "etcd",
        "--seconds",
        "1",
        "--clients",
        "1,4",
    ])
    .args(["--read-clients", "4", "--endpoints", &endpoints.join(",")])
    .arg("--json")
    .arg(&json);
    for (i, e) in endpoints.iter().enumerate() {
        let pid = cluster.pid(i).expect("member running");
        cmd.arg("--member-pid").arg(format!("{e}={pid}"));
    }
    let out = cmd.output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    anyhow::ensure!(
        out.status.success(),
        "etcd-bench run failed: {}",
        out.status
    );

    let results: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json)?)?;
    for phase in results["puts"]
        .as_array()
        .expect("puts")
        .iter()
        .chain([&results["reads"]])
    {
        anyhow::ensure!(
            phase["ops"].as_u64() > Some(0),
            "a phase measured nothing: {phase}"
        );
        anyhow::ensure!(
            phase["p99_ms"].as_f64() >= phase["p50_ms"].as_f64(),
            "{phase}"
        );
    }
    let kill = results["leader_kill_to_write_ms"]
        .as_f64()
        .expect("leader kill measured");
    anyhow::ensure!(kill > 0.0 && kill < 30_000.0, "leader kill took {kill} ms");

    let cmp = Command::new(env!("CARGO_BIN_EXE_etcd-bench"))
        .args(["compare", "--baseline"])
        .arg(&json)
        .arg("--candidate")
        .arg(&json)
        .output()?;
    let text = String::from_utf8_lossy(&cmp.stdout);
    println!("{text}");
    anyhow::ensure!(
        cmp.status.success() && text.contains("1.00x"),
        "compare failed: {text}"
    );
    Ok(())
}
