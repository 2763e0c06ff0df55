//! batch/v1 CronJobs.

use k8s_openapi::api::batch::v1::CronJob;
use serde_json::{Value, json};

use super::podspec;
use crate::error::Cause;
use crate::registry::{Kind, Sub};
use crate::table::Column;

/// CronJobs.
pub struct CronJobs;

impl Kind for CronJobs {
    type Obj = CronJob;
    const SINGULAR: &'static str = "cronjob";
    const NAMESPACED: bool = true;
    const SHORT_NAMES: &'static [&'static str] = &["cj"];
    const CATEGORIES: &'static [&'static str] = &["all"];
    const SUBRESOURCES: &'static [Sub] = &[Sub::Status];

    fn defaults(cj: &mut CronJob) {
        let Some(spec) = cj.spec.as_mut() else { return };
        spec.concurrency_policy
            .get_or_insert_with(|| "Allow".into());
        spec.suspend.get_or_insert(false);
        spec.successful_jobs_history_limit.get_or_insert(3);
        spec.failed_jobs_history_limit.get_or_insert(1);
        if let Some(ps) = spec
            .job_template
            .spec
            .as_mut()
            .and_then(|j| j.template.spec.as_mut())
        {
            let restart = ps.restart_policy.clone();
            podspec::defaults(ps);
            ps.restart_policy = restart;
        }
    }

    fn validate(cj: &CronJob, causes: &mut Vec<Cause>) {
        let Some(spec) = &cj.spec else {
            causes.push(Cause::required("spec"));
            return;
        };
        if spec.schedule.trim().is_empty() {
            causes.push(Cause::required("spec.schedule"));
        } else if let Err(why) = super::cron::check_schedule(&spec.schedule) {
            causes.push(Cause::invalid("spec.schedule", &spec.schedule, &why));
        }
        if let Some(tz) = &spec.time_zone
            && let Err(why) = super::cron::check_time_zone(tz)
        {
            causes.push(Cause::invalid("spec.timeZone", tz, &why));
        }
        if let Some(p) = &spec.concurrency_policy
            && !matches!(p.as_str(), "Allow" | "Forbid" | "Replace")
        {
            causes.push(Cause::not_supported(
                "spec.concurrencyPolicy",
                p,
                &["Allow", "Forbid", "Replace"],
            ));
        }
        match spec
            .job_template
            .spec
            .as_ref()
            .and_then(|j| j.template.spec.as_ref())
        {
            Some(ps) => podspec::validate(ps, "spec.jobTemplate.spec.template.spec", causes),
            None => causes.push(Cause::required("spec.jobTemplate.spec.template.spec")),
        }
    }

    fn columns() -> Vec<Column> {
        vec![
            Column::new("Schedule", "string", "The schedule in Cron format."),
            Column::new(
                "Timezone",
                "string",
                "The time zone name for the given schedule.",
            ),
            Column::new(
                "Suspend",
                "boolean",
                "This flag tells the controller to suspend subsequent executions.",
            ),
            Column::new(
                "Active",
                "integer",
                "A list of pointers to currently running jobs.",
            ),
            Column::new(
                "Last Schedule",
                "string",
                "Information when was the last time the job was successfully scheduled.",
            ),
            Column::new("Age", "date", "CreationTimestamp"),
        ]
    }

    fn cells(cj: &CronJob, age: &str) -> Vec<Value> {
        let spec = cj.spec.clone().unwrap_or_default();
        let st = cj.status.clone().unwrap_or_default();
        let last = st
            .last_schedule_time
            .map(|t| {
                crate::table::human_duration(jiff::Timestamp::now().as_second() - t.0.as_second())
            })
            .unwrap_or("<none>".into());
        vec![
            json!(spec.schedule),
            json!(spec.time_zone.unwrap_or("<none>".into())),
            json!(spec.suspend.unwrap_or(false)),
            json!(st.active.map(|a| a.len()).unwrap_or(0)),
            json!(last),
            json!(age),
        ]
    }
}
