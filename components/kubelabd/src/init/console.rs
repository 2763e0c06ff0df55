//! The serial console: boot marks for the harness, logs for people, and the last words
//! before a fatal power-off.
//!
//! Marks go to stdout (the kernel's `/dev/console`, i.e. ttyS0) on a line of their own and
//! are drained to the UART with `tcdrain`, so a line printed just before power-off is not
//! lost in the tty buffer.

use std::io::Write;

use kubelab_nodeconfig::marks;

/// Prints one mark line and waits until it has left the UART.
pub fn mark(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
    drain();
}

/// Waits until everything written to the console has been transmitted.
pub fn drain() {
    let _ = rustix::termios::tcdrain(rustix::stdio::stdout());
}

/// Prints [`marks::FATAL`] with `reason`, then syncs and powers off. Used for any error
/// that stops the boot.
pub fn fatal_and_power_off(reason: &str) -> ! {
    let reason = reason.replace('\n', " ");
    mark(&format!("{} {reason}", marks::FATAL));
    super::power::power_off_now()
}

/// A panic in PID 1 would otherwise become a kernel panic ("Attempted to kill init"): turn
/// it into a FATAL line and a clean power-off.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        fatal_and_power_off(&format!("kubelabd init panicked: {info}"));
    }));
}
