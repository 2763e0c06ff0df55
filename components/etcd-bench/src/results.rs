//! What a run measured, as printed and as written for `compare`.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One timed phase: operations, rate and latency percentiles.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Phase {
    /// Concurrent clients.
    pub clients: usize,
    /// Successful operations.
    pub ops: u64,
    /// Failed operations (not counted in the rate or latencies).
    pub errors: u64,
    /// Successful operations per second.
    pub per_sec: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// A few distinct error messages, to tell what failed.
    #[serde(default)]
    pub error_samples: Vec<String>,
}

/// Everything one `run` measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchResults {
    /// The store's name.
    pub label: String,
    /// Its client URLs.
    pub endpoints: Vec<String>,
    /// Bytes per value.
    pub value_size: usize,
    /// Seconds per phase.
    pub seconds: f64,
    /// Put phases, one per client count.
    pub puts: Vec<Phase>,
    /// The linearizable read phase.
    pub reads: Phase,
    /// `kill -9` of the leader to the first acknowledged write invoked after it, ms.
    pub leader_kill_to_write_ms: Option<f64>,
}

impl Phase {
    /// Summarizes latencies (any order) gathered over `elapsed`.
    pub fn from_latencies(
        clients: usize,
        mut lat: Vec<Duration>,
        errors: u64,
        elapsed: Duration,
    ) -> Self {
        lat.sort_unstable();
        let pct = |p: f64| -> f64 {
            if lat.is_empty() {
                return f64::NAN;
            }
            let i = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
            lat[i].as_secs_f64() * 1e3
        };
        Phase {
            clients,
            ops: lat.len() as u64,
            errors,
            per_sec: lat.len() as f64 / elapsed.as_secs_f64(),
            p50_ms: pct(0.50),
            p99_ms: pct(0.99),
            error_samples: Vec::new(),
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:>4} clients: {:>9.1}/s  p50 {:>7.2} ms  p99 {:>7.2} ms  ({} ops, {} errors)",
            self.clients, self.per_sec, self.p50_ms, self.p99_ms, self.ops, self.errors
        )?;
        for e in &self.error_samples {
            write!(f, "\n        error: {e}")?;
        }
        Ok(())
    }
}

impl fmt::Display for BenchResults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: {} members, {} B values, {} s per phase",
            self.label,
            self.endpoints.len(),
            self.value_size,
            self.seconds
        )?;
        for p in &self.puts {
            writeln!(f, "  put  {p}")?;
        }
        writeln!(f, "  linearizable read {}", self.reads)?;
        match self.leader_kill_to_write_ms {
            Some(ms) => writeln!(f, "  leader kill -> next acknowledged write: {ms:.0} ms"),
            None => writeln!(f, "  leader kill: not measured (no --member-pid)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_right_samples() {
        let lat: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let p = Phase::from_latencies(4, lat, 2, Duration::from_secs(2));
        assert_eq!(p.ops, 100);
        assert_eq!(p.per_sec, 50.0);
        assert_eq!(p.p50_ms, 50.0);
        assert_eq!(p.p99_ms, 99.0);
    }
}
