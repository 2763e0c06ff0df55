//! kubelab's API server: the Kubernetes REST API over a store that speaks the etcd v3 API.
//!
//! # Layout
//! - [`run`] (here): start the embedded store unless external endpoints are configured
//!   ([`embedded`]), set up security, connect to the store, bootstrap the system namespaces
//!   and the RBAC policy, serve HTTPS.
//! - [`listen`]: the accept loop — TLS handshake ([`tls`]), HTTP/1.1 or HTTP/2, the client
//!   certificate handed to the pipeline.
//! - [`server`]: the HTTP pipeline — authenticate ([`authn`]), parse ([`request`]), authorize
//!   ([`authz`]: RBAC), negotiate, dispatch, encode. The only module that sees axum/http types.
//! - [`security`]: builds the security stages from [`config::SecurityConfig`]; [`pki`]: the
//!   cert dir (cluster CA, serving certificate, ServiceAccount key).
//! - [`handlers`]: one generic implementation per verb over any [`registry::Resource`].
//! - [`registry`] + [`resources`]: what is served; one file per resource with its k8s-openapi
//!   type, defaults, validation and table columns.
//! - [`storage`]: keys, transactions, lists and watches on the etcd v3 API.
//! - [`protobuf`]: Kubernetes protobuf request bodies (kubectl typed clients) read as JSON.
//! - [`kubeconfig`]: kubeconfigs (CA + client certificate) for the admin and other users.
//! - [`alloc`]: Service ClusterIP/NodePort allocation as store markers.
//! - [`patch`]: merge/JSON/strategic patches, server-side apply, managedFields.
//! - [`schema`], [`openapi`], [`discovery`], [`table`], [`metrics`]: what clients read about
//!   the API itself.
//!
//! # Flow of a write
//! HTTP → `server::handle` → `handlers::dispatch` → decode + admit (`registry`) → metadata
//! rules (`handlers::meta`) → `handlers::write` (allocations, optimistic concurrency) →
//! `storage::Store` (one etcd transaction) → watchers see it through `storage::watch`.
#![warn(missing_docs)]

pub mod alloc;
pub mod authn;
pub mod authz;
pub mod compactor;
pub mod config;
pub mod discovery;
pub mod embedded;
pub mod error;
pub mod handlers;
pub mod kubeconfig;
pub mod listen;
pub mod metrics;
pub mod openapi;
pub mod openapi_pb;
pub mod patch;
pub mod pki;
pub mod protobuf;
pub mod registry;
pub mod request;
pub mod resources;
pub mod schema;
pub mod security;
pub mod server;
pub mod storage;
pub mod table;
pub mod tls;

use std::future::Future;
use std::sync::{Arc, LazyLock};

use serde_json::{Value, json};
use tokio::net::TcpListener;

pub use config::Config;

/// The Kubernetes version this server speaks.
pub const KUBERNETES_VERSION: &str = "v1.33.0";

static SCHEMAS: LazyLock<schema::Schemas> =
    LazyLock::new(|| schema::Schemas::build(&resources::registry()));

/// The schema index of every served type (built once).
pub fn schema_index() -> &'static schema::Schemas {
    &SCHEMAS
}

/// `/version`.
pub fn version_info() -> Value {
    json!({
        "major": "1", "minor": "33",
        "gitVersion": format!("{KUBERNETES_VERSION}+kubelab-{}", env!("CARGO_PKG_VERSION")),
        // Set by build.rs, deterministic per commit: SOURCE_DATE_EPOCH or HEAD's commit time.
        "gitCommit": env!("KUBELAB_GIT_COMMIT"), "gitTreeState": "",
        "buildDate": env!("KUBELAB_BUILD_DATE"),
        "goVersion": "n/a (rust)", "compiler": "rustc", "platform": "linux/amd64",
    })
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration is invalid.
    #[error("invalid configuration")]
    Config(#[from] config::ConfigError),
    /// TLS, the cert dir, or an authentication file.
    #[error("cannot set up TLS and authentication")]
    Security(#[from] security::SecurityError),
    /// The embedded store did not start.
    #[error("cannot start the embedded store")]
    Embedded(#[from] embedded::EmbeddedError),
    /// The store could not be reached.
    #[error("cannot use the store")]
    Store(#[from] storage::StorageError),
    /// Bootstrapping a system namespace or the RBAC policy failed.
    #[error("cannot create the bootstrap object {0}")]
    Bootstrap(String, #[source] error::ApiError),
    /// The RBAC cache did not fill.
    #[error("cannot load the RBAC policy")]
    Policy(#[from] authz::cache::NotSynced),
    /// Writing the admin kubeconfig failed.
    #[error("cannot write the admin kubeconfig")]
    Kubeconfig(#[source] pki::PkiError),
    /// Serving failed.
    #[error("HTTP server failed")]
    Serve(#[source] std::io::Error),
}

/// Namespaces every cluster has.
const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

/// How long start-up waits for the RBAC cache's first list.
const POLICY_SYNC_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Creates an object as the server itself, unless it exists.
async fn ensure(ctx: &handlers::Ctx, plural: &str, object: Value) -> Result<(), RunError> {
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let group = object["apiVersion"]
        .as_str()
        .and_then(|av| av.split_once('/'))
        .map(|(g, _)| g)
        .unwrap_or_default()
        .to_string();
    let resource = ctx
        .registry
        .all()
        .iter()
        .find(|r| r.info().plural == plural && r.info().group == group)
        .cloned()
        .expect("bootstrap objects are of registered resources");
    let req = handlers::Req {
        path: request::ResourcePath {
            group,
            version: resource.info().version.into(),
            namespace: None,
            resource: plural.into(),
            name: None,
            subresource: None,
            watch_prefix: false,
        },
        resource,
        verb: request::Verb::Create,
        query: request::Query::default(),
        body: None,
        format: handlers::Format::Json,
        user_agent: "kubelab-apiserver".into(),
        user: security::server_user(),
    };
    match handlers::create::create_object(ctx, &req, object, false).await {
        Ok(_) | Err(error::ApiError::AlreadyExists(_)) => Ok(()),
        Err(e) => Err(RunError::Bootstrap(format!("{plural}/{name}"), e)),
    }
}

async fn bootstrap(ctx: &handlers::Ctx) -> Result<(), RunError> {
    for name in SYSTEM_NAMESPACES {
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        ensure(ctx, "namespaces", ns).await?;
    }
    for (plural, object) in authz::bootstrap::objects() {
        ensure(ctx, plural, object).await?;
    }
    Ok(())
}

/// A started server, not yet accepting: what [`serve`] needs.
pub struct Prepared {
    /// Application state.
    pub app: Arc<server::App>,
    /// TLS configuration; `None` when serving plain HTTP on loopback.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The cluster CA (for kubeconfigs).
    pub ca: pki::Ca,
}

/// The URL clients use: the advertise address if set, else the bound one (loopback when
/// bound to all addresses).
pub fn client_url(config: &Config, bound: std::net::SocketAddr, tls: bool) -> String {
    let ip = match config.security.advertise_address {
        Some(a) => a,
        None if bound.ip().is_unspecified() => std::net::IpAddr::from([127, 0, 0, 1]),
        None => bound.ip(),
    };
    let scheme = if tls { "https" } else { "http" };
    kubeconfig::server_url(scheme, std::net::SocketAddr::new(ip, bound.port()))
}

/// Sets up security, connects to the store, bootstraps it and loads the RBAC policy.
pub async fn prepare(config: Config, bound: std::net::SocketAddr) -> Result<Prepared, RunError> {
    let store = storage::Store::connect(&config.etcd_servers).await?;
    prepare_with(config, bound, store).await
}

/// [`prepare`] on a store client already made (the embedded store's in-process one).
async fn prepare_with(
    config: Config,
    bound: std::net::SocketAddr,
    store: storage::Store,
) -> Result<Prepared, RunError> {
    config.validate()?;
    let setup = security::setup(&config.security, bound, config.service_cluster_ip_range)?;
    store.current_revision().await?;
    let registry = resources::registry();
    let openapi = openapi::OpenApi::build(&registry, schema_index(), KUBERNETES_VERSION);
    let policy = setup.security.policy.clone();
    let address = client_url(&config, bound, setup.tls.is_some())
        .split_once("://")
        .map(|(_, a)| a.to_string())
        .unwrap_or_default();
    let ctx = handlers::Ctx {
        store,
        allocator: alloc::Allocator::new(
            config.service_cluster_ip_range,
            config.service_node_port_range,
        ),
        registry,
        config,
        metrics: metrics::Metrics::default(),
        security: setup.security,
    };
    bootstrap(&ctx).await?;
    policy.start(&ctx.store);
    policy.wait_synced(POLICY_SYNC_TIMEOUT).await?;
    let compaction = ctx.config.etcd_compaction_interval;
    let app = Arc::new(server::App {
        ctx,
        openapi,
        address,
    });
    compactor::start(Arc::downgrade(&app), compaction);
    Ok(Prepared {
        app,
        tls: setup.tls,
        ca: setup.pki.ca,
    })
}

/// Serves the API on `listener` until `shutdown` completes: HTTPS (or plain HTTP on
/// loopback when configured), after writing the admin kubeconfig if one was asked for.
///
/// With [`Config::embedded_store`] set, the store is started first and stopped after serving
/// ends (also when start-up fails).
pub async fn run(
    mut config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    config.validate()?;
    let Some(dir) = config.embedded_store.clone() else {
        return serve(config, None, listener, shutdown).await;
    };
    let store = embedded::start(&dir).await?;
    config.etcd_servers = store.endpoints();
    config.embedded_store = None;
    let result = match storage::Store::connect_in_process(
        &dir.display().to_string(),
        store.in_process_api(),
    )
    .await
    {
        Ok(client) => {
            let client = client.with_direct_kv(store.direct_kv());
            serve(config, Some(client), listener, shutdown).await
        }
        Err(e) => Err(e.into()),
    };
    store.shutdown().await;
    result
}

/// Serves until `shutdown`; `store` is the client to use, or `None` to connect to
/// `config.etcd_servers`.
async fn serve(
    config: Config,
    store: Option<storage::Store>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let bound = listener.local_addr().map_err(RunError::Serve)?;
    let kubeconfig_out = config.security.admin_kubeconfig.clone();
    let url = client_url(&config, bound, !config.security.plain_http);
    let prepared = match store {
        Some(store) => prepare_with(config, bound, store).await?,
        None => prepare(config, bound).await?,
    };
    if let Some(path) = &kubeconfig_out {
        kubeconfig::for_user(
            &prepared.ca,
            &url,
            kubeconfig::ADMIN_USER,
            &[authn::MASTERS.to_string()],
            pki::Validity::from_now(pki::issue::LEAF_VALIDITY),
        )
        .and_then(|text| kubeconfig::write(path, &text))
        .map_err(RunError::Kubeconfig)?;
        tracing::info!(path = %path.display(), "wrote the admin kubeconfig");
    }
    tracing::info!(%url, "API server listening");
    let acceptor = prepared.tls.map(tokio_rustls::TlsAcceptor::from);
    listen::serve(listener, acceptor, server::router(prepared.app), shutdown)
        .await
        .map_err(RunError::Serve)
}
