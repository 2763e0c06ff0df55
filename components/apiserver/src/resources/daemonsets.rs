//! apps/v1 DaemonSets.

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetUpdateStrategy, RollingUpdateDaemonSet};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use super::podspec;
use crate::error::Cause;
use crate::registry::{Kind, Sub};
use crate::table::Column;

/// DaemonSets.
pub struct DaemonSets;

impl Kind for DaemonSets {
    type Obj = DaemonSet;
    const SINGULAR: &'static str = "daemonset";
    const NAMESPACED: bool = true;
    const SHORT_NAMES: &'static [&'static str] = &["ds"];
    const CATEGORIES: &'static [&'static str] = &["all"];
    const SUBRESOURCES: &'static [Sub] = &[Sub::Status];

    fn defaults(ds: &mut DaemonSet) {
        let Some(spec) = ds.spec.as_mut() else { return };
        spec.revision_history_limit.get_or_insert(10);
        let us = spec
            .update_strategy
            .get_or_insert_with(DaemonSetUpdateStrategy::default);
        if us.type_.get_or_insert_with(|| "RollingUpdate".into()) == "RollingUpdate" {
            let ru = us
                .rolling_update
                .get_or_insert_with(RollingUpdateDaemonSet::default);
            ru.max_unavailable.get_or_insert(IntOrString::Int(1));
            ru.max_surge.get_or_insert(IntOrString::Int(0));
        }
        if let Some(ps) = spec.template.spec.as_mut() {
            podspec::defaults(ps);
        }
    }

    fn validate(ds: &DaemonSet, causes: &mut Vec<Cause>) {
        let Some(spec) = &ds.spec else {
            causes.push(Cause::required("spec"));
            return;
        };
        podspec::validate_workload(None, &spec.selector, Some(&spec.template), causes);
    }

    fn validate_update(new: &DaemonSet, old: &DaemonSet, causes: &mut Vec<Cause>) {
        let sel = |o: &DaemonSet| o.spec.as_ref().map(|s| s.selector.clone());
        if sel(new) != sel(old) {
            causes.push(Cause::immutable("spec.selector"));
        }
    }

    fn columns() -> Vec<Column> {
        vec![
            Column::new(
                "Desired",
                "integer",
                "The total number of nodes that should be running the daemon pod.",
            ),
            Column::new(
                "Current",
                "integer",
                "The number of nodes running at least one daemon pod.",
            ),
            Column::new(
                "Ready",
                "integer",
                "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready.",
            ),
            Column::new(
                "Up-to-date",
                "integer",
                "The total number of nodes that are running updated daemon pod.",
            ),
            Column::new(
                "Available",
                "integer",
                "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available.",
            ),
            Column::new(
                "Node Selector",
                "string",
                "The node selector of the daemon set.",
            ),
            Column::new("Age", "date", "CreationTimestamp"),
        ]
        .into_iter()
        .chain(Column::pod_template_wide(true))
        .collect()
    }

    fn cells(ds: &DaemonSet, age: &str) -> Vec<Value> {
        let spec = ds.spec.as_ref();
        let s = ds.status.clone().unwrap_or_default();
        let ps = spec.and_then(|s| s.template.spec.as_ref());
        let node_selector = ps
            .and_then(|p| p.node_selector.as_ref())
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .filter(|s| !s.is_empty())
            .unwrap_or("<none>".into());
        let (names, images) = podspec::names_and_images(ps);
        vec![
            json!(s.desired_number_scheduled),
            json!(s.current_number_scheduled),
            json!(s.number_ready),
            json!(s.updated_number_scheduled.unwrap_or(0)),
            json!(s.number_available.unwrap_or(0)),
            json!(node_selector),
            json!(age),
            json!(names),
            json!(images),
            json!(podspec::selector_string(spec.map(|s| &s.selector))),
        ]
    }
}
