//! core/v1 Services: defaults, validation, ClusterIP and NodePort claims (allocated by
//! `alloc` in the write transaction), and the TYPE/CLUSTER-IP/PORT(S) table.

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use crate::error::Cause;
use crate::registry::{Claim, Kind, Pool, Sub};
use crate::table::Column;

/// Services.
pub struct Services;

const TYPES: &[&str] = &["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"];

impl Kind for Services {
    type Obj = Service;
    const SINGULAR: &'static str = "service";
    const NAMESPACED: bool = true;
    const SHORT_NAMES: &'static [&'static str] = &["svc"];
    const CATEGORIES: &'static [&'static str] = &["all"];
    const SUBRESOURCES: &'static [Sub] = &[Sub::Status];
    const HAS_SPEC: bool = false;

    fn defaults(svc: &mut Service) {
        let spec = svc.spec.get_or_insert_with(Default::default);
        let ty = spec.type_.get_or_insert_with(|| "ClusterIP".into()).clone();
        if ty == "ExternalName" {
            return;
        }
        spec.session_affinity.get_or_insert_with(|| "None".into());
        spec.internal_traffic_policy
            .get_or_insert_with(|| "Cluster".into());
        spec.ip_families.get_or_insert_with(|| vec!["IPv4".into()]);
        spec.ip_family_policy
            .get_or_insert_with(|| "SingleStack".into());
        if ty == "NodePort" || ty == "LoadBalancer" {
            spec.external_traffic_policy
                .get_or_insert_with(|| "Cluster".into());
        }
        for p in spec.ports.iter_mut().flatten() {
            p.protocol.get_or_insert_with(|| "TCP".into());
            p.target_port.get_or_insert(IntOrString::Int(p.port));
            if ty == "ClusterIP" {
                p.node_port = None;
            }
        }
        if let Some(ip) = &spec.cluster_ip
            && !ip.is_empty()
        {
            spec.cluster_ips = Some(vec![ip.clone()]);
        }
    }

    fn validate(svc: &Service, causes: &mut Vec<Cause>) {
        let Some(spec) = &svc.spec else {
            causes.push(Cause::required("spec"));
            return;
        };
        let ty = spec.type_.as_deref().unwrap_or("ClusterIP");
        if !TYPES.contains(&ty) {
            causes.push(Cause::not_supported("spec.type", ty, TYPES));
        }
        let headless = spec.cluster_ip.as_deref() == Some("None");
        let ports = spec.ports.as_deref().unwrap_or_default();
        if ports.is_empty() && ty != "ExternalName" && !headless {
            causes.push(Cause::required("spec.ports"));
        }
        let mut names = std::collections::HashSet::new();
        let mut node_ports = std::collections::HashSet::new();
        for (i, p) in ports.iter().enumerate() {
            if let Some(np) = p.node_port.filter(|n| *n != 0)
                && !node_ports.insert((np, p.protocol.clone().unwrap_or_else(|| "TCP".into())))
            {
                causes.push(Cause::duplicate(
                    format!("spec.ports[{i}].nodePort"),
                    &np.to_string(),
                ));
            }
            if !(1..=65535).contains(&p.port) {
                causes.push(Cause::invalid(
                    format!("spec.ports[{i}].port"),
                    p.port,
                    "must be between 1 and 65535, inclusive",
                ));
            }
            match &p.name {
                None if ports.len() > 1 => {
                    causes.push(Cause::required(format!("spec.ports[{i}].name")))
                }
                Some(n) if !names.insert(n.clone()) => {
                    causes.push(Cause::duplicate(format!("spec.ports[{i}].name"), n))
                }
                _ => {}
            }
            if let Some(proto) = &p.protocol
                && !matches!(proto.as_str(), "TCP" | "UDP" | "SCTP")
            {
                causes.push(Cause::not_supported(
                    format!("spec.ports[{i}].protocol"),
                    proto,
                    &["SCTP", "TCP", "UDP"],
                ));
            }
            if p.node_port.is_some() && ty == "ClusterIP" {
                causes.push(Cause {
                    reason: "FieldValueForbidden",
                    field: format!("spec.ports[{i}].nodePort"),
                    message: "Forbidden: may not be used when `type` is 'ClusterIP'".into(),
                });
            }
        }
        if ty == "ExternalName" && spec.external_name.as_deref().is_none_or(str::is_empty) {
            causes.push(Cause::required("spec.externalName"));
        }
    }

    fn validate_update(new: &Service, old: &Service, causes: &mut Vec<Cause>) {
        let ip = |s: &Service| {
            s.spec
                .as_ref()
                .and_then(|s| s.cluster_ip.clone())
                .filter(|i| !i.is_empty())
        };
        if let (Some(a), Some(b)) = (ip(new), ip(old))
            && a != b
        {
            causes.push(Cause::immutable("spec.clusterIP"));
        }
    }

    fn claims(obj: &Value) -> Vec<Claim> {
        let spec = &obj["spec"];
        let ty = spec["type"].as_str().unwrap_or("ClusterIP");
        if ty == "ExternalName" {
            return Vec::new();
        }
        let mut claims = Vec::new();
        match spec["clusterIP"].as_str() {
            Some("None") => {}
            requested => claims.push(Claim {
                pool: Pool::ServiceIp,
                pointer: "/spec/clusterIP".into(),
                requested: requested.filter(|s| !s.is_empty()).map(str::to_string),
            }),
        }
        if ty == "NodePort" || ty == "LoadBalancer" {
            for (i, p) in spec["ports"].as_array().into_iter().flatten().enumerate() {
                claims.push(Claim {
                    pool: Pool::NodePort,
                    pointer: format!("/spec/ports/{i}/nodePort"),
                    requested: p["nodePort"]
                        .as_i64()
                        .filter(|n| *n != 0)
                        .map(|n| n.to_string()),
                });
            }
        }
        claims
    }

    fn columns() -> Vec<Column> {
        vec![
            Column::new("Type", "string", "The type of the service."),
            Column::new("Cluster-IP", "string", "The cluster IP of the service."),
            Column::new("External-IP", "string", "The external IPs of the service."),
            Column::new("Port(s)", "string", "The ports of the service."),
            Column::new("Age", "date", "CreationTimestamp"),
            Column::wide("Selector", "string", "The label selector of the service."),
        ]
    }

    fn cells(svc: &Service, age: &str) -> Vec<Value> {
        let spec = svc.spec.clone().unwrap_or_default();
        let ports: Vec<String> = spec
            .ports
            .iter()
            .flatten()
            .map(|p| match p.node_port {
                Some(np) => format!(
                    "{}:{}/{}",
                    p.port,
                    np,
                    p.protocol.as_deref().unwrap_or("TCP")
                ),
                None => format!("{}/{}", p.port, p.protocol.as_deref().unwrap_or("TCP")),
            })
            .collect();
        let external = match spec.type_.as_deref() {
            Some("ExternalName") => spec.external_name.clone().unwrap_or_default(),
            _ => spec
                .external_ips
                .as_ref()
                .filter(|e| !e.is_empty())
                .map(|e| e.join(","))
                .unwrap_or("<none>".into()),
        };
        let selector = spec
            .selector
            .map(|s| {
                s.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .filter(|s| !s.is_empty())
            .unwrap_or("<none>".into());
        vec![
            json!(spec.type_.unwrap_or_default()),
            json!(spec.cluster_ip.unwrap_or("<none>".into())),
            json!(external),
            json!(if ports.is_empty() {
                "<none>".to_string()
            } else {
                ports.join(",")
            }),
            json!(age),
            json!(selector),
        ]
    }
}
