//! Test fixtures shared by the `api`, `kubectl` and `security` suites: a real etcd 3.4 on
//! loopback ports with a temp data dir (killed by PID in Drop), the API server in-process on
//! 127.0.0.1:0 over HTTPS with its own cert dir (or plain HTTP on loopback when a test asks),
//! HTTPS clients holding the admin's or any user's client certificate, a bearer token, or
//! nothing, and the one polling primitive [`wait_until`].
#![allow(dead_code)]

pub mod kubectl_log;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kubelab_apiserver::pki;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
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
    kubelab_store::ports::unused_loopback_port().expect("a free loopback port")
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

    /// The etcd process id (benchmarks read its memory).
    pub fn pid(&self) -> u32 {
        self.child.id()
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

/// The static token every test server accepts for [`ADMIN_TOKEN_USER`] (in `system:masters`).
pub const ADMIN_TOKEN: &str = "admin-token-for-tests";
/// The user of [`ADMIN_TOKEN`].
pub const ADMIN_TOKEN_USER: &str = "token-admin";
/// A token of an unprivileged user, [`DEV_TOKEN_USER`] in groups `dev-team` and `qa`.
pub const DEV_TOKEN: &str = "dev-token-for-tests";
/// The user of [`DEV_TOKEN`].
pub const DEV_TOKEN_USER: &str = "token-dev";

/// The API server running in-process on a loopback port, over its own etcd.
pub struct Server {
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// `https://127.0.0.1:port` (or `http://` in plain mode).
    pub url: String,
    /// Its store.
    pub store: Store,
    /// Scratch dir (cert dir `pki/`, admin kubeconfig, token file, manifests).
    pub dir: tempfile::TempDir,
    /// The admin kubeconfig the server wrote.
    pub admin_kubeconfig: PathBuf,
    /// The token file (`--token-auth-file`); tests may append lines before start.
    pub token_file: PathBuf,
}

impl Server {
    /// Starts etcd and the server (`tweak` adjusts the configuration).
    pub async fn start_with(tweak: impl FnOnce(&mut kubelab_apiserver::Config)) -> Server {
        Server::start_with_tokens(&[], tweak).await
    }

    /// Starts the server on the given store backend.
    pub async fn start_on(backend: Backend) -> Server {
        Server::start_full(backend, &[], |_| {}).await
    }

    /// Starts with extra token file lines (`token,user,uid,"groups"`).
    pub async fn start_with_tokens(
        tokens: &[&str],
        tweak: impl FnOnce(&mut kubelab_apiserver::Config),
    ) -> Server {
        Server::start_full(Backend::Etcd, tokens, tweak).await
    }

    /// Starts the backend, then the server over it.
    pub async fn start_full(
        backend: Backend,
        tokens: &[&str],
        tweak: impl FnOnce(&mut kubelab_apiserver::Config),
    ) -> Server {
        let dir = tempfile::tempdir().expect("scratch dir");
        let store = match backend {
            Backend::Etcd => Store::Etcd(Etcd::start()),
            Backend::Embedded => Store::Embedded,
            Backend::Store3 => Store::Cluster(StoreCluster::start(3).await),
        };
        let token_file = dir.path().join("tokens.csv");
        let mut lines = vec![
            format!("{ADMIN_TOKEN},{ADMIN_TOKEN_USER},100,system:masters"),
            format!("{DEV_TOKEN},{DEV_TOKEN_USER},201,\"dev-team,qa\""),
        ];
        lines.extend(tokens.iter().map(|t| t.to_string()));
        std::fs::write(&token_file, lines.join("\n")).expect("token file");
        let admin_kubeconfig = dir.path().join("admin.kubeconfig");
        let mut config = match &store {
            Store::Embedded => kubelab_apiserver::Config::embedded(
                dir.path().join("store"),
                dir.path().join("pki"),
            ),
            other => kubelab_apiserver::Config::new(other.endpoints(), dir.path().join("pki")),
        };
        config.bookmark_interval = Duration::from_secs(1);
        config.security.token_auth_file = Some(token_file.clone());
        config.security.admin_kubeconfig = Some(admin_kubeconfig.clone());
        tweak(&mut config);
        let plain = config.security.plain_http;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let scheme = if plain { "http" } else { "https" };
        let url = format!("{scheme}://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = oneshot::channel::<()>();
        let (done_tx, mut done_rx) = oneshot::channel::<String>();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = rx.await;
            };
            if let Err(e) = kubelab_apiserver::run(config, listener, shutdown).await {
                let _ = done_tx.send(format!("{e:?}"));
            }
        });
        let server = Server {
            shutdown: Some(tx),
            task: Some(task),
            url,
            store,
            dir,
            admin_kubeconfig,
            token_file,
        };
        let kubeconfig = server.admin_kubeconfig.clone();
        wait_until_async("the admin kubeconfig", Duration::from_secs(60), || {
            let ready = kubeconfig.exists();
            let failed = done_rx.try_recv().ok();
            async move {
                if let Some(e) = failed {
                    panic!("API server failed to start: {e}");
                }
                ready.then_some(())
            }
        })
        .await;
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

    /// Whether the server serves plain HTTP.
    pub fn plain(&self) -> bool {
        self.url.starts_with("http://")
    }

    /// The cluster CA certificate, PEM.
    pub fn ca_pem(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pki/ca.crt")).expect("ca.crt")
    }

    /// The admin client (the kubeconfig's client certificate; the admin token in plain mode).
    pub fn client(&self) -> Client {
        if self.plain() {
            return self.token_client(ADMIN_TOKEN);
        }
        let (cert, key) = kubeconfig_credentials(&self.admin_kubeconfig);
        Client::new(&self.url, Some(&self.ca_pem()), Some((&cert, &key)), None)
    }

    /// A client presenting a fresh client certificate for `user` in `groups`, issued by the
    /// cluster CA; also returns a kubeconfig file for it (for kubectl).
    pub fn user(&self, user: &str, groups: &[&str]) -> (Client, PathBuf) {
        let ca = pki::load_ca(&pki::CertDir::new(self.dir.path().join("pki"))).expect("CA");
        let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        let text = kubelab_apiserver::kubeconfig::for_user(
            &ca,
            &self.url,
            user,
            &groups,
            pki::Validity::from_now(Duration::from_secs(3600)),
        )
        .expect("kubeconfig");
        let path = self.dir.path().join(format!("{user}.kubeconfig"));
        kubelab_apiserver::kubeconfig::write(&path, &text).expect("write kubeconfig");
        let (cert, key) = kubeconfig_credentials(&path);
        (
            Client::new(&self.url, Some(&self.ca_pem()), Some((&cert, &key)), None),
            path,
        )
    }

    /// A client presenting a bearer token (and trusting the cluster CA).
    pub fn token_client(&self, token: &str) -> Client {
        let ca = (!self.plain()).then(|| self.ca_pem());
        Client::new(&self.url, ca.as_deref(), None, Some(token))
    }

    /// A client with no credentials (trusting the cluster CA).
    pub fn anonymous(&self) -> Client {
        let ca = (!self.plain()).then(|| self.ca_pem());
        Client::new(&self.url, ca.as_deref(), None, None)
    }

    /// The admin kubeconfig for kubectl.
    pub fn kubeconfig(&self) -> PathBuf {
        self.admin_kubeconfig.clone()
    }
}

/// An HTTPS client from a kubeconfig file (its server, CA and client certificate).
pub fn client_from_kubeconfig(path: &Path) -> Client {
    let text = std::fs::read_to_string(path).expect("kubeconfig");
    let v: Value = serde_yaml_ng::from_str(&text).expect("kubeconfig YAML");
    let cluster = &v["clusters"][0]["cluster"];
    let server = cluster["server"].as_str().expect("server");
    let ca = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(
                cluster["certificate-authority-data"]
                    .as_str()
                    .expect("CA data"),
            )
            .expect("base64"),
    )
    .expect("CA PEM");
    let (cert, key) = kubeconfig_credentials(path);
    Client::new(server, Some(&ca), Some((&cert, &key)), None)
}

/// The client certificate and key PEM of a kubeconfig's first user.
pub fn kubeconfig_credentials(path: &Path) -> (String, String) {
    let text = std::fs::read_to_string(path).expect("kubeconfig");
    let v: Value = serde_yaml_ng::from_str(&text).expect("kubeconfig YAML");
    let field = |f: &str| {
        let b = v["users"][0]["user"][f]
            .as_str()
            .expect("client credential field");
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(b)
                .expect("base64"),
        )
        .expect("PEM")
    };
    (field("client-certificate-data"), field("client-key-data"))
}

impl Server {
    /// The etcd of an etcd-backed server (tests that stop or read the store directly).
    pub fn etcd(&mut self) -> &mut Etcd {
        match &mut self.store {
            Store::Etcd(e) => e,
            _ => panic!("this test needs Server::start (etcd backend)"),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let Some(task) = self.task.take() else {
            return;
        };
        // An embedded store stops when `run` returns: wait for that (bounded) so its data dir
        // is closed before the scratch dir goes. Only a multi-thread runtime can drive the
        // task while this thread waits; elsewhere the task is aborted.
        let multi = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if matches!(self.store, Store::Embedded) && multi {
            let h = tokio::runtime::Handle::current();
            let wait = async move {
                let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
            };
            let _ = std::thread::scope(|s| s.spawn(|| h.block_on(wait)).join());
        } else {
            task.abort();
        }
    }
}

/// Which store a test server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The single-member kubelab store embedded in the API server (the default of
    /// `kubelabd apiserver`).
    Embedded,
    /// Real etcd 3.4, a child process.
    Etcd,
    /// Three kubelab store members in this process, on loopback.
    Store3,
}

impl Backend {
    /// True (after printing why) when this backend cannot run here.
    pub fn missing(self) -> bool {
        self == Backend::Etcd && missing(ETCD)
    }
}

/// A test server's store.
pub enum Store {
    /// Real etcd.
    Etcd(Etcd),
    /// Started and stopped by the API server itself.
    Embedded,
    /// A kubelab store cluster.
    Cluster(StoreCluster),
}

impl Store {
    /// The etcd v3 API endpoints (none for the embedded store: only the server knows them).
    pub fn endpoints(&self) -> Vec<String> {
        match self {
            Store::Etcd(e) => vec![e.endpoint.clone()],
            Store::Embedded => Vec::new(),
            Store::Cluster(c) => c.endpoints(),
        }
    }
}

/// kubelab store members in this process on loopback ports, each with a data dir in a temp
/// dir; every member is shut down on drop.
pub struct StoreCluster {
    members: Vec<kubelab_store::RunningStore>,
    _dir: tempfile::TempDir,
}

impl StoreCluster {
    /// Starts `n` members as a new cluster and waits until they agree on a leader. Peer
    /// ports are picked free just before the start; if another test grabs one in between,
    /// the members started are shut down and the cluster is started again on new ports (up
    /// to 3 attempts).
    pub async fn start(n: usize) -> StoreCluster {
        for attempt in 1..=3 {
            match StoreCluster::try_start(n).await {
                Ok(c) => return c,
                Err(e) => eprintln!("store cluster start failed (attempt {attempt}): {e}"),
            }
        }
        panic!("the store cluster did not start in 3 attempts");
    }

    async fn try_start(n: usize) -> Result<StoreCluster, kubelab_store::Error> {
        let dir = tempfile::tempdir().expect("store temp dir");
        let peers: Vec<String> = (0..n)
            .map(|_| format!("http://127.0.0.1:{}", free_port()))
            .collect();
        let initial = peers
            .iter()
            .enumerate()
            .map(|(i, p)| format!("m{i}={p}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut members = Vec::new();
        for (i, peer) in peers.iter().enumerate() {
            let mut c =
                kubelab_store::Config::single(&format!("m{i}"), dir.path().join(format!("m{i}")));
            c.listen_peer_urls = vec![peer.clone()];
            c.initial_cluster = initial.clone();
            match kubelab_store::start(c).await {
                Ok(m) => members.push(m),
                Err(e) => {
                    for m in members {
                        m.shutdown().await;
                    }
                    return Err(e);
                }
            }
        }
        let cluster = StoreCluster { members, _dir: dir };
        wait_until_async(
            "a store leader known to every member",
            Duration::from_secs(30),
            || {
                let leaders: Vec<_> = cluster.members.iter().map(|m| m.leader_id()).collect();
                async move {
                    (leaders[0].is_some() && leaders.iter().all(|l| *l == leaders[0])).then_some(())
                }
            },
        )
        .await;
        Ok(cluster)
    }

    /// Every member's client URL.
    pub fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .flat_map(|m| m.client_urls().to_vec())
            .collect()
    }
}

impl Drop for StoreCluster {
    fn drop(&mut self) {
        let members = std::mem::take(&mut self.members);
        let stop = async move {
            for m in members {
                m.shutdown().await;
            }
        };
        // Drop cannot await: run the shutdowns on a helper thread.
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                let _ = std::thread::scope(|s| s.spawn(|| h.block_on(stop)).join());
            }
            _ => {
                let rt = tokio::runtime::Runtime::new().expect("runtime");
                let _ = std::thread::scope(|s| s.spawn(|| rt.block_on(stop)).join());
            }
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

/// Minimal HTTP(S) client.
#[derive(Clone)]
pub struct Client {
    inner: HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
    base: String,
    token: Option<String>,
}

impl Client {
    /// A client for `base`, trusting `ca_pem` (HTTPS), presenting an optional client
    /// certificate (cert PEM, key PEM) and an optional bearer token.
    pub fn new(
        base: &str,
        ca_pem: Option<&str>,
        cert: Option<(&str, &str)>,
        token: Option<&str>,
    ) -> Client {
        let mut roots = rustls::RootCertStore::empty();
        if let Some(ca) = ca_pem {
            for c in CertificateDer::pem_slice_iter(ca.as_bytes()) {
                roots.add(c.expect("CA PEM")).expect("CA");
            }
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots);
        let tls = match cert {
            Some((c, k)) => builder
                .with_client_auth_cert(
                    CertificateDer::pem_slice_iter(c.as_bytes())
                        .collect::<Result<Vec<_>, _>>()
                        .expect("client cert PEM"),
                    PrivateKeyDer::from_pem_slice(k.as_bytes()).expect("client key PEM"),
                )
                .expect("client cert"),
            None => builder.with_no_client_auth(),
        };
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        Client {
            inner: HyperClient::builder(TokioExecutor::new()).build(https),
            base: base.to_string(),
            token: token.map(str::to_string),
        }
    }

    fn request(&self, method: &str, path: &str) -> http::request::Builder {
        let mut b = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        b
    }

    /// Any request.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Resp {
        let mut b = self.request(method, path);
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
        let req = self
            .request("GET", path)
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
