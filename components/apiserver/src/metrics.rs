//! `/metrics` in Prometheus text format: request counts by verb, resource and code, and a
//! latency histogram by verb and resource (names as kube-apiserver uses them).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Histogram buckets in seconds.
const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];

#[derive(Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<(String, String), Histogram>,
    in_flight: i64,
}

/// The server's counters.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    /// Counts a request that started.
    pub fn started(&self) {
        if let Ok(mut i) = self.inner.lock() {
            i.in_flight += 1;
        }
    }

    /// Records a finished request. Watches count their setup time, not their lifetime.
    pub fn observe(&self, verb: &str, resource: &str, code: u16, elapsed: Duration) {
        let Ok(mut i) = self.inner.lock() else { return };
        i.in_flight -= 1;
        *i.requests
            .entry((verb.to_string(), resource.to_string(), code))
            .or_default() += 1;
        let h = i
            .latency
            .entry((verb.to_string(), resource.to_string()))
            .or_default();
        if h.counts.is_empty() {
            h.counts = vec![0; BUCKETS.len()];
        }
        let secs = elapsed.as_secs_f64();
        for (b, c) in BUCKETS.iter().zip(h.counts.iter_mut()) {
            if secs <= *b {
                *c += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let Ok(i) = self.inner.lock() else {
            return String::new();
        };
        let mut out = String::new();
        out.push_str("# HELP apiserver_request_total Counter of apiserver requests broken out by verb, resource and HTTP response code.\n");
        out.push_str("# TYPE apiserver_request_total counter\n");
        for ((verb, resource, code), n) in &i.requests {
            let _ = writeln!(
                out,
                "apiserver_request_total{{verb=\"{verb}\",resource=\"{resource}\",code=\"{code}\"}} {n}"
            );
        }
        out.push_str("# HELP apiserver_request_duration_seconds Response latency distribution in seconds for each verb and resource.\n");
        out.push_str("# TYPE apiserver_request_duration_seconds histogram\n");
        for ((verb, resource), h) in &i.latency {
            for (b, c) in BUCKETS.iter().zip(&h.counts) {
                let _ = writeln!(
                    out,
                    "apiserver_request_duration_seconds_bucket{{verb=\"{verb}\",resource=\"{resource}\",le=\"{b}\"}} {c}"
                );
            }
            let _ = writeln!(
                out,
                "apiserver_request_duration_seconds_bucket{{verb=\"{verb}\",resource=\"{resource}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "apiserver_request_duration_seconds_sum{{verb=\"{verb}\",resource=\"{resource}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "apiserver_request_duration_seconds_count{{verb=\"{verb}\",resource=\"{resource}\"}} {}",
                h.count
            );
        }
        out.push_str(
            "# HELP apiserver_current_inflight_requests Requests currently being served.\n",
        );
        out.push_str("# TYPE apiserver_current_inflight_requests gauge\n");
        let _ = writeln!(out, "apiserver_current_inflight_requests {}", i.in_flight);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_buckets() {
        let m = Metrics::default();
        m.started();
        m.observe("get", "pods", 200, Duration::from_millis(3));
        let text = m.render();
        assert!(
            text.contains("apiserver_request_total{verb=\"get\",resource=\"pods\",code=\"200\"} 1")
        );
        assert!(text.contains("le=\"0.005\"} 1"));
        assert!(text.contains("apiserver_current_inflight_requests 0"));
    }
}
