//! Re-runs every check on a run saved by a failing cluster test (`run.json` in its artifacts
//! directory), with a larger search budget:
//!
//! ```sh
//! cargo run -p kubelab-lincheck --example recheck -- target/tmp/lincheck/<flavor>-<seed>/run.json [seconds]
//! ```

use std::time::Duration;

use anyhow::Context;
use kubelab_lincheck::CheckOptions;
use kubelab_lincheck::runner::RunResult;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .context("usage: recheck RUN.json [SECONDS-PER-PARTITION]")?;
    let seconds: u64 = match args.next() {
        Some(s) => s
            .parse()
            .with_context(|| format!("{s:?} is not a number of seconds"))?,
        None => 600,
    };
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let run: RunResult =
        serde_json::from_str(&text).with_context(|| format!("{path}: not a saved lincheck run"))?;
    let started = std::time::Instant::now();
    let verdict = run.verify(CheckOptions {
        max_time_per_partition: Duration::from_secs(seconds),
        ..CheckOptions::default()
    });
    println!("{verdict}");
    println!("checked in {:?}", started.elapsed());
    anyhow::ensure!(verdict.is_ok(), "the run fails its checks");
    Ok(())
}
