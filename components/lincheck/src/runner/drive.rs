//! [`run`]: the workload, the watchers and the fault schedule, together in one tokio runtime.

use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::client::{ClientSpec, run_client};
use super::fault::{FaultDriver, FaultEvent, FaultKind, plan};
use super::watcher::{WatcherSpec, run_watcher};
use super::{RunConfig, RunResult, RunnerError, current_revision, find_leader, wait_healthy};
use crate::history::History;

/// How long the cluster may take to recover after a fault is healed.
const RECOVERY: Duration = Duration::from_secs(30);

/// Runs `config` against the cluster behind `driver`; see the module docs of [`super`].
pub async fn run(
    driver: &mut dyn FaultDriver,
    config: RunConfig,
) -> Result<RunResult, RunnerError> {
    config.validate()?;
    let endpoints: Vec<String> = (0..driver.size()).map(|i| driver.endpoint(i)).collect();
    wait_healthy(&endpoints, RECOVERY).await?;
    let prefix = format!("/lincheck/{}/", config.seed);
    let start_revision = current_revision(&endpoints, &prefix).await? + 1;
    let keys: Vec<String> = (0..config.keys).map(|i| format!("{prefix}k{i}")).collect();
    let origin = Instant::now();
    let until = origin + config.duration;
    tracing::info!(
        seed = config.seed,
        ?endpoints,
        start_revision,
        "lincheck run starting"
    );

    let (target_tx, target_rx) = watch::channel(None);
    let watchers: Vec<_> = (0..config.watchers)
        .map(|id| {
            tokio::spawn(run_watcher(WatcherSpec {
                id,
                endpoints: endpoints.clone(),
                prefix: prefix.clone(),
                start_revision,
                stall: Duration::from_secs(3),
                target: target_rx.clone(),
                deadline: until + RECOVERY + Duration::from_secs(30),
                origin,
            }))
        })
        .collect();
    let clients: Vec<_> = (0..config.clients)
        .map(|id| {
            tokio::spawn(run_client(ClientSpec {
                id,
                seed: config.seed,
                endpoints: endpoints.clone(),
                keys: keys.clone(),
                origin,
                until,
                op_timeout: config.op_timeout,
            }))
        })
        .collect();

    let mut faults = Vec::new();
    let mut driver_errors = Vec::new();
    if config.faults {
        let at = || origin.elapsed().as_nanos() as u64;
        for f in plan(config.seed, config.duration) {
            tokio::time::sleep(f.quiet).await;
            let leader = find_leader(&endpoints).await;
            let n = endpoints.len();
            let member = match (f.kind, leader) {
                (FaultKind::KillLeader | FaultKind::IsolateLeader, Some(l)) => l,
                (_, Some(l)) => (l + 1 + f.pick % (n - 1)) % n,
                (_, None) => f.pick % n,
            };
            let kill = matches!(f.kind, FaultKind::KillLeader | FaultKind::KillFollower);
            let result = if kill {
                driver.kill(member)
            } else {
                driver.pause(member)
            };
            let role = if leader == Some(member) {
                "leader"
            } else {
                "follower"
            };
            let verb = if kill { "kill -9" } else { "isolate (SIGSTOP)" };
            faults.push(FaultEvent {
                at: at(),
                what: format!("{verb} m{member} ({role})"),
            });
            if let Err(e) = result {
                driver_errors.push(format!("{verb} m{member}: {e}"));
                continue;
            }
            tokio::time::sleep(f.hold).await;
            let healed = if kill {
                driver.restart(member)
            } else {
                driver.resume(member)
            };
            let verb = if kill { "restart" } else { "resume (SIGCONT)" };
            faults.push(FaultEvent {
                at: at(),
                what: format!("{verb} m{member}"),
            });
            if let Err(e) = healed {
                driver_errors.push(format!("{verb} m{member}: {e}"));
                continue;
            }
            match wait_healthy(&endpoints, RECOVERY).await {
                Ok(()) => faults.push(FaultEvent {
                    at: at(),
                    what: "cluster healthy".into(),
                }),
                Err(e) => driver_errors.push(format!("after {verb} m{member}: {e}")),
            }
        }
    }

    let mut history = History::new();
    let mut ops = Vec::new();
    for c in clients {
        ops.extend(c.await.unwrap_or_default());
    }
    ops.sort_by_key(|o| (o.call, o.client));
    for op in ops {
        history.push(op);
    }
    wait_healthy(&endpoints, RECOVERY).await?;
    let final_revision = current_revision(&endpoints, &prefix).await?;
    let _ = target_tx.send(Some(final_revision));
    let mut watches = Vec::new();
    for w in watchers {
        if let Ok(log) = w.await {
            watches.push(log);
        }
    }
    drop(target_tx);
    Ok(RunResult {
        config,
        history,
        watches,
        faults,
        start_revision,
        final_revision,
        driver_errors,
    })
}
