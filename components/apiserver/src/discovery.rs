//! Discovery: `/api`, `/apis`, `/apis/<group>`, the per-group-version resource lists, and the
//! aggregated form (`apidiscovery.k8s.io/v2` `APIGroupDiscoveryList`) that kubectl 1.32 asks
//! for first, all generated from the registry.

use serde_json::{Value, json};

use crate::registry::{Registry, Resource, Sub};

fn sub_verbs(sub: Sub) -> &'static [&'static str] {
    match sub {
        Sub::Status | Sub::Scale => &["get", "patch", "update"],
        Sub::Binding => &["create"],
        Sub::Log => &["get"],
        Sub::Exec | Sub::Attach | Sub::PortForward => &["create", "get"],
        Sub::Finalize => &["update"],
        Sub::Token => &["create"],
    }
}

fn sub_kind(r: &dyn Resource, sub: Sub) -> (&'static str, &'static str, &'static str) {
    let i = r.info();
    match sub {
        Sub::Scale => ("autoscaling", "v1", "Scale"),
        Sub::Binding => ("", "v1", "Binding"),
        Sub::Token => ("authentication.k8s.io", "v1", "TokenRequest"),
        Sub::Exec => ("", "v1", "PodExecOptions"),
        Sub::Attach => ("", "v1", "PodAttachOptions"),
        Sub::PortForward => ("", "v1", "PodPortForwardOptions"),
        _ => (i.group, i.version, i.kind),
    }
}

/// `/api`.
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn group_entry(group: &str, versions: &[&str]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({"name": group, "versions": vs, "preferredVersion": vs[0]})
}

fn groups(registry: &Registry) -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for (g, v) in registry.group_versions() {
        if g.is_empty() {
            continue;
        }
        match out.iter_mut().find(|(name, _)| *name == g) {
            Some((_, vs)) => vs.push(v),
            None => out.push((g, vec![v])),
        }
    }
    out
}

/// `/apis`.
pub fn api_groups(registry: &Registry) -> Value {
    let gs: Vec<Value> = groups(registry)
        .iter()
        .map(|(g, vs)| group_entry(g, vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": gs})
}

/// `/apis/<group>`, if served.
pub fn api_group(registry: &Registry, group: &str) -> Option<Value> {
    groups(registry)
        .iter()
        .find(|(g, _)| *g == group)
        .map(|(g, vs)| {
            let mut e = group_entry(g, vs);
            e["kind"] = json!("APIGroup");
            e["apiVersion"] = json!("v1");
            e
        })
}

/// `/api/v1`, `/apis/<group>/<version>`, if served.
pub fn resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let members: Vec<_> = registry
        .all()
        .iter()
        .filter(|r| r.info().group == group && r.info().version == version)
        .collect();
    if members.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for r in members {
        let i = r.info();
        let mut e = json!({
            "name": i.plural, "singularName": i.singular, "namespaced": i.namespaced,
            "kind": i.kind, "verbs": i.verbs(),
        });
        if !i.short_names.is_empty() {
            e["shortNames"] = json!(i.short_names);
        }
        if !i.categories.is_empty() {
            e["categories"] = json!(i.categories);
        }
        resources.push(e);
        for sub in i.subresources {
            let (g, v, k) = sub_kind(r.as_ref(), *sub);
            let mut s = json!({
                "name": format!("{}/{}", i.plural, sub.name()), "singularName": "",
                "namespaced": i.namespaced, "kind": k, "verbs": sub_verbs(*sub),
            });
            if g != group || v != version {
                s["group"] = json!(g);
                s["version"] = json!(v);
            }
            resources.push(s);
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

fn aggregated_resource(r: &dyn Resource) -> Value {
    let i = r.info();
    let subs: Vec<Value> = i
        .subresources
        .iter()
        .map(|s| {
            let (g, v, k) = sub_kind(r, *s);
            json!({"subresource": s.name(), "responseKind": {"group": g, "version": v, "kind": k}, "verbs": sub_verbs(*s)})
        })
        .collect();
    let mut e = json!({
        "resource": i.plural,
        "responseKind": {"group": i.group, "version": i.version, "kind": i.kind},
        "scope": if i.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": i.singular,
        "verbs": i.verbs(),
    });
    if !i.short_names.is_empty() {
        e["shortNames"] = json!(i.short_names);
    }
    if !i.categories.is_empty() {
        e["categories"] = json!(i.categories);
    }
    if !subs.is_empty() {
        e["subresources"] = json!(subs);
    }
    e
}

/// Aggregated discovery for `/api` (`core = true`) or `/apis`, at `apidiscovery.k8s.io/<v>`.
pub fn aggregated(registry: &Registry, core: bool, discovery_version: &str) -> Value {
    let mut items = Vec::new();
    let mut order: Vec<&'static str> = Vec::new();
    for (g, _) in registry.group_versions() {
        if (g.is_empty() == core) && !order.contains(&g) {
            order.push(g);
        }
    }
    for g in order {
        let mut versions = Vec::new();
        for (gg, v) in registry.group_versions() {
            if gg != g {
                continue;
            }
            let resources: Vec<Value> = registry
                .all()
                .iter()
                .filter(|r| r.info().group == g && r.info().version == v)
                .map(|r| aggregated_resource(r.as_ref()))
                .collect();
            versions.push(json!({"version": v, "resources": resources, "freshness": "Current"}));
        }
        items.push(json!({"metadata": {"name": g}, "versions": versions}));
    }
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{discovery_version}"),
        "metadata": {},
        "items": items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_resources_and_subresources() {
        let reg = crate::resources::registry();
        let core = resource_list(&reg, "", "v1").unwrap();
        let names: Vec<&str> = core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        for n in [
            "pods",
            "pods/status",
            "pods/binding",
            "pods/log",
            "namespaces/finalize",
            "services",
            "secrets",
        ] {
            assert!(names.contains(&n), "{n} missing from {names:?}");
        }
        let apps = resource_list(&reg, "apps", "v1").unwrap();
        let scale = apps["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "deployments/scale")
            .unwrap();
        assert_eq!(scale["group"], "autoscaling");
        assert!(resource_list(&reg, "nope", "v1").is_none());
        let groups = api_groups(&reg);
        let gnames: Vec<&str> = groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            gnames,
            [
                "apps",
                "batch",
                "coordination.k8s.io",
                "discovery.k8s.io",
                "rbac.authorization.k8s.io",
                "authentication.k8s.io",
                "authorization.k8s.io"
            ]
        );
        let agg = aggregated(&reg, false, "v2");
        assert_eq!(
            agg["items"][0]["versions"][0]["resources"][0]["resource"],
            "deployments"
        );
        let authz = resource_list(&reg, "authorization.k8s.io", "v1").unwrap();
        let ssar = authz["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "selfsubjectaccessreviews")
            .unwrap();
        assert_eq!(ssar["verbs"], serde_json::json!(["create"]));
        assert!(names.contains(&"serviceaccounts/token"));
        let agg_core = aggregated(&reg, true, "v2");
        assert_eq!(agg_core["items"][0]["metadata"]["name"], "");
    }
}
