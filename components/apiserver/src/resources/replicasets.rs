//! apps/v1 ReplicaSets: defaults, validation, scale/status, DESIRED/CURRENT/READY table.

use k8s_openapi::api::apps::v1::ReplicaSet;
use serde_json::{Value, json};

use super::podspec;
use crate::error::Cause;
use crate::registry::{Kind, Sub};
use crate::table::Column;

/// ReplicaSets.
pub struct ReplicaSets;

impl Kind for ReplicaSets {
    type Obj = ReplicaSet;
    const SINGULAR: &'static str = "replicaset";
    const NAMESPACED: bool = true;
    const SHORT_NAMES: &'static [&'static str] = &["rs"];
    const CATEGORIES: &'static [&'static str] = &["all"];
    const SUBRESOURCES: &'static [Sub] = &[Sub::Status, Sub::Scale];
    const FIELD_LABELS: &'static [&'static str] = &["status.replicas"];

    fn defaults(rs: &mut ReplicaSet) {
        let Some(spec) = rs.spec.as_mut() else { return };
        spec.replicas.get_or_insert(1);
        if let Some(ps) = spec.template.as_mut().and_then(|t| t.spec.as_mut()) {
            podspec::defaults(ps);
        }
    }

    fn validate(rs: &ReplicaSet, causes: &mut Vec<Cause>) {
        let Some(spec) = &rs.spec else {
            causes.push(Cause::required("spec"));
            return;
        };
        podspec::validate_workload(
            spec.replicas,
            &spec.selector,
            spec.template.as_ref(),
            causes,
        );
    }

    fn validate_update(new: &ReplicaSet, old: &ReplicaSet, causes: &mut Vec<Cause>) {
        let sel = |o: &ReplicaSet| o.spec.as_ref().map(|s| s.selector.clone());
        if sel(new) != sel(old) {
            causes.push(Cause::immutable("spec.selector"));
        }
    }

    fn columns() -> Vec<Column> {
        vec![
            Column::new("Desired", "integer", "Number of desired pods."),
            Column::new("Current", "integer", "Number of actually running pods."),
            Column::new("Ready", "integer", "Number of ready pods."),
            Column::new("Age", "date", "CreationTimestamp"),
        ]
        .into_iter()
        .chain(Column::pod_template_wide(true))
        .collect()
    }

    fn cells(rs: &ReplicaSet, age: &str) -> Vec<Value> {
        let spec = rs.spec.as_ref();
        let status = rs.status.clone().unwrap_or_default();
        let (names, images) = podspec::names_and_images(
            spec.and_then(|s| s.template.as_ref())
                .and_then(|t| t.spec.as_ref()),
        );
        vec![
            json!(spec.and_then(|s| s.replicas).unwrap_or(0)),
            json!(status.replicas),
            json!(status.ready_replicas.unwrap_or(0)),
            json!(age),
            json!(names),
            json!(images),
            json!(podspec::selector_string(spec.map(|s| &s.selector))),
        ]
    }
}
