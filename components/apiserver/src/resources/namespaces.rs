//! core/v1 Namespaces: phase Active on create, the `kubernetes` finalizer, Terminating on
//! delete (the namespace controller empties it and calls `/finalize`).

use k8s_openapi::api::core::v1::Namespace;
use serde_json::{Value, json};

use crate::registry::{Kind, Sub};
use crate::table::Column;

/// Namespaces.
pub struct Namespaces;

impl Kind for Namespaces {
    type Obj = Namespace;
    const SINGULAR: &'static str = "namespace";
    const NAMESPACED: bool = false;
    const SHORT_NAMES: &'static [&'static str] = &["ns"];
    const SUBRESOURCES: &'static [Sub] = &[Sub::Status, Sub::Finalize];
    const FIELD_LABELS: &'static [&'static str] = &["status.phase"];
    const HAS_SPEC: bool = false;

    fn defaults(ns: &mut Namespace) {
        let spec = ns.spec.get_or_insert_with(Default::default);
        if spec.finalizers.is_none() && ns.metadata.deletion_timestamp.is_none() {
            spec.finalizers = Some(vec!["kubernetes".into()]);
        }
        let name = ns.metadata.name.clone().unwrap_or_default();
        ns.metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert("kubernetes.io/metadata.name".into(), name);
    }

    fn initial_status(_: &Namespace) -> Option<Value> {
        Some(json!({"phase": "Active"}))
    }

    fn columns() -> Vec<Column> {
        vec![
            Column::new("Status", "string", "The status of the namespace"),
            Column::new("Age", "date", "CreationTimestamp"),
        ]
    }

    fn cells(ns: &Namespace, age: &str) -> Vec<Value> {
        let phase = ns
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or("Active".into());
        vec![json!(phase), json!(age)]
    }
}
