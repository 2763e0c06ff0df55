//! core/v1 Pods: defaults, validation, graceful deletion, and the READY/STATUS/RESTARTS table.

use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use super::podspec;
use crate::error::Cause;
use crate::registry::{Kind, Sub};
use crate::table::Column;

/// Pods.
pub struct Pods;

impl Kind for Pods {
    type Obj = Pod;
    const SINGULAR: &'static str = "pod";
    const NAMESPACED: bool = true;
    const SHORT_NAMES: &'static [&'static str] = &["po"];
    const CATEGORIES: &'static [&'static str] = &["all"];
    const SUBRESOURCES: &'static [Sub] = &[
        Sub::Status,
        Sub::Binding,
        Sub::Log,
        Sub::Exec,
        Sub::Attach,
        Sub::PortForward,
    ];
    const FIELD_LABELS: &'static [&'static str] = &[
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ];

    fn defaults(pod: &mut Pod) {
        if let Some(spec) = pod.spec.as_mut() {
            podspec::defaults(spec);
        }
    }

    fn validate(pod: &Pod, causes: &mut Vec<Cause>) {
        match &pod.spec {
            Some(spec) => podspec::validate(spec, "spec", causes),
            None => causes.push(Cause::required("spec")),
        }
    }

    fn validate_update(new: &Pod, old: &Pod, causes: &mut Vec<Cause>) {
        // Only images, activeDeadlineSeconds and tolerations may change on a running pod.
        let strip = |p: &Pod| {
            let mut s = serde_json::to_value(&p.spec).unwrap_or(Value::Null);
            for c in s["containers"].as_array_mut().into_iter().flatten() {
                c.as_object_mut().map(|m| m.remove("image"));
            }
            for f in ["activeDeadlineSeconds", "tolerations"] {
                s.as_object_mut().map(|m| m.remove(f));
            }
            s
        };
        if strip(new) != strip(old) {
            causes.push(Cause {
                reason: "FieldValueForbidden",
                field: "spec".into(),
                message: "Forbidden: pod updates may not change fields other than `spec.containers[*].image`, `spec.activeDeadlineSeconds` and `spec.tolerations` (only additions to existing tolerations)".into(),
            });
        }
    }

    fn initial_status(pod: &Pod) -> Option<Value> {
        Some(json!({"phase": "Pending", "qosClass": qos_class(pod)}))
    }

    fn grace_period(obj: &Value, requested: Option<i64>) -> Option<i64> {
        // Only a pod some kubelet may be running needs a graceful stop; others go at once.
        let scheduled = obj
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        let finished = matches!(
            obj.pointer("/status/phase").and_then(Value::as_str),
            Some("Succeeded" | "Failed")
        );
        if !scheduled || finished {
            return None;
        }
        Some(requested.unwrap_or_else(|| {
            obj.pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(30)
        }))
    }

    fn columns() -> Vec<Column> {
        vec![
            Column::new(
                "Ready",
                "string",
                "The aggregate readiness state of this pod for accepting traffic.",
            ),
            Column::new(
                "Status",
                "string",
                "The aggregate status of the containers in this pod.",
            ),
            Column::new(
                "Restarts",
                "string",
                "The number of times the containers in this pod have been restarted.",
            ),
            Column::new("Age", "date", "CreationTimestamp"),
            Column::wide("IP", "string", "IP address allocated to the pod."),
            Column::wide(
                "Node",
                "string",
                "Name of the Node this pod is assigned to.",
            ),
            Column::wide(
                "Nominated Node",
                "string",
                "Name of the Node nominated for this pod.",
            ),
            Column::wide("Readiness Gates", "string", "Readiness gates of this pod."),
        ]
    }

    fn cells(pod: &Pod, age: &str) -> Vec<Value> {
        let total = pod.spec.as_ref().map(|s| s.containers.len()).unwrap_or(0);
        let (ready, total, restarts) = podspec::container_counts(pod.status.as_ref(), total);
        let status = pod.status.as_ref();
        let mut reason = status
            .and_then(|s| s.reason.clone())
            .or_else(|| status.and_then(|s| s.phase.clone()))
            .unwrap_or_else(|| "Pending".into());
        for cs in status
            .and_then(|s| s.container_statuses.as_ref())
            .into_iter()
            .flatten()
        {
            if let Some(w) = cs
                .state
                .as_ref()
                .and_then(|s| s.waiting.as_ref())
                .and_then(|w| w.reason.clone())
            {
                reason = w;
            }
        }
        if pod.metadata.deletion_timestamp.is_some() {
            reason = "Terminating".into();
        }
        let none = || json!("<none>");
        vec![
            json!(format!("{ready}/{total}")),
            json!(reason),
            json!(restarts.to_string()),
            json!(age),
            status
                .and_then(|s| s.pod_ip.clone())
                .map(Value::String)
                .unwrap_or_else(none),
            pod.spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .map(Value::String)
                .unwrap_or_else(none),
            status
                .and_then(|s| s.nominated_node_name.clone())
                .map(Value::String)
                .unwrap_or_else(none),
            none(),
        ]
    }
}

/// BestEffort (no requests or limits), Guaranteed (limits = requests for cpu and memory in
/// every container), else Burstable.
fn qos_class(pod: &Pod) -> &'static str {
    let Some(spec) = &pod.spec else {
        return "BestEffort";
    };
    let mut any = false;
    let mut guaranteed = true;
    for c in &spec.containers {
        let r = c.resources.as_ref();
        let req = r.and_then(|r| r.requests.clone()).unwrap_or_default();
        let lim = r.and_then(|r| r.limits.clone()).unwrap_or_default();
        any |= !req.is_empty() || !lim.is_empty();
        for res in ["cpu", "memory"] {
            let l = lim.get(res);
            let q = req.get(res).or(l);
            if l.is_none() || q != l {
                guaranteed = false;
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}
