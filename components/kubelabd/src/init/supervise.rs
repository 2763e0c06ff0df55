//! Supervision: init's main loop once the node is up.
//!
//! One `poll(2)` over the signalfd and the input devices, with a timeout set by the next
//! pending restart. On SIGCHLD every exited child is reaped (orphans re-parented to PID 1
//! included); if it was a service, the exit is logged to the console and a restart is
//! scheduled after a [`Backoff`] delay. A power-key press or a shutdown signal ends the loop
//! in [`power::shutdown`].

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

use super::power::{self, Ending, InputDevices, Signal, Signals};

/// A long-running program init keeps alive.
#[derive(Debug, Clone)]
pub struct Service {
    /// Name for logs.
    pub name: String,
    /// Program path.
    pub program: String,
    /// Arguments.
    pub args: Vec<String>,
}

/// Restart delays: doubling from `min` to `max`; a run that lasted `stable` resets it.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    stable: Duration,
    next: Duration,
}

impl Backoff {
    /// The policy init uses for every service: 100 ms doubling up to 10 s, reset after
    /// 30 s of healthy running.
    pub fn standard() -> Self {
        Self::new(
            Duration::from_millis(100),
            Duration::from_secs(10),
            Duration::from_secs(30),
        )
    }

    /// A custom policy.
    pub fn new(min: Duration, max: Duration, stable: Duration) -> Self {
        Self {
            min,
            max,
            stable,
            next: min,
        }
    }

    /// The delay before restarting a service that ran for `ran`.
    pub fn after_exit(&mut self, ran: Duration) -> Duration {
        if ran >= self.stable {
            self.next = self.min;
        }
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }
}

struct Supervised {
    service: Service,
    backoff: Backoff,
    pid: Option<i32>,
    started: Instant,
    restart_at: Option<Instant>,
    restarts: u32,
}

/// Owns the services and the loop.
pub struct Supervisor {
    signals: Signals,
    input: InputDevices,
    services: Vec<Supervised>,
}

impl Supervisor {
    /// A supervisor with no services yet.
    pub fn new(signals: Signals, input: InputDevices) -> Self {
        Self {
            signals,
            input,
            services: Vec::new(),
        }
    }

    /// Starts `service` and keeps it running from now on.
    pub fn start(&mut self, service: Service) {
        let mut supervised = Supervised {
            service,
            backoff: Backoff::standard(),
            pid: None,
            started: Instant::now(),
            restart_at: None,
            restarts: 0,
        };
        spawn(&mut supervised);
        self.services.push(supervised);
    }

    fn on_exit(&mut self, pid: i32, status: i32) {
        let Some(s) = self.services.iter_mut().find(|s| s.pid == Some(pid)) else {
            return; // an orphan or a session child: reaped, nothing to do
        };
        s.pid = None;
        let ran = s.started.elapsed();
        let delay = s.backoff.after_exit(ran);
        s.restart_at = Some(Instant::now() + delay);
        s.restarts += 1;
        let line = format!(
            "kubelab-init: service {} (pid {pid}) {} after {:.1} s; restart #{} in {} ms",
            s.service.name,
            describe_status(status),
            ran.as_secs_f64(),
            s.restarts,
            delay.as_millis()
        );
        super::mark(&line);
    }

    fn restart_due(&mut self) {
        let now = Instant::now();
        for s in &mut self.services {
            if s.restart_at.is_some_and(|at| at <= now) {
                s.restart_at = None;
                spawn(s);
            }
        }
    }

    fn poll_timeout(&self) -> i32 {
        let now = Instant::now();
        self.services
            .iter()
            .filter_map(|s| s.restart_at)
            .map(|at| at.saturating_duration_since(now).as_millis() as i32 + 1)
            .min()
            .unwrap_or(-1)
    }
}

/// Starts one service; a failure to even start counts as an immediate exit.
fn spawn(s: &mut Supervised) {
    let mut cmd = Command::new(&s.service.program);
    cmd.args(&s.service.args);
    // SAFETY: the closure only calls async-signal-safe functions (sigprocmask, setsid).
    unsafe {
        cmd.pre_exec(|| {
            power::unblock_in_child()?;
            libc::setsid();
            Ok(())
        });
    }
    s.started = Instant::now();
    match cmd.spawn() {
        Ok(child) => {
            // The child is reaped by the loop (waitpid(-1)), never through `Child`.
            s.pid = Some(child.id() as i32);
            tracing::info!(service = %s.service.name, pid = child.id(), "started");
        }
        Err(err) => {
            let delay = s.backoff.after_exit(Duration::ZERO);
            s.restart_at = Some(Instant::now() + delay);
            super::mark(&format!(
                "kubelab-init: service {} failed to start ({err}); retry in {} ms",
                s.service.name,
                delay.as_millis()
            ));
        }
    }
}

fn describe_status(status: i32) -> String {
    if libc::WIFEXITED(status) {
        format!("exited with status {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("was killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("ended (wait status {status})")
    }
}

/// The main loop; ends only in [`power::shutdown`].
pub fn run(mut sup: Supervisor) -> ! {
    loop {
        let mut fds = vec![libc::pollfd {
            fd: sup.signals.fd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        for fd in sup.input.fds() {
            fds.push(libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        // SAFETY: fds is a valid array of pollfd for its length.
        let rc = unsafe {
            libc::poll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                sup.poll_timeout(),
            )
        };
        if rc < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            tracing::warn!(error = %std::io::Error::last_os_error(), "poll failed");
        }
        let mut ending = None;
        for signal in sup.signals.read() {
            match signal {
                Signal::Child => {}
                Signal::End(e) => ending = Some(e),
            }
        }
        // Reap on every wake-up: cheap, and no exit can be missed.
        for (pid, status) in power::reap_all() {
            sup.on_exit(pid, status);
        }
        if sup.input.power_pressed() {
            ending = Some(Ending::PowerOff);
        }
        if let Some(ending) = ending {
            let pids: Vec<i32> = sup.services.iter().filter_map(|s| s.pid).collect();
            power::shutdown(&pids, Duration::from_secs(3), ending);
        }
        sup.restart_due();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_resets_after_a_stable_run() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), ms(1000), Duration::from_secs(30));
        let crash = ms(10);
        let delays: Vec<_> = (0..6).map(|_| b.after_exit(crash)).collect();
        assert_eq!(
            delays,
            [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]
        );
        assert_eq!(b.after_exit(Duration::from_secs(31)), ms(100));
        assert_eq!(b.after_exit(crash), ms(200));
    }

    #[test]
    fn describes_exit_and_signal_statuses() {
        assert_eq!(describe_status(3 << 8), "exited with status 3");
        assert_eq!(describe_status(9), "was killed by signal 9");
    }
}
