//! kubelab's API server: the Kubernetes REST API over a store that speaks the etcd v3 API.
//!
//! # Layout
//! - [`run`] (here): connect to the store, bootstrap the system namespaces, serve HTTP.
//! - [`server`]: the HTTP pipeline — authenticate ([`auth`]), parse ([`request`]), authorize,
//!   negotiate, dispatch, encode. The only module that sees axum/http types.
//! - [`handlers`]: one generic implementation per verb over any [`registry::Resource`].
//! - [`registry`] + [`resources`]: what is served; one file per resource with its k8s-openapi
//!   type, defaults, validation and table columns.
//! - [`storage`]: keys, transactions, lists and watches on the etcd v3 API.
//! - [`protobuf`]: Kubernetes protobuf request bodies (kubectl typed clients) read as JSON.
//! - [`kubeconfig`]: the admin kubeconfig written for kubectl.
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
pub mod auth;
pub mod config;
pub mod discovery;
pub mod error;
pub mod handlers;
pub mod kubeconfig;
pub mod metrics;
pub mod openapi;
pub mod patch;
pub mod pki;
pub mod protobuf;
pub mod registry;
pub mod request;
pub mod resources;
pub mod schema;
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
        "gitCommit": "", "gitTreeState": "clean", "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "n/a (rust)", "compiler": "rustc", "platform": "linux/amd64",
    })
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration is invalid.
    #[error("invalid configuration")]
    Config(#[from] config::ConfigError),
    /// The store could not be reached.
    #[error("cannot use the store")]
    Store(#[from] storage::StorageError),
    /// Bootstrapping the system namespaces failed.
    #[error("cannot create system namespace {0}")]
    Bootstrap(String, #[source] error::ApiError),
    /// Serving failed.
    #[error("HTTP server failed")]
    Serve(#[source] std::io::Error),
}

/// Namespaces every cluster has.
const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

async fn bootstrap(ctx: &handlers::Ctx) -> Result<(), RunError> {
    let ns = ctx
        .registry
        .get("", "v1", "namespaces")
        .cloned()
        .expect("namespaces are always registered");
    for name in SYSTEM_NAMESPACES {
        let req = handlers::Req {
            resource: ns.clone(),
            path: request::ResourcePath {
                group: String::new(),
                version: "v1".into(),
                namespace: None,
                resource: "namespaces".into(),
                name: None,
                subresource: None,
                watch_prefix: false,
            },
            verb: request::Verb::Create,
            query: request::Query::default(),
            body: None,
            format: handlers::Format::Json,
            user_agent: "kubelab-apiserver".into(),
        };
        let object = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        match handlers::create::create_object(ctx, &req, object, false).await {
            Ok(_) | Err(error::ApiError::AlreadyExists(_)) => {}
            Err(e) => return Err(RunError::Bootstrap(name.to_string(), e)),
        }
    }
    Ok(())
}

/// Builds the application state: connects to the store and bootstraps it.
pub async fn app(config: Config, address: String) -> Result<Arc<server::App>, RunError> {
    config.validate()?;
    let store = storage::Store::connect(&config.etcd_servers).await?;
    store.current_revision().await?;
    let registry = resources::registry();
    let openapi = openapi::OpenApi::build(&registry, schema_index(), KUBERNETES_VERSION);
    let ctx = handlers::Ctx {
        store,
        allocator: alloc::Allocator::new(
            config.service_cluster_ip_range,
            config.service_node_port_range,
        ),
        registry,
        config,
        metrics: metrics::Metrics::default(),
    };
    bootstrap(&ctx).await?;
    Ok(Arc::new(server::App {
        ctx,
        openapi,
        authn: Box::new(auth::LoopbackAdmin),
        authz: Box::new(auth::AllowAll),
        address,
    }))
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let address = listener.local_addr().map_err(RunError::Serve)?.to_string();
    let app = app(config, address.clone()).await?;
    tracing::info!(%address, "API server listening");
    axum::serve(listener, server::router(app))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(RunError::Serve)
}
