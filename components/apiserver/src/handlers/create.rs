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
    let value = meta::parse_body(body)?;
    let (object, warnings) = meta::decode_object(req, value)?;
    let (created, code) = create_object(ctx, req, object, req.dry_run()?).await?;
    Ok(Reply::Object {
        code,
        body: created,
        warnings,
    })
}

/// Creates a decoded object (also used by server-side apply on a missing object).
pub async fn create_object(
    ctx: &Ctx,
    req: &Req,
    mut object: Value,
    dry_run: bool,
) -> Result<(Value, u16), ApiError> {
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
    if info.has(Sub::Status) {
        if let Some(map) = object.as_object_mut() {
            map.remove("status");
        }
        if let Some(status) = req.resource.initial_status(&object) {
            object["status"] = status;
        }
    }
    if let Some(ns) = req.namespace() {
        let name = meta_str(&object, "name").unwrap_or_default().to_string();
        meta::check_namespace(ctx, info, ns, &name).await?;
    }
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
    for _ in 0..attempts {
        let mut candidate = object.clone();
        if let (Some(g), false) = (&generate, named) {
            meta_mut(&mut candidate).insert(
                "name".into(),
                Value::String(format!("{g}{}", random_suffix())),
            );
        }
        let mut causes = meta::validate_meta(info, &candidate);
        let admitted = match req.resource.admit(candidate, None) {
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
        let name = meta_str(&admitted, "name").unwrap_or_default().to_string();
        if !causes.is_empty() {
            return Err(ApiError::Invalid {
                kind: info.kind.into(),
                group: info.group.into(),
                name,
                causes,
            });
        }
        let mut admitted = admitted;
        super::check_escalation(ctx, req, &admitted, None)?;
        if admitted.pointer("/metadata/managedFields").is_none() {
            crate::patch::managed::record(None, &mut admitted, &manager, "Update", None);
        }
        let key = req.key(&name);
        match write::create(ctx, req.resource.as_ref(), &key, admitted, dry_run).await {
            Ok(created) => return Ok((created, 201)),
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
