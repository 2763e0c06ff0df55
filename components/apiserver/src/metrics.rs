//! `/metrics` in Prometheus text format, with kube-apiserver's family names where the
//! meaning matches:
//!
//! - `apiserver_request_total{verb,resource,code}` and
//!   `apiserver_request_duration_seconds{verb,resource}` (histogram; a watch counts its
//!   setup, not its lifetime), fed by the HTTP layer for every request;
//! - `apiserver_current_inflight_requests` (gauge);
//! - `apiserver_registered_watchers{resource}` (gauge: open watch streams; kube labels it by
//!   group/version/kind), fed by [`WatchGuard`]s the watch handler holds;
//! - `etcd_request_duration_seconds{operation}` (histogram of store round trips), fed by
//!   [`StoreMetrics::timer`] in `storage`;
//! - `apiserver_storage_objects{resource}` (gauge), counted in the store when scraped.
//!
//! Per-request cost is a few relaxed atomic adds: series are found under a read lock
//! (readers never wait for each other; the write lock is taken only the first time a
//! verb/resource pair is seen), and every counter inside a series is an atomic.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Histogram buckets in seconds.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];

/// Distinct response codes kept per verb/resource; more (never seen in practice) are
/// counted under `code="other"`.
const CODE_SLOTS: usize = 24;

/// A latency histogram of atomics; bucket counts are kept per bucket and summed when
/// rendered (Prometheus buckets are cumulative).
#[derive(Default)]
struct Histogram {
    /// Observations per bucket; the last slot is above the largest bound.
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let slot = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        self.counts[slot].fetch_add(1, Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Relaxed);
    }

    /// Appends `<name>_bucket`, `_sum` and `_count` lines; `labels` is `k="v",...`.
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut total = 0;
        for (i, c) in self.counts.iter().enumerate() {
            total += c.load(Relaxed);
            let le = BUCKETS.get(i).map_or("+Inf".to_string(), f64::to_string);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {total}");
        }
        let sum = self.sum_nanos.load(Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {total}");
    }
}

/// The counters of one verb/resource pair.
#[derive(Default)]
struct Series {
    latency: Histogram,
    /// (code, count) slots, claimed by compare-and-swap of a zero code.
    codes: [(AtomicU32, AtomicU64); CODE_SLOTS],
    other_codes: AtomicU64,
}

impl Series {
    fn count_code(&self, code: u16) {
        let code = u32::from(code);
        for (slot, n) in &self.codes {
            match slot.load(Relaxed) {
                c if c == code => {
                    n.fetch_add(1, Relaxed);
                    return;
                }
                0 => match slot.compare_exchange(0, code, Relaxed, Relaxed) {
                    Ok(_) => {
                        n.fetch_add(1, Relaxed);
                        return;
                    }
                    Err(c) if c == code => {
                        n.fetch_add(1, Relaxed);
                        return;
                    }
                    Err(_) => {}
                },
                _ => {}
            }
        }
        self.other_codes.fetch_add(1, Relaxed);
    }
}

/// Request series by verb, then resource.
type SeriesMap = HashMap<String, HashMap<String, Series>>;

/// The server's request counters.
#[derive(Default)]
pub struct Metrics {
    series: RwLock<SeriesMap>,
    in_flight: AtomicI64,
    watchers: RwLock<HashMap<String, Arc<AtomicI64>>>,
}

/// An open watch, counted in `apiserver_registered_watchers` until dropped.
pub struct WatchGuard(Arc<AtomicI64>);

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

impl Metrics {
    /// Counts a request that started.
    pub fn started(&self) {
        self.in_flight.fetch_add(1, Relaxed);
    }

    /// Records a finished request. Watches count their setup time, not their lifetime.
    pub fn observe(&self, verb: &str, resource: &str, code: u16, elapsed: Duration) {
        self.in_flight.fetch_sub(1, Relaxed);
        let record = |s: &Series| {
            s.count_code(code);
            s.latency.observe(elapsed);
        };
        if let Ok(map) = self.series.read()
            && let Some(s) = map.get(verb).and_then(|m| m.get(resource))
        {
            return record(s);
        }
        if let Ok(mut map) = self.series.write() {
            let s = map
                .entry(verb.to_string())
                .or_default()
                .entry(resource.to_string())
                .or_default();
            record(s);
        }
    }

    /// Counts an open watch of `resource` until the guard is dropped.
    pub fn watch_started(&self, resource: &str) -> WatchGuard {
        let existing = self
            .watchers
            .read()
            .ok()
            .and_then(|m| m.get(resource).cloned());
        let gauge = existing.unwrap_or_else(|| match self.watchers.write() {
            Ok(mut m) => m.entry(resource.to_string()).or_default().clone(),
            Err(_) => Arc::default(),
        });
        gauge.fetch_add(1, Relaxed);
        WatchGuard(gauge)
    }

    /// The text exposition, with the store's round trips and the object counts per
    /// resource (`None`: not counted, e.g. the store is unreachable).
    pub fn render(&self, store: &StoreMetrics, objects: &[(String, Option<i64>)]) -> String {
        let mut out = String::new();
        family(
            &mut out,
            "apiserver_request_total",
            "counter",
            "Counter of apiserver requests broken out by verb, resource and HTTP response code.",
        );
        let series = self.series.read().ok();
        let mut pairs: Vec<(&String, &String, &Series)> = series
            .iter()
            .flat_map(|m| m.iter())
            .flat_map(|(v, m)| m.iter().map(move |(r, s)| (v, r, s)))
            .collect();
        pairs.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        for (verb, resource, s) in &pairs {
            let mut codes: Vec<(u32, u64)> = s
                .codes
                .iter()
                .map(|(c, n)| (c.load(Relaxed), n.load(Relaxed)))
                .filter(|(c, _)| *c != 0)
                .collect();
            codes.sort_unstable();
            for (code, n) in codes {
                let _ = writeln!(
                    out,
                    "apiserver_request_total{{verb=\"{verb}\",resource=\"{resource}\",code=\"{code}\"}} {n}"
                );
            }
            let other = s.other_codes.load(Relaxed);
            if other > 0 {
                let _ = writeln!(
                    out,
                    "apiserver_request_total{{verb=\"{verb}\",resource=\"{resource}\",code=\"other\"}} {other}"
                );
            }
        }
        family(
            &mut out,
            "apiserver_request_duration_seconds",
            "histogram",
            "Response latency distribution in seconds for each verb and resource.",
        );
        for (verb, resource, s) in &pairs {
            s.latency.render(
                &mut out,
                "apiserver_request_duration_seconds",
                &format!("verb=\"{verb}\",resource=\"{resource}\""),
            );
        }
        family(
            &mut out,
            "apiserver_current_inflight_requests",
            "gauge",
            "Requests currently being served.",
        );
        let _ = writeln!(
            out,
            "apiserver_current_inflight_requests {}",
            self.in_flight.load(Relaxed)
        );
        family(
            &mut out,
            "apiserver_registered_watchers",
            "gauge",
            "Number of currently open watches for a given resource.",
        );
        if let Ok(w) = self.watchers.read() {
            let mut w: Vec<_> = w.iter().collect();
            w.sort_by_key(|(r, _)| *r);
            for (resource, n) in w {
                let _ = writeln!(
                    out,
                    "apiserver_registered_watchers{{resource=\"{resource}\"}} {}",
                    n.load(Relaxed)
                );
            }
        }
        store.render(&mut out);
        family(
            &mut out,
            "apiserver_storage_objects",
            "gauge",
            "Number of stored objects at the time of last check split by kind.",
        );
        for (resource, n) in objects {
            if let Some(n) = n {
                let _ = writeln!(
                    out,
                    "apiserver_storage_objects{{resource=\"{resource}\"}} {n}"
                );
            }
        }
        out
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A kind of store round trip, the `operation` label of `etcd_request_duration_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    /// Read of one key.
    Get,
    /// One range read of a list.
    List,
    /// Count of a range (current revision, stored objects).
    Count,
    /// Create transaction.
    Create,
    /// Update transaction.
    Update,
    /// Delete transaction.
    Delete,
}

impl StoreOp {
    const ALL: [StoreOp; 6] = [
        StoreOp::Get,
        StoreOp::List,
        StoreOp::Count,
        StoreOp::Create,
        StoreOp::Update,
        StoreOp::Delete,
    ];

    fn name(self) -> &'static str {
        match self {
            StoreOp::Get => "get",
            StoreOp::List => "list",
            StoreOp::Count => "count",
            StoreOp::Create => "create",
            StoreOp::Update => "update",
            StoreOp::Delete => "delete",
        }
    }
}

/// Store round-trip latencies, one histogram per [`StoreOp`].
#[derive(Default)]
pub struct StoreMetrics {
    ops: [Histogram; StoreOp::ALL.len()],
}

/// Times one store round trip; records when dropped.
pub struct Timer<'a> {
    histogram: &'a Histogram,
    started: Instant,
}

impl Drop for Timer<'_> {
    fn drop(&mut self) {
        self.histogram.observe(self.started.elapsed());
    }
}

impl StoreMetrics {
    /// Starts timing a round trip of kind `op`.
    pub fn timer(&self, op: StoreOp) -> Timer<'_> {
        Timer {
            histogram: &self.ops[op as usize],
            started: Instant::now(),
        }
    }

    fn render(&self, out: &mut String) {
        family(
            out,
            "etcd_request_duration_seconds",
            "histogram",
            "Etcd request latency in seconds for each operation.",
        );
        for op in StoreOp::ALL {
            self.ops[op as usize].render(
                out,
                "etcd_request_duration_seconds",
                &format!("operation=\"{}\"", op.name()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_buckets_watchers_and_store_latency() {
        let m = Metrics::default();
        m.started();
        m.observe("get", "pods", 200, Duration::from_millis(3));
        m.started();
        m.observe("get", "pods", 404, Duration::from_millis(30));
        m.started();
        let watch = m.watch_started("pods");
        let store = StoreMetrics::default();
        drop(store.timer(StoreOp::Get));
        let text = m.render(&store, &[("pods".into(), Some(7)), ("nodes".into(), None)]);
        for line in [
            "apiserver_request_total{verb=\"get\",resource=\"pods\",code=\"200\"} 1",
            "apiserver_request_total{verb=\"get\",resource=\"pods\",code=\"404\"} 1",
            "apiserver_request_duration_seconds_bucket{verb=\"get\",resource=\"pods\",le=\"0.005\"} 1",
            "apiserver_request_duration_seconds_bucket{verb=\"get\",resource=\"pods\",le=\"0.05\"} 2",
            "apiserver_request_duration_seconds_bucket{verb=\"get\",resource=\"pods\",le=\"+Inf\"} 2",
            "apiserver_request_duration_seconds_count{verb=\"get\",resource=\"pods\"} 2",
            "apiserver_current_inflight_requests 1",
            "apiserver_registered_watchers{resource=\"pods\"} 1",
            "etcd_request_duration_seconds_count{operation=\"get\"} 1",
            "etcd_request_duration_seconds_count{operation=\"update\"} 0",
            "apiserver_storage_objects{resource=\"pods\"} 7",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
        assert!(!text.contains("resource=\"nodes\""));
        drop(watch);
        let text = m.render(&store, &[]);
        assert!(text.contains("apiserver_registered_watchers{resource=\"pods\"} 0"));
    }

    #[test]
    fn many_codes_overflow_into_other() {
        let m = Metrics::default();
        for code in 0..(CODE_SLOTS as u16 + 2) {
            m.started();
            m.observe("get", "pods", 200 + code, Duration::ZERO);
        }
        let text = m.render(&StoreMetrics::default(), &[]);
        assert!(text.contains("code=\"other\"} 2"), "{text}");
    }
}
