//! Server-side printing: `meta.k8s.io/v1 Table` responses for `kubectl get`.
//!
//! kubectl asks for `Accept: application/json;as=Table;g=meta.k8s.io;v=v1`; the handler builds
//! rows with [`row`] from each resource's columns (`Kind::columns`/`Kind::cells`), always led
//! by NAME. Columns of priority 1 appear only with `-o wide`. `includeObject` selects what rides
//! along each row: nothing, the metadata (default), or the whole object.
//!
//! Departure from kube-apiserver: a row's `PartialObjectMetadata` (`includeObject=Metadata`
//! or unset) carries the object's metadata **without `managedFields`**. kube-apiserver copies
//! the whole ObjectMeta; kubectl never prints it, yet decoding it was about half of kubectl's
//! CPU for `kubectl get pods -A` (docs/benchmarks.md, "Read path"). `includeObject=Object`
//! (asked for by `kubectl get --sort-by`, and by clients that want the full object) keeps
//! everything, `managedFields` included.

use serde_json::{Value, json};

use crate::registry::Resource;

/// A table column.
#[derive(Debug, Clone)]
pub struct Column {
    /// Header (kubectl upper-cases it).
    pub name: &'static str,
    /// OpenAPI type: `string`, `integer`, `date`...
    pub kind: &'static str,
    /// Description.
    pub description: &'static str,
    /// 0: always shown; 1: `-o wide` only.
    pub priority: u8,
}

impl Column {
    /// A priority-0 column.
    pub fn new(name: &'static str, kind: &'static str, description: &'static str) -> Column {
        Column {
            name,
            kind,
            description,
            priority: 0,
        }
    }

    /// A priority-1 (`-o wide`) column.
    pub fn wide(name: &'static str, kind: &'static str, description: &'static str) -> Column {
        Column {
            name,
            kind,
            description,
            priority: 1,
        }
    }

    /// The `-o wide` columns of a workload with a pod template, as kube-apiserver prints them:
    /// Containers, Images and (`selector`) Selector.
    pub fn pod_template_wide(selector: bool) -> impl Iterator<Item = Column> {
        [
            Column::wide(
                "Containers",
                "string",
                "Names of each container in the template.",
            ),
            Column::wide(
                "Images",
                "string",
                "Images referenced by each container in the template.",
            ),
            Column::wide("Selector", "string", "Label selector for pods."),
        ]
        .into_iter()
        .take(if selector { 3 } else { 2 })
    }
}

/// What each row carries besides its cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    /// Nothing.
    None,
    /// `PartialObjectMetadata` (the default), without `managedFields`.
    Metadata,
    /// The full object.
    Object,
}

impl IncludeObject {
    /// Parses `?includeObject=`.
    pub fn parse(s: Option<&str>) -> Result<IncludeObject, String> {
        match s {
            None | Some("") | Some("Metadata") => Ok(IncludeObject::Metadata),
            Some("None") => Ok(IncludeObject::None),
            Some("Object") => Ok(IncludeObject::Object),
            Some(other) => Err(format!(
                "includeObject={other:?} is not one of None, Metadata, Object"
            )),
        }
    }
}

/// Kubernetes' short human duration (`45s`, `5m10s`, `3h`, `2d5h`, `400d`, `3y20d`).
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    let s = seconds.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        if s % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", s % 60)
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        if h % 24 == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{}h", h % 24)
        }
    } else if d < 365 * 2 {
        format!("{d}d")
    } else {
        let y = d / 365;
        if d % 365 == 0 || y >= 8 {
            format!("{y}y")
        } else {
            format!("{y}y{}d", d % 365)
        }
    }
}

/// Age of an object from `metadata.creationTimestamp`.
pub fn age(object: &Value, now: jiff::Timestamp) -> String {
    object
        .pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(|t| human_duration(now.as_second() - t.as_second()))
        .unwrap_or_else(|| "<unknown>".into())
}

/// The column definitions of a resource's table.
pub fn column_definitions(resource: &dyn Resource) -> Value {
    let mut cols = vec![json!({
        "name": "Name", "type": "string", "format": "name", "priority": 0,
        "description": "Name must be unique within a namespace.",
    })];
    cols.truncate(usize::from(resource.name_column()));
    for c in resource.columns() {
        cols.push(json!({
            "name": c.name, "type": if c.kind == "date" { "string" } else { c.kind },
            "format": if c.kind == "date" { "date" } else { "" },
            "description": c.description, "priority": c.priority,
        }));
    }
    Value::Array(cols)
}

/// One table row for an object.
pub fn row(
    resource: &dyn Resource,
    object: &Value,
    include: IncludeObject,
    now: jiff::Timestamp,
) -> Value {
    let mut row = json!({"cells": cells(resource, object, now)});
    match include {
        IncludeObject::None => {}
        IncludeObject::Metadata => {
            row["object"] = partial_metadata(object.get("metadata").cloned())
        }
        IncludeObject::Object => row["object"] = object.clone(),
    }
    row
}

/// [`row`] for an object the caller no longer needs: its metadata (or the whole object)
/// moves into the row instead of being copied — the list path, 500 rows per page.
pub fn row_owned(
    resource: &dyn Resource,
    mut object: Value,
    include: IncludeObject,
    now: jiff::Timestamp,
) -> Value {
    let cells = cells(resource, &object, now);
    let mut row = serde_json::Map::with_capacity(2);
    row.insert("cells".into(), cells);
    match include {
        IncludeObject::None => {}
        IncludeObject::Metadata => {
            let meta = object.get_mut("metadata").map(Value::take);
            row.insert("object".into(), partial_metadata(meta));
        }
        IncludeObject::Object => {
            row.insert("object".into(), object);
        }
    }
    Value::Object(row)
}

/// A row's cells: NAME (unless [`Resource::name_column`] is false), then the resource's columns.
pub fn cells(resource: &dyn Resource, object: &Value, now: jiff::Timestamp) -> Value {
    let name = object
        .pointer("/metadata/name")
        .cloned()
        .unwrap_or(Value::String(String::new()));
    let mut cells = vec![name];
    cells.truncate(usize::from(resource.name_column()));
    cells.extend(resource.cells(object, &age(object, now)));
    Value::Array(cells)
}

/// A row's `PartialObjectMetadata`: the metadata without `managedFields` (see the module
/// header for why this departs from kube-apiserver).
fn partial_metadata(mut meta: Option<Value>) -> Value {
    if let Some(Value::Object(m)) = meta.as_mut() {
        m.remove("managedFields");
    }
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta.unwrap_or(json!({})),
    })
}

/// A whole table.
pub fn table(resource: &dyn Resource, rows: Vec<Value>, list_meta: Value) -> Value {
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": column_definitions(resource),
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_rows_show_the_role_and_each_kind_of_subject() {
        let registry = crate::resources::registry();
        let subjects = json!([
            {"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"},
            {"kind": "Group", "name": "devs", "apiGroup": "rbac.authorization.k8s.io"},
            {"kind": "ServiceAccount", "name": "bot", "namespace": "ci"},
            {"kind": "User", "name": "bob", "apiGroup": "rbac.authorization.k8s.io"},
        ]);
        for (plural, namespaced) in [("rolebindings", true), ("clusterrolebindings", false)] {
            let res = registry
                .get("rbac.authorization.k8s.io", "v1", plural)
                .expect(plural);
            let mut b = json!({"metadata": {"name": "b"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
                "subjects": subjects});
            if namespaced {
                b["metadata"]["namespace"] = json!("default");
            }
            let now = jiff::Timestamp::now();
            let row = cells(res.as_ref(), &b, now);
            assert_eq!(
                row,
                json!([
                    "b",
                    "ClusterRole/view",
                    "<unknown>",
                    "alice, bob",
                    "devs",
                    "ci/bot"
                ]),
                "{plural}"
            );
        }
    }

    #[test]
    fn workload_columns_are_kube_apiservers() {
        // `kubectl get <kind> -o wide` headers against kube-apiserver 1.32.
        let registry = crate::resources::registry();
        for (group, plural, want) in [
            (
                "apps",
                "deployments",
                "Name Ready Up-to-date Available Age Containers Images Selector",
            ),
            (
                "apps",
                "replicasets",
                "Name Desired Current Ready Age Containers Images Selector",
            ),
            ("apps", "statefulsets", "Name Ready Age Containers Images"),
            (
                "apps",
                "daemonsets",
                "Name Desired Current Ready Up-to-date Available Node Selector Age Containers Images Selector",
            ),
            (
                "batch",
                "jobs",
                "Name Status Completions Duration Age Containers Images Selector",
            ),
        ] {
            let version = "v1";
            let res = registry.get(group, version, plural).expect(plural);
            let defs = column_definitions(res.as_ref());
            let names: Vec<&str> = defs
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["name"].as_str().unwrap())
                .collect();
            assert_eq!(names.join(" "), want, "{plural}");
            let wide = defs
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["priority"] == 1);
            assert!(
                wide.map(|c| c["name"].as_str().unwrap())
                    .any(|n| n == "Images"),
                "{plural}: Images is a wide column"
            );
        }
    }

    #[test]
    fn metadata_rows_drop_managed_fields_object_rows_keep_them() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": {"a": "b"},
                         "managedFields": [{"manager": "kubectl", "operation": "Apply"}]},
            "spec": {"containers": [{"name": "c", "image": "i"}]}});
        let registry = crate::resources::registry();
        let res = registry.get("", "v1", "pods").expect("pods");
        let now = jiff::Timestamp::now();
        for r in [
            row(res.as_ref(), &pod, IncludeObject::Metadata, now),
            row_owned(res.as_ref(), pod.clone(), IncludeObject::Metadata, now),
        ] {
            assert_eq!(r["object"]["kind"], "PartialObjectMetadata");
            assert_eq!(r["object"]["metadata"]["labels"]["a"], "b");
            assert!(
                r["object"]["metadata"].get("managedFields").is_none(),
                "{r}"
            );
        }
        for r in [
            row(res.as_ref(), &pod, IncludeObject::Object, now),
            row_owned(res.as_ref(), pod.clone(), IncludeObject::Object, now),
        ] {
            assert_eq!(r["object"], pod);
        }
    }

    #[test]
    fn durations_read_like_kubectl() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(119), "119s");
        assert_eq!(human_duration(310), "5m10s");
        assert_eq!(human_duration(600), "10m");
        assert_eq!(human_duration(4 * 3600 + 120), "4h2m");
        assert_eq!(human_duration(30 * 3600), "30h");
        assert_eq!(human_duration(3 * 86400 + 3600), "3d1h");
        assert_eq!(human_duration(400 * 86400), "400d");
        assert_eq!(human_duration(-5), "<invalid>");
    }
}
