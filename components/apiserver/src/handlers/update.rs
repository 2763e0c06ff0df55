//! PUT: replace an object (and the status/finalize subresources), with resourceVersion
//! preconditions, status/spec separation and generation tracking.

use serde_json::{Value, json};

use super::meta::{self, meta_mut, meta_str, must_get};
use super::write::{self, WriteError};
use super::{Ctx, Reply, Req};
use crate::error::ApiError;
use crate::registry::Sub;

/// How many times an unconditional write (no resourceVersion given) re-reads and retries.
pub const UNCONDITIONAL_RETRIES: usize = 8;

/// Which part of the object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The main resource: everything but status (when status is a subresource).
    Main,
    /// `/status`: only status.
    Status,
    /// `/finalize` (namespaces): only `spec.finalizers`.
    Finalize,
}

/// Builds the new version of `old` from the client's `incoming` object: identity and
/// server-owned metadata are kept, the part the endpoint does not own is taken from `old`,
/// defaults and validation run, and generation is bumped on a spec change.
///
/// `manager`: the field manager recorded for this write (`None` when the caller, server-side
/// apply, maintains managedFields itself).
pub fn prepare_update(
    req: &Req,
    old: &Value,
    incoming: Value,
    part: Part,
    manager: Option<&str>,
) -> Result<Value, ApiError> {
    let info = req.resource.info();
    let mut new = match part {
        Part::Main => {
            let mut new = incoming;
            if info.has(Sub::Status) {
                match old.get("status") {
                    Some(s) => new["status"] = s.clone(),
                    None => {
                        if let Some(m) = new.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
            }
            new
        }
        Part::Status => {
            let mut new = old.clone();
            match incoming.get("status") {
                Some(s) => new["status"] = s.clone(),
                None => {
                    if let Some(m) = new.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
            new
        }
        Part::Finalize => {
            let mut new = old.clone();
            let fins = incoming
                .pointer("/spec/finalizers")
                .cloned()
                .unwrap_or(json!([]));
            new["spec"]["finalizers"] = fins;
            new
        }
    };
    let uid_change = meta_str(&new, "uid")
        .filter(|u| !u.is_empty() && Some(*u) != meta_str(old, "uid"))
        .map(|u| crate::error::Cause::invalid("metadata.uid", u, "field is immutable"));
    // Server-owned metadata always comes from the stored object.
    {
        let old_meta = old.get("metadata").cloned().unwrap_or(json!({}));
        let m = meta_mut(&mut new);
        for f in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "name",
            "namespace",
        ] {
            match old_meta.get(f) {
                Some(v) => {
                    m.insert(f.into(), v.clone());
                }
                None => {
                    m.remove(f);
                }
            }
        }
        m.remove("resourceVersion");
    }
    let mut causes = meta::validate_meta(info, &new);
    causes.extend(uid_change);
    causes.extend(meta::new_finalizers_while_deleting(&new, old));
    let mut new = match req.resource.admit(new, Some(old)) {
        Ok(a) => a,
        Err(ApiError::Invalid {
            causes: c,
            kind,
            group,
            name,
        }) => {
            causes.extend(c);
            return Err(ApiError::Invalid {
                kind,
                group,
                name,
                causes,
            });
        }
        Err(e) => return Err(e),
    };
    if !causes.is_empty() {
        return Err(ApiError::Invalid {
            kind: info.kind.into(),
            group: info.group.into(),
            name: meta_str(&new, "name").unwrap_or_default().into(),
            causes,
        });
    }
    if info.has_spec && meta::spec_changed(&new, old) {
        let g = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        meta_mut(&mut new).insert("generation".into(), json!(g + 1));
    }
    let sub = match part {
        Part::Main => None,
        Part::Status => Some("status"),
        Part::Finalize => Some("finalize"),
    };
    if let Some(manager) = manager {
        crate::patch::managed::record(Some(old), &mut new, manager, "Update", sub);
    }
    Ok(new)
}

/// Reads, transforms and writes an object, retrying on concurrent modification unless the
/// transform pinned a resourceVersion (then a stale read is a 409).
pub async fn guaranteed_update<F>(
    ctx: &Ctx,
    req: &Req,
    name: &str,
    mut transform: F,
) -> Result<Value, ApiError>
where
    F: FnMut(&Value) -> Result<(Value, Option<i64>), ApiError>,
{
    let res = req.resource.as_ref();
    let key = req.key(name);
    let dry_run = req.dry_run()?;
    for _ in 0..UNCONDITIONAL_RETRIES {
        let old = must_get(ctx, res, &key, name).await?;
        let (new, pinned) = transform(&old.object)?;
        if let Some(rv) = pinned
            && rv != old.revision
        {
            return Err(write::conflict(res, name));
        }
        super::check_escalation(ctx, req, &new, Some(&old.object))?;
        match write::replace(ctx, res, &key, &old, new, dry_run).await {
            Ok(v) => return Ok(v),
            Err(WriteError::Stale(_)) if pinned.is_some() => {
                return Err(write::conflict(res, name));
            }
            Err(WriteError::Stale(_)) => continue,
            Err(WriteError::Api(e)) => return Err(e),
        }
    }
    Err(write::conflict(res, name))
}

/// The resourceVersion a client pinned in its object, if any.
pub fn pinned_rv(object: &Value) -> Result<Option<i64>, ApiError> {
    match meta_str(object, "resourceVersion").filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(v) => super::list::parse_rv(v).map(Some),
    }
}

/// PUT on the main resource.
pub async fn update(ctx: &Ctx, req: &Req) -> Result<Reply, ApiError> {
    update_part(ctx, req, Part::Main).await
}

/// PUT on the main resource or a subresource.
pub async fn update_part(ctx: &Ctx, req: &Req, part: Part) -> Result<Reply, ApiError> {
    let name = req.name()?.to_string();
    let body = req
        .body
        .as_ref()
        .ok_or_else(|| ApiError::BadRequest("update needs a body".into()))?;
    let value = meta::parse_body(body)?;
    let (incoming, warnings) = meta::decode_object(req, value)?;
    meta::check_identity(req, &incoming, Some(&name))?;
    let pinned = pinned_rv(&incoming)?;
    let manager = req.field_manager();
    let updated = guaranteed_update(ctx, req, &name, |old| {
        Ok((
            prepare_update(req, old, incoming.clone(), part, Some(&manager))?,
            pinned,
        ))
    })
    .await?;
    Ok(Reply::Object {
        code: 200,
        body: updated,
        warnings,
    })
}
