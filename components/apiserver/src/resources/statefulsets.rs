//! apps/v1 StatefulSets.

use k8s_openapi::api::apps::v1::{
    RollingUpdateStatefulSetStrategy, StatefulSet, StatefulSetUpdateStrategy,
};
use serde_json::{Value, json};

use super::podspec;
use crate::error::Cause;
use crate::registry::{Kind, Sub};
use crate::table::Column;

/// StatefulSets.
pub struct StatefulSets;

impl Kind for StatefulSets {
    type Obj = StatefulSet;
    const SINGULAR: &'static str = "statefulset";
    const NAMESPACED: bool = true;
    const SHORT_NAMES: &'static [&'static str] = &["sts"];
    const CATEGORIES: &'static [&'static str] = &["all"];
    const SUBRESOURCES: &'static [Sub] = &[Sub::Status, Sub::Scale];

    fn defaults(s: &mut StatefulSet) {
        let Some(spec) = s.spec.as_mut() else { return };
        spec.replicas.get_or_insert(1);
        spec.revision_history_limit.get_or_insert(10);
        spec.pod_management_policy
            .get_or_insert_with(|| "OrderedReady".into());
        let us = spec
            .update_strategy
            .get_or_insert_with(StatefulSetUpdateStrategy::default);
        if us.type_.get_or_insert_with(|| "RollingUpdate".into()) == "RollingUpdate" {
            us.rolling_update
                .get_or_insert_with(RollingUpdateStatefulSetStrategy::default)
                .partition
                .get_or_insert(0);
        }
        if let Some(ps) = spec.template.spec.as_mut() {
            podspec::defaults(ps);
        }
    }

    fn validate(s: &StatefulSet, causes: &mut Vec<Cause>) {
        let Some(spec) = &s.spec else {
            causes.push(Cause::required("spec"));
            return;
        };
        podspec::validate_workload(spec.replicas, &spec.selector, Some(&spec.template), causes);
    }

    fn validate_update(new: &StatefulSet, old: &StatefulSet, causes: &mut Vec<Cause>) {
        // Only these spec fields may change (Kubernetes' ValidateStatefulSetUpdate).
        let frozen = |s: &StatefulSet| {
            let mut spec = serde_json::to_value(&s.spec).unwrap_or_default();
            if let Some(m) = spec.as_object_mut() {
                for f in [
                    "replicas",
                    "ordinals",
                    "template",
                    "updateStrategy",
                    "persistentVolumeClaimRetentionPolicy",
                    "minReadySeconds",
                ] {
                    m.remove(f);
                }
            }
            spec
        };
        if frozen(new) != frozen(old) {
            causes.push(Cause {
                reason: "FieldValueForbidden",
                field: "spec".into(),
                message: "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden".into(),
            });
        }
    }

    fn columns() -> Vec<Column> {
        vec![
            Column::new("Ready", "string", "Number of the pod with ready state"),
            Column::new("Age", "date", "CreationTimestamp"),
        ]
        .into_iter()
        .chain(Column::pod_template_wide(false))
        .collect()
    }

    fn cells(s: &StatefulSet, age: &str) -> Vec<Value> {
        let spec = s.spec.as_ref();
        let (names, images) =
            podspec::names_and_images(spec.and_then(|s| s.template.spec.as_ref()));
        let ready = s
            .status
            .as_ref()
            .and_then(|st| st.ready_replicas)
            .unwrap_or(0);
        vec![
            json!(format!(
                "{ready}/{}",
                spec.and_then(|s| s.replicas).unwrap_or(0)
            )),
            json!(age),
            json!(names),
            json!(images),
        ]
    }
}
