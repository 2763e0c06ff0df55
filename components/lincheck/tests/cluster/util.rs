//! Shared by the targets: find a binary, run the workload against a flavor, judge it.

use std::path::PathBuf;
use std::time::Duration;

use kubelab_lincheck::runner::{Flavor, ProcessCluster, RunConfig, RunResult, run};
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
    let verdict = result.verify(CheckOptions {
        max_time_per_partition: Duration::from_secs(60),
    });
    println!("{verdict}");
    println!("checked in {:?}", started.elapsed());
    if !verdict.is_ok() || !result.driver_errors.is_empty() {
        println!("{}", cluster.log_tails(30));
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
