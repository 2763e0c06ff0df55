//! `up`'s stall watchdog on real QEMU: a node whose vCPUs are stopped (QMP `stop`) right
//! after its kernel starts prints nothing more; `up` must notice the silence, say what the
//! host sees (QEMU's run state among it), reset the VM, let it run, and still bring the lab
//! up with that one node counted as reset once.

use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Result, ensure};
use kubelab::lab::up::Event;
use kubelab::vm::qmp::QmpClient;
use kubelab::wait::wait_until;

use crate::util::{LabGuard, POLL, Suite, lab_name, log, state_root};

/// Silence before the reset; short, so the test is quick, but far above the gaps of a boot
/// that is not stopped (under a second between console lines on this suite's hosts).
const STALL: Duration = Duration::from_secs(8);

/// The node that is stopped.
const VICTIM: &str = "w1";

pub fn stalled_boot_is_reset(suite: &Suite) -> Result<()> {
    let name = lab_name("stall");
    let dir = state_root().lab(&name);
    let (log_path, qmp) = (dir.serial_log(VICTIM), dir.qmp_socket(VICTIM));
    // Stops the victim's vCPUs once its kernel prints, from beside the `up`.
    let stopper = std::thread::spawn(move || -> Result<()> {
        wait_until(
            "the victim's kernel banner",
            Duration::from_secs(120),
            POLL,
            |_| {
                let text = std::fs::read_to_string(&log_path).unwrap_or_default();
                if text.contains("Linux version") {
                    Ok(())
                } else {
                    Err("not yet".to_string())
                }
            },
        )?;
        QmpClient::connect(&qmp)?.stop()?;
        log(format_args!("{VICTIM}: vCPUs stopped over QMP"));
        Ok(())
    });
    let stalls = Mutex::new(Vec::new());
    let lab = LabGuard::up_named(suite, "minimal", &name, STALL, &|event| {
        if let Event::Stalled { node, detail, .. } = event {
            stalls.lock().unwrap().push((node, detail));
        }
    });
    let stopped = stopper.join().expect("stopper thread");
    let lab = lab?;
    stopped?;
    let stalls = stalls.into_inner().unwrap();
    ensure!(
        stalls.len() == 1 && stalls[0].0 == VICTIM,
        "expected one stall, of {VICTIM}: {stalls:?}"
    );
    ensure!(
        stalls[0].1.contains("QEMU run state: paused"),
        "the stall report shows QEMU's state: {}",
        stalls[0].1
    );
    for node in &lab.lab.state.nodes {
        let want = u32::from(node.name == VICTIM);
        ensure!(node.resets == want, "{}: resets {}", node.name, node.resets);
    }
    ensure!(
        lab.sh(VICTIM, "hostname")?.trim() == VICTIM,
        "{VICTIM} answers after its reset"
    );
    lab.down()?;
    Ok(())
}
