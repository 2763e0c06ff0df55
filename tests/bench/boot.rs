//! `bench-boot`: how long `kubelab up` takes until every node answers SSH, per VM and in
//! total, for each topology asked for; median of several runs; plus the image's size and how
//! long a warm-cache image rebuild takes. Prints a Markdown section for docs/benchmarks.md,
//! with each number's ratio to the issue's target (the peer it is measured against).
//!
//! ```text
//! sudo cargo run -p kubelab-vmtests --bin bench-boot -- [--runs N] [--image DIR] [TOPOLOGY...]
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use kubelab::host::SystemHost;
use kubelab::lab::down::down;
use kubelab::lab::up::{Event, NodeStage, UpOptions, up};
use kubelab::state::StateRoot;

/// Targets from the issue, under TCG on a 2-core machine: (topology, seconds to all SSH-ready).
/// `minimal` has no target of its own; its two VMs are shown against the one-VM target.
const TARGETS: [(&str, f64); 3] = [("single", 3.0), ("minimal", 3.0), ("ha", 15.0)];

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

struct Args {
    runs: usize,
    image: Option<PathBuf>,
    topologies: Vec<String>,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        runs: 5,
        image: std::env::var_os("KUBELAB_IMAGE").map(PathBuf::from),
        topologies: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--runs" => args.runs = it.next().context("--runs N")?.parse()?,
            "--image" => args.image = Some(it.next().context("--image DIR")?.into()),
            "-h" | "--help" => {
                println!(
                    "bench-boot [--runs N] [--image DIR] [TOPOLOGY...]  (default: single minimal ha)"
                );
                std::process::exit(0);
            }
            t => args.topologies.push(t.to_owned()),
        }
    }
    if args.topologies.is_empty() {
        args.topologies = vec!["single".into(), "minimal".into(), "ha".into()];
    }
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    Ok(args)
}

/// The 1-minute load average, to say how busy the machine was.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

/// One run: seconds from `up` starting to each node's stages, and to `up` returning.
struct Run {
    /// Node -> seconds from `up` start to SSH-ready.
    per_node: BTreeMap<String, f64>,
    /// Node -> (stage, seconds from that node's QEMU start), in the order seen.
    stages: BTreeMap<String, Vec<(NodeStage, f64)>>,
    /// Node -> its init's stage logs (`what uptime`, guest seconds since the kernel started).
    guest: BTreeMap<String, String>,
    total: f64,
    /// 1-minute load average when the run started.
    load: String,
    /// Node -> CPU seconds its QEMU had used when `up` returned (`kubelab::vm::cpu_seconds`).
    cpu: BTreeMap<String, f64>,
}

fn one_run(root: &StateRoot, topology: &Path, options: &UpOptions) -> Result<(Run, String)> {
    let load = load_average();
    let started = Instant::now();
    let ready = Mutex::new(BTreeMap::new());
    let stages = Mutex::new(BTreeMap::<String, Vec<(NodeStage, f64)>>::new());
    let state = up(&SystemHost, root, topology, options, &|e| {
        if let Event::Stage {
            node,
            stage,
            elapsed,
        } = e
        {
            stages
                .lock()
                .unwrap()
                .entry(node.clone())
                .or_default()
                .push((stage, elapsed.as_secs_f64()));
            if stage == NodeStage::SshReady {
                ready
                    .lock()
                    .unwrap()
                    .insert(node, started.elapsed().as_secs_f64());
            }
        }
    })?;
    let total = started.elapsed().as_secs_f64();
    let cpu = state
        .nodes
        .iter()
        .filter_map(|n| Some((n.name.clone(), kubelab::vm::cpu_seconds(n.pid?)?)))
        .collect();
    let dir = root.lab(&state.name);
    let guest = state
        .nodes
        .iter()
        .map(|n| (n.name.clone(), guest_timeline(&dir.serial_log(&n.name))))
        .collect();
    down(&SystemHost, root, &state.name)?;
    Ok((
        Run {
            per_node: ready.into_inner().unwrap(),
            stages: stages.into_inner().unwrap(),
            guest,
            total,
            load,
            cpu,
        },
        state.accel.to_string(),
    ))
}

/// The guest's own clock at each stage init logs (`INFO <what> uptime=<s>` on the console).
fn guest_timeline(log: &Path) -> String {
    let text = String::from_utf8_lossy(&std::fs::read(log).unwrap_or_default()).into_owned();
    text.lines()
        .filter_map(|line| {
            let rest = line.split("INFO ").nth(1)?;
            let (what, uptime) = rest.split_once(" uptime=")?;
            Some(format!("{what} {}", uptime.split_whitespace().next()?))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `n1 kernel 0.41 userspace 1.52 SSH ready 2.40; ...` for one run.
fn stage_line(run: &Run) -> String {
    run.stages
        .iter()
        .map(|(node, stages)| {
            let shown: Vec<String> = stages
                .iter()
                .filter(|(s, _)| *s != NodeStage::Starting)
                .map(|(s, t)| format!("{s} {t:.2}"))
                .collect();
            format!("{node} {}", shown.join(" "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let repo = kubelab::image::kubelabd::default_workspace();
    let kubelabd = kubelab::image::kubelabd::build_kubelabd(&repo).context("building kubelabd")?;
    let build_options = kubelab::image::BuildOptions::for_repo(&repo, kubelabd);
    let image = match args.image.clone() {
        Some(dir) => dir,
        None => kubelab::image::build(&build_options)?.dir,
    };
    // A rebuild with a warm cache (the image exists): median of 5.
    let mut rebuilds = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let built = kubelab::image::build(&build_options)?;
        rebuilds.push(started.elapsed().as_secs_f64());
        if !built.cached {
            eprintln!("note: the image was not in the cache yet; this run built it");
        }
    }
    let rebuild = median(&mut rebuilds);
    let manifest =
        kubelab::image::Manifest::load(&image).with_context(|| image.display().to_string())?;
    let root = StateRoot::at("/var/lib/kubelab/bench");
    let (accel, reason) = kubelab::vm::accel::choose(root.path(), &image, &manifest);
    eprintln!(
        "accelerator {accel} ({reason:?}); {} run(s) per topology",
        args.runs
    );

    let load_before = load_average();
    let mut out = String::new();
    out.push_str(&format!(
        "Accelerator: **{accel}**. Host: {} cores, load average before the runs {} \
         (shared with other builds: provisional). Median of {} runs.\n\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_before,
        args.runs
    ));
    out.push_str("| topology | VMs | all SSH-ready (median) | best run | max | load per run | target | ratio to target | QEMU CPU per VM to SSH-ready (median) |\n|---|---|---|---|---|---|---|---|---|\n");
    let mut per_vm_tables = String::new();
    for topo in &args.topologies {
        // A name is a shipped topology; anything ending in .toml is a file of one's own.
        let file = if topo.ends_with(".toml") {
            PathBuf::from(topo)
        } else {
            repo.join("topologies").join(format!("{topo}.toml"))
        };
        let topo = &file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| topo.clone());
        let options = UpOptions {
            image_dir: image.clone(),
            name: Some(format!("bench-{topo}")),
            accel: Some(accel),
            boot_timeout: Duration::from_secs(180),
            stall_reset: Some(kubelab::lab::up::DEFAULT_STALL_RESET),
        };
        let mut runs = Vec::new();
        for i in 0..args.runs {
            let (run, _) =
                one_run(&root, &file, &options).with_context(|| format!("{topo} run {}", i + 1))?;
            eprintln!(
                "{topo} run {}: all SSH-ready in {:.2}s (load {}): {}",
                i + 1,
                run.total,
                run.load,
                stage_line(&run)
            );
            for (node, timeline) in &run.guest {
                let cpu = run.cpu.get(node).map_or("-".into(), |c| format!("{c:.2}"));
                eprintln!("    {node} QEMU CPU {cpu} s; guest uptime: {timeline}");
            }
            runs.push(run);
        }
        let mut totals: Vec<f64> = runs.iter().map(|r| r.total).collect();
        let med = median(&mut totals);
        let max = totals[totals.len() - 1];
        let best = runs
            .iter()
            .min_by(|a, b| a.total.partial_cmp(&b.total).expect("no NaN"))
            .expect("at least one run");
        let loads: Vec<&str> = runs.iter().map(|r| r.load.as_str()).collect();
        let target = TARGETS.iter().find(|(t, _)| t == topo).map(|(_, s)| *s);
        let mut cpu: Vec<f64> = runs.iter().flat_map(|r| r.cpu.values().copied()).collect();
        let cpu = if cpu.is_empty() {
            "-".to_string()
        } else {
            format!("{:.2} s", median(&mut cpu))
        };
        out.push_str(&format!(
            "| {topo} | {} | {med:.2} s | {:.2} s (load {}) | {max:.2} s | {} | {} | {} | {cpu} |\n",
            runs[0].per_node.len(),
            best.total,
            best.load,
            loads.join(", "),
            target.map_or("-".into(), |t| format!("{t:.0} s")),
            target.map_or("-".into(), |t| format!("{:.2}x", med / t)),
        ));
        per_vm_tables.push_str(&format!(
            "\n`{topo}`, per VM (seconds from `up` start to SSH-ready, median):"
        ));
        for node in runs[0].per_node.keys() {
            let mut v: Vec<f64> = runs
                .iter()
                .filter_map(|r| r.per_node.get(node).copied())
                .collect();
            per_vm_tables.push_str(&format!(" {node} {:.2}", median(&mut v)));
        }
        per_vm_tables.push_str(&format!(
            "\nBest run, per VM (seconds from its QEMU start): {}\n",
            stage_line(best)
        ));
    }
    out.push_str(&per_vm_tables);
    let size = dir_size(&image);
    out.push_str(&format!(
        "\nImage `{}`: {:.1} MiB (kernel + initramfs + root filesystem).\n",
        manifest.hash.get(..12).unwrap_or(&manifest.hash),
        size as f64 / (1024.0 * 1024.0)
    ));
    out.push_str(&format!(
        "Warm-cache image rebuild (`image::build` with the image already cached, kubelabd already \
         built): median {rebuild:.3} s of 5; target 2 s, ratio {:.3}x.\n",
        rebuild / 2.0
    ));
    println!("{out}");
    Ok(())
}
