//! Shared pieces of the image tests: what the host can do (and why a test skips), the
//! `kubelabd` binary, a shared image cache, a throwaway network namespace and a QEMU
//! process, each cleaned up in `Drop`, and the one polling primitive.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kubelab::image::{self, BuildOptions, BuiltImage};

/// The repository checkout.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Why this host cannot run the test, if it cannot: not root, or a tool is missing.
pub fn missing(tools: &[&str], need_root: bool) -> Option<String> {
    if need_root && !rustix::process::geteuid().is_root() {
        return Some("needs root".into());
    }
    for tool in tools {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false);
        if !found {
            return Some(format!(
                "`{tool}` is not installed (scripts/setup-host installs it)"
            ));
        }
    }
    None
}

/// Prints why a test is skipped; every skip goes through here so the reason is visible.
pub fn skip(test: &str, reason: &str) {
    eprintln!("SKIPPED {test}: {reason}");
}

/// The static, reproducibly built `kubelabd` of this checkout (built once per process).
pub fn kubelabd() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let started = Instant::now();
        let path = image::kubelabd::build_kubelabd(&repo()).expect("building kubelabd");
        eprintln!("kubelabd built in {:.1} s", started.elapsed().as_secs_f64());
        path
    })
    .clone()
}

/// Build options for this checkout with a given cache.
pub fn options(cache: &Path) -> BuildOptions {
    BuildOptions {
        cache_dir: cache.to_path_buf(),
        ..BuildOptions::for_repo(&repo(), kubelabd())
    }
}

/// The image, from a cache shared by the boot tests under `target/` (content-addressed, so
/// sharing it between tests and runs is safe; concurrent builds of one hash are too).
pub fn shared_image() -> BuiltImage {
    let cache = shared_cache();
    std::fs::create_dir_all(&cache).unwrap();
    let started = Instant::now();
    // Tests run as parallel processes: one builds, the others wait here and hit the cache
    // (building the same image several times at once would be correct, only wasteful).
    let lock = std::fs::File::create(cache.join(".test-build.lock")).unwrap();
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).unwrap();
    let image = image::build(&options(&cache)).expect("building the image");
    drop(lock);
    eprintln!(
        "image {} in {:.1} s",
        if image.cached { "from cache" } else { "built" },
        started.elapsed().as_secs_f64()
    );
    image
}

/// The cache [`shared_image`] uses.
pub fn shared_cache() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"))
        .join("kubelab-test-cache")
}

/// Polls `probe` until it returns `Some` or `deadline` passes.
pub fn wait_until<T>(deadline: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = probe() {
            return Some(v);
        }
        if start.elapsed() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs a command, panicking with its output if it fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace with one bridge (holding `host_address`) and one tap on it, deleted
/// (with everything in it) on drop.
pub struct Netns {
    pub name: String,
    pub tap: String,
}

impl Netns {
    pub fn new(tag: &str, host_address: &str) -> Self {
        let name = format!("kl-{tag}-{}", std::process::id());
        run(Command::new("ip").args(["netns", "add", &name]));
        let ns = Self {
            name,
            tap: "tap0".into(),
        };
        for args in [
            vec!["link", "set", "lo", "up"],
            vec!["link", "add", "br0", "type", "bridge"],
            vec!["addr", "add", host_address, "dev", "br0"],
            vec!["link", "set", "br0", "up"],
            vec!["tuntap", "add", "dev", "tap0", "mode", "tap"],
            vec!["link", "set", "tap0", "master", "br0"],
            vec!["link", "set", "tap0", "up"],
        ] {
            run(Command::new("ip").arg("-n").arg(&ns.name).args(args));
        }
        ns
    }

    /// A command run inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    /// Connects to `addr` from inside the namespace and returns the first line the server
    /// sends (an SSH banner).
    pub fn tcp_first_line(&self, addr: &str) -> Option<String> {
        let path = format!("/run/netns/{}", self.name);
        let addr = addr.to_string();
        std::thread::spawn(move || {
            // setns changes only this thread's network namespace.
            let ns = std::fs::File::open(path).ok()?;
            use std::os::fd::AsFd;
            rustix::thread::move_into_link_name_space(
                ns.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .ok()?;
            let stream = std::net::TcpStream::connect_timeout(
                &addr.parse().ok()?,
                Duration::from_millis(500),
            )
            .ok()?;
            stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
            let mut line = String::new();
            BufReader::new(stream).read_line(&mut line).ok()?;
            Some(line.trim().to_string())
        })
        .join()
        .ok()
        .flatten()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// How to start QEMU: the default is the lab's own setup (`kubelab::vm::qemu`: `microvm`,
/// virtio-mmio, the host's TSC rate on the command line); the boot benchmark compares it
/// with other choices.
#[derive(Debug, Clone)]
pub struct Variant {
    /// `-machine` value.
    pub machine: String,
    /// `-cpu` value.
    pub cpu: String,
    /// `-bios` file; `None` is the machine's default firmware.
    pub bios: Option<PathBuf>,
    /// A kernel file to use instead of the image's.
    pub kernel: Option<PathBuf>,
    /// How virtio devices attach.
    pub transport: image::VirtioTransport,
    /// Added to the image's kernel command line.
    pub cmdline: String,
}

impl Default for Variant {
    fn default() -> Self {
        use kubelab::state::Accel;
        use kubelab::vm::qemu;
        let machine = qemu::machine_args(Accel::Tcg);
        Self {
            machine: machine[1].clone(),
            cpu: machine[3].clone(),
            bios: None,
            kernel: None,
            transport: qemu::TRANSPORT,
            cmdline: qemu::kernel_cmdline_extra(Accel::Tcg),
        }
    }
}

impl Variant {
    /// `q35` with PCI virtio devices, `-cpu max`, and `bios` (`None`: SeaBIOS).
    pub fn q35(machine: &str, bios: Option<PathBuf>) -> Self {
        Self {
            machine: format!("{machine},accel=tcg"),
            cpu: "max".into(),
            bios,
            kernel: None,
            transport: image::VirtioTransport::Pci,
            cmdline: "loglevel=6".into(),
        }
    }
}

/// One QEMU (TCG) booting the image, with its serial console in a file and a QMP socket;
/// killed by PID and reaped on drop.
pub struct Qemu {
    child: Child,
    pub console: PathBuf,
    pub qmp: PathBuf,
    _dir: tempfile::TempDir,
}

impl Qemu {
    /// QEMU's PID (the boot benchmark reads its CPU time).
    #[allow(dead_code)] // Used by benches/boot.rs, which includes this file; not by the tests.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Boots `image` with `node_json` as its fw_cfg NodeConfig and, if given, one NIC with
    /// `mac` on `netns`'s tap.
    pub fn boot(image: &BuiltImage, node_json: &[u8], net: Option<(&Netns, &str)>) -> Self {
        Self::boot_variant(image, node_json, net, &Variant::default())
    }

    /// [`Qemu::boot`] with a chosen machine, firmware and kernel.
    pub fn boot_variant(
        image: &BuiltImage,
        node_json: &[u8],
        net: Option<(&Netns, &str)>,
        variant: &Variant,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("node.json");
        std::fs::write(&config, node_json).unwrap();
        let console = dir.path().join("console.log");
        let qmp = dir.path().join("qmp.sock");
        let mut cmd = match net {
            Some((ns, _)) => ns.command("qemu-system-x86_64"),
            None => Command::new("qemu-system-x86_64"),
        };
        cmd.args([
            "-nodefaults",
            "-no-user-config",
            "-machine",
            &variant.machine,
            "-cpu",
            &variant.cpu,
        ])
        .args(["-m", "256", "-smp", "1", "-display", "none", "-no-reboot"]);
        if let Some(bios) = &variant.bios {
            cmd.arg("-bios").arg(bios);
        }
        let mut image_args = image.qemu_args(&variant.cmdline, variant.transport);
        if let Some(kernel) = &variant.kernel {
            image_args[1] = kernel.display().to_string();
        }
        cmd.args(image_args)
            .arg("-fw_cfg")
            .arg(format!(
                "name={},file={}",
                kubelab_nodeconfig::FW_CFG_NAME,
                config.display()
            ))
            .arg("-serial")
            .arg(format!("file:{}", console.display()))
            .arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", qmp.display()));
        if let Some((ns, mac)) = net {
            cmd.args([
                "-netdev",
                &format!("tap,id=n0,ifname={},script=no,downscript=no", ns.tap),
            ])
            .args([
                "-device",
                &format!("{},netdev=n0,mac={mac}", variant.transport.device("net")),
            ]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting qemu-system-x86_64");
        Self {
            child,
            console,
            qmp,
            _dir: dir,
        }
    }

    /// The console output so far.
    pub fn console(&self) -> String {
        std::fs::read_to_string(&self.console).unwrap_or_default()
    }

    /// Waits until the console shows `text`; panics with the console if it does not.
    pub fn wait_for(&self, text: &str, deadline: Duration) -> Instant {
        wait_until(deadline, || {
            self.console().contains(text).then(Instant::now)
        })
        .unwrap_or_else(|| {
            panic!(
                "{text:?} not on the console within {deadline:?}:\n{}",
                self.console()
            )
        })
    }

    /// Waits until QEMU has exited by itself; returns whether it did within `deadline`.
    pub fn wait_exit(&mut self, deadline: Duration) -> bool {
        wait_until(deadline, || self.child.try_wait().ok().flatten()).is_some()
    }

    /// Sends one QMP command (after the capabilities handshake).
    pub fn qmp(&self, command: &str) {
        let stream = wait_until(Duration::from_secs(10), || {
            UnixStream::connect(&self.qmp).ok()
        })
        .expect("QMP socket");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        let mut line = String::new();
        reader.read_line(&mut line).unwrap(); // greeting
        for cmd in ["qmp_capabilities", command] {
            writeln!(writer, "{{\"execute\":\"{cmd}\"}}").unwrap();
            loop {
                line.clear();
                reader.read_line(&mut line).unwrap();
                if line.contains("\"return\"") || line.contains("\"error\"") {
                    assert!(line.contains("\"return\""), "QMP {cmd}: {line}");
                    break;
                }
            }
        }
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill(); // SIGKILL to this PID only
        }
        let _ = self.child.wait();
    }
}
