//! [`RunResult::verify`]: every check over one run, and the report a person reads.
//!
//! Order matters: the watch streams are checked first against the raw history; only if they
//! are sound do they resolve the indefinite writes ([`crate::patch`]); then the linearizability
//! search and the revision-order check run on the resolved history.

use std::fmt;

use super::RunResult;
use crate::check::{CheckOptions, CheckReport, check};
use crate::history::History;
use crate::patch::{PatchStats, resolve_with_watches};
use crate::revision::{RevisionViolation, check_revisions};
use crate::watch::{WatchCheckOptions, WatchViolation, check_watches};

/// The verdict of [`RunResult::verify`].
#[derive(Debug)]
pub struct Verdict {
    /// Per-partition linearizability.
    pub linearizability: CheckReport,
    /// Cross-key revision order.
    pub revisions: Vec<RevisionViolation>,
    /// Watch guarantees.
    pub watches: Vec<WatchViolation>,
    /// How the watches resolved indefinite writes (`None` when they could not be trusted).
    pub patch: Option<PatchStats>,
    /// Summary of the run and, on failure, its timeline.
    pub context: String,
    /// The history the search checked (indefinite writes resolved when the watches allowed).
    pub checked: History,
}

impl Verdict {
    /// Whether every check passed.
    pub fn is_ok(&self) -> bool {
        self.linearizability.is_linearizable()
            && self.revisions.is_empty()
            && self.watches.is_empty()
            && self.patch.as_ref().is_some_and(|p| p.anomalies.is_empty())
    }
}

/// How many violations of one kind to print.
const SHOWN_VIOLATIONS: usize = 20;

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.context)?;
        match &self.patch {
            Some(p) => {
                writeln!(
                    f,
                    "indefinite writes resolved by the watches: {} took effect, {} never did, {} \
                     left indefinite",
                    p.took_effect, p.never_did, p.left
                )?;
                for op in &p.anomalies {
                    writeln!(f, "  watch event received before its write was sent: {op}")?;
                }
            }
            None => writeln!(
                f,
                "indefinite writes left unresolved (no sound watch stream)"
            )?,
        }
        write!(f, "{}", self.linearizability)?;
        writeln!(f, "revision order: {} violations", self.revisions.len())?;
        for v in self.revisions.iter().take(SHOWN_VIOLATIONS) {
            write!(f, "  {v}")?;
        }
        writeln!(f, "watch guarantees: {} violations", self.watches.len())?;
        for v in self.watches.iter().take(SHOWN_VIOLATIONS) {
            writeln!(f, "  {v}")?;
        }
        Ok(())
    }
}

impl RunResult {
    /// Runs every check.
    pub fn verify(&self, options: CheckOptions) -> Verdict {
        let watches = check_watches(
            &self.watches,
            &self.history,
            WatchCheckOptions {
                contiguous: true,
                must_reach: Some(self.final_revision),
            },
        );
        let (history, patch) = if watches.is_empty() && !self.watches.is_empty() {
            let (h, stats) = resolve_with_watches(&self.history, &self.watches);
            (h, Some(stats))
        } else {
            (self.history.clone(), None)
        };
        let linearizability = check(&history, options);
        let revisions = check_revisions(&history);
        let indefinite = self
            .history
            .ops()
            .iter()
            .filter(|o| o.ret.is_none())
            .count();
        let events: usize = self
            .watches
            .iter()
            .flat_map(|w| &w.batches)
            .map(|b| b.events.len())
            .sum();
        let resumes: usize = self.watches.iter().map(|w| w.resumes).sum();
        let mut context = format!(
            "seed {seed} (replay: LINCHECK_SEED={seed}): {} clients, {} keys, {:?}; {} ops \
             ({indefinite} indefinite), revisions {}..{}, {} watchers got {events} events over \
             {resumes} resumes, {} fault events",
            self.config.clients,
            self.config.keys,
            self.config.duration,
            self.history.len(),
            self.start_revision,
            self.final_revision,
            self.watches.len(),
            self.faults.len(),
            seed = self.config.seed,
        );
        for e in &self.driver_errors {
            context.push_str(&format!("\nfault driver: {e}"));
        }
        let mut verdict = Verdict {
            linearizability,
            revisions,
            watches,
            patch,
            context,
            checked: history,
        };
        if !verdict.is_ok() {
            verdict.context.push_str("\nfault timeline:");
            for e in &self.faults {
                verdict.context.push_str(&format!("\n  {e}"));
            }
        }
        verdict
    }
}
