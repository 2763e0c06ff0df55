//! POST: create an object (generateName, uid, timestamps, initial status, allocations).

use serde_json::{Value, json};

use super::meta::{self, meta_mut, meta_str};
use super::{Ctx, Reply, Req, write};
use crate::error::ApiError;
use crate::registry::Sub;

/// Characters of generated name suffixes (no vowels, no look-alikes), as Kubernetes uses.
const SUFFIX_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
/// How many suffixes to try before reporting the collision.
const GENERATE_ATTEMPTS: usize = 5;

fn random_suffix() -> String {
    let mut n = uuid::Uuid::new_v4().as_u128();
    (0..5)
        .map(|_| {
            let c = SUFFIX_ALPHABET[(n % SUFFIX_ALPHABET.len() as u128) as usize] as char;
            n /= SUFFIX_ALPHABET.len() as u128;
            c
        })
        .collect()
}

/// Creates the object in the request body.
pub async fn create(ctx: &Ctx, req: &Req) -> Result<Reply, ApiError> {
    let body = req
        .body
        .as_ref()
        .ok_or_else(|| ApiError::BadRequest("create needs a body".into()))?;
    let (mut value, duplicates) = meta::parse_body_checked(body)?;
    meta::check_type(req.resource.info(), &mut value)?;
    let (created, code, warnings) =
        create_checked(ctx, req, value, req.dry_run()?, Some(duplicates)).await?;
    Ok(Reply::Object {
        code,
        body: created,
        warnings,
    })
}

/// Creates an object whose unknown fields were already dealt with (server-side apply on a
/// missing object, the server's own objects at start): they are dropped silently.
pub async fn create_object(
    ctx: &Ctx,
    req: &Req,
    object: Value,
    dry_run: bool,
) -> Result<(Value, u16), ApiError> {
    create_checked(ctx, req, object, dry_run, None)
        .await
        .map(|(created, code, _)| (created, code))
}

/// Creates an object (apiVersion/kind checked). `check`: the body's duplicate keys, when its
/// unknown and duplicate fields are to be handled per `?fieldValidation=` (returned as
/// warnings, or a 400 for `Strict`); `None` drops unknown fields silently.
///
/// The object is decoded into its typed model once, in [`crate::registry::Resource::admit`],
/// after the generic metadata work; the namespace is checked through the create's own
/// transaction (see [`meta::namespace_guard`]).
pub async fn create_checked(
    ctx: &Ctx,
    req: &Req,
    mut object: Value,
    dry_run: bool,
    check: Option<Vec<String>>,
) -> Result<(Value, u16, Vec<String>), ApiError> {
    let info = req.resource.info();
    meta::check_identity(req, &object, None)?;
    {
        let m = meta_mut(&mut object);
        if m.get("resourceVersion")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
        {
            return Err(ApiError::BadRequest(
                "resourceVersion should not be set on objects to be created".into(),
            ));
        }
        for f in [
            "uid",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
            "resourceVersion",
        ] {
            m.remove(f);
        }
        m.insert("creationTimestamp".into(), Value::String(meta::now()));
        m.insert(
            "uid".into(),
            Value::String(uuid::Uuid::new_v4().to_string()),
        );
        if info.has_spec {
            m.insert("generation".into(), json!(1));
        } else {
            m.remove("generation");
        }
        match req.namespace() {
            Some(ns) => {
                m.insert("namespace".into(), Value::String(ns.into()));
            }
            None => {
                m.remove("namespace");
            }
        }
    }
    let initial_status = info.has(Sub::Status);
    if initial_status && let Some(map) = object.as_object_mut() {
        map.remove("status");
    }
    let guard = match req.namespace() {
        Some(ns) => {
            let name = meta_str(&object, "name").unwrap_or_default();
            Some(meta::namespace_guard(ctx, info, ns, name, meta::GuardRead::Remembered).await?)
        }
        None => None,
    };
    let generate = meta_str(&object, "generateName")
        .filter(|g| !g.is_empty())
        .map(str::to_string);
    let named = meta_str(&object, "name").is_some_and(|n| !n.is_empty());
    let attempts = if generate.is_some() && !named {
        GENERATE_ATTEMPTS
    } else {
        1
    };
    let manager = req.field_manager();
    let mut last_err = None;
    let mut check = check;
    let mut warnings = Vec::new();
    for attempt in 0..attempts {
        // Only a generated name is retried: the last (usually the only) attempt takes the
        // object instead of copying it.
        let mut candidate = if attempt + 1 == attempts {
            std::mem::take(&mut object)
        } else {
            object.clone()
        };
        if let (Some(g), false) = (&generate, named) {
            meta_mut(&mut candidate).insert(
                "name".into(),
                Value::String(format!("{g}{}", random_suffix())),
            );
        }
        let mut causes = meta::validate_meta(info, &candidate);
        let name = meta_str(&candidate, "name").unwrap_or_default().to_string();
        let admitted = req.resource.admit(candidate, None, initial_status)?;
        if let Some(duplicates) = check.take() {
            warnings = meta::field_validation(req, &admitted.unknown_fields, &duplicates)?;
        }
        causes.extend(admitted.causes);
        if !causes.is_empty() {
            return Err(ApiError::Invalid {
                kind: info.kind.into(),
                group: info.group.into(),
                name,
                causes,
            });
        }
        let mut admitted = admitted.object;
        super::check_escalation(ctx, req, &admitted, None)?;
        if admitted.pointer("/metadata/managedFields").is_none() {
            crate::patch::managed::record(None, &mut admitted, &manager, "Update", None);
        }
        let key = req.key(&name);
        let target = write::Target {
            key: &key,
            namespace: req.namespace(),
            guard: guard.clone(),
        };
        match write::create(ctx, req.resource.as_ref(), target, admitted, dry_run).await {
            Ok(created) => return Ok((created, 201, warnings)),
            Err(e @ ApiError::AlreadyExists(_)) if generate.is_some() && !named => {
                last_err = Some(e)
            }
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or(ApiError::BadRequest("name generation failed".into())))
}

#[cfg(test)]
mod tests {
    #[test]
    fn suffixes_use_the_alphabet() {
        let s = super::random_suffix();
        assert_eq!(s.len(), 5);
        assert!(s.bytes().all(|b| super::SUFFIX_ALPHABET.contains(&b)));
    }
}
