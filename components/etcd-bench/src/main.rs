//! `etcd-bench`: the same load against any store that speaks the etcd v3 API.
//!
//! `etcd-bench run` measures, against the endpoints given:
//!
//! 1. puts/s and p50/p99 latency at each client count of `--clients` (256 B values by
//!    default; writes go to the leader, as etcd's own benchmark does by default);
//! 2. linearizable reads/s (`Range` without `serializable`) spread over every member;
//! 3. with `--member-pid URL=PID` for every member: the time from `kill -9` of the leader to
//!    the first acknowledged write invoked after the kill.
//!
//! It prints a summary and, with `--json FILE`, writes it for `etcd-bench compare`, which
//! prints two runs side by side with their ratios and the targets. The script
//! `scripts/bench-store` runs both stores and calls both subcommands.

mod compare;
mod failover;
mod load;
mod results;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// The benchmark client's command line.
#[derive(Parser)]
#[command(name = "etcd-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the load against one cluster.
    Run(RunArgs),
    /// Print two `run --json` results side by side, with ratios and the targets.
    Compare {
        /// The reference (real etcd).
        #[arg(long)]
        baseline: PathBuf,
        /// The store measured against it.
        #[arg(long)]
        candidate: PathBuf,
    },
}

/// Arguments of `etcd-bench run`.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Client URLs of every member, comma separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub endpoints: Vec<String>,
    /// A name for this store in the output.
    #[arg(long, default_value = "store")]
    pub label: String,
    /// Put phases, one per client count.
    #[arg(long, value_delimiter = ',', default_value = "1,100")]
    pub clients: Vec<usize>,
    /// Concurrent clients of the linearizable read phase.
    #[arg(long, default_value_t = 100)]
    pub read_clients: usize,
    /// Length of each phase, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Size of every value written, in bytes.
    #[arg(long, default_value_t = 256)]
    pub value_size: usize,
    /// Distinct keys written (chosen at random).
    #[arg(long, default_value_t = 10_000)]
    pub keys: usize,
    /// Clients sharing one HTTP/2 connection.
    #[arg(long, default_value_t = 10)]
    pub clients_per_conn: usize,
    /// `URL=PID` of every member, to measure leader-kill recovery (kills the leader!).
    #[arg(long = "member-pid")]
    pub member_pids: Vec<String>,
    /// Write the results here as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

impl RunArgs {
    fn phase(&self) -> Duration {
        Duration::from_secs_f64(self.seconds)
    }

    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.seconds > 0.0,
            "--seconds {} must be positive",
            self.seconds
        );
        anyhow::ensure!(self.keys > 0, "--keys must be at least 1");
        anyhow::ensure!(
            self.clients_per_conn > 0,
            "--clients-per-conn must be at least 1"
        );
        anyhow::ensure!(
            self.clients.iter().all(|c| *c > 0) && self.read_clients > 0,
            "client counts must be at least 1 (got --clients {:?}, --read-clients {})",
            self.clients,
            self.read_clients
        );
        for e in &self.endpoints {
            anyhow::ensure!(
                e.starts_with("http://") || e.starts_with("https://"),
                "--endpoints: {e:?} is not a URL like http://127.0.0.1:2379"
            );
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "etcd_bench=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Run(args) => {
            args.validate()?;
            let pids = failover::parse_pids(&args.member_pids, &args.endpoints)?;
            let results = load::run(&args, pids).await?;
            print!("{results}");
            if let Some(path) = &args.json {
                let text = serde_json::to_string_pretty(&results)?;
                std::fs::write(path, text)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        }
        Command::Compare {
            baseline,
            candidate,
        } => {
            let read = |p: &PathBuf| -> anyhow::Result<results::BenchResults> {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading {}", p.display()))?;
                serde_json::from_str(&text).with_context(|| {
                    format!("{}: not an `etcd-bench run --json` result", p.display())
                })
            };
            print!("{}", compare::render(&read(&baseline)?, &read(&candidate)?));
        }
    }
    Ok(())
}
