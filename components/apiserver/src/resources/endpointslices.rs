//! discovery.k8s.io/v1 EndpointSlices.

use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::{Value, json};

use crate::error::Cause;
use crate::registry::Kind;
use crate::table::Column;

/// EndpointSlices.
pub struct EndpointSlices;

impl Kind for EndpointSlices {
    type Obj = EndpointSlice;
    const SINGULAR: &'static str = "endpointslice";
    const NAMESPACED: bool = true;
    const HAS_SPEC: bool = false;

    fn validate(s: &EndpointSlice, causes: &mut Vec<Cause>) {
        if !matches!(s.address_type.as_str(), "IPv4" | "IPv6" | "FQDN") {
            causes.push(Cause::not_supported(
                "addressType",
                &s.address_type,
                &["FQDN", "IPv4", "IPv6"],
            ));
        }
    }

    fn validate_update(new: &EndpointSlice, old: &EndpointSlice, causes: &mut Vec<Cause>) {
        if new.address_type != old.address_type {
            causes.push(Cause::immutable("addressType"));
        }
    }

    fn columns() -> Vec<Column> {
        vec![
            Column::new("AddressType", "string", "The IP protocol for this slice"),
            Column::new("Ports", "string", "The ports for this slice"),
            Column::new("Endpoints", "string", "The endpoints in this slice"),
            Column::new("Age", "date", "CreationTimestamp"),
        ]
    }

    fn cells(s: &EndpointSlice, age: &str) -> Vec<Value> {
        let ports: Vec<String> = s
            .ports
            .iter()
            .flatten()
            .filter_map(|p| p.port.map(|n| n.to_string()))
            .collect();
        let eps: Vec<String> = s
            .endpoints
            .iter()
            .flat_map(|e| e.addresses.clone())
            .collect();
        let none = |v: Vec<String>| {
            if v.is_empty() {
                "<unset>".to_string()
            } else {
                v.join(",")
            }
        };
        vec![
            json!(s.address_type),
            json!(none(ports)),
            json!(none(eps)),
            json!(age),
        ]
    }
}
