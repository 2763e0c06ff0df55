//! Decoding request JSON into the k8s-openapi types: the plain decode first, the path-tracking
//! one only to word an error; unknown fields found during the one decode ([`decode_typed`])
//! or, for the older round-trip check, by comparing trees ([`unknown_fields`]).

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::Info;
use crate::error::{ApiError, Cause};

/// Deserializes a request object into its typed model: type errors are 400 naming the field
/// path, missing required fields 422.
pub fn to_typed<T: DeserializeOwned>(info: &Info, value: &Value) -> Result<T, ApiError> {
    // The plain decode first: tracking the path allocates for every key, so it is only paid
    // to word an error.
    match T::deserialize(value) {
        Ok(t) => Ok(t),
        Err(_) => to_typed_explained(info, value),
    }
}

/// [`to_typed`] with unknown fields: one typed decode that also reports the paths of fields
/// the type ignores (`spec.containers[0].imagee`; a field set to `null` does not count).
pub fn decode_typed<T: DeserializeOwned>(
    info: &Info,
    value: &Value,
) -> Result<(T, Vec<String>), ApiError> {
    let mut unknown = Vec::new();
    let decoded = serde_ignored::deserialize(value, |path| {
        let mut segments = Vec::new();
        ignored_path(&path, &mut segments);
        if !at(value, &segments).is_none_or(Value::is_null) {
            unknown.push(render(&segments));
        }
    });
    match decoded {
        Ok(t) => Ok((t, unknown)),
        Err(_) => to_typed_explained(info, value).map(|t| (t, Vec::new())),
    }
}

/// A request object as its typed model `T` sees it (round-tripped through `T`, which drops
/// unknown fields), with the unknown fields' paths: [`super::Resource::decode`] of typed
/// resources and of the computed reviews.
pub fn decode_object<T: DeserializeOwned + serde::Serialize>(
    info: &Info,
    value: &Value,
) -> Result<super::Decoded, ApiError> {
    let (typed, unknown_fields) = decode_typed::<T>(info, value)?;
    let object = serde_json::to_value(&typed).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok(super::Decoded {
        object,
        unknown_fields,
    })
}

/// One step of a path into a JSON document.
enum Segment {
    Key(String),
    Index(usize),
}

fn ignored_path(path: &serde_ignored::Path<'_>, out: &mut Vec<Segment>) {
    use serde_ignored::Path;
    match path {
        Path::Root => {}
        Path::Seq { parent, index } => {
            ignored_path(parent, out);
            out.push(Segment::Index(*index));
        }
        Path::Map { parent, key } => {
            ignored_path(parent, out);
            out.push(Segment::Key(key.clone()));
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => ignored_path(parent, out),
    }
}

fn at<'a>(value: &'a Value, path: &[Segment]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, s| match s {
        Segment::Key(k) => v.get(k.as_str()),
        Segment::Index(i) => v.get(*i),
    })
}

fn render(path: &[Segment]) -> String {
    let mut out = String::new();
    for s in path {
        match s {
            Segment::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Segment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// The slow decode that words the error of a failed one.
fn to_typed_explained<T: DeserializeOwned>(info: &Info, value: &Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if let Some(field) = inner
            .strip_prefix("missing field `")
            .and_then(|r| r.split('`').next())
        {
            let full = if path == "." || path.is_empty() {
                field.to_string()
            } else {
                format!("{path}.{field}")
            };
            ApiError::Invalid {
                kind: info.kind.to_string(),
                group: info.group.to_string(),
                name: String::new(),
                causes: vec![Cause::required(full)],
            }
        } else {
            ApiError::BadRequest(format!(
                "{} in version \"{}\" cannot be handled as a {}: field {path}: {inner}",
                info.kind, info.version, info.kind
            ))
        }
    })
}

/// Paths present in `original` but not in `round_tripped` (nulls do not count).
pub fn unknown_fields(original: &Value, round_tripped: &Value, path: &str, out: &mut Vec<String>) {
    match (original, round_tripped) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match b.get(k) {
                    Some(w) => unknown_fields(v, w, &p, out),
                    None if !v.is_null() => out.push(p),
                    None => {}
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (v, w)) in a.iter().zip(b.iter()).enumerate() {
                unknown_fields(v, w, &format!("{path}[{i}]"), out);
            }
        }
        (Value::Object(_), Value::Null) | (Value::Array(_), Value::Null) => {}
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_are_found_with_paths() {
        let original =
            json!({"spec": {"containers": [{"name": "a", "imagee": "x"}], "bogus": 1, "n": null}});
        let round = json!({"spec": {"containers": [{"name": "a"}]}});
        let mut out = Vec::new();
        unknown_fields(&original, &round, "", &mut out);
        assert_eq!(out, vec!["spec.bogus", "spec.containers[0].imagee"]);
    }

    #[test]
    fn one_typed_decode_finds_what_the_round_trip_found() {
        use k8s_openapi::api::core::v1::Pod;
        let info = crate::registry::Resource::info(&crate::registry::Typed::<
            crate::resources::pods::Pods,
        >::new())
        .clone();
        let sent = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labelz": {}},
            "spec": {"containers": [{"name": "a", "image": "x", "imagee": "y"}, {"name": "b", "image": "x"}],
                     "bogus": 1, "n": null, "nodeName": null}});
        let (pod, unknown) = decode_typed::<Pod>(&info, &sent).unwrap();
        let round = serde_json::to_value(&pod).unwrap();
        let mut by_round_trip = Vec::new();
        unknown_fields(&sent, &round, "", &mut by_round_trip);
        assert_eq!(
            unknown,
            ["metadata.labelz", "spec.bogus", "spec.containers[0].imagee"]
        );
        assert_eq!(unknown, by_round_trip);
        // Type errors are worded with the path (by the slow decode, only then).
        let bad = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": 5}]}});
        let e = decode_typed::<Pod>(&info, &bad).unwrap_err();
        assert_eq!(e.code(), 400);
        assert!(e.to_string().contains("spec.containers[0].name"), "{e}");
        assert_eq!(
            to_typed::<Pod>(&info, &bad).unwrap_err().to_string(),
            e.to_string()
        );
    }
}
