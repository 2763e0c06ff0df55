//! Subresources: `status` (status-only writes), `scale` (autoscaling/v1 Scale over
//! `spec.replicas`), `binding` (assign a pod to a node), `log` (refused clearly until a kubelet
//! serves logs), `finalize` (namespace finalizers), `token` (ServiceAccount tokens, in
//! `reviews`).

use serde_json::{Value, json};

use super::meta::{self, meta_mut, meta_str, must_get};
use super::update::{Part, guaranteed_update, prepare_update};
use super::{Ctx, Reply, Req, patch, update};
use crate::error::{ApiError, success_status};
use crate::patch::{PatchKind, apply_patch};
use crate::registry::Sub;
use crate::request::Verb;

/// Runs a subresource request.
pub async fn dispatch(ctx: &Ctx, req: &Req, sub: &str) -> Result<Reply, ApiError> {
    let info = req.resource.info();
    let sub = info
        .subresources
        .iter()
        .copied()
        .find(|s| s.name() == sub)
        .ok_or(ApiError::UnknownResource)?;
    match (sub, req.verb) {
        (Sub::Status, Verb::Get) => super::get::get(ctx, req).await,
        (Sub::Status, Verb::Update) => update::update_part(ctx, req, Part::Status).await,
        (Sub::Status, Verb::Patch) => patch::patch_part(ctx, req, Part::Status).await,
        (Sub::Finalize, Verb::Update) => update::update_part(ctx, req, Part::Finalize).await,
        (Sub::Scale, Verb::Get) => {
            let name = req.name()?;
            let stored = must_get(ctx, req.resource.as_ref(), &req.key(name), name).await?;
            Ok(Reply::ok(scale_of(&stored.object)))
        }
        (Sub::Scale, Verb::Update | Verb::Patch) => scale(ctx, req).await,
        (Sub::Binding, Verb::Create) => bind(ctx, req).await,
        (Sub::Token, Verb::Create) => super::reviews::token_request(ctx, req).await,
        (Sub::Log, Verb::Get) => {
            let name = req.name()?;
            let stored = must_get(ctx, req.resource.as_ref(), &req.key(name), name).await?;
            match stored
                .object
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
            {
                None => Err(ApiError::BadRequest(format!(
                    "pod {name} does not have a host assigned: logs exist once it is scheduled and running"
                ))),
                Some(node) => Err(ApiError::NotImplemented(format!(
                    "container logs are served by the kubelet on node {node}; this cluster's kubelet does not serve logs yet"
                ))),
            }
        }
        (Sub::Exec | Sub::Attach | Sub::PortForward, Verb::Get | Verb::Create) => {
            let name = req.name()?;
            let stored = must_get(ctx, req.resource.as_ref(), &req.key(name), name).await?;
            let what = sub.name();
            match stored
                .object
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
            {
                None => Err(ApiError::BadRequest(format!(
                    "pod {name} does not have a host assigned"
                ))),
                Some(node) => Err(ApiError::NotImplemented(format!(
                    "{what} is served by the kubelet on node {node}; this cluster's kubelet does not serve {what} yet"
                ))),
            }
        }
        _ => Err(ApiError::MethodNotAllowed),
    }
}

/// The autoscaling/v1 Scale view of an object with `spec.replicas`.
pub fn scale_of(object: &Value) -> Value {
    let selector = object
        .pointer("/spec/selector")
        .map(selector_string)
        .unwrap_or_default();
    let m = object.get("metadata").cloned().unwrap_or(json!({}));
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m.get("name"), "namespace": m.get("namespace"), "uid": m.get("uid"),
            "resourceVersion": m.get("resourceVersion"), "creationTimestamp": m.get("creationTimestamp"),
        },
        "spec": {"replicas": object.pointer("/spec/replicas").cloned().unwrap_or(json!(0))},
        "status": {
            "replicas": object.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector,
        },
    })
}

fn selector_string(sel: &Value) -> String {
    let labels: Vec<(String, String)> = sel
        .get("matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let exprs: Vec<(String, String, Vec<String>)> = sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e["key"].as_str().unwrap_or_default().to_string(),
                        e["operator"].as_str().unwrap_or_default().to_string(),
                        e["values"]
                            .as_array()
                            .map(|v| {
                                v.iter()
                                    .filter_map(|x| x.as_str().map(str::to_string))
                                    .collect()
                            })
                            .unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    kubelab_api::labels::Selector::from_parts(
        labels.iter().map(|(k, v)| (k, v)),
        exprs
            .iter()
            .map(|(k, o, v)| (k.as_str(), o.as_str(), v.clone())),
    )
    .map(|s| s.to_string())
    .unwrap_or_default()
}

async fn scale(ctx: &Ctx, req: &Req) -> Result<Reply, ApiError> {
    let name = req.name()?.to_string();
    let body = req
        .body
        .as_ref()
        .ok_or_else(|| ApiError::BadRequest("scale needs a body".into()))?;
    let manager = req.field_manager();
    let updated = guaranteed_update(ctx, req, &name, |old| {
        let current = scale_of(old);
        let wanted = if req.verb == Verb::Patch {
            let kind = PatchKind::from_content_type(&body.content_type)?;
            apply_patch(
                kind,
                &current,
                &body.bytes,
                crate::schema_index(),
                "io.k8s.api.autoscaling.v1.Scale",
            )?
        } else {
            meta::parse_body(body)?
        };
        let replicas = match wanted.pointer("/spec/replicas") {
            Some(Value::Number(n))
                if n.as_i64()
                    .is_some_and(|r| (0..=i32::MAX as i64).contains(&r)) =>
            {
                n.as_i64().unwrap_or(0)
            }
            Some(other) => {
                return Err(ApiError::Invalid {
                    kind: "Scale".into(),
                    group: "autoscaling".into(),
                    name: name.clone(),
                    causes: vec![crate::error::Cause::invalid(
                        "spec.replicas",
                        other,
                        "must be greater than or equal to 0",
                    )],
                });
            }
            None => 0,
        };
        let pinned = meta_str(&wanted, "resourceVersion")
            .map(super::list::parse_rv)
            .transpose()?;
        let mut new = old.clone();
        new["spec"]["replicas"] = json!(replicas);
        Ok((
            prepare_update(req, old, new, Part::Main, Some(&manager))?,
            pinned,
        ))
    })
    .await?;
    Ok(Reply::ok(scale_of(&updated)))
}

async fn bind(ctx: &Ctx, req: &Req) -> Result<Reply, ApiError> {
    let name = req.name()?.to_string();
    let body = req
        .body
        .as_ref()
        .ok_or_else(|| ApiError::BadRequest("binding needs a body".into()))?;
    let binding = meta::parse_body(body)?;
    let node = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::Invalid {
            kind: "Binding".into(),
            group: String::new(),
            name: name.clone(),
            causes: vec![crate::error::Cause::required("target.name")],
        })?
        .to_string();
    let info = req.resource.info();
    guaranteed_update(ctx, req, &name, |old| {
        if meta_str(old, "deletionTimestamp").is_some() {
            return Err(ApiError::Conflict {
                object: meta::object_ref(info, &name),
                message: format!("pod {name} is being deleted, cannot be assigned to a host"),
            });
        }
        if let Some(existing) = old.pointer("/spec/nodeName").and_then(Value::as_str) {
            return Err(ApiError::Conflict {
                object: meta::object_ref(info, &name),
                message: format!("pod {name} is already assigned to node \"{existing}\""),
            });
        }
        let mut new = old.clone();
        new["spec"]["nodeName"] = json!(node);
        let conds = new["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut conds: Vec<Value> = conds
            .into_iter()
            .filter(|c| c["type"] != "PodScheduled")
            .collect();
        conds.push(
            json!({"type": "PodScheduled", "status": "True", "lastTransitionTime": meta::now()}),
        );
        new["status"]["conditions"] = Value::Array(conds);
        meta_mut(&mut new);
        Ok((new, None))
    })
    .await?;
    Ok(Reply::Object {
        code: 201,
        body: success_status(None),
        warnings: Vec::new(),
    })
}
