//! Store compaction, as kube-apiserver does it: every interval the server compacts the store
//! to the revision it saw at the previous tick, so history older than one interval goes away
//! (a watch or list from a compacted resourceVersion then gets 410 Gone) and the store does
//! not grow without bound. Interval `--etcd-compaction-interval` (default 5 minutes, 0
//! disables), as kube-apiserver's flag.
//!
//! Several API servers on one store each run a compactor; kube-apiserver elects one per tick
//! with a compare-and-swap on a key, here each compacts and a compaction to a revision already
//! compacted is harmless (the store answers "compacted", which is logged at debug level).

use std::sync::Weak;
use std::time::Duration;

use crate::server::App;

/// Kubernetes' default `--etcd-compaction-interval`.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);

/// Starts the compactor for `app`'s store; it ends when the app is dropped. Does nothing for a
/// zero interval.
pub fn start(app: Weak<App>, interval: Duration) {
    if interval.is_zero() {
        tracing::info!("store compaction disabled");
        return;
    }
    tokio::spawn(async move {
        let mut previous = 0;
        loop {
            tokio::time::sleep(interval).await;
            let Some(app) = app.upgrade() else { return };
            let store = &app.ctx.store;
            if previous > 0 {
                match store.compact(previous).await {
                    Ok(()) => tracing::info!(revision = previous, "compacted the store"),
                    Err(e) => {
                        tracing::debug!(revision = previous, error = %e, "compaction skipped")
                    }
                }
            }
            match store.current_revision().await {
                Ok(rev) => previous = rev,
                Err(e) => tracing::warn!(error = %e, "compactor could not read the revision"),
            }
        }
    });
}

/// Parses a Go-style duration as kube-apiserver's flags take it: `0`, `90s`, `5m`, `1h`,
/// `5m0s`, `1h30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let bad = || format!("invalid duration {text:?}: expected e.g. 5m, 90s, 1h30m or 0");
    let mut total = Duration::ZERO;
    let mut number = String::new();
    let mut units = 0;
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: u64 = number.parse().map_err(|_| bad())?;
        let unit = match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        total += Duration::from_secs(n * unit);
        number.clear();
        units += 1;
    }
    if !number.is_empty() || units == 0 {
        return Err(bad());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("5m0s"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        for bad in ["", "5", "m", "5x", "-1s", "1.5s"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains("invalid duration"), "{bad}: {e}");
        }
    }
}
