//! The timed phases: N clients in a closed loop, each waiting for its answer before the next.

use std::time::{Duration, Instant};

use anyhow::Context;
use etcd_client::{Client, ConnectOptions};
use kubelab_lincheck::runner::{find_leader, wait_healthy};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::RunArgs;
use crate::failover;
use crate::results::{BenchResults, Phase};

/// Distinct error messages kept per phase.
const MAX_SAMPLES: usize = 3;

fn keep_sample(samples: &mut Vec<String>, e: String) {
    if samples.len() < MAX_SAMPLES && !samples.contains(&e) {
        samples.push(e);
    }
}

/// Put or linearizable get.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Put,
    Get,
}

pub(crate) fn connect_options() -> ConnectOptions {
    ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(2))
        .with_timeout(Duration::from_secs(5))
}

/// Runs every phase of `args` and gathers the results.
pub async fn run(args: &RunArgs, pids: Vec<u32>) -> anyhow::Result<BenchResults> {
    wait_healthy(&args.endpoints, Duration::from_secs(60))
        .await
        .context("cluster not ready")?;
    let leader = find_leader(&args.endpoints)
        .await
        .context("no leader found")?;
    tracing::info!(label = %args.label, leader = %args.endpoints[leader], "cluster ready");
    let mut puts = Vec::new();
    for &clients in &args.clients {
        let targets = [args.endpoints[leader].clone()];
        let phase = timed(args, &targets, clients, Kind::Put).await?;
        tracing::info!(label = %args.label, %phase, "put phase done");
        puts.push(phase);
    }
    let reads = timed(args, &args.endpoints, args.read_clients, Kind::Get).await?;
    tracing::info!(label = %args.label, phase = %reads, "read phase done");
    let leader_kill_to_write_ms = if pids.is_empty() {
        None
    } else {
        Some(failover::measure(&args.endpoints, &pids, args.value_size).await?)
    };
    Ok(BenchResults {
        label: args.label.clone(),
        endpoints: args.endpoints.clone(),
        value_size: args.value_size,
        seconds: args.seconds,
        puts,
        reads,
        leader_kill_to_write_ms,
    })
}

/// One phase: `clients` closed-loop clients over `targets` for `args.seconds`.
async fn timed(
    args: &RunArgs,
    targets: &[String],
    clients: usize,
    kind: Kind,
) -> anyhow::Result<Phase> {
    let conns = clients.div_ceil(args.clients_per_conn);
    let mut pool = Vec::with_capacity(conns);
    for i in 0..conns {
        let ep = targets[i % targets.len()].as_str();
        let c = Client::connect([ep], Some(connect_options()))
            .await
            .with_context(|| format!("connecting to {ep}"))?;
        pool.push(c);
    }
    let value = vec![b'v'; args.value_size];
    let start = Instant::now();
    let until = start + args.phase();
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let mut c = pool[i % conns].clone();
            let value = value.clone();
            let keys = args.keys;
            tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(i as u64);
                let mut lat = Vec::new();
                let mut errors = 0u64;
                let mut samples: Vec<String> = Vec::new();
                while Instant::now() < until {
                    let key = format!("/bench/{:08}", rng.random_range(0..keys));
                    let t = Instant::now();
                    let result = match kind {
                        Kind::Put => c.put(key, value.clone(), None).await.map(drop),
                        Kind::Get => c.get(key, None).await.map(drop),
                    };
                    match result {
                        Ok(()) => lat.push(t.elapsed()),
                        Err(e) => {
                            errors += 1;
                            keep_sample(&mut samples, e.to_string());
                        }
                    }
                }
                (lat, errors, samples)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    let mut samples = Vec::new();
    for t in tasks {
        let (lat, e, s) = t.await.context("a load task panicked")?;
        all.extend(lat);
        errors += e;
        s.into_iter().for_each(|s| keep_sample(&mut samples, s));
    }
    let mut phase = Phase::from_latencies(clients, all, errors, start.elapsed());
    phase.error_samples = samples;
    Ok(phase)
}
