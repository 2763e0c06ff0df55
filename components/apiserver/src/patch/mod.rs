//! PATCH bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902), strategic merge patch,
//! and server-side apply; plus `managedFields` bookkeeping.
//!
//! - [`apply_patch`] turns (current object, patch body, media type) into the patched object;
//!   the handler then runs it through the same update path as a PUT.
//! - [`strategic`]: strategic merge patch with the merge keys of [`crate::schema`].
//! - [`managed`]: field sets (`fieldsV1`) and the managedFields entries of updates.
//! - [`apply`]: server-side apply (field ownership, conflicts, `force`).
//! - [`merge_keys`]: generated table of merge strategies (see `gen/merge_keys.py`).

pub mod apply;
pub mod managed;
pub mod merge_keys;
pub mod strategic;

use serde_json::Value;

use crate::error::ApiError;
use crate::schema::Schemas;

/// The patch media types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/json-patch+json`.
    Json,
    /// `application/merge-patch+json`.
    Merge,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

impl PatchKind {
    /// From a `Content-Type` (parameters stripped).
    pub fn from_content_type(ct: &str) -> Result<PatchKind, ApiError> {
        match ct {
            "application/json-patch+json" => Ok(PatchKind::Json),
            "application/merge-patch+json" => Ok(PatchKind::Merge),
            "application/strategic-merge-patch+json" => Ok(PatchKind::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(PatchKind::Apply),
            other => Err(ApiError::UnsupportedMediaType(other.to_string())),
        }
    }
}

/// Applies a JSON, merge or strategic patch to `current` (whose type is `ty`).
pub fn apply_patch(
    kind: PatchKind,
    current: &Value,
    body: &[u8],
    schemas: &Schemas,
    ty: &str,
) -> Result<Value, ApiError> {
    match kind {
        PatchKind::Json => {
            let patch: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| ApiError::BadRequest(format!("invalid JSON patch: {e}")))?;
            let mut doc = current.clone();
            json_patch::patch(&mut doc, &patch).map_err(|e| ApiError::Invalid {
                kind: String::new(),
                group: String::new(),
                name: String::new(),
                causes: vec![crate::error::Cause {
                    reason: "FieldValueInvalid",
                    field: e.path.to_string(),
                    message: format!("the JSON patch could not be applied: {e}"),
                }],
            })?;
            Ok(doc)
        }
        PatchKind::Merge => {
            let patch: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::BadRequest(format!("invalid merge patch: {e}")))?;
            if !patch.is_object() {
                return Err(ApiError::BadRequest(
                    "a merge patch must be a JSON object".into(),
                ));
            }
            let mut doc = current.clone();
            json_patch::merge(&mut doc, &patch);
            Ok(doc)
        }
        PatchKind::Strategic => {
            let patch: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::BadRequest(format!("invalid strategic merge patch: {e}")))?;
            if !patch.is_object() {
                return Err(ApiError::BadRequest(
                    "a strategic merge patch must be a JSON object".into(),
                ));
            }
            strategic::merge(current, &patch, schemas, Some(ty))
                .map_err(|e| ApiError::BadRequest(e.to_string()))
        }
        PatchKind::Apply => Err(ApiError::BadRequest(
            "apply patches are handled by server-side apply".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schemas() -> &'static Schemas {
        crate::schema_index()
    }

    #[test]
    fn merge_and_json_patches() {
        let s = schemas();
        let cur = json!({"metadata": {"labels": {"a": "1", "b": "2"}}});
        let out = apply_patch(
            PatchKind::Merge,
            &cur,
            br#"{"metadata":{"labels":{"a":null,"c":"3"}}}"#,
            s,
            "x",
        )
        .unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"b": "2", "c": "3"}));
        let out = apply_patch(
            PatchKind::Json,
            &cur,
            br#"[{"op":"replace","path":"/metadata/labels/a","value":"9"}]"#,
            s,
            "x",
        )
        .unwrap();
        assert_eq!(out["metadata"]["labels"]["a"], "9");
        let err = apply_patch(
            PatchKind::Json,
            &cur,
            br#"[{"op":"test","path":"/metadata/labels/a","value":"0"}]"#,
            s,
            "x",
        )
        .unwrap_err();
        assert_eq!(err.code(), 422);
        assert_eq!(
            apply_patch(PatchKind::Merge, &cur, b"{", s, "x")
                .unwrap_err()
                .code(),
            400
        );
        assert!(PatchKind::from_content_type("text/plain").is_err());
    }
}
