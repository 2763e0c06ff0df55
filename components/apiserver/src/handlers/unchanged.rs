//! No-op write detection: whether a write's result equals the stored object.
//!
//! kube-apiserver's `GuaranteedUpdate` skips the store write when the new object's bytes equal
//! the stored ones, so an update, patch or apply that changes nothing keeps the
//! resourceVersion and emits no watch event. Before comparing, its handlers reset
//! managedFields timestamps when they are the only change
//! (`IgnoreManagedFieldsTimestampsTransformer`). [`unchanged`] makes the same comparison on
//! the JSON: everything but `metadata.resourceVersion` (which the store sets) and the `time`
//! of each managedFields entry must be equal. [`super::write::replace`] then returns the
//! stored object instead of writing.

use serde_json::{Map, Value};

/// Whether `new` equals `stored` up to `metadata.resourceVersion` and managedFields times.
pub fn unchanged(stored: &Value, new: &Value) -> bool {
    let (Some(a), Some(b)) = (stored.as_object(), new.as_object()) else {
        return stored == new;
    };
    same_keys(a, b, |key, x, y| match key {
        "metadata" => match (x.as_object(), y.as_object()) {
            (Some(m), Some(n)) => same_meta(m, n),
            _ => x == y,
        },
        _ => x == y,
    })
}

/// Whether two maps hold the same keys, with `eq` deciding each key's values.
fn same_keys(
    a: &Map<String, Value>,
    b: &Map<String, Value>,
    eq: impl Fn(&str, &Value, &Value) -> bool,
) -> bool {
    a.len() == b.len() && a.iter().all(|(k, x)| b.get(k).is_some_and(|y| eq(k, x, y)))
}

fn same_meta(a: &Map<String, Value>, b: &Map<String, Value>) -> bool {
    let without_rv =
        |m: &Map<String, Value>| m.len() - usize::from(m.contains_key("resourceVersion"));
    without_rv(a) == without_rv(b)
        && a.iter()
            .filter(|(k, _)| k.as_str() != "resourceVersion")
            .all(|(k, x)| {
                b.get(k).is_some_and(|y| match k.as_str() {
                    "managedFields" => same_entries(x, y),
                    _ => x == y,
                })
            })
}

/// managedFields lists equal but for each entry's `time`.
fn same_entries(a: &Value, b: &Value) -> bool {
    match (a.as_array(), b.as_array()) {
        (Some(x), Some(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|(e, f)| match (e.as_object(), f.as_object()) {
                        (Some(e), Some(f)) => {
                            let without_time = |m: &Map<String, Value>| {
                                m.len() - usize::from(m.contains_key("time"))
                            };
                            without_time(e) == without_time(f)
                                && e.iter()
                                    .filter(|(k, _)| k.as_str() != "time")
                                    .all(|(k, v)| f.get(k) == Some(v))
                        }
                        _ => e == f,
                    })
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(rv: Option<&str>, time: &str, label: &str) -> Value {
        let mut o = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "labels": {"a": label},
                "managedFields": [{"manager": "m", "operation": "Apply", "time": time,
                    "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {}}}]},
            "data": {"k": "v"}});
        if let Some(rv) = rv {
            o["metadata"]["resourceVersion"] = json!(rv);
        }
        o
    }

    #[test]
    fn resource_version_and_managed_times_are_ignored() {
        let stored = obj(Some("7"), "2026-01-01T00:00:00Z", "x");
        assert!(unchanged(&stored, &obj(None, "2026-01-02T00:00:00Z", "x")));
        assert!(unchanged(
            &stored,
            &obj(Some("7"), "2026-01-01T00:00:00Z", "x")
        ));
    }

    #[test]
    fn any_other_change_is_a_change() {
        let stored = obj(Some("7"), "2026-01-01T00:00:00Z", "x");
        assert!(!unchanged(&stored, &obj(None, "2026-01-01T00:00:00Z", "y")));
        let mut extra = obj(None, "2026-01-01T00:00:00Z", "x");
        extra["metadata"]["annotations"] = json!({"n": "1"});
        assert!(!unchanged(&stored, &extra));
        let mut manager = obj(None, "2026-01-01T00:00:00Z", "x");
        manager["metadata"]["managedFields"][0]["manager"] = json!("other");
        assert!(!unchanged(&stored, &manager));
        let mut data = obj(None, "2026-01-01T00:00:00Z", "x");
        data["data"]["k"] = json!("w");
        assert!(!unchanged(&stored, &data));
        let mut gone = obj(None, "2026-01-01T00:00:00Z", "x");
        gone.as_object_mut().unwrap().remove("data");
        assert!(!unchanged(&stored, &gone));
    }
}
