//! Strategic merge patch: JSON merge patch, except that lists with a merge key merge item by
//! item (`containers` by `name`), set-lists merge as sets, and the directives kubectl emits are
//! honoured: `$patch: replace|delete|merge`, `$retainKeys`, `$deleteFromPrimitiveList/<f>`,
//! `$setElementOrder/<f>`.

use serde_json::{Map, Value};

use crate::schema::{Schemas, Strategy};

/// A patch that cannot be applied.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StrategicError {
    /// An unknown `$patch` directive.
    #[error("unknown $patch directive {0:?}: expected replace, delete or merge")]
    Directive(String),
    /// A list item of a keyed list lacks its merge key.
    #[error("list {field}: an item lacks the merge key {key:?}")]
    MissingKey {
        /// The list field.
        field: String,
        /// The key.
        key: String,
    },
}

fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

fn same_key(a: &Value, b: &Value, keys: &[&str]) -> bool {
    keys.iter().all(|k| a.get(*k) == b.get(*k))
}

/// Merges `patch` into `original`, whose schema type is `ty`.
pub fn merge(
    original: &Value,
    patch: &Value,
    schemas: &Schemas,
    ty: Option<&str>,
) -> Result<Value, StrategicError> {
    let Value::Object(p) = patch else {
        return Ok(patch.clone());
    };
    match p.get("$patch").and_then(Value::as_str) {
        Some("replace") => return Ok(strip_directives(patch)),
        Some("delete") => return Ok(Value::Null),
        Some("merge") | None => {}
        Some(other) => return Err(StrategicError::Directive(other.to_string())),
    }
    let mut result: Map<String, Value> = match original {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    let mut orders: Vec<(String, Vec<Value>)> = Vec::new();
    for (k, pv) in p {
        if let Some(field) = k.strip_prefix("$setElementOrder/") {
            if let Some(order) = pv.as_array() {
                orders.push((field.to_string(), order.clone()));
            }
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Some(del)) = (result.get_mut(field), pv.as_array()) {
                list.retain(|x| !del.contains(x));
            }
            continue;
        }
        if k.starts_with('$') {
            continue;
        }
        if pv.is_null() {
            result.remove(k);
            continue;
        }
        let field = schemas.field(ty, k);
        let merged = match (pv, field.strategy) {
            (Value::Array(items), Some(Strategy::Map(keys))) if !keys.is_empty() => {
                let orig = result
                    .get(k)
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                merge_keyed_list(k, orig, items, keys, schemas, field.ty.as_deref())?
            }
            (Value::Array(items), Some(Strategy::Set)) => {
                let mut orig = result
                    .get(k)
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                for i in items {
                    if !orig.contains(i) {
                        orig.push(i.clone());
                    }
                }
                Value::Array(orig)
            }
            (Value::Object(_), Some(Strategy::AtomicMap)) => strip_directives(pv),
            (Value::Object(_), _) => {
                let orig = result.get(k).cloned().unwrap_or(Value::Null);
                let m = merge(&orig, pv, schemas, field.ty.as_deref())?;
                if m.is_null() {
                    result.remove(k);
                    continue;
                }
                m
            }
            _ => strip_directives(pv),
        };
        result.insert(k.clone(), merged);
    }
    for (field, order) in orders {
        let keys = match schemas.field(ty, &field).strategy {
            Some(Strategy::Map(keys)) if !keys.is_empty() => keys,
            _ => &[][..],
        };
        if let Some(Value::Array(list)) = result.get_mut(&field) {
            let pos = |item: &Value| {
                order.iter().position(|o| {
                    if keys.is_empty() {
                        o == item
                    } else {
                        same_key(o, item, keys)
                    }
                })
            };
            list.sort_by_key(|item| pos(item).unwrap_or(usize::MAX));
        }
    }
    if let Some(Value::Array(retain)) = p.get("$retainKeys") {
        let keep: Vec<&str> = retain.iter().filter_map(Value::as_str).collect();
        result.retain(|k, _| keep.contains(&k.as_str()));
    }
    Ok(Value::Object(result))
}

fn merge_keyed_list(
    field: &str,
    mut orig: Vec<Value>,
    patch: &[Value],
    keys: &[&str],
    schemas: &Schemas,
    ty: Option<&str>,
) -> Result<Value, StrategicError> {
    if patch
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        return Ok(Value::Array(
            patch
                .iter()
                .filter(|i| i.get("$patch").is_none())
                .map(strip_directives)
                .collect(),
        ));
    }
    for item in patch {
        if !item.is_object() {
            orig.push(item.clone());
            continue;
        }
        if let Some(k) = keys.iter().find(|k| item.get(**k).is_none()) {
            return Err(StrategicError::MissingKey {
                field: field.to_string(),
                key: k.to_string(),
            });
        }
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match orig.iter().position(|o| same_key(o, item, keys)) {
            Some(i) if delete => {
                orig.remove(i);
            }
            Some(i) => orig[i] = merge(&orig[i], item, schemas, ty)?,
            None if delete => {}
            None => orig.push(strip_directives(item)),
        }
    }
    Ok(Value::Array(orig))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn containers_merge_by_name_and_ports_by_container_port() {
        let s = crate::schema_index();
        let pod = json!({"spec": {"containers": [
            {"name": "a", "image": "a:1", "ports": [{"containerPort": 80}], "env": [{"name": "X", "value": "1"}]},
            {"name": "b", "image": "b:1"}]}});
        let patch = json!({"spec": {"containers": [
            {"name": "a", "image": "a:2", "ports": [{"containerPort": 443}], "env": [{"name": "X", "$patch": "delete"}]},
            {"name": "c", "image": "c:1"}]}});
        let out = merge(&pod, &patch, s, Some("io.k8s.api.core.v1.Pod")).unwrap();
        let cs = out["spec"]["containers"].as_array().unwrap();
        assert_eq!(cs.len(), 3);
        assert_eq!(cs[0]["image"], "a:2");
        assert_eq!(cs[0]["ports"].as_array().unwrap().len(), 2);
        assert_eq!(cs[0]["env"], json!([]));
        assert_eq!(cs[1]["name"], "b");
        assert_eq!(cs[2]["name"], "c");
    }

    #[test]
    fn directives() {
        let s = crate::schema_index();
        let ty = Some("io.k8s.api.core.v1.Pod");
        let pod = json!({"metadata": {"finalizers": ["a", "b"], "labels": {"x": "1"}},
                         "spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"], "finalizers": ["c"], "labels": {"$patch": "replace", "y": "2"}},
                           "spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]}});
        let out = merge(&pod, &patch, s, ty).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["b", "c"]));
        assert_eq!(out["metadata"]["labels"], json!({"y": "2"}));
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "b"}, {"name": "a"}])
        );
        let bad = json!({"spec": {"containers": [{"image": "x"}]}});
        assert!(merge(&pod, &bad, s, ty).is_err());
        assert!(merge(&pod, &json!({"$patch": "bogus"}), s, ty).is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_arbitrary_json(patch in crate::patch::strategic::tests::arb_json(3)) {
            let s = crate::schema_index();
            let _ = merge(&json!({"spec": {"containers": [{"name": "a"}]}}), &patch, s, Some("io.k8s.api.core.v1.Pod"));
        }
    }

    /// Arbitrary JSON values with keys drawn from names the merge logic treats specially.
    pub fn arb_json(depth: u32) -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            "[a-z$]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(depth, 32, 6, |inner| {
            let key = prop_oneof![
                Just("spec".to_string()),
                Just("containers".to_string()),
                Just("name".to_string()),
                Just("$patch".to_string()),
                Just("$retainKeys".to_string()),
                Just("$setElementOrder/containers".to_string()),
                "[a-z]{1,4}".prop_map(|s| s),
            ];
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(key, inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }
}
