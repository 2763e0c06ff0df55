//! The commands of the `kubelab` binary, one module per group, and the mapping from error
//! kinds to exit codes:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success (`exec`: the remote command's own code is passed through instead) |
//! | 1 | anything not listed below |
//! | 2 | bad input: topology file, lab/node/interface name, `--name` |
//! | 3 | lab state conflict: already running, leftover state, no such lab, not ready |
//! | 4 | the lab failed: a VM did not boot, QMP or SSH failed, a host command failed |

pub mod fault;
pub mod lab;
pub mod up;

use kubelab::lab::LabError;

/// Error type of the commands.
pub type CliError = Box<dyn std::error::Error + Send + Sync>;

/// Prints an error and its sources as `a: b: c`.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// The exit code for an error (see the module table).
pub fn exit_code(err: &(dyn std::error::Error + 'static)) -> i32 {
    match err.downcast_ref::<LabError>() {
        Some(
            LabError::Topology(_)
            | LabError::BadName { .. }
            | LabError::UnknownNode { .. }
            | LabError::UnknownInterface { .. }
            | LabError::PartitionOverlap { .. }
            | LabError::Image { .. },
        ) => 2,
        Some(
            LabError::AlreadyRunning { .. }
            | LabError::Starting { .. }
            | LabError::Leftover { .. }
            | LabError::NamespaceTaken { .. }
            | LabError::NotFound { .. }
            | LabError::NotReady { .. },
        ) => 3,
        Some(_) => 4,
        None => 1,
    }
}
