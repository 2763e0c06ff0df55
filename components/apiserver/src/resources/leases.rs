//! coordination.k8s.io/v1 Leases (leader election, node heartbeats).

use k8s_openapi::api::coordination::v1::Lease;
use serde_json::{Value, json};

use crate::registry::Kind;
use crate::table::Column;

/// Leases.
pub struct Leases;

impl Kind for Leases {
    type Obj = Lease;
    const SINGULAR: &'static str = "lease";
    const NAMESPACED: bool = true;
    const HAS_SPEC: bool = false;

    fn columns() -> Vec<Column> {
        vec![
            Column::new("Holder", "string", "The holder of the lease"),
            Column::new("Age", "date", "CreationTimestamp"),
        ]
    }

    fn cells(l: &Lease, age: &str) -> Vec<Value> {
        let holder = l
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.clone())
            .unwrap_or_default();
        vec![json!(holder), json!(age)]
    }
}
