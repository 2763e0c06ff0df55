//! PATCH: merge, JSON and strategic patches run through the update path; server-side apply
//! merges with field ownership and creates the object if it does not exist.

use serde_json::Value;

use super::update::{Part, guaranteed_update, pinned_rv, prepare_update, prepare_update_checked};
use super::{Ctx, Reply, Req, create, meta};
use crate::error::ApiError;
use crate::patch::apply::{Applied, apply};
use crate::patch::{PatchKind, apply_patch};

/// PATCH on the main resource.
pub async fn patch(ctx: &Ctx, req: &Req) -> Result<Reply, ApiError> {
    patch_part(ctx, req, Part::Main).await
}

/// PATCH on the main resource or the status subresource.
pub async fn patch_part(ctx: &Ctx, req: &Req, part: Part) -> Result<Reply, ApiError> {
    let name = req.name()?.to_string();
    let body = req
        .body
        .as_ref()
        .ok_or_else(|| ApiError::BadRequest("patch needs a body".into()))?;
    let kind = PatchKind::from_content_type(&body.content_type)?;
    if kind == PatchKind::Apply {
        return server_side_apply(ctx, req, &name, part).await;
    }
    let schemas = crate::schema_index();
    let ty = req.resource.schema_name();
    let manager = req.field_manager();
    let mut warnings = Vec::new();
    // The patch's duplicate keys: found once, not per retry.
    let duplicates = meta::body_duplicates(req);
    let updated = guaranteed_update(ctx, req, &name, |old| {
        let mut patched = apply_patch(kind, old, &body.bytes, schemas, &ty)?;
        if part != Part::Main {
            // A subresource write takes a part of the result: decode all of it for its
            // unknown fields.
            let (decoded, w) = meta::decode_object(req, patched)?;
            warnings = w;
            let pinned = pinned_rv(&decoded)?;
            let new = prepare_update(req, old, decoded, part, Some(&manager))?;
            return Ok((new, pinned));
        }
        // The main resource: one typed decode, in admission.
        meta::check_type(req.resource.info(), &mut patched)?;
        let pinned = pinned_rv(&patched)?;
        let (new, w) =
            prepare_update_checked(req, old, patched, part, Some(&manager), Some(&duplicates))?;
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

async fn server_side_apply(
    ctx: &Ctx,
    req: &Req,
    name: &str,
    part: Part,
) -> Result<Reply, ApiError> {
    let body = req.body.as_ref().expect("checked by caller");
    let manager = req
        .query
        .get("fieldManager")
        .ok_or_else(|| {
            ApiError::BadRequest(
                "PATCH, application/apply-patch+yaml requests require fieldManager parameter"
                    .into(),
            )
        })?
        .to_string();
    let force = req.query.flag("force")?;
    let mut applied = meta::parse_body(body)?;
    meta::check_type(req.resource.info(), &mut applied)?;
    meta::check_identity(req, &applied, Some(name))?;
    if meta::meta_str(&applied, "name").is_none() {
        meta::meta_mut(&mut applied).insert("name".into(), Value::String(name.to_string()));
    }
    // Strictness and type errors come from the typed decode; the merge uses what was sent.
    let (_, warnings) = meta::decode_object(req, applied.clone())?;
    let schemas = crate::schema_index();
    let ty = req.resource.schema_name();
    let existing = ctx.store.get(&req.key(name)).await?;
    if existing.is_none() {
        let Applied::Object(object) = apply(
            &serde_json::json!({}),
            &applied,
            &manager,
            force,
            schemas,
            Some(&ty),
        ) else {
            unreachable!("an empty object has no owners to conflict with")
        };
        let (decoded, _) = meta::decode_object(req, object)?;
        let (created, code) = create::create_object(ctx, req, decoded, req.dry_run()?).await?;
        return Ok(Reply::Object {
            code,
            body: created,
            warnings,
        });
    }
    let info = req.resource.info();
    let updated = guaranteed_update(ctx, req, name, |old| {
        match apply(old, &applied, &manager, force, schemas, Some(&ty)) {
            Applied::Conflicts(conflicts) => Err(ApiError::ApplyConflict {
                object: meta::object_ref(info, name),
                conflicts,
            }),
            Applied::Object(merged) => {
                let pinned = pinned_rv(&applied)?;
                let (decoded, _) = meta::decode_object(req, merged)?;
                Ok((prepare_update(req, old, decoded, part, None)?, pinned))
            }
        }
    })
    .await?;
    Ok(Reply::Object {
        code: 200,
        body: updated,
        warnings,
    })
}
