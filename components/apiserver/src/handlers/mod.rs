//! Resource request handlers: one generic implementation of every verb, parameterised by the
//! [`Resource`] the URL names.
//!
//! Flow of a request (after `server` parsed it into a [`Req`] and the auth hooks passed it):
//! `dispatch` picks the verb's module — [`get`], [`list`], [`watch`], [`create`], [`update`],
//! [`patch`], [`delete`] — which decode and admit the body (see `registry`), apply the generic
//! object metadata rules in [`meta`], and read or write through `storage`; [`write`] holds the
//! shared commit steps (allocations, finalizer-completed deletion). Each returns a [`Reply`].
//! Computed resources (access reviews) and the ServiceAccount `token` subresource are
//! answered by [`reviews`]. RBAC writes pass the escalation check
//! (`authz::escalation`) in [`create`] and [`update::guaranteed_update`].

pub mod create;
pub mod delete;
pub mod fresh;
pub mod get;
pub mod list;
pub mod meta;
pub mod partial;
pub mod patch;
pub mod reviews;
pub mod subresources;
pub mod unchanged;
pub mod update;
pub mod watch;
pub mod write;

use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use serde_json::Value;

use crate::alloc::Allocator;
use crate::authn::User;
use crate::config::Config;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::registry::{Registry, Resource, Storage};
use crate::request::{Query, ResourcePath, Verb};
use crate::storage::{Key, Store};

/// Shared state of the server.
pub struct Ctx {
    /// The store.
    pub store: Store,
    /// Served resources.
    pub registry: Registry,
    /// Service allocations.
    pub allocator: Allocator,
    /// Configuration.
    pub config: Config,
    /// Request counters.
    pub metrics: Metrics,
    /// Authentication and authorization (access reviews, tokens, escalation checks).
    pub security: crate::security::Security,
}

/// The representation a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/json` (default).
    Json,
    /// `application/yaml`.
    Yaml,
    /// `meta.k8s.io/v1 Table` (JSON).
    Table,
    /// `PartialObjectMetadata` (`list`: `PartialObjectMetadataList`) of `meta.k8s.io/<version>`
    /// (JSON); see [`partial`].
    Metadata {
        /// Whether the list form was asked for.
        list: bool,
        /// `v1` or `v1beta1`.
        version: &'static str,
    },
}

/// A request body.
#[derive(Debug, Clone)]
pub struct Body {
    /// Raw bytes (already size-checked).
    pub bytes: Bytes,
    /// `Content-Type` without parameters.
    pub content_type: String,
}

/// A parsed resource request.
pub struct Req {
    /// The resource.
    pub resource: Arc<dyn Resource>,
    /// Parsed path.
    pub path: ResourcePath,
    /// Verb.
    pub verb: Verb,
    /// Query parameters.
    pub query: Query,
    /// Body, for writes.
    pub body: Option<Body>,
    /// Response representation.
    pub format: Format,
    /// The client's user agent (default field manager).
    pub user_agent: String,
    /// The authenticated caller.
    pub user: User,
}

impl Req {
    /// The object key (needs a name).
    pub fn key(&self, name: &str) -> Key {
        Key::object(self.resource.info().plural, self.namespace(), name)
    }

    /// The namespace, for namespaced resources.
    pub fn namespace(&self) -> Option<&str> {
        if self.resource.info().namespaced {
            self.path.namespace.as_deref()
        } else {
            None
        }
    }

    /// The name from the URL.
    pub fn name(&self) -> Result<&str, ApiError> {
        self.path
            .name
            .as_deref()
            .ok_or_else(|| ApiError::BadRequest("the request needs an object name".into()))
    }

    /// `dryRun=All`: validate and answer, but write nothing.
    pub fn dry_run(&self) -> Result<bool, ApiError> {
        match self.query.get("dryRun") {
            None => Ok(false),
            Some("All") => Ok(true),
            Some(other) => Err(ApiError::BadRequest(format!(
                "dryRun={other:?}: the only supported value is All"
            ))),
        }
    }

    /// The field manager for writes (`?fieldManager=` or derived from the user agent).
    pub fn field_manager(&self) -> String {
        match self.query.get("fieldManager") {
            Some(m) => m.to_string(),
            None => self
                .user_agent
                .split('/')
                .next()
                .filter(|s| !s.is_empty())
                .unwrap_or("unknown")
                .to_string(),
        }
    }
}

/// What a handler answers.
pub enum Reply {
    /// One JSON document with an HTTP status and warnings (`Warning: 299 - "..."` headers).
    Object {
        /// HTTP status.
        code: u16,
        /// Body.
        body: Value,
        /// Warnings.
        warnings: Vec<String>,
    },
    /// A watch: chunks of newline-delimited JSON events.
    Stream(BoxStream<'static, Bytes>),
    /// 200 with a JSON body already encoded (lists): `head`, then, for a streamed list, the
    /// chunks of `rest`; an `Err` chunk aborts the response so the client sees a truncated
    /// body, never a complete-looking one.
    Encoded {
        /// The body, or its first part.
        head: Bytes,
        /// The remaining chunks of a streamed body.
        rest: Option<BoxStream<'static, Result<Bytes, std::io::Error>>>,
    },
}

impl Reply {
    /// 200 with a body.
    pub fn ok(body: Value) -> Reply {
        Reply::Object {
            code: 200,
            body,
            warnings: Vec::new(),
        }
    }
}

/// Runs a resource request.
pub async fn dispatch(ctx: &Ctx, req: Req) -> Result<Reply, ApiError> {
    if req.resource.info().namespaced && req.path.namespace.is_none() {
        // Namespaced writes need the namespace in the URL; reads span all namespaces.
        if !matches!(req.verb, Verb::List | Verb::Watch) {
            return Err(ApiError::BadRequest(format!(
                "{} is namespaced: the URL must name a namespace (/namespaces/<ns>/{})",
                req.resource.info().plural,
                req.resource.info().plural
            )));
        }
    }
    if req.resource.info().storage == Storage::Computed {
        return reviews::create(ctx, &req).await;
    }
    if let Some(sub) = req.path.subresource.as_deref() {
        return subresources::dispatch(ctx, &req, sub).await;
    }
    match req.verb {
        Verb::Get => get::get(ctx, &req).await,
        Verb::List if matches!(req.format, Format::Metadata { .. }) => {
            partial::list(ctx, &req).await
        }
        Verb::List => list::list(ctx, &req).await,
        Verb::Watch => watch::watch(ctx, &req).await,
        Verb::Create => create::create(ctx, &req).await,
        Verb::Update => update::update(ctx, &req).await,
        Verb::Patch => patch::patch(ctx, &req).await,
        Verb::Delete => delete::delete(ctx, &req).await,
        Verb::DeleteCollection => delete::delete_collection(ctx, &req).await,
    }
}

/// Refuses RBAC writes that grant more than the caller holds (`authz::escalation`).
pub fn check_escalation(
    ctx: &Ctx,
    req: &Req,
    object: &Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    let info = req.resource.info();
    if info.group != crate::authz::escalation::RBAC_GROUP {
        return Ok(());
    }
    crate::authz::escalation::check(
        ctx.security.authz.as_ref(),
        &ctx.security.policy.policy(),
        &req.user,
        info.plural,
        object,
        old,
    )
}
