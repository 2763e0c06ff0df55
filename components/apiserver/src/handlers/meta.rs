//! Generic object rules shared by every verb: body decoding (JSON/YAML), apiVersion/kind
//! checks, strict field validation, metadata validation, selectors, and small helpers.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::{Body, Ctx, Req};
use crate::error::{ApiError, Cause, ObjectRef};
use crate::registry::{Info, Resource};
use crate::storage::{Guard, Key};

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

/// Paths of keys that appear twice in one JSON object of `bytes` (`spec.containers[0].name`);
/// empty when `bytes` is not JSON. See [`parse_json`].
pub fn duplicate_fields(bytes: &[u8]) -> Vec<String> {
    parse_json(bytes).map(|(_, d)| d).unwrap_or_default()
}

/// Where a JSON value sits in the document, rendered only when a duplicate is found.
enum At<'a> {
    Root,
    Key(&'a At<'a>, &'a str),
    Index(&'a At<'a>, usize),
}

impl At<'_> {
    fn render(&self, out: &mut String) {
        match self {
            At::Root => {}
            At::Key(parent, key) => {
                parent.render(out);
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            At::Index(parent, i) => {
                parent.render(out);
                out.push_str(&format!("[{i}]"));
            }
        }
    }
}

/// Builds a [`Value`] as serde_json does, noting duplicate keys (see [`parse_json`]).
struct Node<'a> {
    at: &'a At<'a>,
    dups: &'a std::cell::RefCell<Vec<String>>,
}

impl<'de> serde::de::DeserializeSeed<'de> for Node<'_> {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Node<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        serde::de::DeserializeSeed::deserialize(self, d)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        loop {
            let at = At::Index(self.at, out.len());
            match seq.next_element_seed(Node {
                at: &at,
                dups: self.dups,
            })? {
                Some(v) => out.push(v),
                None => return Ok(Value::Array(out)),
            }
        }
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let at = At::Key(self.at, &key);
            let value = map.next_value_seed(Node {
                at: &at,
                dups: self.dups,
            })?;
            if out.contains_key(&key) {
                let mut path = String::new();
                at.render(&mut path);
                self.dups.borrow_mut().push(path);
            }
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

/// Parses JSON into a [`Value`] and, in the same pass, lists the paths of keys that appear
/// twice in one object (`spec.containers[0].name`): serde_json keeps the last of duplicates
/// silently; Kubernetes' strict decoding reports them. One pass over the body instead of a
/// parse plus a second walk that formatted a path for every key.
pub fn parse_json(bytes: &[u8]) -> Result<(Value, Vec<String>), serde_json::Error> {
    let dups = std::cell::RefCell::new(Vec::new());
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde::de::DeserializeSeed::deserialize(
        Node {
            at: &At::Root,
            dups: &dups,
        },
        &mut de,
    )?;
    de.end()?;
    Ok((value, dups.into_inner()))
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

/// Fails unless the namespace exists and is not terminating.
pub async fn check_namespace(ctx: &Ctx, info: &Info, ns: &str, name: &str) -> Result<(), ApiError> {
    namespace_guard_live(ctx, info, ns, name).await.map(drop)
}

/// The namespace an object is created in, as a [`Guard`] for the create's transaction: from
/// the revision remembered when it was last found live and not terminating (no store round
/// trip), else read now. A namespace changed since fails the transaction's compare and is
/// re-read with [`namespace_guard_live`], so the memo is never trusted blindly.
pub async fn namespace_guard(
    ctx: &Ctx,
    info: &Info,
    ns: &str,
    name: &str,
) -> Result<Guard, ApiError> {
    let key = Key::object("namespaces", None, ns);
    match ctx.store.recall(&key) {
        Some(revision) => Ok(Guard { key, revision }),
        None => namespace_guard_live(ctx, info, ns, name).await,
    }
}

/// Reads the namespace (linearizable): 404 if missing, 403 if terminating, else its guard
/// (and remembers its revision).
pub async fn namespace_guard_live(
    ctx: &Ctx,
    info: &Info,
    ns: &str,
    name: &str,
) -> Result<Guard, ApiError> {
    let key = Key::object("namespaces", None, ns);
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
    fn duplicate_keys_are_found_with_paths() {
        let body = br#"{"metadata":{"name":"a","name":"b"},"spec":{"containers":[{"image":"x","image":"y"}]}}"#;
        assert_eq!(
            duplicate_fields(body),
            ["metadata.name", "spec.containers[0].image"]
        );
        assert!(duplicate_fields(br#"{"a":1,"b":{"a":2}}"#).is_empty());
        assert!(duplicate_fields(b"{broken").is_empty());
    }

    #[test]
    fn one_pass_parse_equals_serde_json() {
        let body = br#"{"a":[1,-2,3.5,18446744073709551615,{"b":null,"c":"x\u00e9\"y"}],"t":true,"e":{},"l":[]}"#;
        let (value, dups) = parse_json(body).unwrap();
        assert_eq!(value, serde_json::from_slice::<Value>(body).unwrap());
        assert!(dups.is_empty());
        // The last of duplicates wins, as serde_json has it; every duplicate is named.
        let (value, dups) = parse_json(br#"{"a":1,"a":2,"l":[{"k":1,"k":2}]}"#).unwrap();
        assert_eq!(value, json!({"a": 2, "l": [{"k": 2}]}));
        assert_eq!(dups, ["a", "l[0].k"]);
        assert!(parse_json(b"{} trailing").is_err());
        assert!(parse_json(b"{\"a\":").is_err());
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
