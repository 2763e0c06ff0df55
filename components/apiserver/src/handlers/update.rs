//! PUT: replace an object (and the status/finalize subresources), with resourceVersion
//! preconditions, status/spec separation and generation tracking.

use serde_json::{Value, json};

use super::meta::{self, meta_mut, meta_str};
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
    prepare_update_checked(req, old, incoming, part, manager, None).map(|(new, _)| new)
}

/// [`prepare_update`] of an `incoming` object that was not decoded yet (apiVersion/kind
/// checked): `check` holds the body's duplicate keys, and its unknown and duplicate fields
/// are handled per `?fieldValidation=` (warnings returned, or 400 for `Strict`). The typed
/// decode happens once, in admission.
pub fn prepare_update_checked(
    req: &Req,
    old: &Value,
    incoming: Value,
    part: Part,
    manager: Option<&str>,
    check: Option<&[String]>,
) -> Result<(Value, Vec<String>), ApiError> {
    let info = req.resource.info();
    // The main resource takes status from the stored object, so admission never sees a
    // status the client sent. In the rare case it sent one that differs, decode the body as
    // sent for its unknown fields, as Kubernetes' strict decoding does before it drops status.
    let sent_unknown = match check {
        Some(_)
            if part == Part::Main
                && info.has(Sub::Status)
                && incoming
                    .get("status")
                    .is_some_and(|s| Some(s) != old.get("status")) =>
        {
            Some(req.resource.decode(incoming.clone())?.unknown_fields)
        }
        _ => None,
    };
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
        let old_meta = old.get("metadata").and_then(Value::as_object);
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
            match old_meta.and_then(|o| o.get(f)) {
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
    let admitted = req.resource.admit(new, Some(old), false)?;
    let warnings = match check {
        Some(duplicates) => meta::field_validation(
            req,
            sent_unknown.as_deref().unwrap_or(&admitted.unknown_fields),
            duplicates,
        )?,
        None => Vec::new(),
    };
    causes.extend(admitted.causes);
    let mut new = admitted.object;
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
    Ok((new, warnings))
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
    // The first read skips the store's leadership round (`serializable`): the write's
    // revision compare catches a stale read, which is then re-read linearizably — so is a
    // pinned resourceVersion that does not match, before it becomes a 409.
    let mut fast = true;
    for _ in 0..UNCONDITIONAL_RETRIES {
        let old = meta::get_for_write(ctx, res, &key, name, fast).await?;
        let (new, pinned) = transform(&old.object)?;
        if let Some(rv) = pinned
            && rv != old.revision
        {
            if fast {
                fast = false;
                continue;
            }
            return Err(write::conflict(res, name));
        }
        super::check_escalation(ctx, req, &new, Some(&old.object))?;
        match write::replace(ctx, res, &key, &old, new, dry_run).await {
            Ok(v) => return Ok(v),
            Err(WriteError::Stale(_)) if pinned.is_some() && !fast => {
                return Err(write::conflict(res, name));
            }
            Err(WriteError::Stale(_)) => fast = false,
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
    let manager = req.field_manager();
    if part != Part::Main {
        // Subresource writes take a part of the body: decode all of it for its unknown fields.
        let value = meta::parse_body(body)?;
        let (incoming, warnings) = meta::decode_object(req, value)?;
        meta::check_identity(req, &incoming, Some(&name))?;
        let pinned = pinned_rv(&incoming)?;
        let updated = guaranteed_update(ctx, req, &name, |old| {
            Ok((
                prepare_update(req, old, incoming.clone(), part, Some(&manager))?,
                pinned,
            ))
        })
        .await?;
        return Ok(Reply::Object {
            code: 200,
            body: updated,
            warnings,
        });
    }
    let (mut incoming, duplicates) = meta::parse_body_checked(body)?;
    meta::check_type(req.resource.info(), &mut incoming)?;
    meta::check_identity(req, &incoming, Some(&name))?;
    let pinned = pinned_rv(&incoming)?;
    let mut warnings = Vec::new();
    let updated = guaranteed_update(ctx, req, &name, |old| {
        let (new, w) = prepare_update_checked(
            req,
            old,
            incoming.clone(),
            part,
            Some(&manager),
            Some(&duplicates),
        )?;
        warnings = w;
        Ok((new, pinned))
    })
    .await?;
    Ok(Reply::Object {
        code: 200,
        body: updated,
        warnings,
    })
}
