//! `kubectl get events`: the columns kube-apiserver's Table gives (LAST SEEN, TYPE, REASON,
//! OBJECT, MESSAGE; `-o wide` adds SUBOBJECT, SOURCE, FIRST SEEN, COUNT, NAME). Table
//! columns do not depend on the store, so this runs on the embedded store only.

use crate::support::{Backend, Server};
use crate::util::{Kubectl, skip};

const EVENT: &str = r#"apiVersion: v1
kind: Event
metadata:
  name: web.17a
  namespace: demo
involvedObject:
  kind: Pod
  name: web
  namespace: demo
  fieldPath: spec.containers{main}
reason: Pulled
message: "  Container image pulled  "
type: Normal
count: 3
firstTimestamp: "2020-01-01T00:00:00Z"
lastTimestamp: "2020-01-02T00:00:00Z"
source:
  component: kubelet
  host: node-1
"#;

/// The column names of a kubectl table's header line (columns are 3+ spaces apart).
fn header(line: Option<&str>) -> Vec<&str> {
    line.unwrap_or_default()
        .split("   ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_columns_as_kube_prints_them() {
    if skip(Backend::Embedded) {
        return;
    }
    let s = Server::start_on(Backend::Embedded).await;
    let k = Kubectl::new(&s);
    k.run(&["create", "namespace", "demo"]).ok(&[]);
    let f = k.file("event.yaml", EVENT);
    k.run(&["create", "-f", &f]).ok(&["event/web.17a created"]);

    let out = k
        .run(&["get", "events", "-n", "demo"])
        .ok(&[])
        .stdout
        .clone();
    let mut lines = out.lines();
    assert_eq!(
        header(lines.next()),
        ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
        "{out}"
    );
    let row: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        row[1..],
        [
            "Normal",
            "Pulled",
            "pod/web",
            "Container",
            "image",
            "pulled"
        ],
        "{out}"
    );

    let wide = k
        .run(&["get", "events", "-n", "demo", "-o", "wide"])
        .ok(&[])
        .stdout
        .clone();
    assert_eq!(
        header(wide.lines().next()),
        [
            "LAST SEEN",
            "TYPE",
            "REASON",
            "OBJECT",
            "SUBOBJECT",
            "SOURCE",
            "MESSAGE",
            "FIRST SEEN",
            "COUNT",
            "NAME"
        ],
        "{wide}"
    );
    for cell in [
        "spec.containers{main}",
        "kubelet, node-1",
        "Container image pulled",
        "web.17a",
    ] {
        assert!(wide.contains(cell), "{cell:?} not in\n{wide}");
    }
    let row: Vec<&str> = wide
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(row[row.len() - 2..], ["3", "web.17a"], "{wide}");
}
