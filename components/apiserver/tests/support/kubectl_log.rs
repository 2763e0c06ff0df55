//! Reading kubectl's `-v=3` log: how long client-go's own rate limiter (QPS 5, burst 10 by
//! default; kubectl has no flag for it) held requests back.
//!
//! client-go logs one line per wait longer than its threshold, in one of two formats:
//! - before 1.30 (klog text): `Waited for 107.65ms due to client-side throttling, not
//!   priority and fairness, request: GET:https://...`
//! - 1.30 and later (structured klog, e.g. kubectl 1.32): `"Waited before sending request"
//!   delay="174.158842ms" reason="client-side throttling, not priority and fairness"`
//!
//! [`throttled_ms`] sums the waits of both; the bench reports it next to kubectl's wall time.
//! Unit-tested on both sample lines in the kubectl suite (`tests/kubectl/log.rs`).

/// The sum, in ms, of client-go's rate-limiter waits in a kubectl log (both formats).
pub fn throttled_ms(log: &str) -> f64 {
    log.lines()
        .filter(|l| l.contains("client-side throttling"))
        .filter_map(|l| {
            let d = if let Some(rest) = l.split("Waited for ").nth(1) {
                rest.split_whitespace().next()?.trim_end_matches(',')
            } else {
                l.split("delay=\"").nth(1)?.split('"').next()?
            };
            go_duration_ms(d)
        })
        .sum::<f64>()
        + 0.0 // an empty sum is -0.0
}

/// A Go `time.Duration` string (`174.158842ms`, `1.5s`, `1m2.5s`, `850µs`) in ms; `None` if
/// it is not one.
pub fn go_duration_ms(s: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "h" => 3_600_000.0,
            "m" => 60_000.0,
            "s" => 1000.0,
            "ms" => 1.0,
            "µs" | "us" | "μs" => 1e-3,
            "ns" => 1e-6,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[unit_end..];
    }
    Some(total)
}
