//! The type index: JSON schemas of every served type, generated from k8s-openapi (schemars),
//! annotated with Kubernetes' merge facts, and walked by field name.
//!
//! Built once at startup from the registry. Consumers:
//! - `patch::strategic` and `patch::managed` ask [`Schemas::field`] for the merge strategy and
//!   the type of a field while they walk an object (lists of containers merge by `name`, ...);
//! - `openapi` serves the annotated definitions (`x-kubernetes-patch-merge-key`,
//!   `x-kubernetes-patch-strategy`, `x-kubernetes-list-type`, `x-kubernetes-group-version-kind`)
//!   so kubectl can compute patches, explain fields and validate.

use std::collections::HashMap;

use k8s_openapi::schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::patch::merge_keys::TABLE;
use crate::registry::Registry;

/// How a field merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// A list of objects merged by these key fields (`containers` by `name`).
    Map(&'static [&'static str]),
    /// A list of scalars merged as a set (`finalizers`).
    Set,
    /// A map replaced as a whole (`selector`).
    AtomicMap,
}

/// What [`Schemas::field`] knows about a field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Field {
    /// The merge strategy, if not the default (objects merge, lists replace).
    pub strategy: Option<Strategy>,
    /// The schema name of the field's object, list item or map value type.
    pub ty: Option<String>,
}

/// Every served type's schema.
pub struct Schemas {
    defs: Map<String, Value>,
    kinds: HashMap<(String, String), String>,
    merge: HashMap<(&'static str, &'static str), Strategy>,
}

/// The definition name a `$ref` (possibly under `allOf`) or an array/map schema points to.
fn referenced(schema: &Value) -> Option<String> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        return r.rsplit('/').next().map(str::to_string);
    }
    if let Some(first) = schema
        .get("allOf")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
    {
        return referenced(first);
    }
    if let Some(items) = schema.get("items") {
        return referenced(items);
    }
    if let Some(ap) = schema.get("additionalProperties").filter(|a| a.is_object()) {
        return referenced(ap);
    }
    None
}

impl Schemas {
    /// Generates the schemas of every resource in the registry.
    pub fn build(registry: &Registry) -> Schemas {
        let mut generator = SchemaSettings::openapi3().into_generator();
        for r in registry.all() {
            r.schema(&mut generator);
        }
        // Subresource bodies.
        generator.subschema_for::<k8s_openapi::api::autoscaling::v1::Scale>();
        generator.subschema_for::<k8s_openapi::api::core::v1::Binding>();
        generator.subschema_for::<k8s_openapi::api::authentication::v1::TokenRequest>();
        let mut defs = generator.take_definitions(true);
        let merge: HashMap<_, _> = TABLE.iter().map(|(t, f, s)| ((*t, *f), *s)).collect();
        // Annotate: merge facts on fields, GVK on kinds.
        for ((ty, field), strategy) in &merge {
            let Some(prop) = defs
                .get_mut(*ty)
                .and_then(|d| d.get_mut("properties"))
                .and_then(|p| p.get_mut(*field))
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            match strategy {
                Strategy::Map(keys) if !keys.is_empty() => {
                    prop.insert("x-kubernetes-patch-strategy".into(), json!("merge"));
                    prop.insert("x-kubernetes-patch-merge-key".into(), json!(keys[0]));
                    prop.insert("x-kubernetes-list-type".into(), json!("map"));
                    prop.insert("x-kubernetes-list-map-keys".into(), json!(keys));
                }
                Strategy::Map(_) => {
                    prop.insert("x-kubernetes-list-type".into(), json!("atomic"));
                }
                Strategy::Set => {
                    prop.insert("x-kubernetes-patch-strategy".into(), json!("merge"));
                    prop.insert("x-kubernetes-list-type".into(), json!("set"));
                }
                Strategy::AtomicMap => {
                    prop.insert("x-kubernetes-map-type".into(), json!("atomic"));
                }
            }
        }
        for r in registry.all() {
            let i = r.info();
            if let Some(d) = defs
                .get_mut(&r.schema_name())
                .and_then(Value::as_object_mut)
            {
                d.insert(
                    "x-kubernetes-group-version-kind".into(),
                    json!([{"group": i.group, "version": i.version, "kind": i.kind}]),
                );
            }
        }
        let kinds = registry
            .all()
            .iter()
            .map(|r| {
                (
                    (r.info().api_version(), r.info().kind.to_string()),
                    r.schema_name(),
                )
            })
            .collect();
        Schemas { defs, kinds, merge }
    }

    /// The annotated definitions (OpenAPI `components.schemas`).
    pub fn definitions(&self) -> &Map<String, Value> {
        &self.defs
    }

    /// The schema name of a kind.
    pub fn type_of(&self, api_version: &str, kind: &str) -> Option<String> {
        self.kinds
            .get(&(api_version.to_string(), kind.to_string()))
            .cloned()
    }

    /// What is known about `field` of the type `ty`.
    pub fn field(&self, ty: Option<&str>, field: &str) -> Field {
        let Some(ty) = ty else {
            return Field::default();
        };
        let strategy = self.merge.get(&(ty, field)).copied();
        let child = self
            .defs
            .get(ty)
            .and_then(|d| d.get("properties"))
            .and_then(|p| p.get(field))
            .and_then(referenced);
        Field {
            strategy,
            ty: child,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_pod_spec_containers() {
        let s = crate::schema_index();
        let spec = s.field(Some("io.k8s.api.core.v1.Pod"), "spec");
        assert_eq!(spec.ty.as_deref(), Some("io.k8s.api.core.v1.PodSpec"));
        let c = s.field(spec.ty.as_deref(), "containers");
        assert_eq!(c.strategy, Some(Strategy::Map(&["name"])));
        assert_eq!(c.ty.as_deref(), Some("io.k8s.api.core.v1.Container"));
        let ports = s.field(c.ty.as_deref(), "ports");
        assert_eq!(ports.strategy, Some(Strategy::Map(&["containerPort"])));
        let d = &s.definitions()["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(
            d["x-kubernetes-group-version-kind"][0]["kind"],
            "Deployment"
        );
        let p = &s.definitions()["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
        assert_eq!(p["x-kubernetes-patch-merge-key"], "name");
    }
}
