//! The scenarios, written once and run on each topology with that topology's cast: who
//! pings whom across which network, which link to cut, which groups to partition, whom to
//! kill. Every wait polls with a deadline.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use kubelab::guest::{Guest, GuestError};
use kubelab::host::SystemHost;
use kubelab::lab::LabError;
use kubelab::lab::fault::{Fault, inject};
use kubelab::lab::up::{UpOptions, up};
use kubelab::vm::process_alive;
use kubelab::wait::wait_until;

use crate::util::{LabGuard, POLL, Suite, assert_nothing_left, state_root, topology};

/// A scenario body.
pub type Scenario = fn(&Suite, &'static str) -> Result<()>;

/// How long a fault may take to show (or stop showing) in the traffic.
const FAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Who does what on a topology.
struct Cast {
    /// Pings from here ...
    src: &'static str,
    /// ... to this node ...
    dst: &'static str,
    /// ... on its address in this network.
    dst_net: &'static str,
    /// The NIC whose link-down cuts src from dst.
    cut: (&'static str, &'static str),
    /// Node whose kill cuts src from dst (and which is not src).
    victim: &'static str,
    /// Hops between src and dst (1 = same L2 segment).
    hops: u8,
}

fn cast(topology: &str) -> Cast {
    match topology {
        "minimal" => Cast {
            src: "cp1",
            dst: "w1",
            dst_net: "lan",
            cut: ("w1", "eth0"),
            victim: "w1",
            hops: 1,
        },
        "routed" => Cast {
            src: "w1",
            dst: "w2",
            dst_net: "net-b",
            cut: ("router", "eth1"),
            victim: "router",
            hops: 2,
        },
        other => panic!("no cast for topology {other}"),
    }
}

/// Every (topology, scenario name, scenario).
pub fn all() -> Vec<(&'static str, &'static str, Scenario)> {
    let scenarios: [(&str, Scenario); 6] = [
        ("ssh_every_node", ssh_every_node),
        ("ping_data_network", ping_data_network),
        ("link_down_up", link_down_up),
        ("partition_heal", partition_heal),
        ("kill_node", kill_node),
        ("down_leaves_nothing", down_leaves_nothing),
    ];
    let mut out = Vec::new();
    for topology in ["minimal", "routed"] {
        for (name, f) in scenarios {
            out.push((topology, name, f));
        }
    }
    // The remaining QMP faults need no second topology.
    out.push((
        "minimal",
        "pause_resume_reset",
        pause_resume_reset as Scenario,
    ));
    out
}

/// `pause` freezes the node (QMP says paused, its address stops answering), `resume` brings
/// it back, `reset` reboots it from the clean image (a file written before is gone).
fn pause_resume_reset(suite: &Suite, topo: &'static str) -> Result<()> {
    let c = cast(topo);
    let lab = LabGuard::up(suite, topo, "pause")?;
    let dst = lab.address(c.dst, c.dst_net);
    lab.wait_ping(c.src, &dst, true, FAULT_TIMEOUT)?;
    lab.sh(c.dst, "touch /tmp/kubelab-marker")?;
    inject(&SystemHost, &lab.lab, &Fault::Pause(c.dst.into()))?;
    let state = lab.lab.qmp(c.dst)?.status()?;
    ensure!(
        !state.running && state.state == "paused",
        "after pause: {state:?}"
    );
    lab.wait_ping(c.src, &dst, false, FAULT_TIMEOUT)?;
    inject(&SystemHost, &lab.lab, &Fault::Resume(c.dst.into()))?;
    ensure!(
        lab.lab.qmp(c.dst)?.status()?.running,
        "running after resume"
    );
    lab.wait_ping(c.src, &dst, true, FAULT_TIMEOUT)?;
    inject(&SystemHost, &lab.lab, &Fault::Reset(c.dst.into()))?;
    wait_until(
        "the reset node to come back clean",
        Duration::from_secs(150),
        POLL,
        |_| {
            lab.sh(c.dst, "test ! -e /tmp/kubelab-marker")
                .map_err(|e| format!("{e:#}"))
        },
    )?;
    lab.wait_ping(c.src, &dst, true, FAULT_TIMEOUT)?;
    Ok(())
}

/// Every node answers SSH as itself; the router forwards; a second `up` of the same name is
/// refused without disturbing the lab.
fn ssh_every_node(suite: &Suite, topo: &'static str) -> Result<()> {
    let lab = LabGuard::up(suite, topo, "ssh")?;
    for node in &lab.lab.topology.nodes {
        let hostname = lab.sh(&node.name, "hostname")?;
        ensure!(
            hostname.trim() == node.name,
            "{} says it is {hostname:?}",
            node.name
        );
        let forward = lab.sh(&node.name, "cat /proc/sys/net/ipv4/ip_forward")?;
        let want = if node.role == kubelab::topology::Role::Router {
            "1"
        } else {
            "0"
        };
        ensure!(
            forward.trim() == want,
            "{}: ip_forward is {forward:?}",
            node.name
        );
    }
    // Each node presents the host key `up` made for it, and the harness takes no other: a
    // login that expects another node's key is refused before authenticating.
    let (first, second) = (
        &lab.lab.topology.nodes[0].name,
        &lab.lab.topology.nodes[1].name,
    );
    let mut wrong = lab.lab.credentials(first)?;
    wrong.host_key = lab.lab.credentials(second)?.host_key;
    ensure!(wrong.host_key.is_some(), "up made a host key for {second}");
    match Guest::connect(
        &lab.lab.plan.namespace,
        lab.lab.mgmt_address(first)?,
        &wrong,
    ) {
        Err(GuestError::HostKeyMismatch { .. }) => {}
        Err(e) => bail!("connecting with {second}'s host key to {first}: {e}"),
        Ok(_) => bail!("{first} was accepted with {second}'s host key"),
    }
    // File copy both ways over SSH, including bytes a shell would mangle.
    let guest = lab.guest(&lab.lab.topology.nodes[0].name)?;
    let content: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    guest.write_file("/tmp/kubelab copy.bin", &content, 0o640)?;
    ensure!(
        guest.read_file("/tmp/kubelab copy.bin")? == content,
        "copied file differs"
    );
    let mode = guest
        .exec("stat -c %a '/tmp/kubelab copy.bin'")?
        .stdout_str();
    ensure!(mode.trim() == "640", "mode of the copied file is {mode:?}");
    let out = guest.exec("echo out; echo err >&2; exit 3")?;
    ensure!(
        (out.status, out.stdout_str().as_str(), out.stderr.as_slice())
            == (3, "out\n", b"err\n".as_slice()),
        "exec passes exit code and both streams through: {out:?}"
    );
    exec_streams_as_output_arrives(&guest)?;

    let options = UpOptions {
        image_dir: suite.image.clone(),
        name: Some(lab.name().to_owned()),
        accel: Some(suite.accel),
        boot_timeout: Duration::from_secs(10),
        stall_reset: Some(kubelab::lab::up::DEFAULT_STALL_RESET),
    };
    match up(
        &SystemHost,
        &state_root(),
        &topology(topo),
        &options,
        &|_| {},
    ) {
        Err(LabError::AlreadyRunning { .. }) => {}
        other => bail!("second up of a running name was not refused: {other:?}"),
    }
    lab.sh(&lab.lab.topology.nodes[0].name, "true")
        .context("lab disturbed by refused up")?;
    Ok(())
}

/// Ping across the data network; on a routed path, the receiver sees the sender's own
/// address (no NAT, shown by tcpdump on the receiver) and the TTL shows the extra hop.
fn ping_data_network(suite: &Suite, topo: &'static str) -> Result<()> {
    let c = cast(topo);
    let lab = LabGuard::up(suite, topo, "ping")?;
    let dst = lab.address(c.dst, c.dst_net);
    lab.wait_ping(c.src, &dst, true, FAULT_TIMEOUT)?;
    let out = lab.sh(c.src, &format!("ping -c 1 -W 2 {dst}"))?;
    let ttl = 64 - (c.hops - 1);
    ensure!(
        out.contains(&format!("ttl={ttl}")),
        "expected ttl={ttl} ({} hop(s)): {out}",
        c.hops
    );

    // Source address as seen on the receiver.
    let src_nic = lab
        .lab
        .plan
        .node_nics(c.src)
        .find(|n| !n.management)
        .context("src has a data NIC")?;
    let src = src_nic.address.ip().to_string();
    let dst_iface = lab
        .lab
        .plan
        .node_nics(c.dst)
        .find(|n| n.network == c.dst_net)
        .context("dst NIC")?
        .name
        .clone();
    // Plain `tcpdump`: it drops privileges to the image's `tcpdump` user after opening the
    // capture, and fails (no packet, its reason on stderr) if that user is missing.
    let receiver = lab.guest(c.dst)?;
    let capture = std::thread::spawn(move || {
        receiver.exec(&format!(
            "timeout 20 tcpdump -n -l -i {dst_iface} -c 1 'icmp[icmptype] == icmp-echo'"
        ))
    });
    let sender = lab.guest(c.src)?;
    wait_until(
        "tcpdump on the receiver to see a ping",
        Duration::from_secs(25),
        POLL,
        |_| {
            if capture.is_finished() {
                return Ok(());
            }
            let _ = sender.exec(&format!("ping -c 1 -W 1 {dst}"));
            Err("no packet captured yet")
        },
    )?;
    let out = capture.join().expect("capture thread")?;
    let seen = out.stdout_str();
    ensure!(
        seen.contains(&format!("IP {src} > {dst}")),
        "receiver {} did not see {src} as the source: {seen:?} (tcpdump's stderr: {:?})",
        c.dst,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// `link-down` stops the traffic, `link-up` restores it.
fn link_down_up(suite: &Suite, topo: &'static str) -> Result<()> {
    let c = cast(topo);
    let lab = LabGuard::up(suite, topo, "link")?;
    let dst = lab.address(c.dst, c.dst_net);
    lab.wait_ping(c.src, &dst, true, FAULT_TIMEOUT)?;
    let (node, iface) = c.cut;
    inject(
        &SystemHost,
        &lab.lab,
        &Fault::LinkDown(node.into(), iface.into()),
    )?;
    lab.wait_ping(c.src, &dst, false, FAULT_TIMEOUT)?;
    inject(
        &SystemHost,
        &lab.lab,
        &Fault::LinkUp(node.into(), iface.into()),
    )?;
    lab.wait_ping(c.src, &dst, true, FAULT_TIMEOUT)?;
    Ok(())
}

/// A partition cuts src from dst (bridged or routed) while SSH keeps working; heal restores.
fn partition_heal(suite: &Suite, topo: &'static str) -> Result<()> {
    let c = cast(topo);
    let lab = LabGuard::up(suite, topo, "part")?;
    let dst = lab.address(c.dst, c.dst_net);
    lab.wait_ping(c.src, &dst, true, FAULT_TIMEOUT)?;
    inject(
        &SystemHost,
        &lab.lab,
        &Fault::Partition(vec![c.src.into()], vec![c.dst.into()]),
    )?;
    lab.wait_ping(c.src, &dst, false, FAULT_TIMEOUT)?;
    lab.wait_ping(
        c.dst,
        &lab.address(
            c.src,
            &lab.lab.plan.node_nics(c.src).nth(1).unwrap().network,
        ),
        false,
        FAULT_TIMEOUT,
    )?;
    lab.sh(c.src, "true")
        .context("SSH (management network) must survive a partition")?;
    inject(&SystemHost, &lab.lab, &Fault::Heal)?;
    lab.wait_ping(c.src, &dst, true, FAULT_TIMEOUT)?;
    Ok(())
}

/// `kill` makes the node unreachable and its QEMU gone; the others keep running.
fn kill_node(suite: &Suite, topo: &'static str) -> Result<()> {
    let c = cast(topo);
    let lab = LabGuard::up(suite, topo, "kill")?;
    let pid = lab.lab.pid(c.victim).context("victim has a PID")?;
    ensure!(process_alive(pid), "victim's QEMU runs before the kill");
    inject(&SystemHost, &lab.lab, &Fault::Kill(c.victim.into()))?;
    ensure!(
        !process_alive(pid),
        "QEMU {pid} of {} is still there",
        c.victim
    );
    ensure!(
        lab.lab.ssh(c.victim).is_err(),
        "{} still answers SSH",
        c.victim
    );
    lab.sh(c.src, "true")
        .context("the other nodes keep running")?;
    if c.victim != c.dst {
        // Killing the router cuts the routed path.
        lab.wait_ping(c.src, &lab.address(c.dst, c.dst_net), false, FAULT_TIMEOUT)?;
    }
    Ok(())
}

/// `down` leaves no namespace, tap, QEMU process or state file behind.
fn down_leaves_nothing(suite: &Suite, topo: &'static str) -> Result<()> {
    let lab = LabGuard::up(suite, topo, "down")?;
    let name = lab.name().to_owned();
    let pids: Vec<u32> = lab.lab.state.nodes.iter().filter_map(|n| n.pid).collect();
    ensure!(
        pids.iter().all(|&p| process_alive(p)),
        "all QEMUs run before down"
    );
    let report = lab.down()?;
    ensure!(
        report.killed.len() >= pids.len(),
        "down killed {:?}, expected {pids:?}",
        report.killed
    );
    ensure!(
        pids.iter().all(|&p| !process_alive(p)),
        "a QEMU survived down"
    );
    assert_nothing_left(&name)
}

/// A sink noting when each chunk of output arrived.
struct Timed {
    started: Instant,
    chunks: Vec<(Duration, Vec<u8>)>,
}

impl Write for Timed {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.chunks.push((self.started.elapsed(), buf.to_vec()));
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `Guest::exec_streaming` (what `kubelab exec` prints through) hands on each stream's
/// output while the command still runs: chunks written a second or more apart by the guest
/// arrive that far apart, each on its own stream, and the exit code comes last.
fn exec_streams_as_output_arrives(guest: &Guest) -> Result<()> {
    let started = Instant::now();
    let (mut out, mut err) = (
        Timed {
            started,
            chunks: Vec::new(),
        },
        Timed {
            started,
            chunks: Vec::new(),
        },
    );
    let status = guest.exec_streaming(
        "echo first; sleep 2; echo second >&2; sleep 1; echo third; exit 4",
        &[],
        &mut out,
        &mut err,
    )?;
    let text = |t: &Timed| {
        t.chunks
            .iter()
            .flat_map(|(_, c)| c.clone())
            .collect::<Vec<u8>>()
    };
    ensure!(
        (status, text(&out).as_slice(), text(&err).as_slice())
            == (4, b"first\nthird\n".as_slice(), b"second\n".as_slice()),
        "streamed exec: status {status}, stdout {:?}, stderr {:?}",
        out.chunks,
        err.chunks
    );
    let at = |t: &Timed, what: &[u8]| {
        t.chunks
            .iter()
            .find(|(_, c)| c.windows(what.len()).any(|w| w == what))
            .map(|(at, _)| *at)
    };
    let (first, second, third) = (at(&out, b"first"), at(&err, b"second"), at(&out, b"third"));
    let (Some(first), Some(second), Some(third)) = (first, second, third) else {
        bail!("a line is missing: {:?} / {:?}", out.chunks, err.chunks);
    };
    // The guest sleeps 2 s and 1 s between the lines; allow half of each for jitter.
    ensure!(
        second >= first + Duration::from_secs(1) && third >= second + Duration::from_millis(500),
        "output was not handed on as it came: first {first:?}, second (stderr) {second:?}, \
         third {third:?} after the start"
    );
    Ok(())
}
