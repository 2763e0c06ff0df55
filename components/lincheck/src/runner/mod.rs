//! The history runner: load a real cluster, inject faults, record everything, check it.
//!
//! 1. [`run`] reads the cluster's current revision, then starts `clients` workload tasks
//!    ([`client`]) and `watchers` watch tasks ([`watcher`]) on a fresh key prefix;
//! 2. meanwhile it plays the seeded fault [`fault::plan`] through the [`FaultDriver`]: finds
//!    the leader (Maintenance `Status`), kills or freezes it or a follower, heals, and waits
//!    until every member answers again before the next fault;
//! 3. when the time is up it collects the history, publishes the final revision so the
//!    watchers catch up to it, and returns a [`RunResult`];
//! 4. [`RunResult::verify`] runs the linearizability, revision and watch checks and renders
//!    a report that names the seed, the fault timeline and any offending operations.

pub mod client;
pub mod cluster;
pub mod fault;
pub mod watcher;

use std::time::{Duration, Instant};

use etcd_client::Client;

pub use cluster::{Flavor, ProcessCluster};
pub use fault::{FaultDriver, FaultEvent, FaultKind};

use crate::history::History;
use crate::watch::WatchLog;

/// Errors of the runner (the checks themselves never fail, they report).
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// No temporary directory.
    #[error("cannot create a temporary directory for the cluster")]
    TempDir(#[source] std::io::Error),
    /// No free loopback ports.
    #[error("cannot reserve loopback ports")]
    Ports(#[source] std::io::Error),
    /// A member's log file could not be opened.
    #[error("cannot open member log {path}")]
    Log {
        /// The log file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A member process did not start.
    #[error("cannot start member: {binary}")]
    Spawn {
        /// The command line.
        binary: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A signal could not be delivered.
    #[error("cannot signal member {member}")]
    Signal {
        /// The member.
        member: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The member is not running (killed and not restarted).
    #[error("member {member} is not running")]
    NotRunning {
        /// The member.
        member: String,
    },
    /// Restart of a member that is still running.
    #[error("member {member} is already running")]
    AlreadyRunning {
        /// The member.
        member: String,
    },
    /// A run setting is unusable.
    #[error("invalid lincheck setting {field} = {value:?}: {why}")]
    InvalidConfig {
        /// The setting (field or environment variable).
        field: &'static str,
        /// Its value.
        value: String,
        /// What it must be.
        why: &'static str,
    },
    /// The cluster did not become healthy in time.
    #[error("cluster not healthy after {waited:?}: {detail}")]
    NotHealthy {
        /// How long we waited.
        waited: Duration,
        /// The last failure seen.
        detail: String,
    },
}

/// What to run.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RunConfig {
    /// Seeds the workload and the fault plan; printed so a failure can be replayed.
    pub seed: u64,
    /// Concurrent workload clients.
    pub clients: usize,
    /// Keys in the working set (grouped two by two by multi-key transactions).
    pub keys: usize,
    /// How long the workload runs.
    pub duration: Duration,
    /// A request not answered by then is abandoned (indefinite, for a write).
    pub op_timeout: Duration,
    /// Concurrent watchers.
    pub watchers: usize,
    /// Whether to inject faults.
    pub faults: bool,
}

impl RunConfig {
    /// The CI-sized run, or the long one when `LINCHECK_LONG` is set; the seed from
    /// `LINCHECK_SEED` when set, else from the clock.
    pub fn from_env() -> Result<Self, RunnerError> {
        let seed = match std::env::var("LINCHECK_SEED") {
            Ok(s) => s.trim().parse().map_err(|_| RunnerError::InvalidConfig {
                field: "LINCHECK_SEED",
                value: s.clone(),
                why: "must be an unsigned 64-bit integer, as printed by a previous run",
            })?,
            Err(_) => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64),
        };
        let long = std::env::var_os("LINCHECK_LONG").is_some();
        let config = RunConfig {
            seed,
            clients: if long { 16 } else { 8 },
            keys: 6,
            duration: Duration::from_secs(if long { 300 } else { 30 }),
            op_timeout: Duration::from_secs(2),
            watchers: 2,
            faults: true,
        };
        config.validate()?;
        Ok(config)
    }

    /// Rejects a config that cannot produce a meaningful run.
    pub fn validate(&self) -> Result<(), RunnerError> {
        let bad = |field, value: String, why| Err(RunnerError::InvalidConfig { field, value, why });
        if self.clients == 0 {
            return bad("clients", "0".into(), "at least one client is needed");
        }
        if self.keys == 0 {
            return bad("keys", "0".into(), "at least one key is needed");
        }
        if self.duration < Duration::from_secs(1) {
            return bad(
                "duration",
                format!("{:?}", self.duration),
                "must be at least 1 s",
            );
        }
        if self.op_timeout.is_zero() {
            return bad("op_timeout", "0s".into(), "must be positive");
        }
        Ok(())
    }
}

/// Everything a run recorded.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct RunResult {
    /// The config it ran with.
    pub config: RunConfig,
    /// Every operation.
    pub history: History,
    /// Every watcher's log.
    pub watches: Vec<WatchLog>,
    /// The fault timeline.
    pub faults: Vec<FaultEvent>,
    /// The store revision when the workload started.
    pub start_revision: i64,
    /// The store revision after the workload.
    pub final_revision: i64,
    /// Faults or heals the driver could not carry out, or recoveries that timed out.
    pub driver_errors: Vec<String>,
}

/// Polls `probe` until it returns `Ok`, or fails after `deadline` with the last error.
pub async fn wait_until<T, F, Fut>(deadline: Duration, mut probe: F) -> Result<T, RunnerError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    let mut pause = Duration::from_millis(20);
    loop {
        match probe().await {
            Ok(v) => return Ok(v),
            Err(detail) if start.elapsed() >= deadline => {
                return Err(RunnerError::NotHealthy {
                    waited: start.elapsed(),
                    detail,
                });
            }
            Err(_) => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(250));
            }
        }
    }
}

/// One member's view: (its id, its leader's id, its raft term), or why it did not answer.
async fn status(endpoint: &str) -> Result<(u64, u64, u64), String> {
    let opts = client::connect_options(Duration::from_secs(1));
    let fut = async {
        let mut c = Client::connect([endpoint], Some(opts)).await?;
        c.status().await
    };
    match tokio::time::timeout(Duration::from_secs(1), fut).await {
        Ok(Ok(s)) => {
            let id = s.header().map_or(0, |h| h.member_id());
            Ok((id, s.leader(), s.raft_term()))
        }
        Ok(Err(e)) => Err(format!("{endpoint}: {e}")),
        Err(_) => Err(format!("{endpoint}: status timed out")),
    }
}

/// The index of the member that is leader at the highest term, if any answers.
pub async fn find_leader(endpoints: &[String]) -> Option<usize> {
    let views = futures_join(endpoints).await;
    views
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            v.as_ref()
                .ok()
                .map(|(id, leader, term)| (i, *id, *leader, *term))
        })
        .filter(|(_, id, leader, _)| id == leader && *id != 0)
        .max_by_key(|(_, _, _, term)| *term)
        .map(|(i, ..)| i)
}

async fn futures_join(endpoints: &[String]) -> Vec<Result<(u64, u64, u64), String>> {
    let handles: Vec<_> = endpoints
        .iter()
        .map(|e| {
            let e = e.clone();
            tokio::spawn(async move { status(&e).await })
        })
        .collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap_or_else(|e| Err(e.to_string())));
    }
    out
}

/// Waits until every member answers `Status` and they agree on one leader.
pub async fn wait_healthy(endpoints: &[String], deadline: Duration) -> Result<(), RunnerError> {
    wait_until(deadline, || async {
        let views = futures_join(endpoints).await;
        let mut leaders = Vec::new();
        for v in views {
            let (_, leader, _) = v?;
            leaders.push(leader);
        }
        leaders.dedup();
        match leaders.as_slice() {
            [l] if *l != 0 => Ok(()),
            _ => Err(format!("members report leaders {leaders:?}")),
        }
    })
    .await
}

/// The store revision, read through any member.
async fn current_revision(endpoints: &[String], prefix: &str) -> Result<i64, RunnerError> {
    wait_until(Duration::from_secs(30), || async {
        for e in endpoints {
            let opts = client::connect_options(Duration::from_secs(1));
            let fut = async {
                let mut c = Client::connect([e.as_str()], Some(opts)).await?;
                c.get(prefix, None).await
            };
            if let Ok(Ok(r)) = tokio::time::timeout(Duration::from_secs(1), fut).await {
                return Ok(r.header().map_or(0, |h| h.revision()));
            }
        }
        Err("no member answered a read".to_string())
    })
    .await
}

mod drive;
mod verdict;
pub use drive::run;
pub use verdict::Verdict;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_config_is_named() {
        let good = RunConfig {
            seed: 1,
            clients: 2,
            keys: 2,
            duration: Duration::from_secs(5),
            op_timeout: Duration::from_secs(1),
            watchers: 1,
            faults: false,
        };
        assert!(good.validate().is_ok());
        let err = RunConfig {
            clients: 0,
            ..good.clone()
        }
        .validate()
        .unwrap_err();
        assert!(err.to_string().contains("clients"), "{err}");
        let err = RunConfig {
            duration: Duration::ZERO,
            ..good
        }
        .validate()
        .unwrap_err();
        assert!(err.to_string().contains("duration"), "{err}");
    }
}
