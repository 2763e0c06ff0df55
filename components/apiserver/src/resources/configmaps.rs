//! core/v1 ConfigMaps: key validation and the DATA table.

use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::{Value, json};

use crate::error::Cause;
use crate::registry::Kind;
use crate::table::Column;

/// ConfigMaps.
pub struct ConfigMaps;

/// Largest data + binaryData of a ConfigMap, in bytes (Kubernetes' 1 MiB).
pub const MAX_SIZE: usize = 1024 * 1024;

/// A ConfigMap/Secret key: `[-._a-zA-Z0-9]+`, at most 253 characters.
pub fn validate_key(field: &str, key: &str, causes: &mut Vec<Cause>) {
    let ok = !key.is_empty()
        && key.len() <= 253
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        && key != "."
        && key != "..";
    if !ok {
        causes.push(Cause::invalid(
            format!("{field}[{key}]"),
            key,
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
        ));
    }
}

impl Kind for ConfigMaps {
    type Obj = ConfigMap;
    const SINGULAR: &'static str = "configmap";
    const NAMESPACED: bool = true;
    const SHORT_NAMES: &'static [&'static str] = &["cm"];
    const HAS_SPEC: bool = false;

    fn validate(cm: &ConfigMap, causes: &mut Vec<Cause>) {
        let mut total = 0;
        for (k, v) in cm.data.iter().flatten() {
            validate_key("data", k, causes);
            total += k.len() + v.len();
        }
        for (k, v) in cm.binary_data.iter().flatten() {
            total += k.len() + v.0.len();
        }
        // Kubernetes' limit (MaxSecretSize) on data + binaryData together.
        if total > MAX_SIZE {
            causes.push(Cause {
                reason: "FieldValueTooLong",
                field: String::new(),
                message: format!("Too long: must have at most {MAX_SIZE} bytes"),
            });
        }
        for k in cm.binary_data.iter().flat_map(|d| d.keys()) {
            validate_key("binaryData", k, causes);
            if cm.data.as_ref().is_some_and(|d| d.contains_key(k)) {
                causes.push(Cause::duplicate(format!("data[{k}]"), k));
            }
        }
    }

    fn validate_update(new: &ConfigMap, old: &ConfigMap, causes: &mut Vec<Cause>) {
        if old.immutable != Some(true) {
            return;
        }
        let why = "field is immutable when `immutable` is set";
        if new.data != old.data {
            causes.push(Cause {
                reason: "FieldValueForbidden",
                field: "data".into(),
                message: format!("Forbidden: {why}"),
            });
        }
        if new.binary_data != old.binary_data {
            causes.push(Cause {
                reason: "FieldValueForbidden",
                field: "binaryData".into(),
                message: format!("Forbidden: {why}"),
            });
        }
        if new.immutable != old.immutable {
            causes.push(Cause {
                reason: "FieldValueForbidden",
                field: "immutable".into(),
                message: format!("Forbidden: {why}"),
            });
        }
    }

    fn columns() -> Vec<Column> {
        vec![
            Column::new("Data", "integer", "Number of data entries"),
            Column::new("Age", "date", "CreationTimestamp"),
        ]
    }

    fn cells(cm: &ConfigMap, age: &str) -> Vec<Value> {
        let n = cm.data.as_ref().map_or(0, |d| d.len())
            + cm.binary_data.as_ref().map_or(0, |d| d.len());
        vec![json!(n), json!(age)]
    }
}
