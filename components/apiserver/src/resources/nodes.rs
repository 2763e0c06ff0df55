//! core/v1 Nodes: registered by kubelets; STATUS/ROLES/VERSION table.

use k8s_openapi::api::core::v1::Node;
use serde_json::{Value, json};

use crate::error::Cause;
use crate::registry::{Kind, Sub};
use crate::table::Column;

/// Nodes.
pub struct Nodes;

impl Kind for Nodes {
    type Obj = Node;
    const SINGULAR: &'static str = "node";
    const NAMESPACED: bool = false;
    const SHORT_NAMES: &'static [&'static str] = &["no"];
    const SUBRESOURCES: &'static [Sub] = &[Sub::Status];
    const FIELD_LABELS: &'static [&'static str] = &["spec.unschedulable"];
    const HAS_SPEC: bool = false;

    fn validate_update(new: &Node, old: &Node, causes: &mut Vec<Cause>) {
        // podCIDR(s) may be set once, then never changed.
        let spec = |n: &Node| n.spec.clone().unwrap_or_default();
        let (new, old) = (spec(new), spec(old));
        if old.pod_cidr.as_deref().is_some_and(|c| !c.is_empty()) && new.pod_cidr != old.pod_cidr {
            causes.push(Cause::immutable("spec.podCIDR"));
        }
        if old.pod_cidrs.as_ref().is_some_and(|c| !c.is_empty()) && new.pod_cidrs != old.pod_cidrs {
            causes.push(Cause::immutable("spec.podCIDRs"));
        }
    }

    fn columns() -> Vec<Column> {
        vec![
            Column::new("Status", "string", "The status of the node"),
            Column::new("Roles", "string", "The roles of the node"),
            Column::new("Age", "date", "CreationTimestamp"),
            Column::new("Version", "string", "Kubelet Version reported by the node."),
            Column::wide("Internal-IP", "string", "List of internal IPs."),
            Column::wide("External-IP", "string", "List of external IPs."),
            Column::wide("OS-Image", "string", "OS image reported by the node."),
            Column::wide(
                "Kernel-Version",
                "string",
                "Kernel version reported by the node.",
            ),
            Column::wide(
                "Container-Runtime",
                "string",
                "Container runtime and version.",
            ),
        ]
    }

    fn cells(node: &Node, age: &str) -> Vec<Value> {
        let status = node.status.clone().unwrap_or_default();
        let ready = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Ready")
            .map(|c| {
                if c.status == "True" {
                    "Ready"
                } else {
                    "NotReady"
                }
            })
            .unwrap_or("Unknown");
        let mut state = ready.to_string();
        if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
            state.push_str(",SchedulingDisabled");
        }
        let roles: Vec<&str> = node
            .metadata
            .labels
            .iter()
            .flatten()
            .filter_map(|(k, _)| k.strip_prefix("node-role.kubernetes.io/"))
            .collect();
        let addr = |t: &str| {
            status
                .addresses
                .iter()
                .flatten()
                .find(|a| a.type_ == t)
                .map(|a| a.address.clone())
                .unwrap_or("<none>".into())
        };
        let info = status.node_info.clone().unwrap_or_default();
        vec![
            json!(state),
            json!(if roles.is_empty() {
                "<none>".to_string()
            } else {
                roles.join(",")
            }),
            json!(age),
            json!(info.kubelet_version),
            json!(addr("InternalIP")),
            json!(addr("ExternalIP")),
            json!(info.os_image),
            json!(info.kernel_version),
            json!(info.container_runtime_version),
        ]
    }
}
