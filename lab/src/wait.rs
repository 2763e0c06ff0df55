//! The one polling primitive under every wait of the harness (and of the VM suite): try an
//! operation until it succeeds or a deadline passes, never sleeping a fixed time in between
//! other than the short poll interval.

use std::time::{Duration, Instant};

/// A wait that ran out of time.
#[derive(Debug, thiserror::Error)]
#[error("timed out after {waited:?} waiting for {what} (last error: {last})")]
pub struct TimedOut {
    /// What was being waited for.
    pub what: String,
    /// How long it waited.
    pub waited: Duration,
    /// The error of the last attempt, as text.
    pub last: String,
}

/// Calls `attempt` every `interval` until it returns `Ok`, or fails with [`TimedOut`] once
/// `timeout` has passed. `attempt` gets `true` on its last try, so it can log more then.
pub fn wait_until<T, E: std::fmt::Display>(
    what: &str,
    timeout: Duration,
    interval: Duration,
    mut attempt: impl FnMut(bool) -> Result<T, E>,
) -> Result<T, TimedOut> {
    let start = Instant::now();
    let deadline = start + timeout;
    loop {
        let last_try = Instant::now() + interval >= deadline;
        match attempt(last_try) {
            Ok(value) => return Ok(value),
            Err(err) if last_try => {
                return Err(TimedOut {
                    what: what.to_owned(),
                    waited: start.elapsed(),
                    last: err.to_string(),
                });
            }
            Err(_) => {
                std::thread::sleep(interval.min(deadline.saturating_duration_since(Instant::now())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_first_success() {
        let mut calls = 0;
        let got = wait_until(
            "three calls",
            Duration::from_secs(5),
            Duration::from_millis(1),
            |_| {
                calls += 1;
                if calls < 3 { Err("not yet") } else { Ok(calls) }
            },
        )
        .unwrap();
        assert_eq!(got, 3);
    }

    #[test]
    fn times_out_with_last_error_and_flags_last_try() {
        let mut saw_last = false;
        let err = wait_until::<(), _>(
            "never",
            Duration::from_millis(50),
            Duration::from_millis(5),
            |last| {
                saw_last |= last;
                Err("still failing")
            },
        )
        .unwrap_err();
        assert!(saw_last);
        assert!(err.waited >= Duration::from_millis(40), "{err}");
        assert!(err.to_string().contains("still failing"), "{err}");
    }
}
