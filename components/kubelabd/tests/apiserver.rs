//! `kubelabd apiserver` end to end: the binary with its flags over a private etcd 3.4, the
//! admin kubeconfig it writes (HTTPS, client certificate), kubectl using it, and
//! `kubelabd kubeconfig` minting one for another user. Skips with a reason without etcd or
//! kubectl.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn find(name: &str, dirs: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    dirs.iter()
        .map(PathBuf::from)
        .chain(std::env::split_paths(&path))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    kubelab_store::ports::unused_loopback_port().expect("a free loopback port")
}

fn wait_until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Kills our own child by PID on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn etcd(bin: &Path, dir: &Path) -> (Proc, String) {
    let (client, peer) = (free_port(), free_port());
    let url = format!("http://127.0.0.1:{client}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    let child = Command::new(bin)
        .args([
            "--name=t".to_string(),
            format!("--data-dir={}", dir.join("etcd").display()),
            format!("--listen-client-urls={url}"),
            format!("--advertise-client-urls={url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster=t={peer_url}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn etcd");
    (Proc(child), url)
}

#[test]
fn apiserver_subcommand_writes_a_kubeconfig_kubectl_can_use() {
    let Some(etcd_bin) = find("etcd", &["/usr/bin"]) else {
        eprintln!("SKIP: etcd is not installed (scripts/setup-host installs etcd-server)");
        return;
    };
    let Some(kubectl) = find("kubectl", &["/usr/local/bin", "/usr/bin"]) else {
        eprintln!("SKIP: kubectl is not installed");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (_etcd, url) = etcd(&etcd_bin, dir.path());
    let kubeconfig = dir.path().join("admin.kubeconfig");

    // Bad flags are refused before anything starts, naming the flag.
    let bad = Command::new(env!("CARGO_BIN_EXE_kubelabd"))
        .args([
            "apiserver",
            "--service-node-port-range",
            "32000-31000",
            "--etcd-servers",
            &url,
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("service_node_port_range"),
        "{bad:?}"
    );

    let server = Command::new(env!("CARGO_BIN_EXE_kubelabd"))
        .args([
            "apiserver",
            "--etcd-servers",
            &url,
            "--bind-address",
            "127.0.0.1",
            "--port",
            "0",
        ])
        .args([
            "--service-cluster-ip-range",
            "10.123.0.0/24",
            "--service-node-port-range",
            "30100-30200",
        ])
        .arg("--kubeconfig-out")
        .arg(&kubeconfig)
        .arg("--cert-dir")
        .arg(dir.path().join("pki"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn kubelabd apiserver");
    let _server = Proc(server);
    let kubectl_as = |config: &Path, args: &[&str]| {
        Command::new(&kubectl)
            .args(args)
            .env("KUBECONFIG", config)
            .env("HOME", dir.path())
            .output()
            .unwrap()
    };
    let kubectl = |args: &[&str]| kubectl_as(&kubeconfig, args);
    wait_until("kubectl get ns via the written kubeconfig", || {
        let out = kubectl(&["get", "ns", "default", "-o", "name"]);
        (out.status.success() && String::from_utf8_lossy(&out.stdout).contains("namespace/default"))
            .then_some(())
    });
    let out = kubectl(&["create", "service", "nodeport", "web", "--tcp=80:8080"]);
    assert!(out.status.success(), "{out:?}");
    let out = kubectl(&[
        "get",
        "svc",
        "web",
        "-o",
        "jsonpath={.spec.clusterIP} {.spec.ports[0].nodePort}",
    ]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (ip, port) = text.split_once(' ').expect("ip and port");
    assert!(ip.starts_with("10.123.0."), "{text}");
    let port: u16 = port.parse().unwrap();
    assert!((30100..=30200).contains(&port), "{text}");

    // Plain HTTP is refused off loopback, naming the flag.
    let plain = Command::new(env!("CARGO_BIN_EXE_kubelabd"))
        .args([
            "apiserver",
            "--etcd-servers",
            &url,
            "--insecure-plain-http-loopback",
        ])
        .args(["--bind-address", "0.0.0.0", "--port", "0", "--cert-dir"])
        .arg(dir.path().join("pki"))
        .output()
        .unwrap();
    assert!(!plain.status.success());
    let text = String::from_utf8_lossy(&plain.stderr);
    assert!(
        text.contains("plain HTTP is only allowed on a loopback address"),
        "{text}"
    );

    // A kubeconfig for another user, minted from the cert dir: authenticated, not authorized.
    let server_url = String::from_utf8_lossy(
        &kubectl(&[
            "config",
            "view",
            "-o",
            "jsonpath={.clusters[0].cluster.server}",
        ])
        .stdout,
    )
    .to_string();
    let alice = dir.path().join("alice.kubeconfig");
    let out = Command::new(env!("CARGO_BIN_EXE_kubelabd"))
        .args([
            "kubeconfig",
            "--user",
            "alice",
            "--group",
            "dev,qa",
            "--server",
        ])
        .arg(&server_url)
        .arg("--cert-dir")
        .arg(dir.path().join("pki"))
        .arg("--out")
        .arg(&alice)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = kubectl_as(
        &alice,
        &["auth", "whoami", "-o", "jsonpath={.status.userInfo}"],
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && text.contains("alice") && text.contains("qa"),
        "{out:?}"
    );
    let out = kubectl_as(&alice, &["get", "pods"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains(r#"User "alice" cannot list resource "pods""#),
        "{out:?}"
    );
}

/// Starts `kubelabd apiserver` with its embedded store (no --etcd-servers) and waits until
/// kubectl reaches it through the written kubeconfig.
fn start_embedded(dir: &Path, kubectl: &Path) -> Proc {
    let kubeconfig = dir.join("admin.kubeconfig");
    let _ = std::fs::remove_file(&kubeconfig);
    let child = Command::new(env!("CARGO_BIN_EXE_kubelabd"))
        .args(["apiserver", "--bind-address", "127.0.0.1", "--port", "0"])
        .arg("--cert-dir")
        .arg(dir.join("pki"))
        .arg("--store-data-dir")
        .arg(dir.join("store"))
        .arg("--kubeconfig-out")
        .arg(&kubeconfig)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("apiserver.log")).unwrap())
        .spawn()
        .expect("spawn kubelabd apiserver");
    let proc = Proc(child);
    wait_until("kubectl via the embedded-store server", || {
        let out = Command::new(kubectl)
            .args(["get", "ns", "default", "-o", "name"])
            .env("KUBECONFIG", &kubeconfig)
            .env("HOME", dir)
            .output()
            .unwrap();
        out.status.success().then_some(())
    });
    proc
}

/// Sends SIGTERM to our own child by PID and waits (bounded) for its exit status.
fn terminate(mut proc: Proc) -> std::process::ExitStatus {
    let pid = libc::pid_t::try_from(proc.0.id()).expect("pid fits");
    // SAFETY: kill(2) on the PID of a child we spawned and have not yet reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    wait_until("kubelabd apiserver to exit after SIGTERM", || {
        proc.0.try_wait().unwrap()
    })
}

#[test]
fn apiserver_embeds_its_store_by_default_and_stops_it_cleanly_on_sigterm() {
    let Some(kubectl) = find("kubectl", &["/usr/local/bin", "/usr/bin"]) else {
        eprintln!("SKIP: kubectl is not installed");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("admin.kubeconfig");
    let run = |args: &[&str]| {
        Command::new(&kubectl)
            .args(args)
            .env("KUBECONFIG", &kubeconfig)
            .env("HOME", dir.path())
            .output()
            .unwrap()
    };
    let server = start_embedded(dir.path(), &kubectl);
    let out = run(&["create", "configmap", "kept", "--from-literal=k=v"]);
    assert!(out.status.success(), "{out:?}");
    let status = terminate(server);
    let log = std::fs::read_to_string(dir.path().join("apiserver.log")).unwrap_or_default();
    assert!(status.success(), "exit {status:?}\n{log}");
    assert!(log.contains("embedded store stopped"), "{log}");

    // Restarted on the same data dir: the object is still there.
    let server = start_embedded(dir.path(), &kubectl);
    let out = run(&["get", "configmap", "kept", "-o", "jsonpath={.data.k}"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "v", "{out:?}");
    assert!(terminate(server).success());
}
