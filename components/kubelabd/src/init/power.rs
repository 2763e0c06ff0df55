//! What init listens to besides its children, and how it ends.
//!
//! - [`Signals`]: SIGCHLD and the shutdown signals arrive through a `signalfd` (they are
//!   blocked, so none is lost and no handler runs). busybox `poweroff` sends SIGUSR2, `halt`
//!   SIGUSR1, `reboot` SIGTERM; Ctrl-Alt-Del sends SIGINT (after `CAD_OFF`).
//! - [`InputDevices`]: `/dev/input/event*`; QMP `system_powerdown` makes QEMU raise the ACPI
//!   power button, which the `button` driver reports as `KEY_POWER`.
//! - [`shutdown`]: TERM the children, give them a moment, KILL the rest, sync, unmount,
//!   `reboot(2)`.

use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

use super::{Context, Error, console, mounts};

/// What the VM should do when init ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Power off (QEMU exits).
    PowerOff,
    /// Restart (QEMU exits too when started with `-no-reboot`).
    Reboot,
}

/// The blocked signals init handles, readable from one fd.
pub struct Signals {
    fd: OwnedFd,
}

/// One signal read from [`Signals`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// A child changed state.
    Child,
    /// Someone asked for the VM to end.
    End(Ending),
}

fn signal_set() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise and fill a plain sigset_t.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [
            libc::SIGCHLD,
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGUSR1,
            libc::SIGUSR2,
            libc::SIGPWR,
        ] {
            libc::sigaddset(&mut set, sig);
        }
        set
    }
}

impl Signals {
    /// Blocks the handled signals and opens a signalfd for them. Ctrl-Alt-Del becomes
    /// SIGINT instead of an immediate reboot.
    pub fn block() -> Result<Self, Error> {
        let set = signal_set();
        // SAFETY: valid sigset; we are single-threaded at this point.
        let rc = unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| "blocking signals".into());
        }
        // SAFETY: valid sigset; -1 asks for a new fd.
        let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| "opening a signalfd".into());
        }
        let _ = rustix::system::reboot(rustix::system::RebootCommand::CadOff);
        // SAFETY: fd was just returned by signalfd and is owned by nobody else.
        Ok(Self {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// The fd to poll.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Reads every pending signal.
    pub fn read(&self) -> Vec<Signal> {
        let mut out = Vec::new();
        let mut file = std::fs::File::from(self.fd.try_clone().expect("dup signalfd"));
        let mut buf = [0u8; std::mem::size_of::<libc::signalfd_siginfo>()];
        while file.read_exact(&mut buf).is_ok() {
            // ssi_signo is the first u32 of signalfd_siginfo.
            let signo = u32::from_ne_bytes(buf[..4].try_into().expect("4 bytes")) as i32;
            out.push(match signo {
                libc::SIGCHLD => Signal::Child,
                libc::SIGTERM | libc::SIGINT => Signal::End(Ending::Reboot),
                _ => Signal::End(Ending::PowerOff),
            });
        }
        out
    }
}

/// Restores the default signal mask in a child before it execs (the blocked set would be
/// inherited otherwise).
pub fn unblock_in_child() -> std::io::Result<()> {
    let set = signal_set();
    // SAFETY: async-signal-safe call with a valid sigset, run between fork and exec.
    let rc = unsafe { libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The open input event devices.
pub struct InputDevices {
    files: Vec<std::fs::File>,
}

/// `EV_KEY` and `KEY_POWER` from `linux/input-event-codes.h`.
const EV_KEY: u16 = 1;
const KEY_POWER: u16 = 116;

impl InputDevices {
    /// Opens every `/dev/input/event*` (none is fine: then only signals end the VM).
    pub fn open() -> Self {
        let mut files = Vec::new();
        if let Ok(entries) = std::fs::read_dir("/dev/input") {
            for entry in entries.flatten() {
                if !entry.file_name().to_string_lossy().starts_with("event") {
                    continue;
                }
                let path = entry.path();
                match std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags_nonblock()
                    .open(&path)
                {
                    Ok(f) => files.push(f),
                    Err(err) => {
                        tracing::warn!(device = %path.display(), error = %err, "cannot open input device")
                    }
                }
            }
        }
        if files.is_empty() {
            tracing::warn!("no input devices: the ACPI power button will not be seen");
        }
        Self { files }
    }

    /// The fds to poll.
    pub fn fds(&self) -> Vec<BorrowedFd<'_>> {
        self.files.iter().map(|f| f.as_fd()).collect()
    }

    /// Reads pending events from every device; true if the power key was pressed.
    pub fn power_pressed(&mut self) -> bool {
        let mut pressed = false;
        let size = std::mem::size_of::<libc::input_event>();
        for file in &mut self.files {
            let mut buf = vec![0u8; size * 16];
            while let Ok(n) = file.read(&mut buf) {
                if n == 0 {
                    break;
                }
                for event in buf[..n].chunks_exact(size) {
                    pressed |= is_power_press(event);
                }
            }
        }
        pressed
    }
}

/// Whether one raw `struct input_event` is a press of the power key.
fn is_power_press(event: &[u8]) -> bool {
    // struct input_event { struct timeval time; __u16 type; __u16 code; __s32 value; }
    let at = std::mem::size_of::<libc::timeval>();
    let kind = u16::from_ne_bytes([event[at], event[at + 1]]);
    let code = u16::from_ne_bytes([event[at + 2], event[at + 3]]);
    let value = i32::from_ne_bytes(event[at + 4..at + 8].try_into().expect("4 bytes"));
    kind == EV_KEY && code == KEY_POWER && value == 1
}

trait NonBlocking {
    fn custom_flags_nonblock(&mut self) -> &mut Self;
}

impl NonBlocking for std::fs::OpenOptions {
    fn custom_flags_nonblock(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
    }
}

/// Ends the VM in order: SIGTERM to `children`, up to `grace` for everything to exit (reaping
/// as they go), SIGKILL to whatever is left, sync, unmount, `reboot(2)`.
pub fn shutdown(children: &[i32], grace: Duration, ending: Ending) -> ! {
    console::mark(&format!("kubelab-init: shutdown ({ending:?})"));
    for pid in children {
        // SAFETY: plain kill(2) on a pid we started.
        unsafe { libc::kill(*pid, libc::SIGTERM) };
    }
    let all_gone = super::wait_until(grace, || {
        reap_all();
        !has_children()
    });
    if !all_gone {
        // SAFETY: kill(-1) signals every process but init itself.
        unsafe { libc::kill(-1, libc::SIGKILL) };
        super::wait_until(Duration::from_secs(1), || {
            reap_all();
            !has_children()
        });
    }
    rustix::fs::sync();
    mounts::unmount_all();
    rustix::fs::sync();
    console::mark(match ending {
        Ending::PowerOff => "kubelab-init: power-off",
        Ending::Reboot => "kubelab-init: reboot",
    });
    let command = match ending {
        Ending::PowerOff => rustix::system::RebootCommand::PowerOff,
        Ending::Reboot => rustix::system::RebootCommand::Restart,
    };
    let _ = rustix::system::reboot(command);
    // reboot(2) only returns on error; there is nothing left to do but exit (a kernel panic).
    std::process::exit(1)
}

/// Syncs and powers off at once (the fatal path: nothing was started that needs stopping).
pub fn power_off_now() -> ! {
    rustix::fs::sync();
    let _ = rustix::system::reboot(rustix::system::RebootCommand::PowerOff);
    std::process::exit(1)
}

/// Reaps every exited child; returns their pids and statuses.
pub fn reap_all() -> Vec<(i32, i32)> {
    let mut out = Vec::new();
    loop {
        let mut status = 0;
        // SAFETY: waitpid with a valid status pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            break;
        }
        out.push((pid, status));
    }
    out
}

fn has_children() -> bool {
    // SAFETY: waitid with WNOWAIT only inspects; ECHILD means no children at all.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let rc = unsafe {
        libc::waitid(
            libc::P_ALL,
            0,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    rc == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: u16, code: u16, value: i32) -> Vec<u8> {
        let mut raw = vec![0u8; std::mem::size_of::<libc::timeval>()];
        raw.extend_from_slice(&kind.to_ne_bytes());
        raw.extend_from_slice(&code.to_ne_bytes());
        raw.extend_from_slice(&value.to_ne_bytes());
        assert_eq!(raw.len(), std::mem::size_of::<libc::input_event>());
        raw
    }

    #[test]
    fn only_a_power_key_press_counts() {
        assert!(is_power_press(&event(EV_KEY, KEY_POWER, 1)));
        assert!(!is_power_press(&event(EV_KEY, KEY_POWER, 0)), "release");
        assert!(!is_power_press(&event(EV_KEY, 30, 1)), "key A");
        assert!(!is_power_press(&event(0, 0, 0)), "sync event");
    }
}
