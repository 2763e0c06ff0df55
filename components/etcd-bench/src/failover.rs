//! Leader-kill recovery: `kill -9` the leader under a steady trickle of writes to the other
//! members and time the first acknowledged write invoked after the kill.
//!
//! Writers use a short per-request timeout and retry at once, so the measurement's resolution
//! is that timeout at worst; a write in flight across the kill does not count, so the number
//! cannot be flattered by a write the old leader had already committed.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use etcd_client::Client;
use kubelab_lincheck::runner::find_leader;
use rustix::process::{Pid, Signal, kill_process};
use tokio::sync::mpsc;

use crate::load::connect_options;

/// Writers per surviving member.
const WRITERS_PER_MEMBER: usize = 2;
/// Per-request timeout of the writers.
const ATTEMPT: Duration = Duration::from_millis(250);
/// Pause after an attempt that failed at once (bounds the measurement's error to it).
const FAILED_PAUSE: Duration = Duration::from_millis(5);
/// Give up waiting for a write after the kill.
const GIVE_UP: Duration = Duration::from_secs(30);

/// Parses `URL=PID` pairs into one PID per endpoint, in endpoint order; empty when none given.
pub fn parse_pids(specs: &[String], endpoints: &[String]) -> anyhow::Result<Vec<u32>> {
    if specs.is_empty() {
        return Ok(Vec::new());
    }
    let mut pids = vec![None; endpoints.len()];
    for s in specs {
        let (url, pid) = s
            .rsplit_once('=')
            .with_context(|| format!("--member-pid {s:?}: expected URL=PID"))?;
        let pid: u32 = pid
            .parse()
            .with_context(|| format!("--member-pid {s:?}: {pid:?} is not a PID"))?;
        let i = endpoints
            .iter()
            .position(|e| e == url)
            .with_context(|| format!("--member-pid {s:?}: {url} is not one of --endpoints"))?;
        pids[i] = Some(pid);
    }
    pids.into_iter()
        .zip(endpoints)
        .map(|(p, e)| p.with_context(|| format!("--member-pid: no PID given for {e}")))
        .collect()
}

/// Kills the leader and returns milliseconds to the next acknowledged write.
pub async fn measure(endpoints: &[String], pids: &[u32], value_size: usize) -> anyhow::Result<f64> {
    let leader = find_leader(endpoints).await.context("no leader to kill")?;
    let killed_at: Arc<OnceLock<Instant>> = Arc::new(OnceLock::new());
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, bool)>();
    let mut tasks = Vec::new();
    for (i, ep) in endpoints.iter().enumerate().filter(|(i, _)| *i != leader) {
        for w in 0..WRITERS_PER_MEMBER {
            let mut c = Client::connect([ep.as_str()], Some(connect_options()))
                .await
                .with_context(|| format!("connecting to {ep}"))?;
            let (tx, killed_at) = (tx.clone(), killed_at.clone());
            let value = vec![b'k'; value_size];
            tasks.push(tokio::spawn(async move {
                let mut n = 0u64;
                loop {
                    n += 1;
                    let call = Instant::now();
                    let key = format!("/bench-failover/{i}/{w}/{n}");
                    let put = c.put(key, value.clone(), None);
                    if let Ok(Ok(_)) = tokio::time::timeout(ATTEMPT, put).await {
                        let after_kill = killed_at.get().is_some_and(|k| call >= *k);
                        if tx.send((Instant::now(), after_kill)).is_err() {
                            return;
                        }
                    } else if call.elapsed() < FAILED_PAUSE {
                        // A put that fails at once (no leader yet) must not turn this into
                        // a busy loop: it would starve the members being measured of CPU,
                        // and a task that never yields cannot be aborted.
                        tokio::time::sleep(FAILED_PAUSE).await;
                    }
                }
            }));
        }
    }
    drop(tx);
    // Writers must be flowing before the kill, or the number would include their start-up.
    let warm = tokio::time::timeout(GIVE_UP, rx.recv()).await;
    anyhow::ensure!(
        matches!(warm, Ok(Some(_))),
        "no write succeeded before the kill"
    );
    let pid = pids[leader];
    let t = Instant::now();
    killed_at.set(t).expect("set once");
    kill_process(
        Pid::from_raw(pid as i32).context("PID 0 given")?,
        Signal::KILL,
    )
    .with_context(|| format!("kill -9 {pid} (leader {})", endpoints[leader]))?;
    tracing::info!(leader = %endpoints[leader], pid, "leader killed");
    let result = tokio::time::timeout(GIVE_UP, async {
        while let Some((acked, after_kill)) = rx.recv().await {
            if after_kill {
                return Some(acked);
            }
        }
        None
    })
    .await;
    tasks.iter().for_each(|t| t.abort());
    match result {
        Ok(Some(acked)) => Ok((acked - t).as_secs_f64() * 1e3),
        _ => anyhow::bail!("no write acknowledged within {GIVE_UP:?} of killing the leader"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_map_to_endpoints_and_bad_input_is_named() {
        let eps = vec!["http://a:1".to_string(), "http://b:2".to_string()];
        let ok = parse_pids(&["http://b:2=20".into(), "http://a:1=10".into()], &eps).unwrap();
        assert_eq!(ok, vec![10, 20]);
        let missing = parse_pids(&["http://a:1=10".into()], &eps).unwrap_err();
        assert!(missing.to_string().contains("http://b:2"), "{missing}");
        let bad = parse_pids(&["http://a:1=x".into(), "http://b:2=3".into()], &eps).unwrap_err();
        assert!(bad.to_string().contains("not a PID"), "{bad}");
        assert!(parse_pids(&[], &eps).unwrap().is_empty());
    }
}
