//! Discovery, version, health, metrics, OpenAPI and Table responses.

use serde_json::json;

use crate::support::{self, Server, namespace, pod};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_openapi_tables_and_health() {
    if support::missing(support::ETCD) {
        return;
    }
    let s = Server::start().await;
    let c = s.client();
    let (code, api) = c.get("/api").await;
    assert_eq!((code, api["versions"].clone()), (200, json!(["v1"])));
    let (_, apis) = c.get("/apis").await;
    assert!(
        apis["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "apps")
    );
    let r = c
        .send("GET", "/apis", &[("accept", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json")], vec![])
        .await;
    assert_eq!(r.code, 200);
    assert_eq!(
        r.headers["content-type"],
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    );
    assert_eq!(r.json()["kind"], "APIGroupDiscoveryList");
    let (_, v) = c.get("/version").await;
    assert_eq!(
        (v["major"].as_str(), v["minor"].as_str()),
        (Some("1"), Some("33"))
    );
    for p in ["/healthz", "/livez", "/readyz"] {
        let r = c.send("GET", p, &[], vec![]).await;
        assert_eq!((r.code, &r.body[..]), (200, &b"ok"[..]));
    }
    // As kube-apiserver: one line per check with ?verbose, single checks by path, 404 for others.
    let r = c.send("GET", "/readyz?verbose", &[], vec![]).await;
    assert_eq!(
        (r.code, String::from_utf8_lossy(&r.body).as_ref()),
        (200, "[+]ping ok\n[+]etcd ok\nreadyz check passed\n")
    );
    let r = c.send("GET", "/livez/etcd", &[], vec![]).await;
    assert_eq!((r.code, &r.body[..]), (200, &b"ok"[..]));
    assert_eq!(c.send("GET", "/readyz/bogus", &[], vec![]).await.code, 404);
    let (code, idx) = c.get("/openapi/v3").await;
    assert_eq!(code, 200);
    let url = idx["paths"]["apis/apps/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, doc) = c.get(&url).await;
    assert_eq!(code, 200);
    assert!(doc["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"].is_object());
    let (code, v2) = c.get("/openapi/v2").await;
    assert_eq!((code, v2["swagger"].as_str()), (200, Some("2.0")));

    // Tables.
    namespace(&c, "t").await;
    c.json("POST", "/api/v1/namespaces/t/pods", &pod("p")).await;
    let table_accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
    let r = c
        .send(
            "GET",
            "/api/v1/namespaces/t/pods",
            &[("accept", table_accept)],
            vec![],
        )
        .await;
    let t = r.json();
    assert_eq!(t["kind"], "Table");
    let cols: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(&cols[..5], ["Name", "Ready", "Status", "Restarts", "Age"]);
    assert_eq!(t["rows"][0]["cells"][0], "p");
    assert_eq!(t["rows"][0]["cells"][1], "0/1");
    assert_eq!(t["rows"][0]["cells"][2], "Pending");
    assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    let wide: Vec<i64> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["priority"].as_i64().unwrap())
        .collect();
    assert!(wide.contains(&1), "wide columns have priority 1");

    // Metrics count what happened.
    let r = c.send("GET", "/metrics", &[], vec![]).await;
    let text = String::from_utf8_lossy(&r.body);
    assert!(
        text.contains("apiserver_request_total{verb=\"create\",resource=\"pods\",code=\"201\"} 1"),
        "{text}"
    );
    assert!(text.contains("apiserver_request_duration_seconds_bucket"));
}
