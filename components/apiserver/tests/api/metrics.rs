//! `/metrics`: valid Prometheus text exposition with kube-apiserver's families, counting
//! the requests and watches of this test.

use std::collections::BTreeMap;

use crate::support::{self, Server, namespace, pod};

/// One sample: metric name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

/// Parses the text format strictly enough to catch malformed output: `# HELP`/`# TYPE`
/// lines, then samples `name{k="v",...} value` whose family was declared.
fn parse(text: &str) -> (BTreeMap<String, String>, Vec<Sample>) {
    let mut types = BTreeMap::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE line");
            assert!(
                matches!(kind, "counter" | "gauge" | "histogram"),
                "bad type in {line}"
            );
            assert!(
                types.insert(name.to_string(), kind.to_string()).is_none(),
                "twice: {line}"
            );
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample line");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n, l.strip_suffix('}').expect("closing brace")),
            None => (series, ""),
        };
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad name in {line}"
        );
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| types.get(*f).is_some_and(|t| t == "histogram"))
            })
            .unwrap_or(name);
        assert!(types.contains_key(family), "sample before its TYPE: {line}");
        let mut map = BTreeMap::new();
        for pair in labels.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').expect("label pair");
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .expect("quoted label");
            map.insert(k.to_string(), v.to_string());
        }
        samples.push((name.to_string(), map, value));
    }
    (types, samples)
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_valid_and_count_requests_watches_and_objects() {
    if support::missing(support::ETCD) {
        return;
    }
    let s = Server::start().await;
    let c = s.client();
    namespace(&c, "m").await;
    for name in ["a", "b"] {
        let (code, _) = c
            .json("POST", "/api/v1/namespaces/m/pods", &pod(name))
            .await;
        assert_eq!(code, 201);
    }
    let (code, _) = c.get("/api/v1/namespaces/m/pods/missing").await;
    assert_eq!(code, 404);
    let _watch = c
        .watch("/api/v1/namespaces/m/pods?watch=1&resourceVersion=1")
        .await;

    let r = c.send("GET", "/metrics", &[], vec![]).await;
    assert_eq!(r.code, 200);
    let text = String::from_utf8_lossy(&r.body).into_owned();
    let (types, samples) = parse(&text);
    for (family, kind) in [
        ("apiserver_request_total", "counter"),
        ("apiserver_request_duration_seconds", "histogram"),
        ("apiserver_current_inflight_requests", "gauge"),
        ("apiserver_registered_watchers", "gauge"),
        ("etcd_request_duration_seconds", "histogram"),
        ("apiserver_storage_objects", "gauge"),
    ] {
        assert_eq!(
            types.get(family).map(String::as_str),
            Some(kind),
            "{family}\n{text}"
        );
    }
    let get = |name, labels: &[(&str, &str)]| value(&samples, name, labels);
    let req = "apiserver_request_total";
    assert_eq!(
        get(
            req,
            &[("verb", "create"), ("resource", "pods"), ("code", "201")]
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        get(
            req,
            &[("verb", "get"), ("resource", "pods"), ("code", "404")]
        ),
        Some(1.0),
        "{text}"
    );
    let count = "apiserver_request_duration_seconds_count";
    assert_eq!(
        get(count, &[("verb", "create"), ("resource", "pods")]),
        Some(2.0),
        "{text}"
    );
    // The scrape itself is in flight.
    assert!(
        get("apiserver_current_inflight_requests", &[]).is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert_eq!(
        get("apiserver_registered_watchers", &[("resource", "pods")]),
        Some(1.0),
        "{text}"
    );
    for op in ["create", "get"] {
        let n = get("etcd_request_duration_seconds_count", &[("operation", op)]);
        assert!(n.is_some_and(|n| n >= 1.0), "{op}: {text}");
    }
    assert_eq!(
        get("apiserver_storage_objects", &[("resource", "pods")]),
        Some(2.0),
        "{text}"
    );
    assert!(
        get("apiserver_storage_objects", &[("resource", "namespaces")]).is_some_and(|n| n >= 1.0),
        "{text}"
    );
}
