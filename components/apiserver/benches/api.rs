//! API server latency and throughput on the embedded kubelab store and on real etcd 3.4, side
//! by side in one run.
//!
//! `cargo bench -p kubelab-apiserver --bench api` (release build). For each backend
//! (`BENCH_BACKENDS`, default `embedded,etcd`) the bench starts the server in a child process
//! of its own (the bench binary re-run with `BENCH_SERVER=<backend>`: the API server over
//! HTTPS on loopback with, for `embedded`, the store in the same process; for `etcd`, a
//! private etcd 3.4 child of that child), so the server's resident memory is measured
//! without the bench client's. The client measures, with 1 and 32 concurrent clients:
//! create, get, update (merge patch), list (pages of 50) and watch delivery (how long after a
//! write's acknowledgement its event arrives on the writer's own watch; 0 when it was
//! already there) — p50/p99 latency, requests/s and the server's CPU time per operation
//! (user + system of the server process, plus etcd's for that backend: on a shared machine
//! this moves far less with other load than latency does) and the bench client's own CPU time
//! per operation (the other half of a closed loop on 2 shared cores; requests are timed up
//! to the whole body received, responses parsed after the clock stopped, list pages
//! parsed on every 8th request). Before those rows it fills a namespace of its own with
//! `BENCH_LIST` (10,000) pods, reads the RSS of the server process (and of etcd) holding
//! exactly them, and times a list of all of them as JSON, as the Table pages `kubectl get pods
//! -A` fetches, and the real `kubectl get pods -A` when installed; the RSS is read again at
//! the end. Prints one markdown table with both backends side by side and the
//! ratio embedded/etcd of p99.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn pct(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: f64) -> String {
    format!("{d:.2}")
}

/// One measured row: p50/p99 in milliseconds, requests per second.
fn stat(lat: Vec<Duration>, elapsed: Duration) -> Value {
    let n = lat.len();
    json!({
        "p50": pct(lat.clone(), 0.50).as_secs_f64() * 1000.0,
        "p99": pct(lat, 0.99).as_secs_f64() * 1000.0,
        "per_sec": n as f64 / elapsed.as_secs_f64(),
    })
}

/// Runs `total` operations over `clients` concurrent tasks; `op(i)` performs operation i and
/// returns its latency (usually the time of the call).
async fn measure<F, Fut>(clients: usize, total: usize, op: F) -> Value
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Duration> + Send,
{
    let op = Arc::new(op);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = c;
            while i < total {
                lat.push(op(i).await);
                i += clients;
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("bench task"));
    }
    stat(all, start.elapsed())
}

/// CPU time (user + system, all threads) used so far by these processes, in ms: the
/// server's cost per operation, which load from other processes on a shared machine moves
/// far less than it moves latency.
fn cpu_ms(pids: &[u32]) -> f64 {
    let tick_ms = 1000.0 / 100.0; // USER_HZ is 100 on Linux
    pids.iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).ok())
        .filter_map(|s| {
            // Fields after the command name in parentheses: utime is the 12th, stime the 13th.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?)
        })
        .sum::<f64>()
        * tick_ms
}

/// [`measure`], adding the server's CPU time per operation (`cpu_ms_per_op`) and the bench
/// client's own (`client_cpu_ms_per_op`: this process — TLS, HTTP, building requests and
/// checking responses), which shares the 2 cores with the server: closed-loop latency at 32
/// clients is about 32 / throughput, and throughput about cores / (server + client CPU).
async fn row<F, Fut>(pids: &[u32], clients: usize, total: usize, op: F) -> Value
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Duration> + Send,
{
    let me = [std::process::id()];
    let (before, client_before) = (cpu_ms(pids), cpu_ms(&me));
    let mut v = measure(clients, total, op).await;
    let n = total.max(1) as f64;
    v["cpu_ms_per_op"] = json!((cpu_ms(pids) - before) / n);
    v["client_cpu_ms_per_op"] = json!((cpu_ms(&me) - client_before) / n);
    v
}

/// One request, timed from sending it to its whole body received (the server's latency as
/// the client sees it); the caller parses and checks the response after the clock stopped.
async fn timed(
    c: &support::Client,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (Duration, support::Resp) {
    let start = Instant::now();
    let r = c.send(method, path, headers, body).await;
    (start.elapsed(), r)
}

const JSON: [(&str, &str); 1] = [("content-type", "application/json")];

/// Resident memory of a process in MB.
fn rss_mb(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<f64>()
                    .unwrap_or(0.0)
            })
        })
        .unwrap_or(0.0)
        / 1024.0
}

fn pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "bench"}},
           "spec": {"containers": [{"name": "c", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}]}})
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A list response as the list row checks it: its items counted, not kept.
#[derive(serde::Deserialize)]
struct Page {
    items: Vec<serde::de::IgnoredAny>,
}

const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";

/// Everything measured on one backend, as JSON for the parent.
async fn bench(server: &ServerChild) -> Value {
    // 4,800 per row: 32 requests are in flight at once, so one scheduling stall delays 32
    // samples — 5 % of a row of 640, which made every 32-client p99 the length of one stall.
    let ops = env_usize("BENCH_OPS", 4800);
    let big = env_usize("BENCH_LIST", 10_000);
    let c = support::client_from_kubeconfig(&server.kubeconfig);
    let held = hold(&c, server, big).await;
    support::namespace(&c, "bench").await;
    let pids: Vec<u32> = std::iter::once(server.child.id())
        .chain(server.etcd_pid)
        .collect();
    let mut rows = BTreeMap::new();
    for clients in [1usize, 32] {
        let tag = format!("c{clients}");
        let (cc, t) = (c.clone(), tag.clone());
        let create = row(&pids, clients, ops, move |i| {
            let (cc, t) = (cc.clone(), t.clone());
            async move {
                let name = format!("{t}-{i}");
                let body = serde_json::to_vec(&pod(&name)).expect("json");
                let (took, r) =
                    timed(&cc, "POST", "/api/v1/namespaces/bench/pods", &JSON, body).await;
                assert_eq!(r.code, 201, "{}", String::from_utf8_lossy(&r.body));
                assert_eq!(r.json()["metadata"]["name"], name.as_str());
                took
            }
        })
        .await;
        let (cc, t) = (c.clone(), tag.clone());
        let get = row(&pids, clients, ops, move |i| {
            let (cc, t) = (cc.clone(), t.clone());
            async move {
                let name = format!("{t}-{i}");
                let path = format!("/api/v1/namespaces/bench/pods/{name}");
                let (took, r) = timed(&cc, "GET", &path, &[], vec![]).await;
                assert_eq!(r.code, 200);
                assert_eq!(r.json()["metadata"]["name"], name.as_str());
                took
            }
        })
        .await;
        let (cc, t) = (c.clone(), tag.clone());
        let update = row(&pids, clients, ops, move |i| {
            let (cc, t) = (cc.clone(), t.clone());
            async move {
                let path = format!("/api/v1/namespaces/bench/pods/{t}-{i}");
                let body = br#"{"metadata":{"labels":{"u":"1"}}}"#.to_vec();
                let patch = [("content-type", "application/merge-patch+json")];
                let (took, r) = timed(&cc, "PATCH", &path, &patch, body).await;
                assert_eq!(r.code, 200);
                assert_eq!(r.json()["metadata"]["labels"]["u"], "1");
                took
            }
        })
        .await;
        let cc = c.clone();
        // As many lists as other rows: with 160 the p99 was the 2nd-slowest list, set by one
        // scheduling stall.
        let list = row(&pids, clients, ops, move |i| {
            let cc = cc.clone();
            async move {
                let path = "/api/v1/namespaces/bench/pods?limit=50";
                let (took, r) = timed(&cc, "GET", path, &[], vec![]).await;
                assert_eq!(r.code, 200);
                // A 50-pod page is ~70 KB: every 8th is parsed and counted, so that the
                // client's own parsing does not take the cores the server is measured on;
                // parsed as a whole (the JSON is checked) but without building a tree.
                if i % 8 == 0 {
                    let page: Page = serde_json::from_slice(&r.body).expect("a JSON list");
                    assert_eq!(page.items.len(), 50, "a page of limit=50");
                }
                took
            }
        })
        .await;
        // Watch delivery: each writer has its own watch on its own label, and times its
        // write's acknowledgement → its event.
        let mut watches = Vec::new();
        for w in 0..clients {
            let (_, l) = c.get("/api/v1/namespaces/bench/configmaps?limit=1").await;
            let rv = l["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .to_string();
            let rx = c
                .watch(&format!(
                    "/api/v1/namespaces/bench/configmaps?watch=1&resourceVersion={rv}&labelSelector=w%3D{tag}-{w}"
                ))
                .await;
            watches.push(tokio::sync::Mutex::new(rx));
        }
        let watches = Arc::new(watches);
        let (cc, t) = (c.clone(), tag.clone());
        let watch = row(&pids, clients, ops / 2, move |i| {
            let (cc, t, watches) = (cc.clone(), t.clone(), watches.clone());
            async move {
                let w = i % clients;
                let mut rx = watches[w].lock().await;
                let body = json!({"metadata": {"name": format!("{t}-w{i}"), "labels": {"w": format!("{t}-{w}")}}});
                let start = Instant::now();
                let (code, _) = cc
                    .json("POST", "/api/v1/namespaces/bench/configmaps", &body)
                    .await;
                assert_eq!(code, 201);
                let acked = start.elapsed();
                let ev = support::next_event(&mut rx).await;
                assert_eq!(ev["type"], "ADDED", "{ev}");
                start.elapsed() - acked
            }
        })
        .await;
        for (op, v) in [
            ("create", create),
            ("get", get),
            ("update (merge patch)", update),
            ("list (limit 50)", list),
            ("watch delivery", watch),
        ] {
            rows.insert(format!("{clients:02}|{op}"), v);
        }
    }

    let mut out = held;
    out["rows"] = json!(rows);
    out["rss_end_mb"] = json!(rss_mb(&server.child.id().to_string()));
    out
}

/// The 10,000 pods (`BENCH_LIST`), in a namespace of their own and before any latency row, so
/// that the memory is measured holding exactly them (one version each, as after a
/// compaction): fill, RSS, a list of all as JSON, the Table pages `kubectl get pods -A`
/// fetches, the real kubectl, RSS after the lists.
async fn hold(c: &support::Client, server: &ServerChild, big: usize) -> Value {
    support::namespace(c, "big").await;
    let cc = c.clone();
    let fill = measure(32, big, move |i| {
        let cc = cc.clone();
        async move {
            let start = Instant::now();
            let (code, body) = cc
                .json(
                    "POST",
                    "/api/v1/namespaces/big/pods",
                    &pod(&format!("fill-{i}")),
                )
                .await;
            assert_eq!(code, 201, "{body}");
            start.elapsed()
        }
    })
    .await;
    // Memory holding the pods, before any big list response is built.
    let held_mb = rss_mb(&server.child.id().to_string());
    let t = Instant::now();
    let r = c.send("GET", "/api/v1/pods", &[], vec![]).await;
    let json_ms = t.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(r.code, 200);
    let n = r.json()["items"].as_array().map(|a| a.len()).unwrap_or(0);
    let json_mb = r.body.len() as f64 / 1e6;
    drop(r);
    // What `kubectl get pods -A` asks for: Table pages of 500 until no continue token (one
    // page here: Tables are sent whole unless the server honours their limit).
    let t = Instant::now();
    let mut pages = 0;
    let mut cont: Option<String> = None;
    loop {
        let path = match &cont {
            None => "/api/v1/pods?limit=500".to_string(),
            Some(tok) => format!("/api/v1/pods?limit=500&continue={tok}"),
        };
        let r = c.send("GET", &path, &[("accept", TABLE)], vec![]).await;
        assert_eq!(r.code, 200);
        pages += 1;
        cont = r.json()["metadata"]["continue"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        if cont.is_none() {
            break;
        }
    }
    let table_ms = t.elapsed().as_secs_f64() * 1000.0;
    // The real kubectl, when installed (its own start-up and discovery included; the
    // discovery cache is warmed by a first run). Median of 3 runs each: as users type it
    // (pages of 500), and with `--chunk-size=0` (one request). `-v=3` makes client-go log
    // each wait of its own rate limiter (QPS 5, burst 10 by default; both log formats:
    // `support::kubectl_log`), which puts a floor of ~1.5-2 s under 20 pages against a server
    // that pages Tables (`--honor-table-limit`; ours sends a Table whole by default); the sum
    // of those waits is reported, and the wall time without them.
    let kubectl = ["/usr/local/bin/kubectl", "/usr/bin/kubectl"]
        .into_iter()
        .find(|p| std::path::Path::new(p).is_file());
    let kubectl_runs = kubectl.map(|k| {
        let run = |extra: &[&str]| {
            let t = Instant::now();
            let out = std::process::Command::new(k)
                .args(["get", "pods", "-A", "--no-headers", "-v=3"])
                .args(extra)
                .env("KUBECONFIG", &server.kubeconfig)
                .env("HOME", server.kubeconfig.parent().expect("scratch dir"))
                .output()
                .expect("kubectl");
            let wall = t.elapsed().as_secs_f64() * 1000.0;
            assert!(out.status.success(), "{out:?}");
            let lines = out.stdout.iter().filter(|b| **b == b'\n').count();
            assert_eq!(lines, n, "kubectl listed {lines} pods");
            (
                wall,
                support::kubectl_log::throttled_ms(&String::from_utf8_lossy(&out.stderr)),
            )
        };
        run(&[]);
        let median = |extra: &[&str]| {
            let mut v: Vec<(f64, f64)> = (0..3).map(|_| run(extra)).collect();
            v.sort_by(|a, b| a.0.total_cmp(&b.0));
            v[1]
        };
        (median(&[]), median(&["--chunk-size=0"]))
    });
    let kubectl_ms = kubectl_runs.map(|r| r.0.0);
    let server_mb = rss_mb(&server.child.id().to_string());
    let store_mb = server.etcd_pid.map_or(0.0, |p| rss_mb(&p.to_string()));
    json!({
        "fill_per_sec": fill["per_sec"],
        "pods": n,
        "list_json_ms": json_ms,
        "list_json_mb": json_mb,
        "list_table_ms": table_ms,
        "table_pages": pages,
        "kubectl_ms": kubectl_ms,
        "kubectl_throttled_ms": kubectl_runs.map(|r| r.0.1),
        "kubectl_one_request_ms": kubectl_runs.map(|r| r.1.0),
        "rss_process_mb": server_mb,
        "rss_held_mb": held_mb,
        "rss_etcd_mb": store_mb,
    })
}

fn backend(name: &str) -> support::Backend {
    match name {
        "embedded" => support::Backend::Embedded,
        "etcd" => support::Backend::Etcd,
        "store3" => support::Backend::Store3,
        other => panic!("BENCH_BACKENDS: unknown backend {other:?} (embedded, etcd, store3)"),
    }
}

/// The server child: its admin kubeconfig, its process, its etcd's pid. Stopped (stdin
/// closed → clean shutdown, then waited for) on drop.
struct ServerChild {
    child: std::process::Child,
    kubeconfig: std::path::PathBuf,
    etcd_pid: Option<u32>,
}

impl ServerChild {
    fn start(name: &str) -> ServerChild {
        use std::io::BufRead as _;
        let mut child = std::process::Command::new(std::env::current_exe().expect("own path"))
            .env("BENCH_SERVER", name)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("start the server child");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("server child line");
        let fields: BTreeMap<&str, &str> = line
            .split_whitespace()
            .filter_map(|f| f.split_once('='))
            .collect();
        let kubeconfig = fields
            .get("kubeconfig")
            .unwrap_or_else(|| panic!("server child said {line:?}"))
            .into();
        let etcd_pid = fields.get("etcd_pid").and_then(|p| p.parse().ok());
        ServerChild {
            child,
            kubeconfig,
            etcd_pid,
        }
    }
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// `BENCH_SERVER` mode: serve until stdin closes.
fn serve(name: &str) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let s = support::Server::start_on(backend(name)).await;
        let etcd_pid = match &s.store {
            support::Store::Etcd(e) => e.pid().to_string(),
            _ => "-".into(),
        };
        println!(
            "kubeconfig={} etcd_pid={etcd_pid}",
            s.admin_kubeconfig.display()
        );
        tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
        })
        .await
        .expect("stdin");
        drop(s);
    });
}

fn main() {
    if let Ok(name) = std::env::var("BENCH_SERVER") {
        serve(&name);
        return;
    }
    let names: Vec<String> = std::env::var("BENCH_BACKENDS")
        .unwrap_or_else(|_| "embedded,etcd".into())
        .split(',')
        .map(str::to_string)
        .collect();
    // The client side of the closed loop on one thread: it needs well under a core (0.1 ms
    // of CPU per 70 KB page), and a multi-thread runtime's two workers only added thread
    // hand-offs and wake-ups on the cores the server is measured on.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut results = Vec::new();
    for name in &names {
        if backend(name).missing() {
            return;
        }
        eprintln!("bench: {name} ...");
        let server = ServerChild::start(name);
        results.push(rt.block_on(bench(&server)));
    }
    print_table(&names, &results);
}

fn print_table(names: &[String], results: &[Value]) {
    let mut head = "| operation | clients |".to_string();
    let mut rule = "|---|---|".to_string();
    for n in names {
        head += &format!(
            " {n} p50 ms | {n} p99 ms | {n} req/s | {n} server CPU ms/op | {n} client CPU ms/op |"
        );
        rule += "---|---|---|---|---|";
    }
    if names.len() == 2 {
        head += &format!(" p99 {}/{} |", names[0], names[1]);
        rule += "---|";
    }
    println!("{head}\n{rule}");
    let rows = results[0]["rows"].as_object().expect("rows");
    for key in rows.keys() {
        let (clients, op) = key.split_once('|').unwrap();
        let mut line = format!("| {op} | {} |", clients.trim_start_matches('0'));
        for r in results {
            let v = &r["rows"][key];
            line += &format!(
                " {} | {} | {:.0} | {:.2} | {:.2} |",
                ms(v["p50"].as_f64().unwrap()),
                ms(v["p99"].as_f64().unwrap()),
                v["per_sec"].as_f64().unwrap(),
                v["cpu_ms_per_op"].as_f64().unwrap_or(0.0),
                v["client_cpu_ms_per_op"].as_f64().unwrap_or(0.0)
            );
        }
        if results.len() == 2 {
            let a = results[0]["rows"][key]["p99"].as_f64().unwrap();
            let b = results[1]["rows"][key]["p99"].as_f64().unwrap();
            line += &format!(" {:.2}x |", a / b.max(1e-9));
        }
        println!("{line}");
    }
    println!();
    for (n, r) in names.iter().zip(results) {
        println!(
            "- {n}: fill to {} pods at 32 clients {:.0} creates/s; list of all as JSON {:.0} ms ({:.1} MB); as `kubectl get pods -A` asks for it (Table, limit=500: {} page(s)) {:.0} ms; the real `kubectl get pods -A` {} ms (median of 3; client-go rate-limiter waits {} ms, wall minus waits {} ms; with `--chunk-size=0`, one request: {} ms); RSS of the server process (API server{}) holding them {:.0} MB, after the lists {:.0} MB{}; at the end of the run (the rows' pods and their history added) {:.0} MB",
            r["pods"],
            r["fill_per_sec"].as_f64().unwrap_or(0.0),
            r["list_json_ms"].as_f64().unwrap_or(0.0),
            r["list_json_mb"].as_f64().unwrap_or(0.0),
            r["table_pages"],
            r["list_table_ms"].as_f64().unwrap_or(0.0),
            r["kubectl_ms"]
                .as_f64()
                .map_or("(not installed)".to_string(), |v| format!("{v:.0}")),
            r["kubectl_throttled_ms"].as_f64().unwrap_or(0.0).round(),
            (r["kubectl_ms"].as_f64().unwrap_or(0.0)
                - r["kubectl_throttled_ms"].as_f64().unwrap_or(0.0))
            .round(),
            r["kubectl_one_request_ms"].as_f64().unwrap_or(0.0).round(),
            if n == "embedded" {
                " + embedded store"
            } else {
                ""
            },
            r["rss_held_mb"].as_f64().unwrap_or(0.0),
            r["rss_process_mb"].as_f64().unwrap_or(0.0),
            match r["rss_etcd_mb"].as_f64() {
                Some(e) if e > 0.0 => format!(", etcd process {e:.0} MB"),
                _ => String::new(),
            },
            r["rss_end_mb"].as_f64().unwrap_or(0.0),
        );
    }
}
