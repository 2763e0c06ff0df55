//! Parsing a request into a typed [`Target`] and [`Verb`], the way Kubernetes' RequestInfo
//! factory does, so handlers never look at raw paths.
//!
//! Resource paths: `/api/v1/...` (core) and `/apis/<group>/<version>/...`, then
//! `[namespaces/<ns>/]<resource>[/<name>[/<subresource>]]`, plus the legacy
//! `/.../watch/...` prefix. `namespaces/<ns>/status|finalize` are subresources of the namespace
//! itself, not a namespaced collection.

use std::collections::BTreeMap;

use crate::error::ApiError;

/// What a URL addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `/`: the list of paths.
    Root,
    /// `/api`: core versions (or aggregated discovery).
    Api,
    /// `/apis`: groups (or aggregated discovery).
    Apis,
    /// `/api/v1` or `/apis/<group>/<version>`: resource list.
    GroupVersion {
        /// Group (`""` for core).
        group: String,
        /// Version.
        version: String,
    },
    /// `/apis/<group>`: one group.
    Group(String),
    /// An object or collection.
    Resource(ResourcePath),
    /// `/version`.
    Version,
    /// `/healthz`, `/livez`, `/readyz`, or one of their checks (`/readyz/etcd`).
    Health {
        /// `healthz`, `livez` or `readyz`.
        endpoint: String,
        /// The single check asked for, if any.
        check: Option<String>,
    },
    /// `/metrics`.
    Metrics,
    /// `/openapi/v2`.
    OpenApiV2,
    /// `/openapi/v3`: index of group/versions.
    OpenApiV3Index,
    /// `/openapi/v3/<api/v1 | apis/g/v>`.
    OpenApiV3(String),
}

/// A path naming resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath {
    /// Group (`""` for core).
    pub group: String,
    /// Version.
    pub version: String,
    /// Namespace from the URL.
    pub namespace: Option<String>,
    /// Plural resource.
    pub resource: String,
    /// Object name.
    pub name: Option<String>,
    /// Subresource.
    pub subresource: Option<String>,
    /// Came through the legacy `/watch/` prefix.
    pub watch_prefix: bool,
}

/// The verb of a resource request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// GET one.
    Get,
    /// GET a collection.
    List,
    /// GET with watch.
    Watch,
    /// POST.
    Create,
    /// PUT.
    Update,
    /// PATCH.
    Patch,
    /// DELETE one.
    Delete,
    /// DELETE a collection.
    DeleteCollection,
}

impl Verb {
    /// Lower-case name, as in discovery and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
        }
    }
}

fn segments(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

/// Parses a URL path.
pub fn parse_path(path: &str) -> Result<Target, ApiError> {
    let parts = segments(path);
    let rest: &[&str] = match parts.as_slice() {
        [] => return Ok(Target::Root),
        ["version"] => return Ok(Target::Version),
        [endpoint @ ("healthz" | "livez" | "readyz"), check @ ..] => {
            return Ok(Target::Health {
                endpoint: endpoint.to_string(),
                check: (!check.is_empty()).then(|| check.join("/")),
            });
        }
        ["metrics"] => return Ok(Target::Metrics),
        ["openapi", "v2"] => return Ok(Target::OpenApiV2),
        ["openapi", "v3"] => return Ok(Target::OpenApiV3Index),
        ["openapi", "v3", gv @ ..] => return Ok(Target::OpenApiV3(gv.join("/"))),
        ["api"] => return Ok(Target::Api),
        ["apis"] => return Ok(Target::Apis),
        ["apis", group] => return Ok(Target::Group(group.to_string())),
        ["api", version] => {
            return Ok(Target::GroupVersion {
                group: String::new(),
                version: version.to_string(),
            });
        }
        ["apis", group, version] => {
            return Ok(Target::GroupVersion {
                group: group.to_string(),
                version: version.to_string(),
            });
        }
        ["api", _, rest @ ..] => rest,
        ["apis", _, _, rest @ ..] => rest,
        _ => return Err(ApiError::UnknownResource),
    };
    let (group, version) = match parts.as_slice() {
        ["api", v, ..] => (String::new(), v.to_string()),
        ["apis", g, v, ..] => (g.to_string(), v.to_string()),
        _ => return Err(ApiError::UnknownResource),
    };
    let (watch_prefix, mut rest) = match rest {
        ["watch", r @ ..] => (true, r),
        r => (false, r),
    };
    let mut namespace = None;
    if let ["namespaces", ns, more @ ..] = rest
        && !more.is_empty()
        && !matches!(more[0], "status" | "finalize")
    {
        namespace = Some(ns.to_string());
        rest = more;
    }
    let (resource, name, subresource) = match rest {
        [r] => (r, None, None),
        [r, n] => (r, Some(n.to_string()), None),
        [r, n, s] => (r, Some(n.to_string()), Some(s.to_string())),
        _ => return Err(ApiError::UnknownResource),
    };
    Ok(Target::Resource(ResourcePath {
        group,
        version,
        namespace,
        resource: resource.to_string(),
        name,
        subresource,
        watch_prefix,
    }))
}

/// The verb for a method on a resource path.
pub fn verb(method: &http::Method, path: &ResourcePath, query: &Query) -> Result<Verb, ApiError> {
    let watch = path.watch_prefix || query.flag("watch")?;
    Ok(match (method.as_str(), path.name.is_some()) {
        ("GET", _) if watch => Verb::Watch,
        ("GET", true) => Verb::Get,
        ("GET", false) => Verb::List,
        ("POST", _) => Verb::Create,
        ("PUT", true) => Verb::Update,
        ("PATCH", true) => Verb::Patch,
        ("DELETE", true) => Verb::Delete,
        ("DELETE", false) => Verb::DeleteCollection,
        _ => return Err(ApiError::MethodNotAllowed),
    })
}

/// Query parameters, with typed accessors that fail with 400 naming the parameter.
#[derive(Debug, Clone, Default)]
pub struct Query(pub BTreeMap<String, String>);

impl Query {
    /// A parameter's value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    /// A boolean flag (`true`/`1`).
    pub fn flag(&self, key: &str) -> Result<bool, ApiError> {
        match self.get(key) {
            None | Some("false") | Some("0") => Ok(false),
            Some("true") | Some("1") => Ok(true),
            Some(other) => Err(ApiError::BadRequest(format!(
                "query parameter {key}={other:?} is not a boolean"
            ))),
        }
    }

    /// An integer parameter.
    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        self.get(key)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    ApiError::BadRequest(format!("query parameter {key}={v:?} is not an integer"))
                })
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rp(path: &str) -> ResourcePath {
        match parse_path(path).unwrap() {
            Target::Resource(r) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn paths() {
        let p = rp("/api/v1/namespaces/ns1/pods/web/status");
        assert_eq!(
            (
                p.group.as_str(),
                p.namespace.as_deref(),
                p.resource.as_str(),
                p.name.as_deref(),
                p.subresource.as_deref()
            ),
            ("", Some("ns1"), "pods", Some("web"), Some("status"))
        );
        let p = rp("/api/v1/namespaces/ns1");
        assert_eq!(
            (p.resource.as_str(), p.name.as_deref(), p.namespace),
            ("namespaces", Some("ns1"), None)
        );
        let p = rp("/api/v1/namespaces/ns1/finalize");
        assert_eq!(
            (p.resource.as_str(), p.subresource.as_deref()),
            ("namespaces", Some("finalize"))
        );
        let p = rp("/apis/apps/v1/deployments");
        assert_eq!(
            (p.group.as_str(), p.namespace, p.name),
            ("apps", None, None)
        );
        let p = rp("/api/v1/watch/namespaces/a/pods");
        assert!(p.watch_prefix);
        assert_eq!(p.namespace.as_deref(), Some("a"));
        assert_eq!(
            parse_path("/apis/apps").unwrap(),
            Target::Group("apps".into())
        );
        assert!(parse_path("/nope").is_err());
        assert!(parse_path("/api/v1/a/b/c/d").is_err());
    }
}
