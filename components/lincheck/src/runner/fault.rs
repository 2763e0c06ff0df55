//! Faults: what the runner may do to members, and the seeded schedule of doing it.
//!
//! [`FaultDriver`] is the only way the runner touches member processes, so the schedule logic
//! is testable with a recording fake and the same runner drives any store that runs as
//! processes. On loopback, "isolate a member" is `SIGSTOP`: the member stops answering peers
//! and clients alike (its sockets stay open, so peers see a silent member, as in a partition),
//! and `SIGCONT` heals it.
//!
//! The schedule alternates a quiet period and one fault held for a while, then healed; only one
//! member is faulty at a time, so a quorum of a 3-member cluster always survives and every
//! acknowledged write must survive too.

use std::fmt;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::RunnerError;

/// What the runner may do to member processes.
pub trait FaultDriver: Send {
    /// Number of members.
    fn size(&self) -> usize;
    /// Member `i`'s client URL (`http://127.0.0.1:PORT`).
    fn endpoint(&self, i: usize) -> String;
    /// Kills member `i` at once (`kill -9`) and reaps it.
    fn kill(&mut self, i: usize) -> Result<(), RunnerError>;
    /// Starts killed member `i` again on its data directory.
    fn restart(&mut self, i: usize) -> Result<(), RunnerError>;
    /// Freezes member `i` (`SIGSTOP`): it is isolated from peers and clients.
    fn pause(&mut self, i: usize) -> Result<(), RunnerError>;
    /// Unfreezes member `i` (`SIGCONT`).
    fn resume(&mut self, i: usize) -> Result<(), RunnerError>;
}

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// `kill -9` the leader, restart it after the hold.
    KillLeader,
    /// `kill -9` a follower, restart it after the hold.
    KillFollower,
    /// Isolate (stop) the leader, resume it after the hold.
    IsolateLeader,
    /// Isolate (stop) a follower, resume it after the hold.
    IsolateFollower,
}

/// One planned fault: wait `quiet`, inject `kind`, hold it for `hold`, heal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedFault {
    /// Time without faults before this one.
    pub quiet: Duration,
    /// What to do.
    pub kind: FaultKind,
    /// How long the fault lasts.
    pub hold: Duration,
    /// Random pick among candidate members (followers), reduced modulo their number.
    pub pick: usize,
}

/// Draws the fault schedule for `total` time from `seed`; the same seed gives the same plan.
pub fn plan(seed: u64, total: Duration) -> Vec<PlannedFault> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xfa17_5eed);
    let mut out = Vec::new();
    let mut used = Duration::ZERO;
    loop {
        let quiet = Duration::from_millis(rng.random_range(500..2_000));
        let kind = match rng.random_range(0..10) {
            0..=3 => FaultKind::KillLeader,
            4..=5 => FaultKind::IsolateLeader,
            6..=7 => FaultKind::IsolateFollower,
            _ => FaultKind::KillFollower,
        };
        let hold = Duration::from_millis(rng.random_range(300..3_000));
        // Leave room for healing and recovery before the workload ends.
        if used + quiet + hold + Duration::from_secs(3) > total {
            return out;
        }
        used += quiet + hold;
        out.push(PlannedFault {
            quiet,
            kind,
            hold,
            pick: rng.random_range(0..1_000),
        });
    }
}

/// Something the fault driver did, for the report's timeline.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FaultEvent {
    /// When (ns since the run's origin, the history's clock).
    pub at: u64,
    /// What happened.
    pub what: String,
}

impl fmt::Display for FaultEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{:>10.3} ms] {}", self.at as f64 / 1e6, self.what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_is_deterministic_and_fits_the_time() {
        let total = Duration::from_secs(30);
        let a = plan(7, total);
        assert_eq!(a, plan(7, total));
        assert_ne!(a, plan(8, total));
        let used: Duration = a.iter().map(|f| f.quiet + f.hold).sum();
        assert!(used + Duration::from_secs(3) <= total);
        assert!(a.len() >= 5, "{a:?}");
        assert!(a.iter().any(|f| f.kind == FaultKind::KillLeader));
    }
}
