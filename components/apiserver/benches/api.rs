//! API server latency and throughput over real etcd 3.4, next to the store itself.
//!
//! `cargo bench -p kubelab-apiserver --bench api` (release build). Starts a private etcd and the
//! server in-process on loopback, then measures, with 1 and 32 concurrent clients: create, get,
//! update (p50/p99 latency, requests/s); list of 10,000 pods as JSON and as the Table kubectl
//! asks for; watch delivery latency (write acknowledged → event received); process RSS while
//! holding 10,000 pods. The named peer is the store: the same put/get through etcd-client
//! directly, printed side by side with the ratio API server / store. Prints markdown.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

fn pct(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

struct Stat {
    p50: Duration,
    p99: Duration,
    per_sec: f64,
}

/// Runs `total` operations over `clients` concurrent tasks; `op(i)` performs operation i.
async fn measure<F, Fut>(clients: usize, total: usize, op: F) -> Stat
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
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
                let t = Instant::now();
                op(i).await;
                lat.push(t.elapsed());
                i += clients;
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("bench task"));
    }
    let elapsed = start.elapsed();
    Stat {
        p50: pct(all.clone(), 0.50),
        p99: pct(all, 0.99),
        per_sec: total as f64 / elapsed.as_secs_f64(),
    }
}

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
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

fn pod(name: &str) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "bench"}},
           "spec": {"containers": [{"name": "c", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}]}})
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    if support::missing(support::ETCD) {
        return;
    }
    let ops: usize = std::env::var("BENCH_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(640);
    let big: usize = std::env::var("BENCH_LIST")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let s = support::Server::start().await;
    let c = s.client();
    support::namespace(&c, "bench").await;
    let etcd = etcd_client::Client::connect(s.store.endpoints(), None)
        .await
        .expect("etcd");
    println!(
        "| operation | clients | API server p50 ms | p99 ms | req/s | store p50 ms | p99 ms | ops/s | p50 ratio |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for clients in [1usize, 32] {
        let tag = format!("c{clients}");
        // create
        let cc = c.clone();
        let t = tag.clone();
        let api = measure(clients, ops, move |i| {
            let (cc, t) = (cc.clone(), t.clone());
            async move {
                let (code, body) = cc
                    .json(
                        "POST",
                        "/api/v1/namespaces/bench/pods",
                        &pod(&format!("{t}-{i}")),
                    )
                    .await;
                assert_eq!(code, 201, "{body}");
            }
        })
        .await;
        let ec = etcd.clone();
        let t = tag.clone();
        let store = measure(clients, ops, move |i| {
            let (mut ec, t) = (ec.clone(), t.clone());
            async move {
                let v = serde_json::to_vec(&pod(&format!("{t}-{i}"))).unwrap();
                ec.put(format!("/bench/{t}/{i}"), v, None)
                    .await
                    .expect("put");
            }
        })
        .await;
        row("create", clients, &api, &store);
        // get
        let cc = c.clone();
        let t = tag.clone();
        let api = measure(clients, ops, move |i| {
            let (cc, t) = (cc.clone(), t.clone());
            async move {
                let (code, _) = cc
                    .get(&format!("/api/v1/namespaces/bench/pods/{t}-{i}"))
                    .await;
                assert_eq!(code, 200);
            }
        })
        .await;
        let ec = etcd.clone();
        let t = tag.clone();
        let store = measure(clients, ops, move |i| {
            let (mut ec, t) = (ec.clone(), t.clone());
            async move {
                ec.get(format!("/bench/{t}/{i}"), None).await.expect("get");
            }
        })
        .await;
        row("get", clients, &api, &store);
        // update (merge patch: read-modify-write inside the server)
        let cc = c.clone();
        let t = tag.clone();
        let api = measure(clients, ops, move |i| {
            let (cc, t) = (cc.clone(), t.clone());
            async move {
                let (code, _) = cc
                    .patch(
                        &format!("/api/v1/namespaces/bench/pods/{t}-{i}"),
                        "application/merge-patch+json",
                        &json!({"metadata": {"labels": {"u": "1"}}}),
                    )
                    .await;
                assert_eq!(code, 200);
            }
        })
        .await;
        let ec = etcd.clone();
        let t = tag.clone();
        let store = measure(clients, ops, move |i| {
            let (mut ec, t) = (ec.clone(), t.clone());
            async move {
                let v = serde_json::to_vec(&pod(&format!("{t}-{i}-u"))).unwrap();
                ec.put(format!("/bench/{t}/{i}"), v, None)
                    .await
                    .expect("put");
            }
        })
        .await;
        row("update", clients, &api, &store);
    }

    // Watch delivery: time from a write's response to its event on an open watch.
    let (_, list) = c.get("/api/v1/namespaces/bench/pods?limit=1").await;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let mut rx = c
        .watch(&format!(
            "/api/v1/namespaces/bench/configmaps?watch=1&resourceVersion={rv}"
        ))
        .await;
    let mut lat = Vec::new();
    for i in 0..200 {
        let t = Instant::now();
        let (code, _) = c
            .json(
                "POST",
                "/api/v1/namespaces/bench/configmaps",
                &json!({"metadata": {"name": format!("w{i}")}}),
            )
            .await;
        assert_eq!(code, 201);
        support::next_event(&mut rx).await;
        lat.push(t.elapsed());
    }
    println!(
        "\nwatch delivery (create sent → event received, 1 writer): p50 {} ms, p99 {} ms",
        ms(pct(lat.clone(), 0.5)),
        ms(pct(lat, 0.99))
    );

    // 10,000 pods: fill, list, memory.
    let have = 2 * ops;
    let cc = c.clone();
    let fill = measure(32, big.saturating_sub(have), move |i| {
        let cc = cc.clone();
        async move {
            let (code, body) = cc
                .json(
                    "POST",
                    "/api/v1/namespaces/bench/pods",
                    &pod(&format!("fill-{i}")),
                )
                .await;
            assert_eq!(code, 201, "{body}");
        }
    })
    .await;
    println!(
        "fill to {big} pods at 32 clients: {:.0} creates/s",
        fill.per_sec
    );
    let t = Instant::now();
    let r = c.send("GET", "/api/v1/pods", &[], vec![]).await;
    let json_time = t.elapsed();
    assert_eq!(
        r.code,
        200,
        "{}",
        String::from_utf8_lossy(&r.body[..r.body.len().min(500)])
    );
    let n = r.json()["items"].as_array().map(|a| a.len()).unwrap_or(0);
    let t = Instant::now();
    let r2 = c
        .send(
            "GET",
            "/api/v1/pods?limit=500",
            &[(
                "accept",
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
            )],
            vec![],
        )
        .await;
    let mut pages = 1;
    let mut cont = r2.json()["metadata"]["continue"]
        .as_str()
        .map(str::to_string);
    while let Some(tok) = cont {
        let r = c
            .send(
                "GET",
                &format!("/api/v1/pods?limit=500&continue={tok}"),
                &[(
                    "accept",
                    "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
                )],
                vec![],
            )
            .await;
        cont = r.json()["metadata"]["continue"]
            .as_str()
            .map(str::to_string);
        pages += 1;
    }
    let table_time = t.elapsed();
    println!(
        "list {n} pods: JSON {} ms ({} MB); Table in {pages} pages of 500 (what `kubectl get pods -A` does): {} ms",
        ms(json_time),
        r.body.len() / 1_000_000,
        ms(table_time)
    );
    println!(
        "process RSS (API server + bench client, in one process) holding {n} pods in the store: {:.0} MB",
        rss_mb()
    );
}

fn row(op: &str, clients: usize, api: &Stat, store: &Stat) {
    println!(
        "| {op} | {clients} | {} | {} | {:.0} | {} | {} | {:.0} | {:.1}x |",
        ms(api.p50),
        ms(api.p99),
        api.per_sec,
        ms(store.p50),
        ms(store.p99),
        store.per_sec,
        api.p50.as_secs_f64() / store.p50.as_secs_f64().max(1e-9)
    );
}
