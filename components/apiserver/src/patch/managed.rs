//! Field ownership: `fieldsV1` sets and the `metadata.managedFields` entries of writes.
//!
//! A field set is kept in its wire form, a tree of JSON objects whose keys are `f:<field>`,
//! `k:<merge-key JSON>` (list item by key), `v:<JSON>` (set member) and `.` (the node itself);
//! a leaf is `{}`. [`fieldset`] builds the set of fields an object holds, [`changed`] the set
//! a write changed; [`record`] gives an Update-manager the fields it changed and takes them
//! from every other manager, as Kubernetes does for non-apply writes.

use serde_json::{Map, Value, json};

use crate::schema::{Schemas, Strategy};

/// metadata fields that belong to users (and so to field managers); the rest are the server's.
const OWNED_META: &[&str] = &["labels", "annotations", "finalizers", "ownerReferences"];

fn schemas() -> &'static Schemas {
    crate::schema_index()
}

/// The part of an object that field ownership covers: `status` for the status subresource,
/// everything else (minus server-owned metadata) for the main resource.
pub fn owned_part(object: &Value, sub: Option<&str>) -> Value {
    let mut out = Map::new();
    let Some(m) = object.as_object() else {
        return Value::Object(out);
    };
    for (k, v) in m {
        match (k.as_str(), sub) {
            ("status", Some("status")) => {
                out.insert(k.clone(), v.clone());
            }
            (_, Some("status")) | ("status" | "apiVersion" | "kind", _) => {}
            ("metadata", _) => {
                let meta: Map<String, Value> = v
                    .as_object()
                    .map(|mm| {
                        mm.iter()
                            .filter(|(k, _)| OWNED_META.contains(&k.as_str()))
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect()
                    })
                    .unwrap_or_default();
                if !meta.is_empty() {
                    out.insert(k.clone(), Value::Object(meta));
                }
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

fn item_key(item: &Value, keys: &[&str]) -> String {
    let mut m = Map::new();
    for k in keys {
        m.insert(
            (*k).to_string(),
            item.get(*k).cloned().unwrap_or(Value::Null),
        );
    }
    format!("k:{}", Value::Object(m))
}

/// The set of fields `value` (of schema type `ty`) holds. `None` for a scalar leaf.
pub fn fieldset(value: &Value, ty: Option<&str>) -> Value {
    diff(None, value, ty).unwrap_or(json!({}))
}

/// The set of fields in `new` that are absent from or different in `old`.
pub fn changed(old: &Value, new: &Value, ty: Option<&str>) -> Value {
    diff(Some(old), new, ty).unwrap_or(json!({}))
}

/// Which fields of an object node a diff covers: all, or (at the top of an object) those
/// [`owned_part`] keeps, or (in its metadata) the user-owned metadata fields.
#[derive(Clone, Copy)]
enum Scope<'a> {
    All,
    Top(Option<&'a str>),
    Meta,
}

impl Scope<'_> {
    fn covers(self, key: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Meta => OWNED_META.contains(&key),
            Scope::Top(Some("status")) => key == "status",
            Scope::Top(_) => !matches!(key, "status" | "apiVersion" | "kind"),
        }
    }
}

/// Builds the (changed) field tree; `None` when nothing under this node changed.
fn diff(old: Option<&Value>, new: &Value, ty: Option<&str>) -> Option<Value> {
    diff_in(old, new, ty, Scope::All)
}

/// [`diff`] over the fields `scope` covers. `diff_in(old, new, ty, Scope::Top(sub))` equals
/// `diff(owned_part(old, sub), owned_part(new, sub), ty)` without copying either object.
fn diff_in(old: Option<&Value>, new: &Value, ty: Option<&str>, scope: Scope<'_>) -> Option<Value> {
    let Value::Object(m) = new else {
        return (old != Some(new)).then(|| json!({}));
    };
    let mut out = Map::new();
    for (k, v) in m {
        if v.is_null() || !scope.covers(k) {
            continue;
        }
        let field = schemas().field(ty, k);
        let o = old.and_then(|o| o.get(k));
        if matches!(scope, Scope::Top(_)) && k == "metadata" {
            // owned_part keeps metadata only as its user-owned fields.
            let o = o.filter(|o| o.is_object());
            if let Some(c) = v
                .is_object()
                .then(|| diff_in(o, v, field.ty.as_deref(), Scope::Meta))
                .flatten()
            {
                out.insert(format!("f:{k}"), c);
            }
            continue;
        }
        let child = match (v, field.strategy) {
            (Value::Object(inner), s) if s != Some(Strategy::AtomicMap) && !inner.is_empty() => {
                diff(o, v, field.ty.as_deref())
            }
            (Value::Array(items), Some(Strategy::Map(keys))) if !keys.is_empty() => {
                let olds = o.and_then(Value::as_array);
                let mut node = Map::new();
                for item in items {
                    let prev = olds.and_then(|l| {
                        l.iter()
                            .find(|x| keys.iter().all(|k| x.get(*k) == item.get(*k)))
                    });
                    if let Some(mut sub) = diff(prev, item, field.ty.as_deref()) {
                        if prev.is_none()
                            && let Some(s) = sub.as_object_mut()
                        {
                            s.insert(".".into(), json!({}));
                        }
                        node.insert(item_key(item, keys), sub);
                    }
                }
                (!node.is_empty()).then_some(Value::Object(node))
            }
            (Value::Array(items), Some(Strategy::Set)) => {
                let olds = o.and_then(Value::as_array);
                let node: Map<String, Value> = items
                    .iter()
                    .filter(|i| !olds.is_some_and(|l| l.contains(i)))
                    .map(|i| (format!("v:{i}"), json!({})))
                    .collect();
                (!node.is_empty()).then_some(Value::Object(node))
            }
            _ => (o != Some(v)).then(|| json!({})),
        };
        if let Some(c) = child {
            out.insert(format!("f:{k}"), c);
        }
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

/// `a ∪ b`.
pub fn union(a: &Value, b: &Value) -> Value {
    let mut out = a.as_object().cloned().unwrap_or_default();
    if let Some(bm) = b.as_object() {
        for (k, v) in bm {
            let merged = match out.get(k) {
                Some(existing) => union(existing, v),
                None => v.clone(),
            };
            out.insert(k.clone(), merged);
        }
    }
    Value::Object(out)
}

/// `a − b`: removes from `a` every leaf of `b` (a node whose children all go is removed).
pub fn subtract(a: &Value, b: &Value) -> Value {
    let mut out = Map::new();
    let (Some(am), Some(bm)) = (a.as_object(), b.as_object()) else {
        return a.clone();
    };
    for (k, v) in am {
        match bm.get(k) {
            None => {
                out.insert(k.clone(), v.clone());
            }
            Some(bv) if bv.as_object().is_some_and(|m| m.is_empty()) => {}
            Some(bv) => {
                let rest = subtract(v, bv);
                let only_self = rest
                    .as_object()
                    .is_some_and(|m| m.is_empty() || (m.len() == 1 && m.contains_key(".")));
                if !only_self {
                    out.insert(k.clone(), rest);
                }
            }
        }
    }
    Value::Object(out)
}

/// Every leaf path of a set (each path a list of `f:`/`k:`/`v:` elements).
pub fn leaves(set: &Value) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    fn walk(node: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        let Some(m) = node.as_object() else { return };
        let children: Vec<_> = m.iter().filter(|(k, _)| k.as_str() != ".").collect();
        if children.is_empty() {
            if !path.is_empty() {
                out.push(path.clone());
            }
            return;
        }
        for (k, v) in children {
            path.push(k.clone());
            walk(v, path, out);
            path.pop();
        }
    }
    walk(set, &mut Vec::new(), &mut out);
    out
}

/// Whether the set is empty.
pub fn is_empty(set: &Value) -> bool {
    set.as_object().is_none_or(|m| m.is_empty())
}

/// `.spec.containers[name="a"].image` — how Kubernetes prints a field path in conflicts.
pub fn display_path(path: &[String]) -> String {
    let mut s = String::new();
    for p in path {
        if let Some(f) = p.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(k) = p.strip_prefix("k:") {
            let kv: Vec<String> = serde_json::from_str::<Map<String, Value>>(k)
                .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
                .unwrap_or_default();
            s.push_str(&format!("[{}]", kv.join(",")));
        } else if let Some(v) = p.strip_prefix("v:") {
            s.push_str(&format!("[={v}]"));
        }
    }
    s
}

/// The managedFields entries of an object.
pub fn entries(object: &Value) -> Vec<Value> {
    object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Stores managedFields on an object (removing the key when empty).
pub fn set_entries(object: &mut Value, entries: Vec<Value>) {
    let meta = crate::handlers::meta::meta_mut(object);
    if entries.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert("managedFields".into(), Value::Array(entries));
    }
}

/// A managedFields entry.
pub fn entry(
    manager: &str,
    operation: &str,
    api_version: &str,
    sub: Option<&str>,
    set: Value,
) -> Value {
    let mut e = json!({
        "manager": manager, "operation": operation, "apiVersion": api_version,
        "time": crate::handlers::meta::now(), "fieldsType": "FieldsV1", "fieldsV1": set,
    });
    if let Some(s) = sub {
        e["subresource"] = json!(s);
    }
    e
}

/// The schema type name of an object's kind.
pub fn type_of(object: &Value) -> Option<String> {
    crate::schema_index().type_of(
        object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default(),
        object
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default(),
    )
}

/// Whether a client-written managedFields entry can be used as is.
fn well_formed(e: &Value) -> bool {
    e["manager"].is_string()
        && matches!(e["operation"].as_str(), Some("Apply" | "Update"))
        && e["fieldsV1"].is_object()
}

/// Records a non-apply write: `manager` (with `operation`) owns what it changed; the other
/// managers lose those fields.
pub fn record(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    operation: &str,
    sub: Option<&str>,
) {
    let ty = type_of(new);
    let set = diff_in(old, new, ty.as_deref(), Scope::Top(sub)).unwrap_or(json!({}));
    // A write that sets managedFields itself (kubectl's client-side to server-side apply
    // migration does, with a JSON patch) has them taken as given, as Kubernetes does; an
    // absent, empty or malformed list keeps the stored entries, and so do subresources.
    let given = entries(new);
    let mut list = match old {
        Some(_) if sub.is_none() && !given.is_empty() && given.iter().all(well_formed) => given,
        Some(o) => entries(o),
        None => Vec::new(),
    };
    if is_empty(&set) {
        set_entries(new, list);
        return;
    }
    let api_version = new
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut mine = json!({});
    list.retain_mut(|e| {
        let same = e["manager"] == manager
            && e["operation"] == operation
            && e.get("subresource").and_then(Value::as_str) == sub;
        if same {
            mine = e["fieldsV1"].clone();
            return false;
        }
        let rest = subtract(&e["fieldsV1"], &set);
        e["fieldsV1"] = rest.clone();
        !is_empty(&rest)
    });
    list.push(entry(
        manager,
        operation,
        &api_version,
        sub,
        union(&mine, &set),
    ));
    set_entries(new, list);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scoped_diff_equals_the_diff_of_owned_parts() {
        let ty = Some("io.k8s.api.apps.v1.Deployment");
        let old = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "uid": "u1", "labels": {"a": "1"}, "resourceVersion": "3"},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}},
            "status": {"replicas": 1}});
        let new = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "uid": "u2", "labels": {"a": "2", "b": "1"}, "annotations": {"n": "v"}},
            "spec": {"replicas": 3, "paused": null, "template": {"spec": {"containers": [{"name": "c", "image": "y"}, {"name": "d", "image": "z"}]}}},
            "status": {"replicas": 2}});
        let no_meta = json!({"metadata": {"name": "d"}, "spec": {"replicas": 1}});
        for sub in [None, Some("status"), Some("finalize")] {
            for (o, n) in [
                (Some(&old), &new),
                (None, &new),
                (Some(&new), &old),
                (Some(&old), &no_meta),
                (Some(&no_meta), &new),
            ] {
                let expected = match o {
                    None => fieldset(&owned_part(n, sub), ty),
                    Some(o) => changed(&owned_part(o, sub), &owned_part(n, sub), ty),
                };
                let got = diff_in(o, n, ty, Scope::Top(sub)).unwrap_or(json!({}));
                assert_eq!(got, expected, "sub {sub:?}, old {o:?}, new {n}");
            }
        }
    }

    #[test]
    fn sets_use_merge_keys_and_diff_changes() {
        let ty = Some("io.k8s.api.apps.v1.Deployment");
        let d = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}}});
        let set = fieldset(&d, ty);
        assert_eq!(
            set["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"c\"}"]["f:image"],
            json!({})
        );
        let mut d2 = d.clone();
        d2["spec"]["replicas"] = json!(3);
        let ch = changed(&d, &d2, ty);
        assert_eq!(ch, json!({"f:spec": {"f:replicas": {}}}));
        let rest = subtract(&set, &ch);
        assert!(rest["f:spec"].get("f:replicas").is_none());
        assert!(rest["f:spec"].get("f:template").is_some());
        assert_eq!(display_path(&leaves(&ch)[0]), ".spec.replicas");
    }

    #[test]
    fn record_takes_client_written_entries_as_given() {
        let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": 1}});
        record(None, &mut d, "kubectl-client-side-apply", "Update", None);
        // The migration rewrites the entry as an Apply of `kubectl`.
        let mut migrated = d.clone();
        migrated["metadata"]["managedFields"] = json!([{"manager": "kubectl", "operation": "Apply",
            "apiVersion": "apps/v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}}]);
        record(Some(&d), &mut migrated, "kubectl", "Update", None);
        let e = entries(&migrated);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0]["manager"], "kubectl");
        assert_eq!(e[0]["operation"], "Apply");
        // A malformed list is ignored: the stored entries stay.
        let mut bad = d.clone();
        bad["metadata"]["managedFields"] = json!([{"manager": 5}]);
        record(Some(&d), &mut bad, "x", "Update", None);
        assert_eq!(entries(&bad)[0]["manager"], "kubectl-client-side-apply");
    }

    #[test]
    fn record_moves_ownership() {
        let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": 1, "paused": false}});
        record(None, &mut d, "creator", "Update", None);
        let mut d2 = d.clone();
        d2["spec"]["replicas"] = json!(5);
        record(Some(&d), &mut d2, "scaler", "Update", None);
        let e = entries(&d2);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0]["manager"], "creator");
        assert!(e[0]["fieldsV1"]["f:spec"].get("f:replicas").is_none());
        assert_eq!(e[1]["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));
    }
}
