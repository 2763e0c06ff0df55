//! Server-side apply: the applied configuration is merged into the live object, its fields
//! become owned by the applying manager, and fields another manager owns with a different
//! value are conflicts (409 naming each field) unless `force=true` takes them over. Fields the
//! manager applied before and no longer applies are removed, unless someone else owns them.

use serde_json::{Map, Value};

use super::managed::{
    self, display_path, entries, entry, fieldset, leaves, owned_part, set_entries, subtract, union,
};
use crate::error::Cause;
use crate::schema::{Schemas, Strategy};

/// The outcome of an apply.
pub enum Applied {
    /// The object to write.
    Object(Value),
    /// Fields owned by other managers with other values.
    Conflicts(Vec<Cause>),
}

/// Follows a field path in an object; `None` if absent.
fn value_at<'a>(object: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = object;
    for p in path {
        cur = if let Some(f) = p.strip_prefix("f:") {
            cur.get(f)?
        } else if let Some(k) = p.strip_prefix("k:") {
            let key: Map<String, Value> = serde_json::from_str(k).ok()?;
            cur.as_array()?
                .iter()
                .find(|i| key.iter().all(|(kk, kv)| i.get(kk) == Some(kv)))?
        } else if let Some(v) = p.strip_prefix("v:") {
            let v: Value = serde_json::from_str(v).ok()?;
            cur.as_array()?.iter().find(|i| **i == v)?
        } else {
            return None;
        };
    }
    Some(cur)
}

/// Whether a field set holds a path (or an ancestor of it as a leaf).
fn set_has(set: &Value, path: &[String]) -> bool {
    let mut cur = set;
    for p in path {
        match cur.get(p) {
            Some(next) => cur = next,
            None => return false,
        }
    }
    true
}

/// Removes the node at a field path.
fn remove_at(object: &mut Value, path: &[String]) {
    let Some((last, parent_path)) = path.split_last() else {
        return;
    };
    let mut cur = object;
    for p in parent_path {
        let next = if let Some(f) = p.strip_prefix("f:") {
            cur.get_mut(f)
        } else if let Some(k) = p.strip_prefix("k:") {
            let Ok(key) = serde_json::from_str::<Map<String, Value>>(k) else {
                return;
            };
            cur.as_array_mut().and_then(|a| {
                a.iter_mut()
                    .find(|i| key.iter().all(|(kk, kv)| i.get(kk) == Some(kv)))
            })
        } else {
            None
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    if let Some(f) = last.strip_prefix("f:") {
        if let Some(m) = cur.as_object_mut() {
            m.remove(f);
        }
    } else if let Some(k) = last.strip_prefix("k:") {
        if let (Ok(key), Some(a)) = (
            serde_json::from_str::<Map<String, Value>>(k),
            cur.as_array_mut(),
        ) {
            a.retain(|i| !key.iter().all(|(kk, kv)| i.get(kk) == Some(kv)));
        }
    } else if let Some(v) = last.strip_prefix("v:")
        && let (Ok(v), Some(a)) = (serde_json::from_str::<Value>(v), cur.as_array_mut())
    {
        a.retain(|i| *i != v);
    }
}

/// The paths of the list items a field set holds whole (nodes carrying the `.` marker),
/// outermost first; items inside such an item are not listed again.
fn dropped_items(set: &Value) -> Vec<Vec<String>> {
    fn walk(node: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        let Some(m) = node.as_object() else { return };
        if !path.is_empty() && m.contains_key(".") {
            out.push(path.clone());
            return;
        }
        for (k, v) in m {
            path.push(k.clone());
            walk(v, path, out);
            path.pop();
        }
    }
    let mut out = Vec::new();
    walk(set, &mut Vec::new(), &mut out);
    out
}

/// Merges applied configuration into the live object: objects recursively, keyed lists item
/// by item, set lists as sets, everything else replaced.
fn merge(live: &Value, applied: &Value, schemas: &Schemas, ty: Option<&str>) -> Value {
    let (Value::Object(l), Value::Object(a)) = (live, applied) else {
        return applied.clone();
    };
    let mut out = l.clone();
    for (k, av) in a {
        let field = schemas.field(ty, k);
        let lv = l.get(k);
        let merged = match (av, field.strategy, lv) {
            (Value::Object(_), s, Some(lv)) if s != Some(Strategy::AtomicMap) => {
                merge(lv, av, schemas, field.ty.as_deref())
            }
            (Value::Array(items), Some(Strategy::Map(keys)), Some(Value::Array(litems)))
                if !keys.is_empty() =>
            {
                let mut res = litems.clone();
                for item in items {
                    match res
                        .iter()
                        .position(|x| keys.iter().all(|kk| x.get(*kk) == item.get(*kk)))
                    {
                        Some(i) => res[i] = merge(&res[i], item, schemas, field.ty.as_deref()),
                        None => res.push(item.clone()),
                    }
                }
                Value::Array(res)
            }
            (Value::Array(items), Some(Strategy::Set), Some(Value::Array(litems))) => {
                let mut res = litems.clone();
                for i in items {
                    if !res.contains(i) {
                        res.push(i.clone());
                    }
                }
                Value::Array(res)
            }
            _ => av.clone(),
        };
        out.insert(k.clone(), merged);
    }
    Value::Object(out)
}

/// Applies `applied` (already decoded, defaulted fields not included) as `manager`.
pub fn apply(
    live: &Value,
    applied: &Value,
    manager: &str,
    force: bool,
    schemas: &Schemas,
    ty: Option<&str>,
) -> Applied {
    let applied_part = owned_part(applied, None);
    let applied_set = fieldset(&applied_part, ty);
    let mut list = entries(live);
    let mut conflicts = Vec::new();
    let mut taken = serde_json::json!({});
    for e in &list {
        if e["manager"] == manager && e["operation"] == "Apply" {
            continue;
        }
        let theirs = &e["fieldsV1"];
        for path in leaves(&applied_set) {
            if !set_has(theirs, &path) {
                continue;
            }
            if value_at(live, &path) != value_at(applied, &path) {
                let api_version = e["apiVersion"].as_str().unwrap_or_default();
                conflicts.push(Cause {
                    reason: "FieldManagerConflict",
                    field: display_path(&path),
                    message: format!(
                        "conflict with \"{}\" using {api_version}",
                        e["manager"].as_str().unwrap_or_default()
                    ),
                });
                let mut single = serde_json::json!({});
                let mut node = &mut single;
                for p in &path {
                    node = node
                        .as_object_mut()
                        .expect("built as objects")
                        .entry(p.clone())
                        .or_insert(serde_json::json!({}));
                }
                taken = union(&taken, &single);
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Applied::Conflicts(conflicts);
    }
    let mut merged = merge(live, applied, schemas, ty);
    // Fields this manager applied before and dropped now, owned by nobody else, go away.
    let previous = list
        .iter()
        .find(|e| e["manager"] == manager && e["operation"] == "Apply")
        .map(|e| e["fieldsV1"].clone())
        .unwrap_or(serde_json::json!({}));
    let dropped = subtract(&previous, &applied_set);
    // List items the manager applied before and dropped whole (their `.` marker is in the
    // dropped set) go with their unowned defaulted fields, unless another manager owns
    // something inside them.
    for path in dropped_items(&dropped) {
        let owned_elsewhere = list.iter().any(|e| {
            !(e["manager"] == manager && e["operation"] == "Apply")
                && set_has(&e["fieldsV1"], &path)
        });
        if !owned_elsewhere {
            remove_at(&mut merged, &path);
        }
    }
    for path in leaves(&dropped) {
        let owned_elsewhere = list.iter().any(|e| {
            !(e["manager"] == manager && e["operation"] == "Apply")
                && set_has(&e["fieldsV1"], &path)
        });
        if !owned_elsewhere {
            remove_at(&mut merged, &path);
        }
    }
    let api_version = applied
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    list.retain_mut(|e| {
        if e["manager"] == manager && e["operation"] == "Apply" {
            return false;
        }
        let rest = subtract(&e["fieldsV1"], &taken);
        e["fieldsV1"] = rest.clone();
        !managed::is_empty(&rest)
    });
    list.push(entry(manager, "Apply", &api_version, None, applied_set));
    set_entries(&mut merged, list);
    Applied::Object(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(replicas: i64, image: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "labels": {"a": "1"}},
               "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "c", "image": image}]}}}})
    }

    #[test]
    fn conflicts_with_other_managers_unless_forced() {
        let s = crate::schema_index();
        let ty = Some("io.k8s.api.apps.v1.Deployment");
        let Applied::Object(live) = apply(&json!({}), &deployment(1, "x"), "kubectl", false, s, ty)
        else {
            panic!()
        };
        // Another manager scales it.
        let mut scaled = live.clone();
        scaled["spec"]["replicas"] = json!(5);
        managed::record(Some(&live), &mut scaled, "scaler", "Update", None);
        // Re-applying with replicas 1 conflicts on .spec.replicas only.
        match apply(&scaled, &deployment(1, "y"), "kubectl", false, s, ty) {
            Applied::Conflicts(c) => {
                assert_eq!(c.len(), 1);
                assert_eq!(c[0].field, ".spec.replicas");
                assert!(c[0].message.contains("scaler"));
            }
            Applied::Object(_) => panic!("expected a conflict"),
        }
        let Applied::Object(forced) = apply(&scaled, &deployment(1, "y"), "kubectl", true, s, ty)
        else {
            panic!()
        };
        assert_eq!(forced["spec"]["replicas"], 1);
        assert_eq!(
            forced["spec"]["template"]["spec"]["containers"][0]["image"],
            "y"
        );
        let managers: Vec<_> = entries(&forced)
            .iter()
            .map(|e| e["manager"].clone())
            .collect();
        assert_eq!(managers, vec![json!("kubectl")]);
    }

    #[test]
    fn dropped_list_items_are_removed_with_their_defaulted_fields() {
        let s = crate::schema_index();
        let ty = Some("io.k8s.api.core.v1.Pod");
        let pod = |containers: Value| {
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                   "spec": {"containers": containers}})
        };
        let a = pod(json!([
            {"name": "c", "image": "i", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
             "ports": [{"containerPort": 80}, {"containerPort": 443}]},
            {"name": "d", "image": "i"}]));
        let Applied::Object(mut live) = apply(&json!({}), &a, "kubectl", false, s, ty) else {
            panic!()
        };
        // Defaults the server fills in, owned by nobody.
        for c in live["spec"]["containers"].as_array_mut().unwrap() {
            c["terminationMessagePath"] = json!("/dev/termination-log");
            if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
                for p in ports {
                    p["protocol"] = json!("TCP");
                }
            }
        }
        let b = pod(json!([
            {"name": "c", "image": "i", "env": [{"name": "A", "value": "1"}],
             "ports": [{"containerPort": 80}]}]));
        let Applied::Object(out) = apply(&live, &b, "kubectl", false, s, ty) else {
            panic!()
        };
        let containers = out["spec"]["containers"].as_array().unwrap();
        assert_eq!(containers.len(), 1, "{out}");
        assert_eq!(containers[0]["env"], json!([{"name": "A", "value": "1"}]));
        assert_eq!(
            containers[0]["ports"],
            json!([{"containerPort": 80, "protocol": "TCP"}])
        );
        assert_eq!(
            containers[0]["terminationMessagePath"],
            "/dev/termination-log"
        );
    }

    #[test]
    fn dropped_fields_are_removed() {
        let s = crate::schema_index();
        let ty = Some("io.k8s.api.apps.v1.Deployment");
        let Applied::Object(live) = apply(&json!({}), &deployment(1, "x"), "kubectl", false, s, ty)
        else {
            panic!()
        };
        let mut without_labels = deployment(1, "x");
        without_labels["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("labels");
        let Applied::Object(out) = apply(&live, &without_labels, "kubectl", false, s, ty) else {
            panic!()
        };
        assert!(
            out["metadata"]
                .get("labels")
                .is_none_or(|l| l.get("a").is_none()),
            "{out}"
        );
    }
}
