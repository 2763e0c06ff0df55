//! core/v1 Secrets: `stringData` folded into `data`, type Opaque by default, TYPE/DATA table.

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use serde_json::{Value, json};

use super::configmaps::validate_key;
use crate::error::Cause;
use crate::registry::Kind;
use crate::table::Column;

/// Secrets.
pub struct Secrets;

impl Kind for Secrets {
    type Obj = Secret;
    const SINGULAR: &'static str = "secret";
    const NAMESPACED: bool = true;
    const FIELD_LABELS: &'static [&'static str] = &["type"];
    const HAS_SPEC: bool = false;

    fn defaults(s: &mut Secret) {
        s.type_.get_or_insert_with(|| "Opaque".into());
        if let Some(sd) = s.string_data.take() {
            let data = s.data.get_or_insert_with(Default::default);
            for (k, v) in sd {
                data.insert(k, ByteString(v.into_bytes()));
            }
        }
    }

    fn validate(s: &Secret, causes: &mut Vec<Cause>) {
        let mut total = 0;
        for (k, v) in s.data.iter().flatten() {
            validate_key("data", k, causes);
            total += v.0.len();
        }
        if total > 1024 * 1024 {
            causes.push(Cause {
                reason: "FieldValueTooLong",
                field: "data".into(),
                message: "Too long: must have at most 1048576 bytes".into(),
            });
        }
    }

    fn validate_update(new: &Secret, old: &Secret, causes: &mut Vec<Cause>) {
        if new.type_ != old.type_ {
            causes.push(Cause::immutable("type"));
        }
        if old.immutable == Some(true) && new.data != old.data {
            causes.push(Cause::immutable("data"));
        }
        if old.immutable == Some(true) && new.immutable != old.immutable {
            causes.push(Cause::immutable("immutable"));
        }
    }

    fn columns() -> Vec<Column> {
        vec![
            Column::new("Type", "string", "The type of the secret"),
            Column::new("Data", "integer", "The number of data entries"),
            Column::new("Age", "date", "CreationTimestamp"),
        ]
    }

    fn cells(s: &Secret, age: &str) -> Vec<Value> {
        vec![
            json!(s.type_.clone().unwrap_or_default()),
            json!(s.data.as_ref().map_or(0, |d| d.len())),
            json!(age),
        ]
    }
}
