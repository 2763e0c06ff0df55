//! The HTTP layer: the one place that sees axum/http types.
//!
//! Pipeline of every request, in order:
//! 1. authenticate ([`crate::authn::Chain`], with the connection's client certificate from
//!    [`crate::listen::ConnInfo`]; refused or missing credentials → 401),
//! 2. parse the path into a [`Target`] and, for resources, a [`Verb`],
//! 3. authorize ([`crate::authz::Authorizer`] on Kubernetes' request attributes; not
//!    allowed → 403 with Kubernetes' message),
//! 4. negotiate the response form (`Accept`) and read the body within the size limit (413),
//! 5. dispatch to discovery/openapi/health or to `handlers::dispatch`,
//! 6. encode the reply (JSON, YAML, Table, or a chunked watch stream), errors as `Status`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderValue, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use tracing::Instrument;

use crate::authn::Credentials;
use crate::authz::{Attributes, forbidden};
use crate::error::ApiError;
use crate::handlers::{self, Body as ReqBody, Ctx, Format, Reply, Req};
use crate::openapi::OpenApi;
use crate::request::{self, Query, Target, Verb};
use crate::{discovery, version_info};

/// Everything a request needs.
pub struct App {
    /// Resource handling state.
    pub ctx: Ctx,
    /// Rendered OpenAPI documents.
    pub openapi: OpenApi,
    /// `host:port` clients reach us at (discovery's serverAddressByClientCIDRs).
    pub address: String,
}

/// The axum router: everything goes through [`handle`].
pub fn router(app: Arc<App>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(app)
}

/// What the client's `Accept` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Accept {
    Plain(Format),
    /// Aggregated discovery at this apidiscovery version.
    Discovery(&'static str),
}

/// Whether `/openapi/v2` is asked for as protobuf: the first range naming a form served
/// (protobuf or JSON) decides, as kube-apiserver's negotiation picks the first acceptable.
fn openapi_v2_protobuf(accept: Option<&str>) -> bool {
    accept
        .unwrap_or_default()
        .split(',')
        .map(|r| r.split(';').next().unwrap_or_default().trim())
        .find(|m| {
            crate::openapi_pb::MEDIA_TYPES.contains(m)
                || matches!(*m, "application/json" | "*/*" | "application/*")
        })
        .is_some_and(|m| crate::openapi_pb::MEDIA_TYPES.contains(&m))
}

fn negotiate(accept: Option<&str>) -> Result<Vec<Accept>, ApiError> {
    let text = accept.unwrap_or("application/json");
    let mut out = Vec::new();
    for range in text.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default();
        let params: Vec<(&str, &str)> = parts.filter_map(|p| p.split_once('=')).collect();
        let param = |k: &str| params.iter().find(|(pk, _)| *pk == k).map(|(_, v)| *v);
        let json_like = matches!(media, "application/json" | "*/*" | "application/*");
        match (param("as"), param("g"), param("v")) {
            (Some("Table"), Some("meta.k8s.io"), Some("v1")) if json_like => {
                out.push(Accept::Plain(Format::Table))
            }
            (
                Some(form @ ("PartialObjectMetadata" | "PartialObjectMetadataList")),
                Some("meta.k8s.io"),
                Some(v @ ("v1" | "v1beta1")),
            ) if json_like => out.push(Accept::Plain(Format::Metadata {
                list: form == "PartialObjectMetadataList",
                version: if v == "v1" { "v1" } else { "v1beta1" },
            })),
            (Some("APIGroupDiscoveryList"), Some("apidiscovery.k8s.io"), Some("v2")) => {
                out.push(Accept::Discovery("v2"))
            }
            (Some("APIGroupDiscoveryList"), Some("apidiscovery.k8s.io"), Some("v2beta1")) => {
                out.push(Accept::Discovery("v2beta1"))
            }
            (Some(_), _, _) => {}
            (None, _, _) if json_like => out.push(Accept::Plain(Format::Json)),
            (None, _, _) if media == "application/yaml" => out.push(Accept::Plain(Format::Yaml)),
            _ => {}
        }
    }
    if out.is_empty() {
        return Err(ApiError::NotAcceptable(text.to_string()));
    }
    Ok(out)
}

fn status_response(err: &ApiError) -> Response {
    let body = serde_json::to_vec(&err.to_status()).unwrap_or_default();
    let mut r = Response::builder()
        .status(StatusCode::from_u16(err.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(seconds) = err.retry_after() {
        r = r.header(header::RETRY_AFTER, seconds);
    }
    r.body(Body::from(body)).unwrap_or_default()
}

fn json_response(code: u16, body: &Value, format: Format, warnings: &[String]) -> Response {
    let (bytes, ct) = match format {
        Format::Yaml => (
            serde_yaml_ng::to_string(body)
                .unwrap_or_default()
                .into_bytes(),
            "application/yaml",
        ),
        _ => (
            serde_json::to_vec(body).unwrap_or_default(),
            "application/json",
        ),
    };
    let mut r = Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::OK))
        .header(header::CONTENT_TYPE, ct);
    for w in warnings {
        let text = format!("299 - \"{}\"", w.replace('"', "'"));
        if let Ok(v) = HeaderValue::from_str(&text) {
            r = r.header(header::WARNING, v);
        }
    }
    r.body(Body::from(bytes)).unwrap_or_default()
}

fn raw(code: StatusCode, content_type: &str, bytes: Vec<u8>) -> Response {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(bytes))
        .unwrap_or_default()
}

async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(ApiError::TooLarge { limit })
        }
        Err(e) => Err(ApiError::BadRequest(format!(
            "could not read the request body: {e}"
        ))),
    }
}

/// The single entry point.
pub async fn handle(State(app): State<Arc<App>>, request: Request) -> Response {
    let started = Instant::now();
    app.ctx.metrics.started();
    let path = request.uri().path().to_string();
    let method = request.method().clone();
    let span = tracing::debug_span!("request", %method, %path);
    let (verb, resource, response) = match serve(&app, request).instrument(span).await {
        Ok((verb, resource, response)) => (verb, resource, response),
        Err((verb, resource, err)) => {
            if err.code() >= 500 {
                tracing::warn!(%method, %path, code = err.code(), error = %err.message(), "request failed");
            }
            (verb, resource, status_response(&err))
        }
    };
    let code = response.status().as_u16();
    app.ctx
        .metrics
        .observe(&verb, &resource, code, started.elapsed());
    tracing::debug!(%method, %path, code, elapsed_ms = started.elapsed().as_millis() as u64, "request");
    response
}

type Failure = (String, String, ApiError);

/// The first impersonation header of a request (`Impersonate-User`, `-Group`, `-Uid`,
/// `-Extra-*`). Impersonation is not implemented: such requests are refused rather than
/// served as the authenticated user, which would silently answer for the wrong identity.
fn impersonation(headers: &http::HeaderMap) -> Option<String> {
    headers
        .keys()
        .map(|k| k.as_str())
        .find(|k| {
            matches!(
                *k,
                "impersonate-user" | "impersonate-group" | "impersonate-uid"
            ) || k.starts_with("impersonate-extra-")
        })
        .map(str::to_string)
}

async fn serve(app: &App, request: Request) -> Result<(String, String, Response), Failure> {
    let (parts, body) = request.into_parts();
    let fail = |verb: &str, res: &str| {
        let (v, r) = (verb.to_string(), res.to_string());
        move |e: ApiError| (v, r, e)
    };
    let conn = parts.extensions.get::<crate::listen::ConnInfo>();
    let credentials = Credentials {
        headers: &parts.headers,
        peer_certificates: conn.and_then(|c| c.peer_certificates.as_deref()),
    };
    let security = &app.ctx.security;
    let user = match security.authn.authenticate(&credentials, parts.uri.path()) {
        Ok(u) => u,
        Err(e) => {
            tracing::debug!(path = %parts.uri.path(), error = %e, "unauthenticated request");
            return Err(fail("", "")(ApiError::Unauthorized));
        }
    };
    if let Some(header) = impersonation(&parts.headers) {
        return Err(fail("", "")(ApiError::Forbidden {
            group: String::new(),
            resource: String::new(),
            name: String::new(),
            message: format!(
                "impersonation ({header} header) is not supported by this server; send the request with the user's own credentials"
            ),
        }));
    }
    let target = request::parse_path(parts.uri.path()).map_err(fail(parts.method.as_str(), ""))?;
    let query = Query(
        axum::extract::Query::<std::collections::BTreeMap<String, String>>::try_from_uri(
            &parts.uri,
        )
        .map(|q| q.0)
        .map_err(|e| fail("", "")(ApiError::BadRequest(format!("bad query string: {e}"))))?,
    );
    let accept = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let Target::Resource(path) = target else {
        let verb = parts.method.as_str().to_lowercase();
        let attrs = Attributes::non_resource(&verb, parts.uri.path());
        let decision = security.authz.authorize(&user, &attrs);
        if !decision.allowed() {
            return Err(fail(&verb, "")(forbidden(&user, &attrs, decision.reason())));
        }
        let verbose = query.0.contains_key("verbose");
        let response = non_resource(app, &target, accept.as_deref(), verbose)
            .await
            .map_err(fail(&verb, ""))?;
        return Ok((verb, String::new(), response));
    };
    let resource_name = path.resource.clone();
    let verb = request::verb(&parts.method, &path, &query).map_err(fail("", &resource_name))?;
    let fail_v = |e| (verb.as_str().to_string(), resource_name.clone(), e);
    let attrs = resource_attributes(&path, verb, &query);
    // Authorize before looking the resource up, as kube does: a caller without access
    // learns nothing about which resources exist.
    let decision = security.authz.authorize(&user, &attrs);
    if !decision.allowed() {
        return Err(fail_v(forbidden(&user, &attrs, decision.reason())));
    }
    let resource = app
        .ctx
        .registry
        .get(&path.group, &path.version, &path.resource)
        .cloned()
        .ok_or(ApiError::UnknownResource)
        .map_err(fail_v)?;
    let format = match negotiate(accept.as_deref())
        .map_err(fail_v)?
        .into_iter()
        .find_map(|a| match a {
            // The list form only for lists, the object form for the rest; a watch streams
            // objects and takes either. Kubernetes refuses the other pairings (406).
            Accept::Plain(Format::Metadata { list, .. })
                if verb != Verb::Watch && list != (verb == Verb::List) =>
            {
                None
            }
            Accept::Plain(f) => Some(f),
            Accept::Discovery(_) => None,
        }) {
        Some(Format::Table)
            if !matches!(verb, Verb::Get | Verb::List | Verb::Watch)
                || path.subresource.is_some() =>
        {
            Format::Json
        }
        Some(f) => f,
        None => return Err(fail_v(ApiError::NotAcceptable(accept.unwrap_or_default()))),
    };
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|c| c.split(';').next().unwrap_or_default().trim().to_string())
        .unwrap_or_else(|| "application/json".into());
    let mut bytes = read_body(body, app.ctx.config.max_request_bytes)
        .await
        .map_err(fail_v)?;
    let mut content_type = content_type;
    if content_type == "application/vnd.kubernetes.protobuf" && !bytes.is_empty() {
        let object = crate::protobuf::to_json(&bytes).map_err(|e| {
            fail_v(match e {
                crate::protobuf::ProtobufError::UnknownKind(_) => {
                    ApiError::UnsupportedMediaType(e.to_string())
                }
                other => ApiError::BadRequest(other.to_string()),
            })
        })?;
        bytes = Bytes::from(serde_json::to_vec(&object).unwrap_or_default());
        content_type = "application/json".into();
    }
    let user_agent = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let req = Req {
        resource,
        path,
        verb,
        query,
        body: (!bytes.is_empty() || matches!(verb, Verb::Create | Verb::Update | Verb::Patch))
            .then_some(ReqBody {
                bytes,
                content_type,
            }),
        format,
        user_agent,
        user,
    };
    let reply = handlers::dispatch(&app.ctx, req).await.map_err(fail_v)?;
    let response = match reply {
        Reply::Object {
            code,
            body,
            warnings,
        } => {
            let body = match format {
                Format::Metadata {
                    version,
                    list: false,
                } => handlers::partial::object(body, version),
                _ => body,
            };
            json_response(code, &body, format, &warnings)
        }
        Reply::Encoded { head, rest } => {
            let body = match rest {
                None => Body::from(head),
                Some(rest) => {
                    Body::from_stream(futures::stream::once(async { Ok(head) }).chain(rest))
                }
            };
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/json")
                .body(body)
                .unwrap_or_default()
        }
        Reply::Stream(stream) => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from_stream(stream.map(Ok::<_, Infallible>)))
            .unwrap_or_default(),
    };
    Ok((verb.as_str().to_string(), resource_name, response))
}

/// Kubernetes' request attributes of a resource request, as kube's RequestInfo makes them:
/// a list or watch whose field selector pins `metadata.name` is about that one object (so
/// rules with resourceNames apply), and a namespace object is in its own namespace.
fn resource_attributes(path: &request::ResourcePath, verb: Verb, query: &Query) -> Attributes {
    let mut name = path.name.clone().unwrap_or_default();
    if name.is_empty()
        && matches!(verb, Verb::List | Verb::Watch)
        && let Some(fs) = query.get("fieldSelector")
    {
        for term in fs.split(',') {
            if let Some(v) = term
                .trim()
                .strip_prefix("metadata.name=")
                .map(|v| v.trim_start_matches('='))
            {
                name = v.to_string();
            }
        }
    }
    // `/api/v1/namespaces/<ns>[/status|/finalize]` is in namespace <ns> (kube's RequestInfo).
    let namespace = match (&path.namespace, path.group.as_str(), path.resource.as_str()) {
        (Some(ns), _, _) => ns.clone(),
        (None, "", "namespaces") => path.name.clone().unwrap_or_default(),
        _ => String::new(),
    };
    Attributes {
        resource_request: true,
        verb: verb.as_str().to_string(),
        api_group: path.group.clone(),
        api_version: path.version.clone(),
        resource: path.resource.clone(),
        subresource: path.subresource.clone().unwrap_or_default(),
        namespace,
        name,
        path: String::new(),
    }
}

/// Stored objects per resource, counted in the store now (`None` where the count failed).
/// One count-only range read per resource, run side by side.
async fn storage_objects(ctx: &Ctx) -> Vec<(String, Option<i64>)> {
    let stored = ctx
        .registry
        .all()
        .iter()
        .filter(|r| r.info().storage != crate::registry::Storage::Computed);
    let counts = stored.map(|r| async move {
        let info = r.info();
        let prefix = crate::storage::keys::collection(info.plural, None);
        let plural = match info.group {
            "" => info.plural.to_string(),
            g => format!("{}.{g}", info.plural),
        };
        (plural, ctx.store.count(&prefix).await.ok())
    });
    futures::future::join_all(counts).await
}

async fn non_resource(
    app: &App,
    target: &Target,
    accept: Option<&str>,
    verbose: bool,
) -> Result<Response, ApiError> {
    let reg = &app.ctx.registry;
    if *target == Target::OpenApiV2 && openapi_v2_protobuf(accept) {
        return Ok(raw(
            StatusCode::OK,
            crate::openapi_pb::CONTENT_TYPE,
            app.openapi.v2_protobuf().to_vec(),
        ));
    }
    let wants = negotiate(accept)?;
    let discovery_version = wants.iter().find_map(|a| match a {
        Accept::Discovery(v) => Some(*v),
        Accept::Plain(_) => None,
    });
    let plain = wants.iter().any(|a| matches!(a, Accept::Plain(_)));
    let ok = |v: Value| json_response(200, &v, Format::Json, &[]);
    match target {
        Target::Api | Target::Apis => {
            let core = *target == Target::Api;
            if let Some(v) = discovery_version {
                let body =
                    serde_json::to_vec(&discovery::aggregated(reg, core, v)).unwrap_or_default();
                let ct = format!(
                    "application/json;g=apidiscovery.k8s.io;v={v};as=APIGroupDiscoveryList"
                );
                return Ok(raw(StatusCode::OK, &ct, body));
            }
            if !plain {
                return Err(ApiError::NotAcceptable(accept.unwrap_or_default().into()));
            }
            Ok(ok(if core {
                discovery::api_versions(&app.address)
            } else {
                discovery::api_groups(reg)
            }))
        }
        Target::Group(g) => discovery::api_group(reg, g)
            .map(ok)
            .ok_or(ApiError::UnknownResource),
        Target::GroupVersion { group, version } => discovery::resource_list(reg, group, version)
            .map(ok)
            .ok_or(ApiError::UnknownResource),
        Target::Version => Ok(ok(version_info())),
        Target::Health { endpoint, check } => {
            health(app, endpoint, check.as_deref(), verbose).await
        }
        Target::Metrics => {
            let objects = storage_objects(&app.ctx).await;
            let text = app.ctx.metrics.render(app.ctx.store.metrics(), &objects);
            Ok(raw(
                StatusCode::OK,
                "text/plain; version=0.0.4",
                text.into_bytes(),
            ))
        }
        Target::OpenApiV2 if plain => Ok(raw(
            StatusCode::OK,
            "application/json",
            app.openapi.v2().to_vec(),
        )),
        Target::OpenApiV2 => Err(ApiError::NotAcceptable(accept.unwrap_or_default().into())),
        Target::OpenApiV3Index => Ok(raw(
            StatusCode::OK,
            "application/json",
            app.openapi.v3_index().to_vec(),
        )),
        Target::OpenApiV3(gv) => app
            .openapi
            .v3(gv)
            .map(|b| raw(StatusCode::OK, "application/json", b.to_vec()))
            .ok_or(ApiError::UnknownResource),
        Target::Root => {
            let mut paths = vec!["/api".to_string(), "/api/v1".into(), "/apis".into()];
            for (g, v) in reg.group_versions() {
                if !g.is_empty() {
                    paths.push(format!("/apis/{g}"));
                    paths.push(format!("/apis/{g}/{v}"));
                }
            }
            paths.extend(
                [
                    "/healthz",
                    "/livez",
                    "/readyz",
                    "/metrics",
                    "/openapi/v2",
                    "/openapi/v3",
                    "/version",
                ]
                .map(String::from),
            );
            Ok(ok(serde_json::json!({"paths": paths})))
        }
        Target::Resource(_) => Err(ApiError::UnknownResource),
    }
}

/// The checks behind `/healthz`, `/livez` and `/readyz`, as kube-apiserver names them.
const HEALTH_CHECKS: &[&str] = &["ping", "etcd"];

/// `/readyz` and friends as kube-apiserver answers them: `ok` (200) when every check passes,
/// with `?verbose` one `[+]name ok` / `[-]name failed` line per check and a summary line;
/// `/readyz/<check>` runs one check; an unknown check is 404. A failure is 500, and the reason
/// stays in the server's log (kube-apiserver withholds it from clients too).
async fn health(
    app: &App,
    endpoint: &str,
    only: Option<&str>,
    verbose: bool,
) -> Result<Response, ApiError> {
    if let Some(name) = only
        && !HEALTH_CHECKS.contains(&name)
    {
        return Ok(raw(
            StatusCode::NOT_FOUND,
            "text/plain",
            b"404 page not found\n".to_vec(),
        ));
    }
    let mut lines = String::new();
    let mut healthy = true;
    for &name in HEALTH_CHECKS
        .iter()
        .filter(|c| only.is_none_or(|o| o == **c))
    {
        let result = match name {
            "etcd" => app.ctx.store.current_revision().await.map(|_| ()),
            _ => Ok(()),
        };
        match result {
            Ok(()) => lines.push_str(&format!("[+]{name} ok\n")),
            Err(e) => {
                tracing::warn!(check = name, endpoint, error = %e, "health check failed");
                healthy = false;
                lines.push_str(&format!("[-]{name} failed: reason withheld\n"));
            }
        }
    }
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    let body = match (verbose || !healthy, healthy) {
        (false, _) => "ok".to_string(),
        (true, true) => format!("{lines}{endpoint} check passed\n"),
        (true, false) => format!("{lines}{endpoint} check failed\n"),
    };
    Ok(raw(status, "text/plain; charset=utf-8", body.into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation() {
        assert_eq!(negotiate(None).unwrap(), vec![Accept::Plain(Format::Json)]);
        // /openapi/v2: the first served form listed wins.
        let pb = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
        assert!(openapi_v2_protobuf(Some(pb)));
        assert!(openapi_v2_protobuf(Some(&format!(
            "{pb}, application/json"
        ))));
        assert!(!openapi_v2_protobuf(Some(&format!(
            "application/json, {pb}"
        ))));
        assert!(!openapi_v2_protobuf(None));
        assert!(!openapi_v2_protobuf(Some("application/yaml")));
        let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(
            negotiate(Some(kubectl)).unwrap()[0],
            Accept::Plain(Format::Table)
        );
        let disc = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(negotiate(Some(disc)).unwrap()[0], Accept::Discovery("v2"));
        assert!(negotiate(Some("application/vnd.kubernetes.protobuf")).is_err());
        assert_eq!(
            negotiate(Some("application/yaml")).unwrap(),
            vec![Accept::Plain(Format::Yaml)]
        );
    }
}
