//! batch/v1 Jobs: generated selector (`batch.kubernetes.io/controller-uid`), defaults,
//! restartPolicy rules, STATUS/COMPLETIONS/DURATION table.

use k8s_openapi::api::batch::v1::Job;
use serde_json::{Value, json};

use super::podspec;
use crate::error::Cause;
use crate::registry::{Kind, Sub};
use crate::table::Column;

/// Jobs.
pub struct Jobs;

const UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
const NAME_LABEL: &str = "batch.kubernetes.io/job-name";

impl Kind for Jobs {
    type Obj = Job;
    const SINGULAR: &'static str = "job";
    const NAMESPACED: bool = true;
    const CATEGORIES: &'static [&'static str] = &["all"];
    const SUBRESOURCES: &'static [Sub] = &[Sub::Status];
    const FIELD_LABELS: &'static [&'static str] = &["status.successful"];

    fn defaults(job: &mut Job) {
        let uid = job.metadata.uid.clone().unwrap_or_default();
        let name = job.metadata.name.clone().unwrap_or_default();
        let Some(spec) = job.spec.as_mut() else {
            return;
        };
        spec.parallelism.get_or_insert(1);
        spec.completions.get_or_insert(1);
        spec.backoff_limit.get_or_insert(6);
        spec.completion_mode
            .get_or_insert_with(|| "NonIndexed".into());
        spec.suspend.get_or_insert(false);
        if spec.manual_selector != Some(true) && spec.selector.is_none() && !uid.is_empty() {
            let mut sel = std::collections::BTreeMap::new();
            sel.insert(UID_LABEL.to_string(), uid.clone());
            spec.selector = Some(
                k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
                    match_labels: Some(sel),
                    ..Default::default()
                },
            );
            let labels = spec
                .template
                .metadata
                .get_or_insert_with(Default::default)
                .labels
                .get_or_insert_with(Default::default);
            labels.insert(UID_LABEL.into(), uid.clone());
            labels.insert(NAME_LABEL.into(), name.clone());
            labels.insert("controller-uid".into(), uid);
            labels.insert("job-name".into(), name);
        }
        if let Some(ps) = spec.template.spec.as_mut() {
            let restart = ps.restart_policy.clone();
            podspec::defaults(ps);
            // A job's pods have no default restart policy: the user must choose.
            ps.restart_policy = restart;
        }
    }

    fn validate(job: &Job, causes: &mut Vec<Cause>) {
        let Some(spec) = &job.spec else {
            causes.push(Cause::required("spec"));
            return;
        };
        for (f, v) in [
            ("parallelism", spec.parallelism),
            ("completions", spec.completions),
            ("backoffLimit", spec.backoff_limit),
        ] {
            if let Some(v) = v
                && v < 0
            {
                causes.push(Cause::invalid(
                    format!("spec.{f}"),
                    v,
                    "must be greater than or equal to 0",
                ));
            }
        }
        match &spec.template.spec {
            Some(ps) => {
                podspec::validate(ps, "spec.template.spec", causes);
                match ps.restart_policy.as_deref() {
                    Some("OnFailure" | "Never") => {}
                    Some(other) => causes.push(Cause::not_supported(
                        "spec.template.spec.restartPolicy",
                        other,
                        &["OnFailure", "Never"],
                    )),
                    None => causes.push(Cause::required("spec.template.spec.restartPolicy")),
                }
            }
            None => causes.push(Cause::required("spec.template.spec")),
        }
    }

    fn validate_update(new: &Job, old: &Job, causes: &mut Vec<Cause>) {
        let t = |j: &Job| {
            j.spec
                .as_ref()
                .map(|s| serde_json::to_value(&s.template).unwrap_or_default())
        };
        if t(new) != t(old) {
            causes.push(Cause::immutable("spec.template"));
        }
    }

    fn columns() -> Vec<Column> {
        vec![
            Column::new("Status", "string", "Status of the job."),
            Column::new(
                "Completions",
                "string",
                "The desired number of successfully finished pods the job should be run with.",
            ),
            Column::new("Duration", "string", "Time required to complete the job."),
            Column::new("Age", "date", "CreationTimestamp"),
        ]
        .into_iter()
        .chain(Column::pod_template_wide(true))
        .collect()
    }

    fn cells(job: &Job, age: &str) -> Vec<Value> {
        let spec = job.spec.as_ref();
        let st = job.status.clone().unwrap_or_default();
        let cond = |t: &str| {
            st.conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == t && c.status == "True")
        };
        let status = if cond("Complete") {
            "Complete"
        } else if cond("Failed") {
            "Failed"
        } else if spec.and_then(|s| s.suspend) == Some(true) {
            "Suspended"
        } else {
            "Running"
        };
        let duration = match (&st.start_time, &st.completion_time) {
            (Some(a), Some(b)) => crate::table::human_duration(b.0.as_second() - a.0.as_second()),
            (Some(a), None) => {
                crate::table::human_duration(jiff::Timestamp::now().as_second() - a.0.as_second())
            }
            _ => String::new(),
        };
        let (names, images) =
            podspec::names_and_images(spec.and_then(|s| s.template.spec.as_ref()));
        vec![
            json!(status),
            json!(format!(
                "{}/{}",
                st.succeeded.unwrap_or(0),
                spec.and_then(|s| s.completions).unwrap_or(1)
            )),
            json!(duration),
            json!(age),
            json!(names),
            json!(images),
            json!(podspec::selector_string(
                spec.and_then(|s| s.selector.as_ref())
            )),
        ]
    }
}
