//! The VM scenario suite: each test is one (topology, scenario) pair on real QEMU VMs, booted
//! with the `kubelab` library exactly as `kubelab up` does.
//!
//! - `util`: the driver. [`util::Suite`] decides once whether VMs can run here (root, QEMU,
//!   an image) and which accelerator; [`util::LabGuard`] boots a lab under a name of its own
//!   and tears it down in `Drop`, also when the test fails; [`util::run`] gives each test a
//!   global deadline; every wait polls through `kubelab::wait::wait_until`.
//! - `scenarios`: reachability, ping, link-down/up, partition/heal, kill, down — written once
//!   and instantiated for `minimal.toml` and `routed.toml`.
//! - `interrupted`: `up` killed with SIGKILL half-way, or `down` run while `up` still boots;
//!   `down` leaves nothing behind.
//! - `stall`: a node stopped during boot is noticed by `up`'s stall watchdog and reset.
//!
//! Where VMs cannot run, every test is still listed and reports why it was skipped.

mod interrupted;
mod scenarios;
mod stall;
mod util;

use libtest_mimic::{Arguments, Trial};

fn main() {
    if let Some(code) = interrupted::child_main() {
        std::process::exit(code);
    }
    let args = Arguments::from_args();
    // Listing (nextest lists every binary before running) needs names only: no image build,
    // no KVM trial.
    let suite = if args.list {
        util::Suite::listing()
    } else {
        util::Suite::detect()
    };
    if let Some(reason) = &suite.skip {
        eprintln!("vm suite: every VM test is skipped: {reason}");
    }
    let mut trials = Vec::new();
    for (topology, name, scenario) in scenarios::all() {
        trials.push(suite.trial(&format!("{topology}::{name}"), move |s| {
            scenario(s, topology)
        }));
    }
    trials.push(suite.trial(
        "minimal::sigkill_during_up_then_down",
        interrupted::sigkill_during_up,
    ));
    trials.push(suite.trial("minimal::down_during_up", interrupted::down_during_up));
    trials.push(suite.trial(
        "minimal::stalled_boot_is_reset",
        stall::stalled_boot_is_reset,
    ));
    let trials: Vec<Trial> = trials;
    libtest_mimic::run(&args, trials).exit();
}
