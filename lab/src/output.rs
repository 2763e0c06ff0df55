//! Standard output of the `kubelab` command line, written so that a reader going away
//! (`kubelab image build | head -n1`, a closed pager) is not an error.
//!
//! `println!` panics when stdout is a closed pipe (Rust ignores SIGPIPE, so the write fails
//! with EPIPE). Here the first failed write marks stdout closed and every later line is
//! dropped; the command itself runs to its end — `up` still finishes or cleans up, `exec`
//! still passes the remote exit code — and exits with its own code, as quietly as `cat` does.
//! Any other write error (a full disk behind a redirect) is reported once on stderr.

use std::io::{ErrorKind, Write};
use std::sync::atomic::{AtomicBool, Ordering};

static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `args` and a newline to stdout and flushes it, unless stdout is known closed.
pub fn line(args: std::fmt::Arguments<'_>) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{args}").and_then(|()| out.flush()) {
        CLOSED.store(true, Ordering::Relaxed);
        if e.kind() != ErrorKind::BrokenPipe {
            let _ = writeln!(
                std::io::stderr(),
                "kubelab: cannot write to standard output ({e}); further output is dropped"
            );
        }
    }
}

/// `println!` for the command line through [`line`]: never panics on a closed stdout.
#[macro_export]
macro_rules! outln {
    () => {
        $crate::output::line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*))
    };
}
