//! `kubelab up`: progress lines while the VMs boot, then a table of nodes.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use kubelab::host::SystemHost;
use kubelab::image;
use kubelab::lab::up::{DEFAULT_BOOT_TIMEOUT, DEFAULT_STALL_RESET, Event, UpOptions, up};
use kubelab::net::NetPlan;
use kubelab::state::StateRoot;
use kubelab::topology::Topology;
use kubelab::vm::accel::Reason;

use super::CliError;

/// Environment variable naming the image directory when `--image` is not given.
pub const IMAGE_ENV: &str = "KUBELAB_IMAGE";

/// Arguments of `kubelab up`.
#[derive(clap::Args)]
pub struct UpArgs {
    /// Topology file, e.g. topologies/minimal.toml.
    topology: PathBuf,
    /// Lab name (default: the topology's `name`).
    #[arg(long)]
    name: Option<String>,
    /// Image directory (with manifest.json); default: $KUBELAB_IMAGE, else the repository's
    /// image, built now or taken from the cache (as `kubelab image build` does).
    #[arg(long)]
    image: Option<PathBuf>,
    /// Per-node deadline from QEMU start to SSH ready, in seconds.
    #[arg(long, default_value_t = DEFAULT_BOOT_TIMEOUT.as_secs())]
    boot_timeout: u64,
    /// Reset a node (once) whose console stays silent this many seconds before SSH is up;
    /// a second stall fails the boot. 0: never reset, wait out the boot timeout.
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_STALL_RESET.as_secs())]
    stall_reset: u64,
}

fn image_dir(args: &UpArgs) -> Result<PathBuf, CliError> {
    if let Some(dir) = &args.image {
        return Ok(dir.clone());
    }
    if let Some(dir) = std::env::var_os(IMAGE_ENV) {
        return Ok(dir.into());
    }
    let repo = image::kubelabd::default_workspace();
    eprintln!(
        "image: building (or finding in the cache) the image of {}",
        repo.display()
    );
    let kubelabd = image::kubelabd::build_kubelabd(&repo)?;
    let built = image::build(&image::BuildOptions::for_repo(&repo, kubelabd))?;
    eprintln!(
        "image: {} ({})",
        built.dir.display(),
        if built.cached { "cached" } else { "built" }
    );
    Ok(built.dir)
}

/// Runs `kubelab up`.
pub fn run(args: &UpArgs) -> Result<i32, CliError> {
    let options = UpOptions {
        image_dir: image_dir(args)?,
        name: args.name.clone(),
        accel: None,
        boot_timeout: Duration::from_secs(args.boot_timeout),
        stall_reset: (args.stall_reset > 0).then(|| Duration::from_secs(args.stall_reset)),
    };
    let root = StateRoot::from_env();
    let started = Instant::now();
    let print = |e: Event| {
        let at = started.elapsed().as_secs_f64();
        let line = match e {
            Event::Accel { accel, reason } => {
                let why = match reason {
                    Reason::Forced => "forced".to_string(),
                    Reason::NoKvmDevice => "no usable /dev/kvm".to_string(),
                    Reason::Cached => "trial boot earlier this host boot".to_string(),
                    Reason::Trial { seconds } => format!("trial boot took {seconds:.1}s"),
                };
                format!("accelerator: {accel} ({why})")
            }
            Event::Network { namespace } => format!("network: namespace {namespace} ready"),
            Event::Stage {
                node,
                stage,
                elapsed,
            } => format!("{node:<12} {stage} ({:.2}s)", elapsed.as_secs_f64()),
            Event::Stalled {
                node,
                silent,
                last_line,
                detail,
            } => format!(
                "{node:<12} STALLED: no console output for {:.0}s after {last_line:?}; \
                 resetting it (QMP system_reset). What the host sees:\n{detail}",
                silent.as_secs_f64()
            ),
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "[{at:6.2}s] {line}");
        let _ = out.flush();
    };
    let state = up(&SystemHost, &root, &args.topology, &options, &print)?;
    let total = started.elapsed().as_secs_f64();

    let mut topology = Topology::load(&root.lab(&state.name).topology())?;
    topology.rename(&state.name)?;
    let plan = NetPlan::new(&topology);
    kubelab::outln!();
    kubelab::outln!(
        "{:<12} {:<14} {:<15} {:<28} {:>7} {:>9} {:>7}",
        "NODE",
        "ROLE",
        "MGMT",
        "ADDRESSES",
        "KERNEL",
        "USERSPACE",
        "SSH"
    );
    let secs = |v: Option<f64>| v.map_or("-".to_string(), |s| format!("{s:.2}s"));
    for (node, ns) in topology.nodes.iter().zip(&state.nodes) {
        let addresses: Vec<String> = plan
            .node_nics(&node.name)
            .filter(|n| !n.management)
            .map(|n| format!("{}={}", n.name, n.address))
            .collect();
        kubelab::outln!(
            "{:<12} {:<14} {:<15} {:<28} {:>7} {:>9} {:>7}",
            node.name,
            super::lab::role(node.role),
            plan.mgmt_address(&node.name)
                .map(|a| a.to_string())
                .unwrap_or_default(),
            addresses.join(" "),
            secs(ns.kernel_s),
            secs(ns.userspace_s),
            secs(ns.ssh_s),
        );
    }
    kubelab::outln!();
    kubelab::outln!(
        "lab {} is up: {} nodes SSH-ready in {total:.2}s ({}). Try `kubelab exec {} {} -- ip addr`, \
         remove it with `kubelab down {}`.",
        state.name,
        state.nodes.len(),
        state.accel,
        state.name,
        state.nodes[0].name,
        state.name
    );
    Ok(0)
}
