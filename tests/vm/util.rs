//! The suite's driver: capability checks, labs that clean up after themselves, the global
//! per-test deadline, and guest helpers that wait by polling.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use kubelab::guest::Guest;
use kubelab::host::SystemHost;
use kubelab::lab::Lab;
use kubelab::lab::down::down;
use kubelab::lab::up::{DEFAULT_STALL_RESET, Event, UpOptions, up};
use kubelab::state::{Accel, StateRoot};
use kubelab::wait::wait_until;
use libtest_mimic::{Completion, Failed, Trial};

/// Deadline of one whole test, lab boot included. Below nextest's own termination (300 s in
/// the default profile, `.config/nextest.toml`) so that the watchdog, not a SIGKILL, ends a
/// hung test and its labs are torn down.
pub const TEST_DEADLINE: Duration = Duration::from_secs(240);

/// Prints a progress line with the time since the process started, so the captured output
/// of a failed or hung test shows where it was.
pub fn log(what: impl std::fmt::Display) {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let t = START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_secs_f64();
    eprintln!("[{t:7.2}s] {what}");
}
/// Deadline of one node's boot.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(150);
/// Poll interval of guest-side waits.
pub const POLL: Duration = Duration::from_millis(200);

/// What every test needs, decided once per process.
#[derive(Clone)]
pub struct Suite {
    /// Why VMs cannot run here, if they cannot.
    pub skip: Option<String>,
    /// Why the image could not be had, on a host that can run VMs (fails every test).
    pub image_error: Option<String>,
    /// The image directory.
    pub image: PathBuf,
    /// The accelerator all labs use.
    pub accel: Accel,
    /// Labs of this process, for the deadline watchdog to tear down.
    pub live: Arc<Mutex<Vec<String>>>,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent directory")
        .to_path_buf()
}

/// A topology file of the repository.
pub fn topology(name: &str) -> PathBuf {
    repo_root().join("topologies").join(format!("{name}.toml"))
}

/// The state root of the suite's labs: separate from users' labs.
pub fn state_root() -> StateRoot {
    StateRoot::at("/var/lib/kubelab/vmtests")
}

impl Suite {
    /// Why VMs cannot run on this host at all (not root, no QEMU); cheap, no image needed.
    fn host_skip_reason() -> Option<String> {
        if !rustix::process::geteuid().is_root() {
            return Some("not root: the lab needs network namespaces and taps".into());
        }
        if std::process::Command::new("qemu-system-x86_64")
            .arg("--version")
            .output()
            .is_err()
        {
            return Some("qemu-system-x86_64 is not installed (run scripts/setup-host)".into());
        }
        None
    }

    /// For listing tests: only the cheap host checks, so that tests which cannot run are
    /// listed as ignored (skipped), and no image is built just to list names.
    pub fn listing() -> Self {
        Suite {
            skip: Self::host_skip_reason(),
            image_error: None,
            image: PathBuf::new(),
            accel: Accel::Tcg,
            live: Arc::default(),
        }
    }

    /// Checks root and QEMU, builds (or finds) the image, chooses the accelerator. On a host
    /// that can run VMs, failing to get the image fails the tests instead of skipping them.
    pub fn detect() -> Self {
        let mut suite = Self::listing();
        if suite.skip.is_some() {
            return suite;
        }
        log("getting the guest image");
        match image() {
            Ok((dir, manifest)) => {
                log("choosing the accelerator");
                let (accel, reason) =
                    kubelab::vm::accel::choose(state_root().path(), &dir, &manifest);
                eprintln!(
                    "vm suite: image {}, accelerator {accel} ({reason:?})",
                    dir.display()
                );
                suite.image = dir;
                suite.accel = accel;
            }
            Err(e) => suite.image_error = Some(format!("cannot get the guest image: {e:#}")),
        }
        suite
    }

    /// A trial that runs `body` under the global deadline. Where VMs cannot run it is marked
    /// ignored (so runners count it as skipped, not passed) and, if run anyway with
    /// `--include-ignored`, reports the reason.
    pub fn trial(
        &self,
        name: &str,
        body: impl FnOnce(&Suite) -> Result<()> + Send + 'static,
    ) -> Trial {
        let suite = self.clone();
        let ignored = suite.skip.is_some();
        Trial::ignorable_test(name.to_owned(), move || {
            if let Some(reason) = &suite.skip {
                eprintln!("skipped: {reason}");
                return Ok(Completion::ignored_with(reason));
            }
            if let Some(err) = &suite.image_error {
                return Err(err.clone().into());
            }
            run(&suite, body).map(|()| Completion::Completed)
        })
        .with_ignored_flag(ignored)
    }
}

/// The image to boot: `$KUBELAB_IMAGE`, or the repository's image, built (or taken from the
/// cache) now.
fn image() -> Result<(PathBuf, kubelab::image::Manifest)> {
    let dir = match std::env::var_os("KUBELAB_IMAGE") {
        Some(dir) => PathBuf::from(dir),
        None => {
            use kubelab::image;
            let repo = repo_root();
            let kubelabd = image::kubelabd::build_kubelabd(&repo).context("building kubelabd")?;
            image::build(&image::BuildOptions::for_repo(&repo, kubelabd))
                .context("building the guest image")?
                .dir
        }
    };
    let manifest =
        kubelab::image::Manifest::load(&dir).with_context(|| format!("{}", dir.display()))?;
    Ok((dir, manifest))
}

/// Runs `body` on its own thread; fails it after [`TEST_DEADLINE`], tearing down its labs.
pub fn run(
    suite: &Suite,
    body: impl FnOnce(&Suite) -> Result<()> + Send + 'static,
) -> Result<(), Failed> {
    let (tx, rx) = std::sync::mpsc::channel();
    let inner = suite.clone();
    std::thread::spawn(move || {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&inner)));
        let _ = tx.send(result);
    });
    match rx.recv_timeout(TEST_DEADLINE) {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(e))) => Err(format!("{e:#}").into()),
        Ok(Err(panic)) => Err(panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "test panicked".into())
            .into()),
        Err(_) => {
            let labs = suite.live.lock().unwrap().clone();
            for lab in labs {
                let _ = down(&SystemHost, &state_root(), &lab);
            }
            Err(format!("test exceeded its deadline of {TEST_DEADLINE:?}").into())
        }
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A lab name unique to this process and call: `vt<pid>-<n>-<tag>`.
pub fn lab_name(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut name = format!("vt{}-{n}-{tag}", std::process::id());
    name.truncate(32);
    name.trim_end_matches('-').to_owned()
}

/// A running lab, torn down on drop.
pub struct LabGuard {
    /// The lab.
    pub lab: Lab,
    suite: Suite,
    done: bool,
}

impl LabGuard {
    /// Boots `topology` under a fresh name.
    pub fn up(suite: &Suite, topology_name: &str, tag: &str) -> Result<Self> {
        let name = lab_name(tag);
        Self::up_named(suite, topology_name, &name, DEFAULT_STALL_RESET, &|_| {})
    }

    /// Boots `topology` as `name` (from [`lab_name`]), resetting nodes whose console stays
    /// silent for `stall_reset`; every progress event also goes to `progress`.
    pub fn up_named(
        suite: &Suite,
        topology_name: &str,
        name: &str,
        stall_reset: Duration,
        progress: &(dyn Fn(Event) + Sync),
    ) -> Result<Self> {
        log(format_args!("up {topology_name} as {name}"));
        suite.live.lock().unwrap().push(name.to_owned());
        let options = UpOptions {
            image_dir: suite.image.clone(),
            name: Some(name.to_owned()),
            accel: Some(suite.accel),
            boot_timeout: BOOT_TIMEOUT,
            stall_reset: Some(stall_reset),
        };
        let root = state_root();
        let state = up(
            &SystemHost,
            &root,
            &topology(topology_name),
            &options,
            &|event| {
                // A reset after a stall is worth seeing in a CI log, with what the host saw.
                if let Event::Stalled {
                    node,
                    silent,
                    last_line,
                    detail,
                } = &event
                {
                    log(format_args!(
                        "{name}/{node} stalled ({silent:?} silent after {last_line:?}); reset\n{detail}"
                    ));
                }
                progress(event);
            },
        )
        .with_context(|| format!("kubelab up {topology_name} --name {name}"))?;
        let total = state
            .nodes
            .iter()
            .filter_map(|n| n.ssh_s)
            .fold(0.0, f64::max);
        log(format_args!(
            "lab {name}: {} nodes SSH-ready, slowest {total:.2}s ({})",
            state.nodes.len(),
            state.accel
        ));
        Ok(Self {
            lab: Lab::open(&root, name)?,
            suite: suite.clone(),
            done: false,
        })
    }

    /// Lab name.
    pub fn name(&self) -> &str {
        &self.lab.state.name
    }

    /// Tears the lab down now, returning the report.
    pub fn down(mut self) -> Result<kubelab::lab::down::DownReport> {
        self.done = true;
        Ok(down(&SystemHost, &state_root(), self.name())?)
    }

    /// Data address of `node`'s interface on `network`.
    pub fn address(&self, node: &str, network: &str) -> String {
        self.lab
            .plan
            .node_nics(node)
            .find(|n| n.network == network)
            .map(|n| n.address.ip().to_string())
            .unwrap_or_else(|| panic!("{node} has no interface on {network}"))
    }

    /// Runs `command` on `node`, returning its output; fails on a non-zero exit.
    pub fn sh(&self, node: &str, command: &str) -> Result<String> {
        let out = self.lab.ssh(node)?.exec(command)?;
        if out.status != 0 {
            bail!(
                "{node}: `{command}` exited {}: {}{}",
                out.status,
                out.stdout_str(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(out.stdout_str())
    }

    /// Whether one ping from `from` to `to` gets an answer within a second.
    pub fn ping_once(&self, from: &str, to: &str) -> Result<bool> {
        let out = self.lab.ssh(from)?.exec(&format!("ping -c 1 -W 1 {to}"))?;
        Ok(out.status == 0)
    }

    /// Waits until pings from `from` to `to` get through (`true`) or stop getting through.
    pub fn wait_ping(
        &self,
        from: &str,
        to: &str,
        reachable: bool,
        timeout: Duration,
    ) -> Result<()> {
        let what = format!(
            "{from} -> {to} {}",
            if reachable { "reachable" } else { "cut" }
        );
        log(format_args!("waiting for {what}"));
        wait_until(&what, timeout, POLL, |_| match self.ping_once(from, to) {
            Ok(r) if r == reachable => Ok(()),
            Ok(r) => Err(format!("ping answered: {r}")),
            Err(e) => Err(format!("{e:#}")),
        })?;
        // One lost ping must not pass for a cut: a cut stays cut.
        if !reachable && self.ping_once(from, to)? {
            bail!("{from} -> {to} answered again right after it stopped");
        }
        Ok(())
    }

    /// An SSH session to `node`, waiting until it answers.
    pub fn guest(&self, node: &str) -> Result<Guest> {
        let ip = self.lab.mgmt_address(node)?;
        Ok(Guest::wait_ready(
            &self.lab.plan.namespace,
            ip,
            &self.lab.credentials(node)?,
            Duration::from_secs(30),
        )?)
    }
}

impl Drop for LabGuard {
    fn drop(&mut self) {
        if !self.done
            && let Err(e) = down(&SystemHost, &state_root(), &self.lab.state.name)
        {
            eprintln!("cleanup of lab {}: {e}", self.lab.state.name);
        }
        let name = self.lab.state.name.clone();
        self.suite.live.lock().unwrap().retain(|l| *l != name);
    }
}

/// Processes whose command line mentions `needle` (e.g. a lab's state directory), zombies
/// excluded.
pub fn processes_mentioning(needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let needle = needle.as_bytes();
        if cmdline.windows(needle.len()).any(|w| w == needle) && kubelab::vm::process_alive(pid) {
            out.push(pid);
        }
    }
    out
}

/// Asserts that nothing of lab `name` is left: namespace, state directory, QEMU processes,
/// and that none of its tap names appeared in the host's namespace.
pub fn assert_nothing_left(name: &str) -> Result<()> {
    let ns = kubelab::net::namespace(name);
    let dir = state_root().lab(name);
    if Path::new("/run/netns").join(&ns).exists() {
        bail!("namespace {ns} still exists");
    }
    if dir.exists() {
        bail!("state directory {} still exists", dir.path().display());
    }
    let procs = processes_mentioning(&dir.path().display().to_string());
    if !procs.is_empty() {
        bail!("processes of lab {name} still run: {procs:?}");
    }
    let host_links = std::process::Command::new("ip")
        .args(["-o", "link", "show"])
        .output()?;
    let links = String::from_utf8_lossy(&host_links.stdout);
    if let Some(line) = links
        .lines()
        .find(|l| l.contains(": tap") && l.contains("-0"))
    {
        bail!("a lab tap is in the host namespace: {line}");
    }
    Ok(())
}
