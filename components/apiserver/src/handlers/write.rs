//! The commit step shared by create, update, patch and delete: turning an object's pool
//! claims into store markers, writing with optimistic concurrency, and finishing a deletion
//! once the last finalizer is gone.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::Ctx;
use super::meta::{meta_str, object_ref};
use crate::error::ApiError;
use crate::registry::{Pool, Resource};
use crate::storage::{Guard, Key, Marker, StorageError, Stored, keys, with_revision};

/// How many times a write re-picks allocations that lost a race before giving up.
const ALLOCATION_ATTEMPTS: usize = 16;

/// Values an object currently holds from pools.
fn held(res: &dyn Resource, object: &Value) -> Vec<(Pool, String)> {
    res.claims(object)
        .into_iter()
        .filter_map(|c| {
            object
                .pointer(&c.pointer)
                .and_then(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .map(|v| (c.pool, v))
        })
        .collect()
}

fn set_at(object: &mut Value, pointer: &str, pool: Pool, value: &str) {
    let v = match pool {
        Pool::ServiceIp => Value::String(value.to_string()),
        Pool::NodePort => json!(value.parse::<u16>().unwrap_or(0)),
    };
    if let Some(slot) = object.pointer_mut(pointer) {
        *slot = v;
        return;
    }
    // Create the leaf in its (existing) parent.
    if let Some((parent, leaf)) = pointer.rsplit_once('/')
        && let Some(Value::Object(m)) = object.pointer_mut(parent)
    {
        m.insert(leaf.to_string(), v);
    }
}

/// Resolves the object's claims into markers: values the object asks for are checked against
/// the range, values the old version already held are kept, missing ones are picked. Values
/// the old version held and the new one does not are released.
async fn plan(
    ctx: &Ctx,
    res: &dyn Resource,
    new: &mut Value,
    old: Option<&Value>,
    avoid: &HashSet<String>,
) -> Result<(Vec<Marker>, Vec<String>), ApiError> {
    let owner = json!({
        "namespace": meta_str(new, "namespace"), "name": meta_str(new, "name"),
        "uid": meta_str(new, "uid"),
    })
    .to_string();
    let old_held: HashSet<(Pool, String)> = old
        .map(|o| held(res, o))
        .unwrap_or_default()
        .into_iter()
        .collect();
    let mut markers = Vec::new();
    let mut picked = Vec::new();
    let mut new_held = HashSet::new();
    let claims = res.claims(new);
    // Values this version asks for explicitly are never kept for or picked by another claim.
    let mut taken: HashSet<String> = avoid.clone();
    taken.extend(claims.iter().filter_map(|c| c.requested.clone()));
    for claim in claims {
        let field = field_path(&claim.pointer);
        let kept = old
            .and_then(|o| previous_value(o, new, &claim.pointer))
            .filter(|v| !taken.contains(v));
        let value = match claim.requested.clone().or(kept) {
            Some(v) => {
                ctx.allocator
                    .check(claim.pool, &field, &v)
                    .map_err(|e| named(e, new))?;
                v
            }
            None => {
                let v = ctx.allocator.pick(&ctx.store, claim.pool, &taken).await?;
                picked.push(keys::marker(claim.pool.key_name(), &v));
                v
            }
        };
        taken.insert(value.clone());
        set_at(new, &claim.pointer, claim.pool, &value);
        if claim.pointer == "/spec/clusterIP"
            && let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut)
        {
            // clusterIPs mirrors clusterIP for the single-stack Services this server makes.
            spec.insert("clusterIPs".into(), json!([value.clone()]));
        }
        // One value held twice by this object (the same nodePort for TCP and UDP) is one marker.
        if !old_held.contains(&(claim.pool, value.clone()))
            && !new_held.contains(&(claim.pool, value.clone()))
        {
            markers.push(Marker::Claim(
                keys::marker(claim.pool.key_name(), &value),
                owner.clone(),
            ));
        }
        new_held.insert((claim.pool, value));
    }
    for (pool, v) in old_held.difference(&new_held) {
        markers.push(Marker::Release(keys::marker(pool.key_name(), v)));
    }
    Ok((markers, picked))
}

/// An allocator error with the object's name filled in.
fn named(e: ApiError, object: &Value) -> ApiError {
    match e {
        ApiError::Invalid {
            kind,
            group,
            causes,
            ..
        } => ApiError::Invalid {
            kind,
            group,
            name: meta_str(object, "name").unwrap_or_default().to_string(),
            causes,
        },
        other => other,
    }
}

/// `spec.ports[1].nodePort` for `/spec/ports/1/nodePort`.
fn field_path(pointer: &str) -> String {
    let mut out = String::new();
    for seg in pointer.trim_start_matches('/').split('/') {
        if seg.parse::<usize>().is_ok() {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(seg);
        }
    }
    out
}

/// The value the old version held for the claim at `pointer` of `new`. A Service port's
/// nodePort follows its port as Kubernetes matches them: by name, else by port and protocol
/// — never by position, which would hand a removed port's value to another port.
fn previous_value(old: &Value, new: &Value, pointer: &str) -> Option<String> {
    let as_string = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let Some(index) = pointer
        .strip_prefix("/spec/ports/")
        .and_then(|rest| rest.strip_suffix("/nodePort"))
    else {
        return old.pointer(pointer).and_then(as_string);
    };
    let port = new.pointer(&format!("/spec/ports/{index}"))?;
    let name = port["name"].as_str().filter(|n| !n.is_empty());
    let protocol = |p: &Value| p["protocol"].as_str().unwrap_or("TCP").to_string();
    let olds = old.pointer("/spec/ports").and_then(Value::as_array)?;
    let by_name = name.and_then(|n| olds.iter().find(|o| o["name"].as_str() == Some(n)));
    let matched = by_name.or_else(|| {
        olds.iter()
            .find(|o| o["port"] == port["port"] && protocol(o) == protocol(port))
    })?;
    matched.get("nodePort").and_then(as_string)
}

/// The 422 for a value another object holds, naming the field of `object` that asked for it.
fn already_allocated(res: &dyn Resource, object: &Value, marker: &str) -> ApiError {
    let value = marker.rsplit('/').next().unwrap_or(marker);
    let field = res
        .claims(object)
        .into_iter()
        .find(|c| {
            object.pointer(&c.pointer).is_some_and(|v| match v {
                Value::String(s) => s == value,
                other => other.as_u64().is_some() && other.as_u64() == value.parse().ok(),
            })
        })
        .map(|c| field_path(&c.pointer))
        .unwrap_or_else(|| "spec".into());
    ApiError::Invalid {
        kind: res.info().kind.into(),
        group: res.info().group.into(),
        name: meta_str(object, "name").unwrap_or_default().to_string(),
        causes: vec![crate::error::Cause::invalid(
            field,
            value,
            "provided value is already allocated",
        )],
    }
}

/// Where a create goes: its key, and for a namespaced object its namespace with the guard
/// the create's transaction compares (see [`super::meta::namespace_guard`]).
pub struct Target<'a> {
    /// The object's key.
    pub key: &'a Key,
    /// The namespace of a namespaced object.
    pub namespace: Option<&'a str>,
    /// The namespace's revision as checked (`None`: not namespaced).
    pub guard: Option<Guard>,
}

/// Creates an object with its allocations. Returns the stored object.
pub async fn create(
    ctx: &Ctx,
    res: &dyn Resource,
    target: Target<'_>,
    mut object: Value,
    dry_run: bool,
) -> Result<Value, ApiError> {
    let Target {
        key,
        namespace,
        mut guard,
    } = target;
    let name = meta_str(&object, "name").unwrap_or_default().to_string();
    let mut avoid = HashSet::new();
    // Each attempt starts from the object as asked for: values picked by a lost attempt are
    // not requests. Objects without claims (all but Services) are never changed by `plan`,
    // so they are not copied.
    let asked = (!res.claims(&object).is_empty()).then(|| object.clone());
    for _ in 0..ALLOCATION_ATTEMPTS {
        if let Some(asked) = &asked {
            object = asked.clone();
        }
        let (markers, picked) = plan(ctx, res, &mut object, None, &avoid).await?;
        if dry_run {
            return Ok(object);
        }
        match ctx
            .store
            .create_guarded(key, &object, &markers, guard.as_ref())
            .await
        {
            Ok(rev) => return Ok(with_revision(object, rev)),
            Err(StorageError::Exists(_)) => {
                return Err(ApiError::AlreadyExists(object_ref(res.info(), &name)));
            }
            Err(StorageError::GuardChanged(_)) => {
                // The namespace changed since it was checked (or the remembered revision
                // is old): check it again, now; a deleted or terminating one fails here.
                if let (Some(ns), Some(g)) = (namespace, &guard) {
                    ctx.store.forget(&g.key);
                    guard = Some(
                        super::meta::namespace_guard(
                            ctx,
                            res.info(),
                            ns,
                            &name,
                            super::meta::GuardRead::Live,
                        )
                        .await?,
                    );
                }
            }
            Err(StorageError::MarkerTaken(m)) if picked.contains(&m) => {
                avoid.insert(m.rsplit('/').next().unwrap_or_default().to_string());
            }
            Err(StorageError::MarkerTaken(m)) => {
                return Err(already_allocated(res, &object, &m));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::RangeFull(
        "could not allocate after repeated collisions; retry".into(),
    ))
}

/// Whether an object marked for deletion has no finalizer left.
pub fn deletion_complete(object: &Value) -> bool {
    let empty = |p: &str| {
        object
            .pointer(p)
            .and_then(Value::as_array)
            .is_none_or(|a| a.is_empty())
    };
    meta_str(object, "deletionTimestamp").is_some()
        && empty("/metadata/finalizers")
        && empty("/spec/finalizers")
}

/// The conflict error for a stale write.
pub fn conflict(res: &dyn Resource, name: &str) -> ApiError {
    ApiError::Conflict {
        object: object_ref(res.info(), name),
        message: "the object has been modified; please apply your changes to the latest version and try again".into(),
    }
}

/// Writes a new version of `old`. If the new version is marked for deletion and has no
/// finalizer left, the object is deleted instead. Fails with [`StorageError::Modified`]
/// (mapped by callers to 409 or a retry) when `old` is stale.
pub async fn replace(
    ctx: &Ctx,
    res: &dyn Resource,
    key: &Key,
    old: &Stored,
    mut new: Value,
    dry_run: bool,
) -> Result<Value, WriteError> {
    if deletion_complete(&new) {
        let markers: Vec<Marker> = held(res, &old.object)
            .into_iter()
            .map(|(p, v)| Marker::Release(keys::marker(p.key_name(), &v)))
            .collect();
        if dry_run {
            return Ok(new);
        }
        let rev = ctx.store.delete(key, old.revision, &markers).await?;
        return Ok(with_revision(new, rev));
    }
    let mut avoid = HashSet::new();
    // As in `create`: `plan` changes only objects with claims, so only they are copied.
    let asked = (!res.claims(&new).is_empty()).then(|| new.clone());
    for _ in 0..ALLOCATION_ATTEMPTS {
        if let Some(asked) = &asked {
            new = asked.clone();
        }
        let (markers, picked) = plan(ctx, res, &mut new, Some(&old.object), &avoid).await?;
        if markers.is_empty() && super::unchanged::unchanged(&old.object, &new) {
            // Nothing to write: the stored object, its resourceVersion and no watch event,
            // as kube-apiserver's GuaranteedUpdate does for equal bytes.
            return Ok(old.object.clone());
        }
        if dry_run {
            return Ok(with_revision(new, old.revision));
        }
        match ctx.store.update(key, &new, old.revision, &markers).await {
            Ok(rev) => return Ok(with_revision(new, rev)),
            Err(StorageError::MarkerTaken(m)) if picked.contains(&m) => {
                avoid.insert(m.rsplit('/').next().unwrap_or_default().to_string());
            }
            Err(StorageError::MarkerTaken(m)) => {
                return Err(WriteError::Api(already_allocated(res, &new, &m)));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(WriteError::Api(ApiError::RangeFull(
        "could not allocate after repeated collisions; retry".into(),
    )))
}

/// Deletes an object now, releasing its allocations.
pub async fn remove(
    ctx: &Ctx,
    res: &dyn Resource,
    key: &Key,
    old: &Stored,
    dry_run: bool,
) -> Result<i64, WriteError> {
    let markers: Vec<Marker> = held(res, &old.object)
        .into_iter()
        .map(|(p, v)| Marker::Release(keys::marker(p.key_name(), &v)))
        .collect();
    if dry_run {
        return Ok(old.revision);
    }
    Ok(ctx.store.delete(key, old.revision, &markers).await?)
}

/// A write failure: either stale (retry or 409) or final.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The object changed or vanished since it was read.
    #[error("the object changed since it was read")]
    Stale(#[source] StorageError),
    /// Any other failure.
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl From<StorageError> for WriteError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Modified { .. } | StorageError::NotFound(_) => WriteError::Stale(e),
            other => WriteError::Api(other.into()),
        }
    }
}
