//! DELETE: preconditions, propagation policy (orphan/foreground finalizers), graceful
//! deletion (`deletionTimestamp` + grace period for pods on a node), finalizers, and
//! deletecollection.

use serde_json::{Value, json};

use super::meta::{self, Filter, meta_mut, meta_str, must_get};
use super::write::{self, WriteError};
use super::{Ctx, Reply, Req};
use crate::error::{ApiError, success_status};
use crate::storage::keys;
use crate::storage::list::ListOptions;

/// The parts of `DeleteOptions` this server acts on.
#[derive(Debug, Default, Clone)]
pub struct DeleteOptions {
    /// Requested grace period.
    pub grace_period: Option<i64>,
    /// Orphan, Background or Foreground.
    pub propagation: Option<String>,
    /// Precondition on uid.
    pub uid: Option<String>,
    /// Precondition on resourceVersion.
    pub resource_version: Option<String>,
}

/// Reads DeleteOptions from the body (if any) and the query.
pub fn delete_options(req: &Req) -> Result<DeleteOptions, ApiError> {
    let mut o = DeleteOptions::default();
    if let Some(body) = req.body.as_ref().filter(|b| !b.bytes.is_empty()) {
        let v = meta::parse_body(body)?;
        o.grace_period = v.get("gracePeriodSeconds").and_then(Value::as_i64);
        o.propagation = v
            .get("propagationPolicy")
            .and_then(Value::as_str)
            .map(str::to_string);
        if v.get("orphanDependents").and_then(Value::as_bool) == Some(true)
            && o.propagation.is_none()
        {
            o.propagation = Some("Orphan".into());
        }
        o.uid = v
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_string);
        o.resource_version = v
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string);
    }
    if let Some(g) = req.query.int("gracePeriodSeconds")? {
        o.grace_period = Some(g);
    }
    if let Some(p) = req.query.get("propagationPolicy") {
        o.propagation = Some(p.to_string());
    }
    if let Some(p) = &o.propagation
        && !matches!(p.as_str(), "Orphan" | "Background" | "Foreground")
    {
        return Err(ApiError::BadRequest(format!(
            "propagationPolicy {p:?}: must be one of Orphan, Background, Foreground"
        )));
    }
    if o.grace_period.is_some_and(|g| g < 0) {
        return Err(ApiError::BadRequest(
            "gracePeriodSeconds must not be negative".into(),
        ));
    }
    Ok(o)
}

/// Outcome of deleting one object.
enum Deleted {
    /// Gone from the store.
    Gone(Value),
    /// Marked for deletion; waiting on finalizers or a grace period.
    Pending(Value),
}

/// Namespaces the cluster itself needs; Kubernetes refuses to delete them.
const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-public", "kube-system"];

async fn delete_one(
    ctx: &Ctx,
    req: &Req,
    name: &str,
    opts: &DeleteOptions,
) -> Result<Deleted, ApiError> {
    let res = req.resource.as_ref();
    if res.info().plural == "namespaces" && SYSTEM_NAMESPACES.contains(&name) {
        return Err(ApiError::Forbidden {
            group: String::new(),
            resource: "namespaces".into(),
            name: name.to_string(),
            message: "this namespace may not be deleted".into(),
        });
    }
    let key = req.key(name);
    let dry_run = req.dry_run()?;
    for _ in 0..super::update::UNCONDITIONAL_RETRIES {
        let old = must_get(ctx, res, &key, name).await?;
        if let Some(uid) = &opts.uid
            && meta_str(&old.object, "uid") != Some(uid.as_str())
        {
            return Err(ApiError::Conflict {
                object: meta::object_ref(res.info(), name),
                message: format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta_str(&old.object, "uid").unwrap_or_default()
                ),
            });
        }
        if let Some(rv) = &opts.resource_version
            && *rv != old.revision.to_string()
        {
            return Err(ApiError::Conflict {
                object: meta::object_ref(res.info(), name),
                message: format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    old.revision
                ),
            });
        }
        let mut finalizers: Vec<Value> = old
            .object
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let add = match opts.propagation.as_deref() {
            Some("Orphan") => Some("orphan"),
            Some("Foreground") => Some("foregroundDeletion"),
            _ => None,
        };
        if let Some(f) = add
            && !finalizers.iter().any(|x| x == f)
        {
            finalizers.push(Value::String(f.into()));
        }
        let spec_finalizers = old
            .object
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        let grace = res
            .grace_period(&old.object, opts.grace_period)
            .filter(|g| *g > 0);
        let already = meta_str(&old.object, "deletionTimestamp").is_some();
        let must_wait = !finalizers.is_empty() || spec_finalizers || grace.is_some();
        if !must_wait {
            match write::remove(ctx, res, &key, &old, dry_run).await {
                Ok(_) => return Ok(Deleted::Gone(old.object)),
                Err(WriteError::Stale(_)) => continue,
                Err(WriteError::Api(e)) => return Err(e),
            }
        }
        if already && add.is_none() {
            return Ok(Deleted::Pending(old.object));
        }
        let mut new = old.object.clone();
        let when = jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::from_secs(grace.unwrap_or(0)))
            .unwrap_or_else(|_| jiff::Timestamp::now());
        let when = jiff::Timestamp::from_second(when.as_second())
            .unwrap_or(when)
            .to_string();
        {
            let m = meta_mut(&mut new);
            if !already {
                m.insert("deletionTimestamp".into(), Value::String(when));
                m.insert(
                    "deletionGracePeriodSeconds".into(),
                    json!(grace.unwrap_or(0)),
                );
            }
            if !finalizers.is_empty() {
                m.insert("finalizers".into(), Value::Array(finalizers));
            }
            if res.info().has_spec && !already {
                let g = m.get("generation").and_then(Value::as_i64).unwrap_or(0);
                m.insert("generation".into(), json!(g + 1));
            }
        }
        if res.info().plural == "namespaces" {
            new["status"]["phase"] = Value::String("Terminating".into());
        }
        if dry_run {
            return Ok(Deleted::Pending(new));
        }
        match ctx.store.update(&key, &new, old.revision, &[]).await {
            Ok(rev) => return Ok(Deleted::Pending(crate::storage::with_revision(new, rev))),
            Err(e) => match WriteError::from(e) {
                WriteError::Stale(_) => continue,
                WriteError::Api(e) => return Err(e),
            },
        }
    }
    Err(write::conflict(res, name))
}

/// DELETE of one object.
pub async fn delete(ctx: &Ctx, req: &Req) -> Result<Reply, ApiError> {
    let name = req.name()?.to_string();
    let opts = delete_options(req)?;
    let info = req.resource.info();
    match delete_one(ctx, req, &name, &opts).await? {
        Deleted::Gone(obj) => Ok(Reply::ok(success_status(Some(json!({
            "name": name, "group": info.group, "kind": info.plural,
            "uid": meta_str(&obj, "uid"),
        }))))),
        Deleted::Pending(obj) => Ok(Reply::Object {
            code: 200,
            body: obj,
            warnings: Vec::new(),
        }),
    }
}

/// DELETE of every object matching the selectors.
pub async fn delete_collection(ctx: &Ctx, req: &Req) -> Result<Reply, ApiError> {
    let info = req.resource.info();
    let filter = Filter::from_request(req)?;
    let opts = delete_options(req)?;
    let prefix = keys::collection(info.plural, req.namespace());
    let page = ctx
        .store
        .list(&prefix, &ListOptions::default(), !filter.is_empty(), |o| {
            filter.matches(o)
        })
        .await?;
    let mut items = Vec::new();
    for item in page.items {
        let name = meta_str(&item.object, "name")
            .unwrap_or_default()
            .to_string();
        let ns = meta_str(&item.object, "namespace").map(str::to_string);
        // A collection across namespaces: address each object in its own namespace.
        let mut one = Req {
            resource: req.resource.clone(),
            path: req.path.clone(),
            verb: req.verb,
            query: req.query.clone(),
            body: None,
            format: req.format,
            user_agent: req.user_agent.clone(),
            user: req.user.clone(),
        };
        one.path.namespace = ns;
        match delete_one(ctx, &one, &name, &opts).await {
            Ok(Deleted::Gone(o)) | Ok(Deleted::Pending(o)) => items.push(o),
            Err(ApiError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Reply::ok(json!({
        "kind": info.list_kind, "apiVersion": info.api_version(),
        "metadata": {}, "items": items,
    })))
}
