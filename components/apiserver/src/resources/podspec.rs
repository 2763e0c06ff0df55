//! Pod spec defaults and validation, shared by pods and every workload's pod template.

use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::error::Cause;

/// Kubernetes' PodSpec defaults (the ones clients rely on seeing).
pub fn defaults(spec: &mut PodSpec) {
    spec.restart_policy.get_or_insert_with(|| "Always".into());
    spec.dns_policy.get_or_insert_with(|| "ClusterFirst".into());
    spec.termination_grace_period_seconds.get_or_insert(30);
    spec.scheduler_name
        .get_or_insert_with(|| "default-scheduler".into());
    spec.security_context.get_or_insert_with(Default::default);
    spec.enable_service_links.get_or_insert(true);
    for c in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
    {
        container_defaults(c);
    }
}

fn container_defaults(c: &mut Container) {
    c.termination_message_path
        .get_or_insert_with(|| "/dev/termination-log".into());
    c.termination_message_policy
        .get_or_insert_with(|| "File".into());
    if c.image_pull_policy.is_none() {
        let image = c.image.as_deref().unwrap_or_default();
        let last = image.rsplit('/').next().unwrap_or(image);
        let tagged = last.contains(':') && !last.ends_with(":latest");
        let digest = image.contains('@');
        c.image_pull_policy = Some(
            if tagged || digest {
                "IfNotPresent"
            } else {
                "Always"
            }
            .into(),
        );
    }
    c.resources.get_or_insert_with(Default::default);
    for p in c.ports.iter_mut().flatten() {
        p.protocol.get_or_insert_with(|| "TCP".into());
    }
}

/// Validates a pod spec; `at` is the field path prefix (`spec`, `spec.template.spec`).
pub fn validate(spec: &PodSpec, at: &str, causes: &mut Vec<Cause>) {
    if spec.containers.is_empty() {
        causes.push(Cause::required(format!("{at}.containers")));
    }
    let mut volumes = std::collections::HashSet::new();
    for (i, v) in spec.volumes.iter().flatten().enumerate() {
        if !volumes.insert(v.name.as_str()) {
            causes.push(Cause::duplicate(format!("{at}.volumes[{i}].name"), &v.name));
        }
    }
    let mut names = std::collections::HashSet::new();
    let lists = [
        ("containers", Some(&spec.containers)),
        ("initContainers", spec.init_containers.as_ref()),
    ];
    for (list, containers) in lists {
        for (i, c) in containers.into_iter().flatten().enumerate() {
            let p = format!("{at}.{list}[{i}]");
            if c.name.is_empty() {
                causes.push(Cause::required(format!("{p}.name")));
            } else {
                for e in kubelab_api::validation::dns1123_label(&c.name) {
                    causes.push(Cause::invalid(format!("{p}.name"), &c.name, &e));
                }
                if !names.insert(c.name.clone()) {
                    causes.push(Cause::duplicate(format!("{p}.name"), &c.name));
                }
            }
            if c.image.as_deref().is_none_or(|i| i.trim().is_empty()) {
                causes.push(Cause::required(format!("{p}.image")));
            }
            for (j, port) in c.ports.iter().flatten().enumerate() {
                if !(1..=65535).contains(&port.container_port) {
                    causes.push(Cause::invalid(
                        format!("{p}.ports[{j}].containerPort"),
                        port.container_port,
                        "must be between 1 and 65535, inclusive",
                    ));
                }
                if let Some(proto) = &port.protocol
                    && !matches!(proto.as_str(), "TCP" | "UDP" | "SCTP")
                {
                    causes.push(Cause::not_supported(
                        format!("{p}.ports[{j}].protocol"),
                        proto,
                        &["SCTP", "TCP", "UDP"],
                    ));
                }
            }
            if let Some(r) = &c.resources {
                let at = format!("{p}.resources");
                super::quantity::validate_list(
                    r.requests.as_ref(),
                    &format!("{at}.requests"),
                    causes,
                );
                super::quantity::validate_list(r.limits.as_ref(), &format!("{at}.limits"), causes);
                validate_requests_within_limits(r, &at, causes);
            }
            for (j, e) in c.env.iter().flatten().enumerate() {
                if !is_env_var_name(&e.name) {
                    causes.push(Cause::invalid(
                        format!("{p}.env[{j}].name"),
                        &e.name,
                        ENV_NAME,
                    ));
                }
            }
            for (j, m) in c.volume_mounts.iter().flatten().enumerate() {
                if !volumes.contains(m.name.as_str()) {
                    causes.push(Cause::not_found(
                        format!("{p}.volumeMounts[{j}].name"),
                        &m.name,
                    ));
                }
            }
            if let Some(policy) = &c.image_pull_policy
                && !matches!(policy.as_str(), "Always" | "IfNotPresent" | "Never")
            {
                causes.push(Cause::not_supported(
                    format!("{p}.imagePullPolicy"),
                    policy,
                    &["Always", "IfNotPresent", "Never"],
                ));
            }
        }
    }
    if let Some(r) = &spec.restart_policy
        && !matches!(r.as_str(), "Always" | "OnFailure" | "Never")
    {
        causes.push(Cause::not_supported(
            format!("{at}.restartPolicy"),
            r,
            &["Always", "OnFailure", "Never"],
        ));
    }
    if let Some(d) = &spec.dns_policy
        && !matches!(
            d.as_str(),
            "ClusterFirst" | "ClusterFirstWithHostNet" | "Default" | "None"
        )
    {
        causes.push(Cause::not_supported(
            format!("{at}.dnsPolicy"),
            d,
            &["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"],
        ));
    }
    if let Some(g) = spec.termination_grace_period_seconds
        && g < 0
    {
        causes.push(Cause::invalid(
            format!("{at}.terminationGracePeriodSeconds"),
            g,
            "must be greater than or equal to 0",
        ));
    }
}

/// Kubernetes' wording for a bad environment variable name.
const ENV_NAME: &str = "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')";

/// `[-._a-zA-Z][-._a-zA-Z0-9]*`, as apimachinery's `IsEnvVarName`.
fn is_env_var_name(name: &str) -> bool {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
    name.chars()
        .next()
        .is_some_and(|c| ok(c) && !c.is_ascii_digit())
        && name.chars().all(ok)
}

/// A request above its limit is refused, as Kubernetes does (`requests.cpu` 2 with `limits.cpu` 1).
fn validate_requests_within_limits(
    r: &k8s_openapi::api::core::v1::ResourceRequirements,
    at: &str,
    causes: &mut Vec<Cause>,
) {
    let (Some(requests), Some(limits)) = (&r.requests, &r.limits) else {
        return;
    };
    for (name, req) in requests {
        let Some(limit) = limits.get(name) else {
            continue;
        };
        if let (Some(rv), Some(lv)) = (
            super::quantity::value(&req.0),
            super::quantity::value(&limit.0),
        ) && rv > lv
        {
            causes.push(Cause::invalid(
                format!("{at}.requests"),
                &req.0,
                &format!("must be less than or equal to {name} limit of {}", limit.0),
            ));
        }
    }
}

/// Ready/total containers and restarts from a pod status (for tables).
pub fn container_counts(
    status: Option<&k8s_openapi::api::core::v1::PodStatus>,
    total: usize,
) -> (usize, usize, i32) {
    let statuses = status.and_then(|s| s.container_statuses.as_ref());
    let ready = statuses
        .map(|l| l.iter().filter(|c| c.ready).count())
        .unwrap_or(0);
    let restarts = statuses
        .map(|l| l.iter().map(|c| c.restart_count).sum())
        .unwrap_or(0);
    (ready, total, restarts)
}

/// Comma-joined container names and images of a pod template (wide workload columns).
pub fn names_and_images(spec: Option<&PodSpec>) -> (String, String) {
    let cs = spec.map(|s| s.containers.as_slice()).unwrap_or_default();
    (
        cs.iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(","),
        cs.iter()
            .map(|c| c.image.as_deref().unwrap_or_default())
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// The string form of a structured label selector.
pub fn selector_string(
    sel: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
) -> String {
    let Some(sel) = sel else {
        return "<none>".into();
    };
    let labels = sel.match_labels.clone().unwrap_or_default();
    let exprs: Vec<(String, String, Vec<String>)> = sel
        .match_expressions
        .iter()
        .flatten()
        .map(|e| {
            (
                e.key.clone(),
                e.operator.clone(),
                e.values.clone().unwrap_or_default(),
            )
        })
        .collect();
    kubelab_api::labels::Selector::from_parts(
        labels.iter(),
        exprs
            .iter()
            .map(|(k, o, v)| (k.as_str(), o.as_str(), v.clone())),
    )
    .map(|s| {
        if s.is_empty() {
            "<none>".to_string()
        } else {
            s.to_string()
        }
    })
    .unwrap_or_else(|e| e.to_string())
}

/// Checks a workload's selector against its template labels.
pub fn validate_selector(
    selector: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
    template_labels: Option<&std::collections::BTreeMap<String, String>>,
    causes: &mut Vec<Cause>,
) {
    let empty = selector.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(|m| m.is_empty());
    if empty {
        causes.push(Cause::invalid(
            "spec.selector",
            "{}",
            "empty selector is invalid for deployment",
        ));
        return;
    }
    let exprs: Vec<(String, String, Vec<String>)> = selector
        .match_expressions
        .iter()
        .flatten()
        .map(|e| {
            (
                e.key.clone(),
                e.operator.clone(),
                e.values.clone().unwrap_or_default(),
            )
        })
        .collect();
    let labels = selector.match_labels.clone().unwrap_or_default();
    match kubelab_api::labels::Selector::from_parts(
        labels.iter(),
        exprs
            .iter()
            .map(|(k, o, v)| (k.as_str(), o.as_str(), v.clone())),
    ) {
        Err(e) => causes.push(Cause::invalid("spec.selector", "", &e.to_string())),
        Ok(sel) => {
            let tl = template_labels.cloned().unwrap_or_default();
            if !sel.matches(&tl) {
                let shown: Vec<String> = tl.iter().map(|(k, v)| format!("{k}={v}")).collect();
                causes.push(Cause::invalid(
                    "spec.template.metadata.labels",
                    format!("map[{}]", shown.join(" ")),
                    "`selector` does not match template `labels`",
                ));
            }
        }
    }
}

/// Validates what every pod-template workload shares: `spec.replicas` (where the kind has it)
/// not negative, the selector matching the template's labels, and the template's pod spec.
/// Returns the pod spec for the kind's own checks (e.g. a Deployment's restartPolicy).
pub fn validate_workload<'a>(
    replicas: Option<i32>,
    selector: &LabelSelector,
    template: Option<&'a PodTemplateSpec>,
    causes: &mut Vec<Cause>,
) -> Option<&'a PodSpec> {
    if let Some(r) = replicas
        && r < 0
    {
        causes.push(Cause::invalid(
            "spec.replicas",
            r,
            "must be greater than or equal to 0",
        ));
    }
    validate_selector(
        selector,
        template
            .and_then(|t| t.metadata.as_ref())
            .and_then(|m| m.labels.as_ref()),
        causes,
    );
    let Some(template) = template else {
        causes.push(Cause::required("spec.template"));
        return None;
    };
    match &template.spec {
        Some(ps) => {
            validate(ps, "spec.template.spec", causes);
            Some(ps)
        }
        None => {
            causes.push(Cause::required("spec.template.spec"));
            None
        }
    }
}
