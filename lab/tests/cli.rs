//! The `kubelab` binary with its stdout a pipe nobody reads any more (`kubelab ... | head`):
//! it exits with its own code and says nothing about it — no panic, no error line.

use std::process::{Command, Output, Stdio};

/// Runs `kubelab args` with stdout a pipe whose read end is already closed, so the first
/// write fails with EPIPE.
fn with_closed_stdout(args: &[&str], state_dir: &std::path::Path) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    Command::new(env!("CARGO_BIN_EXE_kubelab"))
        .args(args)
        .env(kubelab::state::ROOT_ENV, state_dir)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

fn assert_quiet(what: &str, out: &Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{what}: {stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("error"),
        "{what} complained about the closed stdout: {stderr}"
    );
}

#[test]
fn version_and_status_exit_quietly_into_a_closed_pipe() {
    let state = tempfile::tempdir().unwrap();
    assert_quiet(
        "kubelab version",
        &with_closed_stdout(&["version"], state.path()),
    );
    // No labs: one line ("no labs ...") to a closed pipe.
    assert_quiet(
        "kubelab status",
        &with_closed_stdout(&["status"], state.path()),
    );
}

#[test]
fn the_same_commands_print_when_stdout_is_read() {
    // The counterpart: the lines dropped above are really written when someone reads.
    let state = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kubelab"))
        .arg("status")
        .env(kubelab::state::ROOT_ENV, state.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("no labs (state in "), "{stdout}");
}
