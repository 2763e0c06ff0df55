//! Service ClusterIP and NodePort allocation: in range, never twice, released on delete.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::support::{self, Server, namespace};

fn svc(name: &str, ty: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
           "spec": {"type": ty, "selector": {"app": "x"}, "ports": [{"port": 80}]}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_never_share_an_address() {
    if support::missing(support::ETCD) {
        return;
    }
    // A /28 has 14 usable addresses: 14 Services fit, the 15th is refused.
    let s = Server::start_with(|c| {
        c.service_cluster_ip_range = "10.200.0.0/28".parse().unwrap();
        c.service_node_port_range = "30000-30013".parse().unwrap();
    })
    .await;
    let c = s.client();
    namespace(&c, "s").await;
    let mut tasks = Vec::new();
    for i in 0..14 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            c.json(
                "POST",
                "/api/v1/namespaces/s/services",
                &svc(&format!("s{i}"), "NodePort"),
            )
            .await
        }));
    }
    let mut ips = HashSet::new();
    let mut ports = HashSet::new();
    for t in tasks {
        let (code, body) = t.await.unwrap();
        assert_eq!(code, 201, "{body}");
        let ip = body["spec"]["clusterIP"].as_str().unwrap().to_string();
        assert!(ip.starts_with("10.200.0."), "{ip}");
        assert_eq!(body["spec"]["clusterIPs"], json!([ip.clone()]));
        assert!(ips.insert(ip), "address handed out twice");
        let port = body["spec"]["ports"][0]["nodePort"].as_i64().unwrap();
        assert!((30000..=30013).contains(&port));
        assert!(ports.insert(port), "node port handed out twice");
        assert_eq!(body["spec"]["ports"][0]["targetPort"], 80);
    }
    let (code, st) = c
        .json(
            "POST",
            "/api/v1/namespaces/s/services",
            &svc("full", "ClusterIP"),
        )
        .await;
    assert_eq!(code, 422, "exhausted range: {st}");
    // Delete releases: the freed address is handed out again.
    let (code, _) = c
        .json("DELETE", "/api/v1/namespaces/s/services/s0", &json!({}))
        .await;
    assert_eq!(code, 200);
    let (code, again) = c
        .json(
            "POST",
            "/api/v1/namespaces/s/services",
            &svc("again", "ClusterIP"),
        )
        .await;
    assert_eq!(code, 201, "{again}");
    // A requested address that is taken is refused; one outside the range too.
    let mut taken = svc("taken", "ClusterIP");
    taken["spec"]["clusterIP"] = again["spec"]["clusterIP"].clone();
    let (code, st) = c
        .json("POST", "/api/v1/namespaces/s/services", &taken)
        .await;
    assert_eq!(code, 422, "{st}");
    let mut outside = svc("outside", "ClusterIP");
    outside["spec"]["clusterIP"] = json!("10.1.2.3");
    let (code, st) = c
        .json("POST", "/api/v1/namespaces/s/services", &outside)
        .await;
    assert_eq!(code, 422, "{st}");
    assert!(
        st["message"].as_str().unwrap().contains("spec.clusterIP"),
        "{st}"
    );
    // Headless Services take no address.
    let mut headless = svc("headless", "ClusterIP");
    headless["spec"]["clusterIP"] = json!("None");
    let (code, h) = c
        .json("POST", "/api/v1/namespaces/s/services", &headless)
        .await;
    assert_eq!(
        (code, h["spec"]["clusterIP"].as_str()),
        (201, Some("None")),
        "{h}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_ports_follow_type_changes() {
    if support::missing(support::ETCD) {
        return;
    }
    let s =
        Server::start_with(|c| c.service_node_port_range = "31000-31001".parse().unwrap()).await;
    let c = s.client();
    namespace(&c, "s").await;
    let (code, a) = c
        .json(
            "POST",
            "/api/v1/namespaces/s/services",
            &svc("a", "NodePort"),
        )
        .await;
    assert_eq!(code, 201, "{a}");
    let (code, b) = c
        .json(
            "POST",
            "/api/v1/namespaces/s/services",
            &svc("b", "NodePort"),
        )
        .await;
    assert_eq!(code, 201, "{b}");
    let (code, _) = c
        .json(
            "POST",
            "/api/v1/namespaces/s/services",
            &svc("c", "NodePort"),
        )
        .await;
    assert_eq!(code, 422, "both node ports are taken");
    // Turning `a` into a ClusterIP service frees its node port for `c`; its IP stays.
    let mut a2 = a.clone();
    a2["spec"]["type"] = json!("ClusterIP");
    let (code, a2) = c.json("PUT", "/api/v1/namespaces/s/services/a", &a2).await;
    assert_eq!(code, 200, "{a2}");
    assert!(a2["spec"]["ports"][0].get("nodePort").is_none());
    assert_eq!(a2["spec"]["clusterIP"], a["spec"]["clusterIP"]);
    let (code, cc) = c
        .json(
            "POST",
            "/api/v1/namespaces/s/services",
            &svc("c", "NodePort"),
        )
        .await;
    assert_eq!(code, 201, "{cc}");
    assert_eq!(
        cc["spec"]["ports"][0]["nodePort"],
        a["spec"]["ports"][0]["nodePort"]
    );
    // clusterIP is immutable.
    let mut moved = a2.clone();
    moved["spec"]["clusterIP"] = json!("10.96.0.77");
    let (code, st) = c
        .json("PUT", "/api/v1/namespaces/s/services/a", &moved)
        .await;
    assert_eq!(code, 422, "{st}");
}

fn two_ports(name: &str, ports: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
           "spec": {"type": "NodePort", "selector": {"app": "x"}, "ports": ports}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_ports_follow_ports_by_name_never_twice_in_one_service() {
    if support::missing(support::ETCD) {
        return;
    }
    let s = Server::start().await;
    let c = s.client();
    namespace(&c, "s").await;
    let apply = "/api/v1/namespaces/s/services/two?fieldManager=t";
    let (code, v1) = c
        .patch(
            apply,
            "application/apply-patch+yaml",
            &two_ports(
                "two",
                json!([{"name": "http", "port": 80}, {"name": "https", "port": 443}]),
            ),
        )
        .await;
    assert_eq!(code, 201, "{v1}");
    let https = v1["spec"]["ports"][1]["nodePort"].clone();
    // https moves to index 0, metrics is new at index 1.
    let (code, v2) = c
        .patch(
            apply,
            "application/apply-patch+yaml",
            &two_ports(
                "two",
                json!([{"name": "https", "port": 443}, {"name": "metrics", "port": 9090}]),
            ),
        )
        .await;
    assert_eq!(code, 200, "{v2}");
    let ports = v2["spec"]["ports"].as_array().unwrap();
    assert_eq!(ports.len(), 2, "{v2}");
    let by_name = |n: &str| {
        ports
            .iter()
            .find(|p| p["name"] == n)
            .map(|p| p["nodePort"].clone())
            .unwrap()
    };
    assert_eq!(by_name("https"), https, "https keeps its node port: {v2}");
    assert_ne!(
        by_name("metrics"),
        https,
        "node port handed out twice: {v2}"
    );

    // Two ports asking for one node port: a 422 naming the second, not a store error.
    let (code, st) = c
        .json(
            "POST",
            "/api/v1/namespaces/s/services",
            &two_ports(
                "dup",
                json!([{"name": "a", "port": 80, "nodePort": 30555},
                       {"name": "b", "port": 81, "nodePort": 30555}]),
            ),
        )
        .await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(
        st["details"]["causes"][0]["field"],
        "spec.ports[1].nodePort"
    );
    assert_eq!(st["details"]["causes"][0]["reason"], "FieldValueDuplicate");

    // A value another Service holds: the error names this Service and the field.
    let (code, st) = c
        .json(
            "POST",
            "/api/v1/namespaces/s/services",
            &two_ports(
                "taken",
                json!([{"name": "a", "port": 80, "nodePort": https}]),
            ),
        )
        .await;
    assert_eq!(code, 422, "{st}");
    let message = st["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "Service \"taken\" is invalid: spec.ports[0].nodePort: Invalid value: \"{https}\": provided value is already allocated"
        )),
        "{message}"
    );
}
