//! Test fixtures shared by the `api` and `kubectl` suites: a real etcd 3.4 on loopback ports
//! with a temp data dir (killed by PID in Drop), the API server in-process on 127.0.0.1:0,
//! an HTTP client, and the one polling primitive [`wait_until`].
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::sync::oneshot;

/// The etcd binary (Debian `etcd-server`).
pub const ETCD: &str = "/usr/bin/etcd";

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
pub fn wait_until<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Async form of [`wait_until`].
pub async fn wait_until_async<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Prints why a test is skipped; true when `binary` is missing.
pub fn missing(binary: &str) -> bool {
    if Path::new(binary).exists() {
        return false;
    }
    eprintln!("SKIP: {binary} is not installed (scripts/setup-host installs it)");
    true
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding an ephemeral loopback port")
}

/// A private etcd on loopback.
pub struct Etcd {
    child: Child,
    dir: tempfile::TempDir,
    /// Client URL.
    pub endpoint: String,
}

impl Etcd {
    /// Starts etcd and waits until it answers `/health`. Ports are picked free just before
    /// the start; if another test grabs one in between, etcd exits and is started again on
    /// new ports (up to 3 attempts).
    pub fn start() -> Etcd {
        for attempt in 1..=3 {
            if let Some(etcd) = Etcd::try_start() {
                return etcd;
            }
            eprintln!("etcd exited during start (attempt {attempt}); retrying on new ports");
        }
        panic!("etcd did not start in 3 attempts");
    }

    fn try_start() -> Option<Etcd> {
        let dir = tempfile::tempdir().expect("temp dir for etcd");
        let (client, peer) = (free_port(), free_port());
        let endpoint = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let log = std::fs::File::create(dir.path().join("etcd.log")).expect("etcd log file");
        let child = Command::new(ETCD)
            .arg("--name=test")
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={endpoint}"))
            .arg(format!("--advertise-client-urls={endpoint}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=test={peer_url}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawning etcd");
        let mut etcd = Etcd {
            child,
            dir,
            endpoint,
        };
        let port = client;
        let healthy = wait_until("etcd /health", Duration::from_secs(20), || {
            if let Ok(Some(_)) = etcd.child.try_wait() {
                return Some(false);
            }
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
            s.write_all(b"GET /health HTTP/1.0\r\n\r\n").ok()?;
            let mut out = String::new();
            s.read_to_string(&mut out).ok()?;
            out.contains("\"health\":\"true\"").then_some(true)
        });
        if !healthy {
            eprintln!("etcd log:\n{}", etcd.log());
        }
        healthy.then_some(etcd)
    }

    /// Kills etcd now (tests of an unreachable store).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The etcd log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        // Our own child, by PID.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The API server running in-process on a loopback port, over its own etcd.
pub struct Server {
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// `http://127.0.0.1:port`.
    pub url: String,
    /// Its store.
    pub etcd: Etcd,
    /// Scratch dir (kubeconfig, manifests).
    pub dir: tempfile::TempDir,
}

impl Server {
    /// Starts etcd and the server (`tweak` adjusts the configuration).
    pub async fn start_with(tweak: impl FnOnce(&mut kubelab_apiserver::Config)) -> Server {
        let etcd = Etcd::start();
        let mut config = kubelab_apiserver::Config::new(vec![etcd.endpoint.clone()]);
        config.bookmark_interval = Duration::from_secs(1);
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = rx.await;
            };
            if let Err(e) = kubelab_apiserver::run(config, listener, shutdown).await {
                eprintln!("API server stopped: {e:?}");
            }
        });
        let server = Server {
            shutdown: Some(tx),
            task: Some(task),
            url,
            etcd,
            dir: tempfile::tempdir().expect("scratch dir"),
        };
        let client = server.client();
        wait_until_async("API server /readyz", Duration::from_secs(30), || {
            let c = client.clone();
            async move { (c.get("/readyz").await.0 == 200).then_some(()) }
        })
        .await;
        server
    }

    /// Starts with the default test configuration.
    pub async fn start() -> Server {
        Server::start_with(|_| {}).await
    }

    /// An HTTP client for this server.
    pub fn client(&self) -> Client {
        Client {
            inner: HyperClient::builder(TokioExecutor::new()).build_http(),
            base: self.url.clone(),
        }
    }

    /// Writes a kubeconfig for kubectl and returns its path.
    pub fn kubeconfig(&self) -> PathBuf {
        let path = self.dir.path().join("kubeconfig");
        kubelab_apiserver::kubeconfig::write(&path, &self.url).expect("writing kubeconfig");
        path
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// A response.
pub struct Resp {
    /// Status code.
    pub code: u16,
    /// Headers.
    pub headers: http::HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl Resp {
    /// The body as JSON (panics with the body text if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Minimal HTTP client.
#[derive(Clone)]
pub struct Client {
    inner: HyperClient<HttpConnector, Full<Bytes>>,
    base: String,
}

impl Client {
    /// Any request.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Resp {
        let mut b = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let resp = self
            .inner
            .request(b.body(Full::new(Bytes::from(body))).expect("request"))
            .await
            .expect("HTTP request");
        let code = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        Resp {
            code,
            headers,
            body,
        }
    }

    /// GET returning (code, JSON or Null).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.send("GET", path, &[], vec![]).await;
        (
            r.code,
            serde_json::from_slice(&r.body).unwrap_or(Value::Null),
        )
    }

    /// A JSON request.
    pub async fn json(&self, method: &str, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .send(
                method,
                path,
                &[("content-type", "application/json")],
                serde_json::to_vec(body).expect("json"),
            )
            .await;
        (
            r.code,
            serde_json::from_slice(&r.body).unwrap_or(Value::Null),
        )
    }

    /// A PATCH with the given patch media type.
    pub async fn patch(&self, path: &str, content_type: &str, body: &Value) -> (u16, Value) {
        let r = self
            .send(
                "PATCH",
                path,
                &[("content-type", content_type)],
                serde_json::to_vec(body).expect("json"),
            )
            .await;
        (
            r.code,
            serde_json::from_slice(&r.body).unwrap_or(Value::Null),
        )
    }

    /// Opens a watch; events arrive on the returned channel, one JSON value per line.
    pub async fn watch(&self, path: &str) -> tokio::sync::mpsc::Receiver<Value> {
        let req = http::Request::builder()
            .uri(format!("{}{path}", self.base))
            .body(Full::new(Bytes::new()))
            .expect("request");
        let resp = self.inner.request(req).await.expect("watch request");
        assert_eq!(resp.status().as_u16(), 200, "watch {path} refused");
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        let mut body = resp.into_body();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            while let Some(Ok(frame)) = body.frame().await {
                if let Some(data) = frame.data_ref() {
                    buf.extend_from_slice(data);
                    while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = buf.drain(..=pos).collect();
                        if let Ok(v) = serde_json::from_slice::<Value>(&line)
                            && tx.send(v).await.is_err()
                        {
                            return;
                        }
                    }
                }
            }
        });
        rx
    }
}

/// Receives the next watch event within a deadline.
pub async fn next_event(rx: &mut tokio::sync::mpsc::Receiver<Value>) -> Value {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a watch event within 10s")
        .expect("watch stream open")
}

/// A namespace-creating helper.
pub async fn namespace(c: &Client, name: &str) {
    let (code, body) = c
        .json("POST", "/api/v1/namespaces", &serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}))
        .await;
    assert_eq!(code, 201, "{body}");
}

/// A minimal valid pod.
pub fn pod(name: &str) -> Value {
    serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]},
    })
}
