//! Per-stage timestamps of the write path, for profiling (off unless asked for).
//!
//! Each stage a write passes — gRPC receive, proposal, openraft `client_write`, log append
//! queued, group commit start/end (fsync), AppendEntries sent/received/answered, commit index
//! saved (the leader has its quorum), apply, reply —
//! calls [`mark`], which emits a `debug` event on the `store_timing` target with the stage, the
//! log index when known and the wall-clock time in microseconds (comparable across the members'
//! processes on one host). Nothing is formatted or read from the clock unless that target is
//! enabled: `RUST_LOG=info,store_timing=debug kubelabd store ...`.
//! `components/store/scripts/write-timing.py` turns the members' logs into a per-stage
//! breakdown (see "Where a single write's time goes" in `docs/store.md`).

/// Microseconds since the Unix epoch (wall clock: the same in every process of a host).
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Records that a write reached `stage` (at log `index`, 0 if not known yet; `n` entries or
/// requests involved). A no-op unless `store_timing=debug` is enabled.
#[inline]
pub fn mark(stage: &'static str, index: u64, n: usize) {
    tracing::debug!(target: "store_timing", stage, index, n, us = now_us());
}

/// The calling thread's total time spent runnable but waiting for a CPU, in microseconds (the
/// second field of `/proc/thread-self/schedstat`), or `None` unless the `store_timing` marks are
/// on (or the file is unreadable). Differences between two calls show scheduler wait.
pub fn thread_run_wait_us() -> Option<u64> {
    if !tracing::enabled!(target: "store_timing", tracing::Level::DEBUG) {
        return None;
    }
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().nth(1)?.parse().ok()?;
    Some(ns / 1000)
}
