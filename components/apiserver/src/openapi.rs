//! OpenAPI documents, generated from the registry and the schema index (never hand-written).
//!
//! - `/openapi/v3` lists one document per group/version; `/openapi/v3/<api/v1 | apis/g/v>`
//!   serves paths with their operations (each PATCH declares the `fieldValidation` query
//!   parameter and its `x-kubernetes-group-version-kind`, which is how kubectl 1.27+ decides
//!   to use server-side field validation) and the schemas reachable from that group's kinds
//!   (with merge keys, for `kubectl apply`, and descriptions, for `kubectl explain`).
//! - `/openapi/v2` serves the same in Swagger 2.0 form.

use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};

use serde_json::{Map, Value, json};

use crate::registry::{Registry, Resource, Storage, Sub};
use crate::schema::Schemas;

/// Pre-rendered documents.
pub struct OpenApi {
    v3: HashMap<String, (String, Vec<u8>)>,
    v3_index: Vec<u8>,
    v2: Vec<u8>,
    v2_protobuf: Vec<u8>,
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn param(name: &str, location: &str, description: &str, ty: &str) -> Value {
    json!({"name": name, "in": location, "description": description, "schema": {"type": ty}, "required": location == "path"})
}

fn gvk(r: &dyn Resource) -> Value {
    let i = r.info();
    json!({"group": i.group, "version": i.version, "kind": i.kind})
}

fn op(
    r: &dyn Resource,
    action: &str,
    id: &str,
    params: Vec<Value>,
    response: &str,
    body: Option<Vec<&str>>,
) -> Value {
    let mut o = json!({
        "operationId": id,
        "description": format!("{action} {}", r.info().kind),
        "parameters": params,
        "responses": {"200": {"description": "OK", "content": {
            "application/json": {"schema": {"$ref": format!("#/components/schemas/{response}")}},
            "application/yaml": {"schema": {"$ref": format!("#/components/schemas/{response}")}},
        }}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk(r),
    });
    if let Some(types) = body {
        let content: Map<String, Value> = types
            .into_iter()
            .map(|t| {
                (
                    t.to_string(),
                    json!({"schema": {"$ref": format!("#/components/schemas/{response}")}}),
                )
            })
            .collect();
        o["requestBody"] = json!({"content": content, "required": true});
    }
    o
}

fn write_params() -> Vec<Value> {
    vec![
        param(
            "dryRun",
            "query",
            "When present, indicates that modifications should not be persisted.",
            "string",
        ),
        param(
            "fieldManager",
            "query",
            "The name of the actor or entity making these changes.",
            "string",
        ),
        param(
            "fieldValidation",
            "query",
            "How to treat unknown or duplicate fields: Ignore, Warn (default) or Strict.",
            "string",
        ),
    ]
}

fn paths_for(r: &dyn Resource, paths: &mut Map<String, Value>) {
    let i = r.info();
    let base = format!("/{}", gv_path(i.group, i.version));
    let (coll, mut scope) = if i.namespaced {
        (
            format!("{base}/namespaces/{{namespace}}/{}", i.plural),
            vec![param(
                "namespace",
                "path",
                "object name and auth scope",
                "string",
            )],
        )
    } else {
        (format!("{base}/{}", i.plural), vec![])
    };
    let name = r.schema_name();
    let id = |verb: &str| format!("{verb}{}{}", i.group.replace('.', ""), i.kind);
    let list_params = |mut p: Vec<Value>| {
        for q in [
            "labelSelector",
            "fieldSelector",
            "continue",
            "resourceVersion",
            "resourceVersionMatch",
            "sendInitialEvents",
        ] {
            p.push(param(q, "query", q, "string"));
        }
        for q in ["limit", "timeoutSeconds"] {
            p.push(param(q, "query", q, "integer"));
        }
        for q in ["watch", "allowWatchBookmarks"] {
            p.push(param(q, "query", q, "boolean"));
        }
        p
    };
    let mut create_params = scope.clone();
    create_params.extend(write_params());
    if i.storage == Storage::Computed {
        // Access reviews: POST only, never stored.
        paths.insert(coll, json!({
            "post": op(r, "post", &id("create"), create_params, &name, Some(vec!["application/json", "application/yaml"])),
        }));
        return;
    }
    paths.insert(coll.clone(), json!({
        "get": op(r, "list", &id("list"), list_params(scope.clone()), &name, None),
        "post": op(r, "post", &id("create"), create_params.clone(), &name, Some(vec!["application/json", "application/yaml"])),
        "delete": op(r, "deletecollection", &id("deletecollection"), list_params(scope.clone()), &name, None),
    }));
    scope.push(param(
        "name",
        "path",
        &format!("name of the {}", i.kind),
        "string",
    ));
    let mut update_params = scope.clone();
    update_params.extend(write_params());
    let mut patch_params = update_params.clone();
    patch_params.push(param(
        "force",
        "query",
        "Force is going to \"force\" Apply requests.",
        "boolean",
    ));
    let patch_types = vec![
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
        "application/apply-patch+yaml",
    ];
    paths.insert(format!("{coll}/{{name}}"), json!({
        "get": op(r, "get", &id("read"), scope.clone(), &name, None),
        "put": op(r, "put", &id("replace"), update_params.clone(), &name, Some(vec!["application/json", "application/yaml"])),
        "patch": op(r, "patch", &id("patch"), patch_params.clone(), &name, Some(patch_types.clone())),
        "delete": op(r, "delete", &id("delete"), scope.clone(), &name, None),
    }));
    for sub in i.subresources {
        let p = format!("{coll}/{{name}}/{}", sub.name());
        let sid = |verb: &str| format!("{}{}", id(verb), sub.name());
        let item = match sub {
            Sub::Status => json!({
                "get": op(r, "get", &sid("read"), scope.clone(), &name, None),
                "put": op(r, "put", &sid("replace"), update_params.clone(), &name, Some(vec!["application/json"])),
                "patch": op(r, "patch", &sid("patch"), patch_params.clone(), &name, Some(patch_types.clone())),
            }),
            Sub::Scale => json!({
                "get": op(r, "get", &sid("read"), scope.clone(), "io.k8s.api.autoscaling.v1.Scale", None),
                "put": op(r, "put", &sid("replace"), update_params.clone(), "io.k8s.api.autoscaling.v1.Scale", Some(vec!["application/json"])),
                "patch": op(r, "patch", &sid("patch"), patch_params.clone(), "io.k8s.api.autoscaling.v1.Scale", Some(patch_types.clone())),
            }),
            Sub::Binding => {
                json!({"post": op(r, "post", &sid("create"), create_params.clone(), "io.k8s.api.core.v1.Binding", Some(vec!["application/json"]))})
            }
            Sub::Log => json!({"get": op(r, "get", &sid("read"), scope.clone(), &name, None)}),
            Sub::Exec | Sub::Attach | Sub::PortForward => json!({
                "get": op(r, "get", &sid("connectGet"), scope.clone(), &name, None),
                "post": op(r, "post", &sid("connectPost"), scope.clone(), &name, None),
            }),
            Sub::Finalize => {
                json!({"put": op(r, "put", &sid("replace"), update_params.clone(), &name, Some(vec!["application/json"]))})
            }
            Sub::Token => {
                json!({"post": op(r, "post", &sid("create"), create_params.clone(), "io.k8s.api.authentication.v1.TokenRequest", Some(vec!["application/json"]))})
            }
        };
        paths.insert(p, item);
    }
}

/// Every schema name referenced (transitively) from the given roots.
fn reachable(
    defs: &Map<String, Value>,
    roots: impl IntoIterator<Item = String>,
) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<String> = roots.into_iter().collect();
    while let Some(n) = todo.pop() {
        if !seen.insert(n.clone()) {
            continue;
        }
        if let Some(d) = defs.get(&n) {
            let text = d.to_string();
            for part in text.split("#/components/schemas/").skip(1) {
                if let Some(name) = part.split('"').next() {
                    todo.push(name.to_string());
                }
            }
        }
    }
    seen
}

fn hash(bytes: &[u8]) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    format!("{:016X}", h.finish())
}

impl OpenApi {
    /// Renders every document.
    pub fn build(registry: &Registry, schemas: &Schemas, version: &str) -> OpenApi {
        let defs = schemas.definitions();
        let mut v3 = HashMap::new();
        let mut index = Map::new();
        let mut all_paths = Map::new();
        for (g, v) in registry.group_versions() {
            let members: Vec<_> = registry
                .all()
                .iter()
                .filter(|r| r.info().group == g && r.info().version == v)
                .collect();
            let mut paths = Map::new();
            for r in &members {
                paths_for(r.as_ref(), &mut paths);
            }
            let mut roots: Vec<String> = members.iter().map(|r| r.schema_name()).collect();
            roots.extend(
                [
                    "io.k8s.api.autoscaling.v1.Scale",
                    "io.k8s.api.core.v1.Binding",
                    "io.k8s.api.authentication.v1.TokenRequest",
                ]
                .map(String::from),
            );
            let schemas_used: Map<String, Value> = reachable(defs, roots)
                .into_iter()
                .filter_map(|n| defs.get(&n).map(|d| (n, d.clone())))
                .collect();
            let doc = json!({
                "openapi": "3.0.0",
                "info": {"title": "Kubernetes", "version": version},
                "paths": paths.clone(),
                "components": {"schemas": schemas_used},
            });
            let bytes = serde_json::to_vec(&doc).unwrap_or_default();
            let key = gv_path(g, v);
            index.insert(
                key.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={}", hash(&bytes))}),
            );
            v3.insert(key, (hash(&bytes), bytes));
            all_paths.extend(paths);
        }
        let v3_index = serde_json::to_vec(&json!({"paths": index})).unwrap_or_default();
        let v2_text = json!({
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": version},
            "paths": v2_paths(&all_paths),
            "definitions": defs,
        })
        .to_string()
        .replace("#/components/schemas/", "#/definitions/");
        let v2_protobuf = serde_json::from_str(&v2_text)
            .map(|doc| crate::openapi_pb::encode(&doc))
            .unwrap_or_default();
        OpenApi {
            v3,
            v3_index,
            v2: v2_text.into_bytes(),
            v2_protobuf,
        }
    }

    /// `/openapi/v3`.
    pub fn v3_index(&self) -> &[u8] {
        &self.v3_index
    }

    /// `/openapi/v3/<gv>`, if served.
    pub fn v3(&self, gv: &str) -> Option<&[u8]> {
        self.v3.get(gv).map(|(_, b)| b.as_slice())
    }

    /// `/openapi/v2`.
    pub fn v2(&self) -> &[u8] {
        &self.v2
    }

    /// `/openapi/v2` as protobuf (`openapi.v2.Document`, see `openapi_pb`).
    pub fn v2_protobuf(&self) -> &[u8] {
        &self.v2_protobuf
    }
}

/// Swagger 2.0 operations: parameters carry `type` directly and bodies are `in: body`.
fn v2_paths(paths: &Map<String, Value>) -> Value {
    let mut out = Map::new();
    for (p, item) in paths {
        let mut ops = Map::new();
        for (method, op) in item.as_object().into_iter().flatten() {
            let mut o = op.clone();
            let mut params: Vec<Value> = o["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|mut prm| {
                    let ty = prm["schema"]["type"].clone();
                    if let Some(m) = prm.as_object_mut() {
                        m.remove("schema");
                        m.insert("type".into(), ty);
                    }
                    prm
                })
                .collect();
            if let Some(rb) = o.as_object_mut().and_then(|m| m.remove("requestBody")) {
                let schema = rb["content"]
                    .as_object()
                    .and_then(|c| c.values().next())
                    .map(|c| c["schema"].clone());
                params.push(
                    json!({"name": "body", "in": "body", "required": true, "schema": schema}),
                );
            }
            o["parameters"] = Value::Array(params);
            let schema = o["responses"]["200"]["content"]["application/json"]["schema"].clone();
            o["responses"] = json!({"200": {"description": "OK", "schema": schema}});
            ops.insert(method.clone(), o);
        }
        out.insert(p.clone(), Value::Object(ops));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_operations_advertise_field_validation() {
        let registry = crate::resources::registry();
        let api = OpenApi::build(&registry, crate::schema_index(), "v1.33.0");
        let doc: Value = serde_json::from_slice(api.v3("apis/apps/v1").unwrap()).unwrap();
        let item = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"];
        assert_eq!(
            item["patch"]["x-kubernetes-group-version-kind"]["kind"],
            "Deployment"
        );
        let params = item["patch"]["parameters"].as_array().unwrap();
        assert!(
            params
                .iter()
                .any(|p| p["name"] == "fieldValidation" && p["in"] == "query")
        );
        assert!(doc["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"].is_object());
        let index: Value = serde_json::from_slice(api.v3_index()).unwrap();
        assert!(
            index["paths"]["api/v1"]["serverRelativeURL"]
                .as_str()
                .unwrap()
                .starts_with("/openapi/v3/api/v1?hash=")
        );
        let v2: Value = serde_json::from_slice(api.v2()).unwrap();
        assert!(!String::from_utf8_lossy(api.v2()).contains("#/components/schemas/"));
        assert!(v2["definitions"]["io.k8s.api.apps.v1.Deployment"].is_object());
    }
}
