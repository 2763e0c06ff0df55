//! The computed resources: access reviews (`kubectl auth can-i`), rules reviews
//! (`can-i --list`), `kubectl auth whoami`, token reviews, and TokenRequest
//! (`kubectl create token`). Nothing here is stored; each answers the request object with a
//! status computed from the caller, the authorizer and the authenticators.
//!
//! - SelfSubjectAccessReview: may *I* do this? (the caller's own user)
//! - SubjectAccessReview / LocalSubjectAccessReview: may *this user/groups* do this?
//!   (authorized like any create, so only those allowed to ask may ask)
//! - SelfSubjectRulesReview: every rule I have in a namespace.
//! - SelfSubjectReview: who am I.
//! - TokenReview: who does this bearer token belong to (for webhooks and kubelets).
//! - TokenRequest (`serviceaccounts/<name>/token`): a signed ServiceAccount token.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::meta::{self, must_get};
use super::{Ctx, Reply, Req};
use crate::authn::serviceaccount::Account;
use crate::authn::{Credentials, User};
use crate::authz::{Attributes, Decision};
use crate::error::{ApiError, Cause};

/// Shortest ServiceAccount token lifetime a TokenRequest may ask for (kube: 10 minutes).
pub const MIN_TOKEN_SECONDS: i64 = 600;
/// Longest (kube: 2^32 seconds).
pub const MAX_TOKEN_SECONDS: i64 = 1 << 32;
/// Lifetime when the request does not say (kube: 1 hour).
pub const DEFAULT_TOKEN_SECONDS: i64 = 3600;

fn invalid(req: &Req, causes: Vec<Cause>) -> ApiError {
    ApiError::Invalid {
        kind: req.resource.info().kind.into(),
        group: req.resource.info().group.into(),
        name: String::new(),
        causes,
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn text(v: &Value, field: &str) -> String {
    v[field].as_str().unwrap_or_default().to_string()
}

/// The authorizer attributes of a review's `spec` (exactly one of resourceAttributes and
/// nonResourceAttributes).
fn attributes(req: &Req, spec: &Value) -> Result<Attributes, ApiError> {
    let r = spec.get("resourceAttributes").filter(|v| !v.is_null());
    let n = spec.get("nonResourceAttributes").filter(|v| !v.is_null());
    match (r, n) {
        (Some(r), None) => Ok(Attributes {
            resource_request: true,
            verb: text(r, "verb"),
            api_group: text(r, "group"),
            api_version: text(r, "version"),
            resource: text(r, "resource"),
            subresource: text(r, "subresource"),
            namespace: text(r, "namespace"),
            name: text(r, "name"),
            path: String::new(),
        }),
        (None, Some(n)) => Ok(Attributes::non_resource(&text(n, "verb"), &text(n, "path"))),
        _ => Err(invalid(
            req,
            vec![Cause {
                reason: "FieldValueInvalid",
                field: "spec.resourceAttributes".into(),
                message:
                    "exactly one of nonResourceAttributes or resourceAttributes must be specified"
                        .into(),
            }],
        )),
    }
}

fn access_status(d: &Decision) -> Value {
    let mut s = json!({"allowed": d.allowed()});
    if matches!(d, Decision::Deny(_)) {
        s["denied"] = json!(true);
    }
    if !d.reason().is_empty() {
        s["reason"] = json!(d.reason());
    }
    s
}

fn user_info(u: &User) -> Value {
    let mut v = json!({"username": u.name, "groups": u.groups});
    if !u.uid.is_empty() {
        v["uid"] = json!(u.uid);
    }
    if !u.extra.is_empty() {
        v["extra"] = json!(u.extra);
    }
    v
}

/// `create` on a computed resource.
pub async fn create(ctx: &Ctx, req: &Req) -> Result<Reply, ApiError> {
    if req.verb != crate::request::Verb::Create || req.path.subresource.is_some() {
        return Err(ApiError::MethodNotAllowed);
    }
    let body = req
        .body
        .as_ref()
        .ok_or_else(|| ApiError::BadRequest("a review needs a body".into()))?;
    let (mut object, warnings) = meta::decode_object(req, meta::parse_body(body)?)?;
    let spec = object.get("spec").cloned().unwrap_or(json!({}));
    let authz = ctx.security.authz.as_ref();
    let status = match req.resource.info().kind {
        "SelfSubjectAccessReview" => {
            access_status(&authz.authorize(&req.user, &attributes(req, &spec)?))
        }
        "LocalSubjectAccessReview" | "SubjectAccessReview" => {
            let mut attrs = attributes(req, &spec)?;
            if let Some(ns) = req.namespace() {
                // Local: the review is about the URL's namespace, and resources only.
                if !attrs.resource_request {
                    return Err(invalid(
                        req,
                        vec![Cause {
                            reason: "FieldValueInvalid",
                            field: "spec.nonResourceAttributes".into(),
                            message: "disallowed on this kind of request".into(),
                        }],
                    ));
                }
                if !attrs.namespace.is_empty() && attrs.namespace != ns {
                    return Err(invalid(
                        req,
                        vec![Cause::invalid(
                            "spec.resourceAttributes.namespace",
                            &attrs.namespace,
                            "must match metadata.namespace",
                        )],
                    ));
                }
                attrs.namespace = ns.to_string();
            }
            let subject = User {
                name: text(&spec, "user"),
                uid: text(&spec, "uid"),
                groups: strings(&spec["groups"]),
                extra: serde_json::from_value::<BTreeMap<String, Vec<String>>>(
                    spec.get("extra").cloned().unwrap_or(Value::Null),
                )
                .unwrap_or_default(),
            };
            if subject.name.is_empty() && subject.groups.is_empty() {
                return Err(invalid(
                    req,
                    vec![Cause {
                        reason: "FieldValueRequired",
                        field: "spec.user".into(),
                        message: "at least one of user or group must be specified".into(),
                    }],
                ));
            }
            access_status(&authz.authorize(&subject, &attrs))
        }
        "SelfSubjectRulesReview" => {
            let ns = text(&spec, "namespace");
            let rules = authz.rules_for(&req.user, &ns);
            let mut resource_rules = Vec::new();
            let mut non_resource_rules = Vec::new();
            for r in &rules.rules {
                if r.resources.as_ref().is_some_and(|x| !x.is_empty()) {
                    let mut e = json!({"verbs": r.verbs, "apiGroups": r.api_groups, "resources": r.resources});
                    if let Some(n) = r.resource_names.as_ref().filter(|n| !n.is_empty()) {
                        e["resourceNames"] = json!(n);
                    }
                    resource_rules.push(e);
                }
                if r.non_resource_urls.as_ref().is_some_and(|x| !x.is_empty()) {
                    non_resource_rules
                        .push(json!({"verbs": r.verbs, "nonResourceURLs": r.non_resource_urls}));
                }
            }
            let mut s = json!({
                "resourceRules": resource_rules,
                "nonResourceRules": non_resource_rules,
                "incomplete": !rules.errors.is_empty(),
            });
            if !rules.errors.is_empty() {
                s["evaluationError"] = json!(rules.errors.join(", "));
            }
            s
        }
        "SelfSubjectReview" => json!({"userInfo": user_info(&req.user)}),
        "TokenReview" => token_review(ctx, &spec),
        other => {
            return Err(ApiError::NotImplemented(format!(
                "no computation for {other}"
            )));
        }
    };
    object["status"] = status;
    Ok(Reply::Object {
        code: 201,
        body: object,
        warnings,
    })
}

fn token_review(ctx: &Ctx, spec: &Value) -> Value {
    let token = text(spec, "token");
    let api = ctx.security.tokens.audiences();
    let wanted = strings(&spec["audiences"]);
    let audiences: Vec<String> = if wanted.is_empty() {
        api.to_vec()
    } else {
        wanted.into_iter().filter(|a| api.contains(a)).collect()
    };
    if audiences.is_empty() {
        return json!({"authenticated": false, "error": "token audiences are not among the API audiences"});
    }
    let mut headers = http::HeaderMap::new();
    let Ok(value) = http::HeaderValue::from_str(&format!("Bearer {token}")) else {
        return json!({"authenticated": false, "error": "invalid bearer token"});
    };
    headers.insert(http::header::AUTHORIZATION, value);
    let creds = Credentials {
        headers: &headers,
        peer_certificates: None,
    };
    // A token review never falls back to anonymous: pass a path anonymous may not reach.
    match ctx
        .security
        .authn
        .authenticate(&creds, "/apis/authentication.k8s.io/v1/tokenreviews")
    {
        Ok(user) => {
            json!({"authenticated": true, "user": user_info(&user), "audiences": audiences})
        }
        Err(e) => json!({"authenticated": false, "error": e.to_string()}),
    }
}

/// `create` on `serviceaccounts/<name>/token`: a TokenRequest answered with a signed token.
pub async fn token_request(ctx: &Ctx, req: &Req) -> Result<Reply, ApiError> {
    let name = req.name()?.to_string();
    let ns = req.namespace().unwrap_or_default().to_string();
    let body = req
        .body
        .as_ref()
        .ok_or_else(|| ApiError::BadRequest("a TokenRequest needs a body".into()))?;
    let value = meta::parse_body(body)?;
    // Read loosely: clients send `status` with null timestamps, which the typed model refuses.
    let av = value["apiVersion"]
        .as_str()
        .unwrap_or("authentication.k8s.io/v1");
    let kind = value["kind"].as_str().unwrap_or("TokenRequest");
    if av != "authentication.k8s.io/v1" || kind != "TokenRequest" {
        return Err(ApiError::BadRequest(format!(
            "the body must be an authentication.k8s.io/v1 TokenRequest, not {av} {kind}"
        )));
    }
    let spec = value.get("spec").cloned().unwrap_or(json!({}));
    let seconds = match &spec["expirationSeconds"] {
        Value::Null => DEFAULT_TOKEN_SECONDS,
        v => v.as_i64().ok_or_else(|| {
            ApiError::BadRequest("spec.expirationSeconds must be an integer".into())
        })?,
    };
    let mut causes = Vec::new();
    if seconds < MIN_TOKEN_SECONDS {
        causes.push(Cause::invalid(
            "spec.expirationSeconds",
            seconds,
            "may not specify a duration less than 10 minutes",
        ));
    }
    if seconds > MAX_TOKEN_SECONDS {
        causes.push(Cause::invalid(
            "spec.expirationSeconds",
            seconds,
            "may not specify a duration larger than 2^32 seconds",
        ));
    }
    if !spec["boundObjectRef"].is_null() {
        causes.push(Cause {
            reason: "FieldValueNotSupported",
            field: "spec.boundObjectRef".into(),
            message: "binding tokens to objects is not supported by this server; omit it".into(),
        });
    }
    if !causes.is_empty() {
        return Err(ApiError::Invalid {
            kind: "TokenRequest".into(),
            group: "authentication.k8s.io".into(),
            name,
            causes,
        });
    }
    let sa = must_get(ctx, req.resource.as_ref(), &req.key(&name), &name).await?;
    let account = Account {
        namespace: ns.clone(),
        name: name.clone(),
        uid: sa.object["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    };
    let tokens = &ctx.security.tokens;
    let mut audiences = strings(&spec["audiences"]);
    if audiences.is_empty() {
        audiences = tokens.audiences().to_vec();
    }
    let now = jiff::Timestamp::now().as_second();
    let token = tokens
        .issue(&account, &audiences, now, seconds)
        .map_err(|_| ApiError::NotImplemented("signing the token failed".into()))?;
    let expires = crate::pki::inspect::show_time(now + seconds);
    Ok(Reply::Object {
        code: 201,
        body: json!({
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": meta::now()},
            "spec": {"audiences": audiences, "expirationSeconds": seconds, "boundObjectRef": null},
            "status": {"token": token, "expirationTimestamp": expires},
        }),
        warnings: Vec::new(),
    })
}
