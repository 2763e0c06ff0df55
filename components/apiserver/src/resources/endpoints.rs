//! core/v1 Endpoints (written by the endpoints controller).

use k8s_openapi::api::core::v1::Endpoints as EndpointsObj;
use serde_json::{Value, json};

use crate::registry::Kind;
use crate::table::Column;

/// Endpoints.
pub struct Endpoints;

impl Kind for Endpoints {
    type Obj = EndpointsObj;
    const SINGULAR: &'static str = "endpoints";
    const NAMESPACED: bool = true;
    const SHORT_NAMES: &'static [&'static str] = &["ep"];
    const HAS_SPEC: bool = false;

    fn columns() -> Vec<Column> {
        vec![
            Column::new("Endpoints", "string", "Endpoints of the service"),
            Column::new("Age", "date", "CreationTimestamp"),
        ]
    }

    fn cells(ep: &EndpointsObj, age: &str) -> Vec<Value> {
        let mut list = Vec::new();
        for s in ep.subsets.iter().flatten() {
            for a in s.addresses.iter().flatten() {
                for p in s.ports.iter().flatten() {
                    list.push(format!("{}:{}", a.ip, p.port));
                }
                if s.ports.as_ref().is_none_or(|p| p.is_empty()) {
                    list.push(a.ip.clone());
                }
            }
        }
        let shown = if list.is_empty() {
            "<none>".to_string()
        } else if list.len() > 3 {
            format!("{} + {} more...", list[..3].join(","), list.len() - 3)
        } else {
            list.join(",")
        };
        vec![json!(shown), json!(age)]
    }
}
