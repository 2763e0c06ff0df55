//! The real `etcdctl` 3.4 (Debian's etcd-client) against a `kubelabd store` process.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, bail, ensure};

use crate::util::{Procs, wait_until};

/// Runs etcdctl against `endpoint`; returns stdout, or the failure with stderr.
fn ctl(endpoint: &str, args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
    let mut child = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoint}"))
        .arg("--command-timeout=5s")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running etcdctl")?;
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .context("stdin")?
            .write_all(input.as_bytes())?;
    }
    drop(child.stdin.take());
    let out = child.wait_with_output()?;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        bail!(
            "etcdctl {args:?} failed: {}{}",
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(stdout)
}

fn etcdctl_available() -> bool {
    Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcdctl_3_4_drives_a_member() -> anyhow::Result<()> {
    if !etcdctl_available() {
        eprintln!(
            "SKIP etcdctl_3_4_drives_a_member: etcdctl not found (scripts/setup-host installs etcd-client)"
        );
        return Ok(());
    }
    let p = Procs::start(1)?;
    let ep = format!("127.0.0.1:{}", p.members[0].client_port);
    let ep = ep.as_str();
    wait_until("the member to serve", Duration::from_secs(10), || async {
        ctl(ep, &["put", "foo", "bar"], None)
    })
    .await
    .with_context(|| p.log(0))?; // revision 2
    ensure!(ctl(ep, &["put", "foo", "baz"], None)? == "OK\n"); // 3
    ensure!(ctl(ep, &["get", "foo"], None)? == "foo\nbaz\n");
    ensure!(ctl(ep, &["get", "foo", "--rev=2"], None)? == "foo\nbar\n");
    ctl(ep, &["put", "dir/a", "1"], None)?; // 4
    ctl(ep, &["put", "dir/b", "2"], None)?; // 5
    ensure!(ctl(ep, &["get", "--prefix", "dir/"], None)? == "dir/a\n1\ndir/b\n2\n");
    ensure!(ctl(ep, &["del", "dir/a"], None)? == "1\n"); // 6
    let txn = "value(\"foo\") = \"baz\"\n\nput foo qux\n\nput foo nope\n\n";
    let out = ctl(ep, &["txn"], Some(txn))?; // 7
    ensure!(out.starts_with("SUCCESS"), "{out}");
    ensure!(ctl(ep, &["get", "foo", "--print-value-only"], None)? == "qux\n");

    // Watch from a past revision (history), then a live event.
    let mut watch = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args([
            &format!("--endpoints={ep}"),
            "watch",
            "--prefix",
            "dir/",
            "--rev=4",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let (tx, rx) = mpsc::channel();
    let stdout = watch.stdout.take().context("watch stdout")?;
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let read = |n: usize, lines: &mut Vec<String>| -> anyhow::Result<()> {
        while lines.len() < n {
            lines.push(
                rx.recv_timeout(Duration::from_secs(10))
                    .context("watch output")?,
            );
        }
        Ok(())
    };
    let history = read(9, &mut lines);
    ctl(ep, &["put", "dir/c", "3"], None)?; // 8
    let live = history.and_then(|_| read(12, &mut lines));
    let _ = watch.kill();
    let _ = watch.wait();
    live?;
    let expect = [
        "PUT", "dir/a", "1", "PUT", "dir/b", "2", "DELETE", "dir/a", "", "PUT", "dir/c", "3",
    ];
    ensure!(lines == expect, "watch printed {lines:?}");

    // Leases.
    let out = ctl(ep, &["lease", "grant", "60"], None)?;
    let id = out
        .split_whitespace()
        .nth(1)
        .context("lease id")?
        .to_string();
    ensure!(out.contains("granted with TTL(60s)"), "{out}");
    ctl(ep, &["put", "--lease", &id, "leased", "v"], None)?; // 9
    let out = ctl(ep, &["lease", "keep-alive", "--once", &id], None)?;
    ensure!(
        out.contains(&format!("lease {id} keepalived with TTL(60)")),
        "{out}"
    );
    let out = ctl(ep, &["lease", "timetolive", "--keys", &id], None)?;
    ensure!(
        out.contains("granted with TTL(60s)") && out.contains("leased"),
        "{out}"
    );
    ensure!(ctl(ep, &["lease", "revoke", &id], None)?.contains("revoked")); // 10
    ensure!(
        ctl(ep, &["get", "leased"], None)?.is_empty(),
        "revoking deleted the key"
    );

    // Cluster and maintenance.
    let out = ctl(ep, &["member", "list"], None)?;
    ensure!(
        out.contains("started, p0, ") && out.contains(&p.members[0].client_url()),
        "{out}"
    );
    // With and without the scheme: etcdctl then sends the whole URL as HTTP/2 :authority,
    // which Go's server (etcd) accepts and ours must too (third_party/h2/PATCHED.md).
    let url = p.members[0].client_url();
    for endpoint in [ep, url.as_str()] {
        let out = ctl(endpoint, &["endpoint", "status"], None)?;
        ensure!(
            out.contains(endpoint) && out.contains("3.4.0") && out.contains("true"),
            "{out}"
        );
    }
    ensure!(ctl(ep, &["compaction", "5"], None)? == "compacted revision 5\n");
    let err = ctl(ep, &["get", "foo", "--rev=3"], None)
        .unwrap_err()
        .to_string();
    ensure!(
        err.contains("required revision has been compacted"),
        "{err}"
    );
    Ok(())
}
