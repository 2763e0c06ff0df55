//! Shared by the targets: find a binary, run the workload against a flavor, judge it.

use std::path::PathBuf;
use std::time::Duration;

use kubelab_lincheck::runner::{Flavor, ProcessCluster, RunConfig, RunResult, Verdict, run};
use kubelab_lincheck::watch::{WatchCheckOptions, check_watches};
use kubelab_lincheck::wgl::SearchResult;
use kubelab_lincheck::{CheckOptions, History, Operation, Outcome, Output, check};

/// `name` on `PATH`, if there.
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| PathBuf::from(d).join(name))
        .find(|p| p.is_file())
}

/// Starts a 3-member cluster of `flavor`, runs the workload with faults, and panics with the
/// full report on any violation.
pub fn check_cluster(flavor: Flavor) -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "kubelab_lincheck=info".into()),
        )
        .with_test_writer()
        .try_init();
    let config = RunConfig::from_env()?;
    println!(
        "lincheck {}: seed {} (replay with LINCHECK_SEED={})",
        flavor.name(),
        config.seed,
        config.seed
    );
    let mut cluster = ProcessCluster::start(flavor, 3)?;
    let rt = tokio::runtime::Runtime::new()?;
    let result = rt.block_on(run(&mut cluster, config))?;
    let started = std::time::Instant::now();
    // A 5-minute history of the store needed about 6 minutes of search on its hardest
    // partition (shared 2-core machine); the CI-sized one takes seconds.
    let budget = if result.config.duration > Duration::from_secs(60) {
        900
    } else {
        60
    };
    let verdict = result.verify(CheckOptions {
        max_time_per_partition: Duration::from_secs(budget),
        ..CheckOptions::default()
    });
    println!("{verdict}");
    println!("checked in {:?}", started.elapsed());
    if !verdict.is_ok() || !result.driver_errors.is_empty() {
        println!("{}", cluster.log_tails(30));
        match save_artifacts(&cluster, &result, &verdict) {
            Ok(dir) => println!(
                "full history, watch logs and member logs: {}",
                dir.display()
            ),
            Err(e) => println!("could not save the failure's artifacts: {e}"),
        }
        anyhow::bail!(
            "store failed the check: not shown linearizable (violation or inconclusive search), \
             a broken watch guarantee, or a fault the driver could not carry out; see above"
        );
    }
    anyhow::ensure!(
        result
            .history
            .ops()
            .iter()
            .filter(|o| o.ret.is_some())
            .count()
            > 100,
        "too few operations completed to mean anything"
    );
    checkers_catch_mutations(&result, &verdict.checked)
}

/// Writes everything a person needs to study a failure under the test's target tmpdir.
fn save_artifacts(
    cluster: &ProcessCluster,
    result: &RunResult,
    verdict: &Verdict,
) -> anyhow::Result<PathBuf> {
    use std::fmt::Write;
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("lincheck")
        .join(format!(
            "{}-{}",
            cluster.flavor().name(),
            result.config.seed
        ));
    std::fs::create_dir_all(&dir)?;
    let lines = |ops: &[Operation]| {
        ops.iter().fold(String::new(), |mut s, o| {
            let _ = writeln!(s, "{o}");
            s
        })
    };
    std::fs::write(dir.join("report.txt"), verdict.to_string())?;
    std::fs::write(dir.join("history.txt"), lines(result.history.ops()))?;
    std::fs::write(
        dir.join("checked-history.txt"),
        lines(verdict.checked.ops()),
    )?;
    let faults = result.faults.iter().fold(String::new(), |mut s, f| {
        let _ = writeln!(s, "{f}");
        s
    });
    std::fs::write(dir.join("faults.txt"), faults)?;
    for w in &result.watches {
        let mut s = format!(
            "watcher {} from revision {}, {} resumes\n",
            w.watcher, w.start_revision, w.resumes
        );
        for b in &w.batches {
            let events: Vec<String> = b.events.iter().map(ToString::to_string).collect();
            let _ = writeln!(
                s,
                "[{:>10.3} ms] {}",
                b.received as f64 / 1e6,
                events.join(", ")
            );
        }
        std::fs::write(dir.join(format!("watch-{}.txt", w.watcher)), s)?;
    }
    // Machine-readable, for `cargo run -p kubelab-lincheck --example recheck -- run.json`.
    std::fs::write(dir.join("run.json"), serde_json::to_string(result)?)?;
    cluster.copy_logs(&dir)?;
    Ok(dir)
}

/// The same checks on this real history with one answer falsified must fail: proof that the
/// passing verdict above was not vacuous.
fn checkers_catch_mutations(result: &RunResult, checked: &History) -> anyhow::Result<()> {
    let mut ops: Vec<Operation> = checked.ops().to_vec();
    let read = ops
        .iter_mut()
        // The first such read: refuting it only needs the search over the history before it.
        .find_map(|o| match &mut o.outcome {
            Outcome::Ok(Output::Get { kv: Some(kv), .. }) => Some(kv),
            _ => None,
        })
        .ok_or_else(|| anyhow::anyhow!("no read returned a value"))?;
    read.value = "never-written".into();
    let mutated = History::from_ops(ops);
    let report = check(&mutated, CheckOptions::default());
    anyhow::ensure!(
        report
            .partitions
            .iter()
            .any(|p| matches!(p.result, SearchResult::Violation(_))),
        "checker missed a falsified read:\n{report}"
    );

    let mut watches = result.watches.clone();
    let batch = watches[0]
        .batches
        .iter_mut()
        .find(|b| !b.events.is_empty())
        .ok_or_else(|| anyhow::anyhow!("watcher 0 saw nothing"))?;
    batch.events.remove(0);
    let opts = WatchCheckOptions {
        contiguous: true,
        must_reach: Some(result.final_revision),
    };
    anyhow::ensure!(
        !check_watches(&watches, &result.history, opts).is_empty(),
        "watch checker missed a dropped event"
    );
    Ok(())
}
