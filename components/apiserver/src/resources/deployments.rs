//! apps/v1 Deployments: defaults, selector/template validation, scale and status
//! subresources, READY/UP-TO-DATE/AVAILABLE table.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStrategy, RollingUpdateDeployment};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use super::podspec;
use crate::error::Cause;
use crate::registry::{Kind, Sub};
use crate::table::Column;

/// Deployments.
pub struct Deployments;

impl Kind for Deployments {
    type Obj = Deployment;
    const SINGULAR: &'static str = "deployment";
    const NAMESPACED: bool = true;
    const SHORT_NAMES: &'static [&'static str] = &["deploy"];
    const CATEGORIES: &'static [&'static str] = &["all"];
    const SUBRESOURCES: &'static [Sub] = &[Sub::Status, Sub::Scale];

    fn defaults(d: &mut Deployment) {
        let Some(spec) = d.spec.as_mut() else { return };
        spec.replicas.get_or_insert(1);
        spec.revision_history_limit.get_or_insert(10);
        spec.progress_deadline_seconds.get_or_insert(600);
        let strategy = spec
            .strategy
            .get_or_insert_with(DeploymentStrategy::default);
        let ty = strategy.type_.get_or_insert_with(|| "RollingUpdate".into());
        if ty == "RollingUpdate" {
            let ru = strategy
                .rolling_update
                .get_or_insert_with(RollingUpdateDeployment::default);
            ru.max_surge
                .get_or_insert(IntOrString::String("25%".into()));
            ru.max_unavailable
                .get_or_insert(IntOrString::String("25%".into()));
        }
        if let Some(ps) = spec.template.spec.as_mut() {
            podspec::defaults(ps);
        }
    }

    fn validate(d: &Deployment, causes: &mut Vec<Cause>) {
        let Some(spec) = &d.spec else {
            causes.push(Cause::required("spec"));
            return;
        };
        let pod =
            podspec::validate_workload(spec.replicas, &spec.selector, Some(&spec.template), causes);
        if let Some(r) = pod.and_then(|ps| ps.restart_policy.as_ref())
            && r != "Always"
        {
            causes.push(Cause::not_supported(
                "spec.template.spec.restartPolicy",
                r,
                &["Always"],
            ));
        }
    }

    fn validate_update(new: &Deployment, old: &Deployment, causes: &mut Vec<Cause>) {
        let sel = |d: &Deployment| {
            d.spec
                .as_ref()
                .map(|s| serde_json::to_value(&s.selector).unwrap_or_default())
        };
        if sel(new) != sel(old) {
            causes.push(Cause::immutable("spec.selector"));
        }
    }

    fn columns() -> Vec<Column> {
        vec![
            Column::new("Ready", "string", "Number of the pod with ready state"),
            Column::new(
                "Up-to-date",
                "integer",
                "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
            ),
            Column::new(
                "Available",
                "integer",
                "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
            ),
            Column::new("Age", "date", "CreationTimestamp"),
        ]
        .into_iter()
        .chain(Column::pod_template_wide(true))
        .collect()
    }

    fn cells(d: &Deployment, age: &str) -> Vec<Value> {
        let spec = d.spec.as_ref();
        let status = d.status.clone().unwrap_or_default();
        let desired = spec.and_then(|s| s.replicas).unwrap_or(0);
        let (names, images) =
            podspec::names_and_images(spec.and_then(|s| s.template.spec.as_ref()));
        vec![
            json!(format!(
                "{}/{}",
                status.ready_replicas.unwrap_or(0),
                desired
            )),
            json!(status.updated_replicas.unwrap_or(0)),
            json!(status.available_replicas.unwrap_or(0)),
            json!(age),
            json!(names),
            json!(images),
            json!(podspec::selector_string(spec.map(|s| &s.selector))),
        ]
    }
}
