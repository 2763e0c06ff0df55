//! One recording watcher: a prefix watch that survives member faults by resuming elsewhere.
//!
//! It watches the run's key prefix from the run's start revision. When its stream breaks,
//! is cancelled (no leader), or stays silent longer than `stall` while the workload is
//! writing (its member is frozen), it reconnects to the next member and resumes from the last
//! revision it saw + 1, as an etcd client should. It stops once the workload is over and it
//! has reached the target revision the runner publishes, or at its deadline.

use std::time::{Duration, Instant};

use etcd_client::{Client, EventType, WatchOptions};
use tokio::sync::watch;

use super::client::connect_options;
use crate::watch::{EventKind, WatchBatch, WatchEvent, WatchLog};

pub(crate) struct WatcherSpec {
    pub id: usize,
    pub endpoints: Vec<String>,
    pub prefix: String,
    pub start_revision: i64,
    /// Silence longer than this while writes are expected means a stuck member.
    pub stall: Duration,
    /// `Some(rev)` once the workload ended: stop after reaching `rev`.
    pub target: watch::Receiver<Option<i64>>,
    /// Hard stop.
    pub deadline: Instant,
    /// The history's clock origin, to time-stamp batches.
    pub origin: Instant,
}

pub(crate) async fn run_watcher(mut spec: WatcherSpec) -> WatchLog {
    let mut log = WatchLog {
        watcher: spec.id,
        start_revision: spec.start_revision,
        ..Default::default()
    };
    let mut endpoint = spec.id % spec.endpoints.len();
    let mut next = spec.start_revision;
    let mut first = true;
    let done = |next: i64, target: &watch::Receiver<Option<i64>>| {
        target.borrow().is_some_and(|t| next > t)
    };
    while Instant::now() < spec.deadline && !done(next, &spec.target) {
        if !first {
            log.resumes += 1;
            endpoint = (endpoint + 1) % spec.endpoints.len();
        }
        first = false;
        let ep = [spec.endpoints[endpoint].as_str()];
        let opts = connect_options(spec.stall);
        let Ok(Ok(mut client)) =
            tokio::time::timeout(spec.stall, Client::connect(ep, Some(opts))).await
        else {
            continue;
        };
        let wopts = WatchOptions::new().with_prefix().with_start_revision(next);
        let Ok(Ok(mut stream)) =
            tokio::time::timeout(spec.stall, client.watch(spec.prefix.as_str(), Some(wopts))).await
        else {
            continue;
        };
        loop {
            if done(next, &spec.target) || Instant::now() >= spec.deadline {
                break;
            }
            let msg = tokio::select! {
                m = tokio::time::timeout(spec.stall, stream.message()) => m,
                // Re-check the stop condition as soon as the target is published.
                _ = spec.target.changed() => continue,
            };
            let resp = match msg {
                Ok(Ok(Some(resp))) => resp,
                Ok(Ok(None)) | Ok(Err(_)) | Err(_) => break,
            };
            if resp.canceled() || resp.compact_revision() > 0 {
                tracing::info!(
                    watcher = spec.id,
                    reason = resp.cancel_reason(),
                    "watch cancelled"
                );
                break;
            }
            let events: Vec<WatchEvent> = resp
                .events()
                .iter()
                .filter_map(|e| {
                    let kv = e.kv()?;
                    let put = e.event_type() == EventType::Put;
                    Some(WatchEvent {
                        revision: kv.mod_revision(),
                        key: String::from_utf8_lossy(kv.key()).into_owned(),
                        kind: if put {
                            EventKind::Put
                        } else {
                            EventKind::Delete
                        },
                        value: if put {
                            String::from_utf8_lossy(kv.value()).into_owned()
                        } else {
                            String::new()
                        },
                    })
                })
                .collect();
            if let Some(last) = events.last() {
                next = next.max(last.revision + 1);
                let received = spec.origin.elapsed().as_nanos() as u64;
                log.batches.push(WatchBatch { events, received });
            }
        }
    }
    log
}
