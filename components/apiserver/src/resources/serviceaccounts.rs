//! core/v1 ServiceAccounts, with the `token` subresource (TokenRequest: `kubectl create
//! token`), served by `handlers::reviews`.

use k8s_openapi::api::core::v1::ServiceAccount;
use serde_json::{Value, json};

use crate::registry::{Kind, Sub};
use crate::table::Column;

/// ServiceAccounts.
pub struct ServiceAccounts;

impl Kind for ServiceAccounts {
    type Obj = ServiceAccount;
    const SINGULAR: &'static str = "serviceaccount";
    const NAMESPACED: bool = true;
    const SHORT_NAMES: &'static [&'static str] = &["sa"];
    const HAS_SPEC: bool = false;
    const SUBRESOURCES: &'static [Sub] = &[Sub::Token];

    fn columns() -> Vec<Column> {
        vec![
            Column::new("Secrets", "string", "The number of secrets"),
            Column::new("Age", "date", "CreationTimestamp"),
        ]
    }

    fn cells(sa: &ServiceAccount, age: &str) -> Vec<Value> {
        vec![
            json!(sa.secrets.as_ref().map_or(0, |s| s.len())),
            json!(age),
        ]
    }
}
