//! Two results side by side: every metric, the ratio candidate/baseline, and the issue's
//! targets (throughput at least the baseline's and p99 no worse at every client count;
//! a write acknowledged within 1 s of a leader kill).

use std::fmt::Write;

use crate::results::{BenchResults, Phase};

/// The leader-kill target from the issue.
const FAILOVER_TARGET_MS: f64 = 1000.0;

fn row(out: &mut String, name: &str, base: f64, cand: f64, unit: &str) {
    let ratio = if base > 0.0 { cand / base } else { f64::NAN };
    let _ = writeln!(
        out,
        "{name:<34} {base:>12.2} {cand:>12.2}  {unit:<5} {ratio:>7.2}x"
    );
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

/// Renders the comparison table.
pub fn render(base: &BenchResults, cand: &BenchResults) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<34} {:>12} {:>12}  {:<5} {:>8}",
        "metric",
        base.label,
        cand.label,
        "unit",
        format!(
            "{}/{}",
            cand.label.chars().take(3).collect::<String>(),
            base.label.chars().take(3).collect::<String>()
        )
    );
    let mut targets = Vec::new();
    for b in &base.puts {
        let Some(c) = cand.puts.iter().find(|c| c.clients == b.clients) else {
            let _ = writeln!(
                out,
                "puts @{} clients: not measured for {}",
                b.clients, cand.label
            );
            continue;
        };
        phase_rows(&mut out, "put", b, c);
        targets.push(format!(
            "puts/s @{} clients >= {}: {}",
            b.clients,
            base.label,
            verdict(c.per_sec >= b.per_sec)
        ));
        targets.push(format!(
            "put p99 @{} clients <= {}: {}",
            b.clients,
            base.label,
            verdict(c.p99_ms <= b.p99_ms)
        ));
    }
    phase_rows(&mut out, "linearizable read", &base.reads, &cand.reads);
    match (base.leader_kill_to_write_ms, cand.leader_kill_to_write_ms) {
        (Some(b), Some(c)) => {
            row(&mut out, "leader kill -> acknowledged write", b, c, "ms");
            targets.push(format!(
                "write acknowledged within {FAILOVER_TARGET_MS} ms of a leader kill: {}",
                verdict(c <= FAILOVER_TARGET_MS)
            ));
        }
        _ => {
            let _ = writeln!(out, "leader kill: not measured for both");
        }
    }
    let _ = writeln!(out, "targets for {}:", cand.label);
    for t in targets {
        let _ = writeln!(out, "  {t}");
    }
    out
}

fn phase_rows(out: &mut String, what: &str, b: &Phase, c: &Phase) {
    let n = b.clients;
    row(
        out,
        &format!("{what}s/s @{n} clients"),
        b.per_sec,
        c.per_sec,
        "op/s",
    );
    row(
        out,
        &format!("{what} p50 @{n} clients"),
        b.p50_ms,
        c.p50_ms,
        "ms",
    );
    row(
        out,
        &format!("{what} p99 @{n} clients"),
        b.p99_ms,
        c.p99_ms,
        "ms",
    );
    if b.errors + c.errors > 0 {
        let _ = writeln!(out, "  ({what} errors @{n}: {} vs {})", b.errors, c.errors);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(clients: usize, per_sec: f64, p99_ms: f64) -> Phase {
        Phase {
            clients,
            ops: 1,
            errors: 0,
            per_sec,
            p50_ms: 1.0,
            p99_ms,
            error_samples: vec![],
        }
    }

    fn results(label: &str, puts: f64, p99: f64, kill: f64) -> BenchResults {
        BenchResults {
            label: label.into(),
            endpoints: vec![],
            value_size: 256,
            seconds: 1.0,
            puts: vec![phase(1, puts, p99), phase(100, puts * 10.0, p99)],
            reads: phase(100, 1000.0, 1.0),
            leader_kill_to_write_ms: Some(kill),
        }
    }

    #[test]
    fn ratios_and_targets() {
        let text = render(
            &results("etcd", 100.0, 5.0, 1500.0),
            &results("kubelab", 200.0, 6.0, 800.0),
        );
        assert!(text.contains("2.00x"), "{text}");
        assert!(text.contains("puts/s @1 clients >= etcd: met"), "{text}");
        assert!(
            text.contains("put p99 @100 clients <= etcd: NOT met"),
            "{text}"
        );
        assert!(text.contains("leader kill: met"), "{text}");
    }
}
