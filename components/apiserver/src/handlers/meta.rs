//! Generic object rules shared by every verb: body decoding (JSON/YAML), apiVersion/kind
//! checks, strict field validation, metadata validation, selectors, and small helpers.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::{Body, Ctx, Req};
use crate::error::{ApiError, Cause, ObjectRef};
use crate::registry::{Info, Resource};
use crate::storage::{Guard, Key};

mod json;

pub use json::{duplicate_fields, parse_json};

/// Current time as Kubernetes writes timestamps (seconds, UTC).
pub fn now() -> String {
    let t = jiff::Timestamp::now();
    jiff::Timestamp::from_second(t.as_second())
        .unwrap_or(t)
        .to_string()
}

/// Parses a body as JSON, or YAML for YAML media types. Malformed input is a 400.
pub fn parse_body(body: &Body) -> Result<Value, ApiError> {
    parse_body_checked(body).map(|(v, _)| v)
}

/// [`parse_body`], also returning the paths of duplicate keys (JSON bodies; see
/// [`parse_json`]).
pub fn parse_body_checked(body: &Body) -> Result<(Value, Vec<String>), ApiError> {
    let yaml = body.content_type.contains("yaml");
    let (value, dups) = if yaml {
        let v: Value = serde_yaml_ng::from_slice(&body.bytes)
            .map_err(|e| ApiError::BadRequest(format!("error converting YAML to JSON: {e}")))?;
        (v, Vec::new())
    } else {
        parse_json(&body.bytes).map_err(|e| {
            ApiError::BadRequest(format!("couldn't decode the request body as JSON: {e}"))
        })?
    };
    if !value.is_object() {
        return Err(ApiError::BadRequest(
            "the request body must be a JSON/YAML object".into(),
        ));
    }
    Ok((value, dups))
}

/// Fills in or checks `apiVersion` and `kind` against the resource of the URL.
pub fn check_type(info: &Info, object: &mut Value) -> Result<(), ApiError> {
    let want_av = info.api_version();
    let map = object
        .as_object_mut()
        .ok_or_else(|| ApiError::BadRequest("the object must be a JSON object".into()))?;
    match map.get("apiVersion").and_then(Value::as_str) {
        None => {
            map.insert("apiVersion".into(), Value::String(want_av));
        }
        Some(av) if av == want_av => {}
        Some(av) => {
            return Err(ApiError::BadRequest(format!(
                "the API version in the data ({av}) does not match the expected API version ({want_av})"
            )));
        }
    }
    match map.get("kind").and_then(Value::as_str) {
        None => {
            map.insert("kind".into(), Value::String(info.kind.into()));
        }
        Some(k) if k == info.kind => {}
        Some(k) => {
            return Err(ApiError::BadRequest(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                info.kind
            )));
        }
    }
    match map.get("metadata") {
        None | Some(Value::Null) => {
            map.insert("metadata".into(), json!({}));
        }
        Some(Value::Object(_)) => {}
        Some(_) => return Err(ApiError::BadRequest("metadata must be an object".into())),
    }
    Ok(())
}

/// Decodes through the typed model and applies `?fieldValidation=`: `Strict` refuses unknown
/// fields (400), `Warn` (the default) returns them as warnings, `Ignore` drops them silently.
pub fn decode_object(req: &Req, mut value: Value) -> Result<(Value, Vec<String>), ApiError> {
    check_type(req.resource.info(), &mut value)?;
    let decoded = req.resource.decode(value)?;
    let warnings = field_validation(req, &decoded.unknown_fields, &body_duplicates(req))?;
    Ok((decoded.object, warnings))
}

/// Duplicate keys of the request's JSON body (none for YAML or no body).
pub fn body_duplicates(req: &Req) -> Vec<String> {
    if req.query.get("fieldValidation") == Some("Ignore") {
        return Vec::new();
    }
    req.body
        .as_ref()
        .filter(|b| b.content_type.contains("json"))
        .map(|b| duplicate_fields(&b.bytes))
        .unwrap_or_default()
}

/// Applies `?fieldValidation=` to the unknown fields of a decode and the duplicate keys of
/// the body: `Strict` refuses them (400), `Warn` (the default) returns them as warnings,
/// `Ignore` drops them.
pub fn field_validation(
    req: &Req,
    unknown_fields: &[String],
    duplicates: &[String],
) -> Result<Vec<String>, ApiError> {
    let mode = req.query.get("fieldValidation").unwrap_or("Warn");
    let mut messages: Vec<String> = unknown_fields
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    if mode != "Ignore" {
        messages.extend(
            duplicates
                .iter()
                .map(|f| format!("duplicate field \"{f}\"")),
        );
    }
    match mode {
        "Strict" if !messages.is_empty() => Err(ApiError::BadRequest(format!(
            "strict decoding error: {}",
            messages.join(", ")
        ))),
        "Strict" | "Warn" => Ok(messages),
        "Ignore" => Ok(Vec::new()),
        other => Err(ApiError::BadRequest(format!(
            "fieldValidation={other:?}: must be one of Strict, Warn, Ignore"
        ))),
    }
}

/// The error-message reference to an object.
pub fn object_ref(info: &Info, name: &str) -> ObjectRef {
    ObjectRef {
        group: info.group.to_string(),
        resource: info.plural.to_string(),
        kind: info.kind.to_string(),
        name: name.to_string(),
    }
}

/// `metadata` as a map (created if missing).
pub fn meta_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object.get("metadata").is_some_and(Value::is_object) {
        object["metadata"] = json!({});
    }
    object["metadata"]
        .as_object_mut()
        .expect("metadata was just made an object")
}

/// A string field of metadata.
pub fn meta_str<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    object.get("metadata")?.get(field)?.as_str()
}

/// The labels of an object.
pub fn labels(object: &Value) -> BTreeMap<String, String> {
    object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// The string value of a dotted field path (`spec.nodeName`), `""` if absent.
pub fn field_value(object: &Value, path: &str) -> String {
    let pointer = format!("/{}", path.replace('.', "/"));
    match object.pointer(&pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// Kubernetes refuses finalizers added to an object that is being deleted (they would keep
/// it forever); the 422 cause for those `new` adds, if `old` is being deleted.
pub fn new_finalizers_while_deleting(new: &Value, old: &Value) -> Option<Cause> {
    meta_str(old, "deletionTimestamp")?;
    let list = |o: &Value| -> Vec<String> {
        o.pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|f| f.as_str().map(str::to_string))
            .collect()
    };
    let before = list(old);
    let added: Vec<String> = list(new)
        .into_iter()
        .filter(|f| !before.contains(f))
        .collect();
    (!added.is_empty()).then(|| Cause {
        reason: "FieldValueForbidden",
        field: "metadata.finalizers".into(),
        message: format!(
            "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"
        ),
    })
}

/// Validates metadata: name rules of the resource, label and annotation keys and values.
pub fn validate_meta(info: &Info, object: &Value) -> Vec<Cause> {
    use kubelab_api::validation as v;
    let mut causes = Vec::new();
    let name = meta_str(object, "name").unwrap_or_default();
    if name.is_empty() {
        causes.push(Cause::required("metadata.name"));
    } else {
        let errs = match info.plural {
            "namespaces" => v::dns1123_label(name),
            "services" => v::dns1035_label(name),
            "roles" | "clusterroles" | "rolebindings" | "clusterrolebindings" => {
                if name.contains('/') || name.contains('%') || name == "." || name == ".." {
                    vec!["may not contain '/' or '%', and may not be '.' or '..'".to_string()]
                } else {
                    vec![]
                }
            }
            _ => v::dns1123_subdomain(name),
        };
        for e in errs {
            causes.push(Cause::invalid("metadata.name", name, &e));
        }
    }
    for (k, val) in labels(object) {
        for e in v::qualified_name(&k) {
            causes.push(Cause::invalid("metadata.labels", &k, &e));
        }
        for e in v::label_value(&val) {
            causes.push(Cause::invalid(format!("metadata.labels.{k}"), &val, &e));
        }
    }
    causes.extend(validate_finalizers(object));
    if let Some(ann) = object
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
    {
        let mut total = 0usize;
        for (k, val) in ann {
            total += k.len() + val.as_str().map_or(0, str::len);
            for e in v::qualified_name(&k.to_lowercase()) {
                causes.push(Cause::invalid("metadata.annotations", k, &e));
            }
        }
        if total > 256 * 1024 {
            causes.push(Cause {
                reason: "FieldValueTooLong",
                field: "metadata.annotations".into(),
                message: "Too long: must have at most 262144 bytes".into(),
            });
        }
    }
    causes
}

/// Kubernetes' finalizer name rule for its built-in resources: each of
/// `metadata.finalizers` is a qualified name, and one without a `domain/` prefix must be a
/// standard finalizer (`kubernetes`, `orphan`, `foregroundDeletion`).
fn validate_finalizers(object: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let finalizers = object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array);
    for (i, f) in finalizers.into_iter().flatten().enumerate() {
        let field = format!("metadata.finalizers[{i}]");
        let name = f.as_str().unwrap_or_default();
        let errs = kubelab_api::validation::qualified_name(name);
        if !errs.is_empty() {
            causes.extend(errs.iter().map(|e| Cause::invalid(&field, name, e)));
        } else if !name.contains('/')
            && !matches!(name, "kubernetes" | "orphan" | "foregroundDeletion")
        {
            causes.push(Cause::invalid(
                &field,
                name,
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
    causes
}

/// Where [`namespace_guard`] takes the namespace's revision from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardRead {
    /// The revision remembered when the namespace was last found live and not terminating
    /// (no store round trip), else a read now.
    Remembered,
    /// A linearizable read now (after a transaction's compare found the memo stale).
    Live,
}

/// The namespace an object is created in, as a [`Guard`] for the create's transaction: 404
/// if missing, 403 if terminating. A namespace changed since its revision was taken fails
/// the transaction's compare and is read again with [`GuardRead::Live`], so the memo is
/// never trusted blindly. A live read remembers the revision it found.
pub async fn namespace_guard(
    ctx: &Ctx,
    info: &Info,
    ns: &str,
    name: &str,
    read: GuardRead,
) -> Result<Guard, ApiError> {
    let key = Key::object("namespaces", None, ns);
    if read == GuardRead::Remembered
        && let Some(revision) = ctx.store.recall(&key)
    {
        return Ok(Guard { key, revision });
    }
    let stored = ctx.store.get(&key).await?;
    match stored {
        None => {
            ctx.store.forget(&key);
            Err(ApiError::NotFound(ObjectRef {
                group: String::new(),
                resource: "namespaces".into(),
                kind: "Namespace".into(),
                name: ns.to_string(),
            }))
        }
        Some(s) if meta_str(&s.object, "deletionTimestamp").is_some() => {
            ctx.store.forget(&key);
            Err(ApiError::NamespaceTerminating {
                object: object_ref(info, name),
                namespace: ns.to_string(),
            })
        }
        Some(s) => {
            ctx.store.remember(&key, s.revision);
            Ok(Guard {
                key,
                revision: s.revision,
            })
        }
    }
}

/// Whether anything but metadata and status differs: such a change bumps `generation`.
/// Compares in place (no copies): this runs on every update.
pub fn spec_changed(a: &Value, b: &Value) -> bool {
    const SKIP: [&str; 4] = ["metadata", "status", "apiVersion", "kind"];
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return a != b;
    };
    let differs = |x: &Map<String, Value>, y: &Map<String, Value>| {
        x.iter()
            .filter(|(k, _)| !SKIP.contains(&k.as_str()))
            .any(|(k, v)| y.get(k) != Some(v))
    };
    differs(a, b) || differs(b, a)
}

/// Rejects requests whose body names another object than the URL.
pub fn check_identity(req: &Req, object: &Value, url_name: Option<&str>) -> Result<(), ApiError> {
    if let (Some(url), Some(body)) = (url_name, meta_str(object, "name"))
        && url != body
    {
        return Err(ApiError::BadRequest(format!(
            "the name of the object ({body}) does not match the name on the URL ({url})"
        )));
    }
    if let (Some(url), Some(body)) = (req.namespace(), meta_str(object, "namespace"))
        && url != body
    {
        return Err(ApiError::BadRequest(format!(
            "the namespace of the provided object ({body}) does not match the namespace sent on the request ({url})"
        )));
    }
    Ok(())
}

/// The resource a [`Req`] addresses.
pub fn info(req: &Req) -> &Info {
    req.resource.info()
}

/// Whether an object matches the request's label and field selectors.
pub struct Filter {
    labels: kubelab_api::labels::Selector,
    fields: kubelab_api::fields::FieldSelector,
}

impl Filter {
    /// Parses `labelSelector` and `fieldSelector`, checking field names against the resource.
    pub fn from_request(req: &Req) -> Result<Filter, ApiError> {
        let labels =
            kubelab_api::labels::Selector::parse(req.query.get("labelSelector").unwrap_or(""))
                .map_err(|e| ApiError::BadRequest(format!("labelSelector: {e}")))?;
        let fields =
            kubelab_api::fields::FieldSelector::parse(req.query.get("fieldSelector").unwrap_or(""))
                .map_err(|e| ApiError::BadRequest(format!("fieldSelector: {e}")))?;
        let info = req.resource.info();
        for r in &fields.requirements {
            let f = r.field.as_str();
            if f != "metadata.name" && f != "metadata.namespace" && !info.field_labels.contains(&f)
            {
                return Err(ApiError::BadRequest(format!(
                    "field label not supported: {f} (supported for {}: metadata.name, metadata.namespace{})",
                    info.plural,
                    info.field_labels
                        .iter()
                        .map(|l| format!(", {l}"))
                        .collect::<String>()
                )));
            }
        }
        Ok(Filter { labels, fields })
    }

    /// True when both selectors are empty.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }

    /// Whether the object matches.
    pub fn matches(&self, object: &Value) -> bool {
        self.labels.matches(&labels(object)) && self.fields.matches(|f| field_value(object, f))
    }
}

/// Reads the object a write starts from. `fast`: from the member's applied state without a
/// leadership round (the write's `mod_revision` compare catches a stale read; a missing object
/// is re-read linearizably before it becomes a 404). Otherwise as [`must_get`].
pub async fn get_for_write(
    ctx: &Ctx,
    res: &dyn Resource,
    key: &Key,
    name: &str,
    fast: bool,
) -> Result<crate::storage::Stored, ApiError> {
    if fast && let Some(stored) = ctx.store.get_serializable(key).await? {
        return Ok(stored);
    }
    must_get(ctx, res, key, name).await
}

/// Reads the object or fails with 404.
pub async fn must_get(
    ctx: &Ctx,
    res: &dyn Resource,
    key: &Key,
    name: &str,
) -> Result<crate::storage::Stored, ApiError> {
    ctx.store
        .get(key)
        .await?
        .ok_or_else(|| ApiError::NotFound(object_ref(res.info(), name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_values() {
        let o = json!({"spec": {"nodeName": "n1", "unschedulable": true}, "status": {"phase": "Running"}});
        assert_eq!(field_value(&o, "spec.nodeName"), "n1");
        assert_eq!(field_value(&o, "spec.unschedulable"), "true");
        assert_eq!(field_value(&o, "status.podIP"), "");
    }

    #[test]
    fn yaml_and_json_bodies() {
        let b = |ct: &str, s: &str| Body {
            bytes: bytes::Bytes::from(s.to_string()),
            content_type: ct.into(),
        };
        assert!(parse_body(&b("application/yaml", "kind: Pod\nmetadata:\n  name: x\n")).is_ok());
        assert_eq!(
            parse_body(&b("application/json", "{bad"))
                .unwrap_err()
                .code(),
            400
        );
        assert_eq!(
            parse_body(&b("application/yaml", "a: ["))
                .unwrap_err()
                .code(),
            400
        );
        assert_eq!(
            parse_body(&b("application/json", "[1]"))
                .unwrap_err()
                .code(),
            400
        );
    }
}
