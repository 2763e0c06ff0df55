//! get (all output forms, selectors, -A, --watch), describe, label, annotate, patch, scale,
//! edit, delete, api-resources, explain.

use std::io::Read;
use std::time::Duration;

use crate::support::{Backend, Server, wait_until};
use crate::util::{Kubectl, manifest};

/// Our kubectl child, killed by PID when the test ends (also on failure).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

per_backend!(everyday_commands);
async fn everyday_commands(backend: Backend) {
    let s = Server::start_on(backend).await;
    let k = Kubectl::new(&s);
    k.run(&["create", "namespace", "demo"]).ok(&["created"]);
    k.run(&["create", "namespace", "other"]).ok(&["created"]);
    let web = k.file(
        "web.yaml",
        &manifest("demo", "web", 2, "nginx:1.25", "value-x"),
    );
    k.run(&["apply", "-f", &web])
        .ok(&["deployment.apps/web created"]);
    let db = k.file(
        "db.yaml",
        &manifest("other", "db", 1, "postgres:16", "dbvalue"),
    );
    k.run(&["apply", "-f", &db])
        .ok(&["deployment.apps/db created"]);

    // get: default table, wide, yaml, json, jsonpath, -l, --field-selector, -A.
    let out = k.run(&["get", "deployments", "-n", "demo"]);
    out.ok(&[
        "NAME",
        "READY",
        "UP-TO-DATE",
        "AVAILABLE",
        "AGE",
        "web",
        "0/2",
    ]);
    k.run(&["get", "deploy", "-n", "demo", "-o", "wide"]).ok(&[
        "CONTAINERS",
        "IMAGES",
        "SELECTOR",
        "nginx:1.25",
        "app=web",
    ]);
    k.run(&["get", "svc", "web", "-n", "demo"]).ok(&[
        "TYPE",
        "CLUSTER-IP",
        "PORT(S)",
        "ClusterIP",
        "80/TCP",
    ]);
    k.run(&["get", "deploy", "web", "-n", "demo", "-o", "yaml"])
        .ok(&["kind: Deployment", "replicas: 2", "name: web"]);
    let json = k.run(&["get", "deploy", "web", "-n", "demo", "-o", "json"]);
    json.ok(&[]);
    let v: serde_json::Value =
        serde_json::from_str(&json.stdout).expect("kubectl -o json output is JSON");
    assert_eq!(
        v["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.25"
    );
    k.run(&[
        "get",
        "cm",
        "-n",
        "demo",
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ])
    .ok(&["web-config"]);
    let by_label = k.run(&["get", "deploy", "-A", "-l", "app=db"]);
    by_label.ok(&["db"]);
    assert!(!by_label.stdout.contains("web"), "{}", by_label.stdout);
    let by_field = k.run(&[
        "get",
        "cm",
        "-n",
        "demo",
        "--field-selector",
        "metadata.name=web-config",
        "-o",
        "name",
    ]);
    by_field.ok(&["configmap/web-config"]);
    assert_eq!(by_field.stdout.lines().count(), 1, "{}", by_field.stdout);
    k.run(&["get", "deploy", "-A"])
        .ok(&["NAMESPACE", "demo", "web", "other", "db"]);
    k.run(&[
        "run",
        "solo",
        "-n",
        "demo",
        "--image=busybox:1.36",
        "--restart=Never",
    ])
    .ok(&["pod/solo created"]);
    k.run(&["get", "pods", "-n", "demo"]).ok(&[
        "NAME", "READY", "STATUS", "RESTARTS", "AGE", "solo", "0/1", "Pending",
    ]);
    k.run(&["get", "pods", "-n", "demo", "-o", "wide"]).ok(&[
        "IP",
        "NODE",
        "NOMINATED NODE",
        "READINESS GATES",
        "solo",
    ]);
    k.run(&[
        "get",
        "pod",
        "solo",
        "-n",
        "demo",
        "-o",
        "jsonpath={.spec.restartPolicy} {.spec.dnsPolicy} {.spec.terminationGracePeriodSeconds}",
    ])
    .ok(&["Never ClusterFirst 30"]);
    k.run(&["logs", "solo", "-n", "demo"])
        .fails(&["does not have a host assigned"]);
    k.run(&["get", "ns"])
        .ok(&["default", "kube-system", "demo", "Active"]);

    // --watch, bounded: a change made while watching shows up, then the watcher is stopped.
    let mut child = KillOnDrop(
        k.command(&[
            "get",
            "cm",
            "-n",
            "demo",
            "--watch",
            "--request-timeout=20s",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("kubectl get --watch"),
    );
    let mut stdout = child.0.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0
                || tx
                    .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                    .is_err()
            {
                break;
            }
        }
    });
    let mut seen = String::new();
    wait_until("watch header", Duration::from_secs(15), || {
        seen.extend(rx.try_iter());
        seen.contains("web-config").then_some(())
    });
    k.run(&[
        "create",
        "configmap",
        "watched",
        "-n",
        "demo",
        "--from-literal=a=b",
    ])
    .ok(&["configmap/watched created"]);
    wait_until(
        "the watch to show the new configmap",
        Duration::from_secs(15),
        || {
            seen.extend(rx.try_iter());
            seen.contains("watched").then_some(())
        },
    );
    drop(child);

    // describe.
    k.run(&["describe", "deployment", "web", "-n", "demo"])
        .ok(&[
            "Name:",
            "web",
            "Replicas:",
            "2 desired",
            "StrategyType:",
            "RollingUpdate",
            "nginx:1.25",
        ]);
    k.run(&["describe", "svc", "web", "-n", "demo"])
        .ok(&["IP:", "Port:"]);

    // label, annotate.
    k.run(&["label", "deploy", "web", "-n", "demo", "tier=front"])
        .ok(&["deployment.apps/web labeled"]);
    k.run(&[
        "get",
        "deploy",
        "-n",
        "demo",
        "-l",
        "tier=front",
        "-o",
        "name",
    ])
    .ok(&["deployment.apps/web"]);
    k.run(&["label", "deploy", "web", "-n", "demo", "tier=back"])
        .fails(&["already has a value"]);
    k.run(&["annotate", "deploy", "web", "-n", "demo", "owner=team-a"])
        .ok(&["deployment.apps/web annotated"]);
    k.run(&[
        "get",
        "deploy",
        "web",
        "-n",
        "demo",
        "-o",
        "jsonpath={.metadata.annotations.owner}",
    ])
    .ok(&["team-a"]);

    // patch: merge, json, strategic (default).
    k.run(&[
        "patch",
        "deploy",
        "web",
        "-n",
        "demo",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"replicas":4}}"#,
    ])
    .ok(&["deployment.apps/web patched"]);
    k.run(&["patch", "deploy", "web", "-n", "demo", "--type", "json", "-p", r#"[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"nginx:1.27"}]"#])
        .ok(&["deployment.apps/web patched"]);
    k.run(&[
        "patch",
        "deploy",
        "web",
        "-n",
        "demo",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox"}]}}}}"#,
    ])
    .ok(&["deployment.apps/web patched"]);
    k.run(&[
        "get",
        "deploy",
        "web",
        "-n",
        "demo",
        "-o",
        "jsonpath={.spec.replicas} {.spec.template.spec.containers[*].image}",
    ])
    .ok(&["4 nginx:1.27 busybox"]);
    k.run(&[
        "patch",
        "deploy",
        "web",
        "-n",
        "demo",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"replicas":-1}}"#,
    ])
    .fails(&["Invalid", "spec.replicas"]);

    // scale.
    k.run(&["scale", "deployment", "web", "-n", "demo", "--replicas=5"])
        .ok(&["deployment.apps/web scaled"]);
    k.run(&[
        "get",
        "deploy",
        "web",
        "-n",
        "demo",
        "-o",
        "jsonpath={.spec.replicas}",
    ])
    .ok(&["5"]);

    // edit through KUBE_EDITOR.
    k.run_env(
        &["edit", "configmap", "web-config", "-n", "demo"],
        &[("KUBE_EDITOR", "sed -i s/value-x/edited-x/")],
    )
    .ok(&["configmap/web-config edited"]);
    k.run(&[
        "get",
        "cm",
        "web-config",
        "-n",
        "demo",
        "-o",
        "jsonpath={.data.key}",
    ])
    .ok(&["edited-x"]);

    // delete waits until gone.
    k.run(&["delete", "deployment", "web", "-n", "demo"])
        .ok(&["deployment.apps \"web\" deleted"]);
    k.run(&["get", "deployment", "web", "-n", "demo"])
        .fails(&["NotFound"]);
    k.run(&["delete", "configmap", "-n", "demo", "-l", "app!=nothing"])
        .ok(&["configmap \"watched\" deleted"]);
    k.run(&["get", "configmap", "watched", "-n", "demo"])
        .fails(&["NotFound"]);

    // api-resources and explain.
    let res = k.run(&["api-resources"]);
    res.ok(&[
        "deployments",
        "deploy",
        "apps/v1",
        "Deployment",
        "rolebindings",
        "rbac.authorization.k8s.io/v1",
    ]);
    assert!(
        res.stdout.lines().any(|l| l.starts_with("pods ")
            && l.contains("po")
            && l.contains("true")
            && l.contains("Pod")),
        "{}",
        res.stdout
    );
    k.run(&["explain", "deployment.spec.replicas"]).ok(&[
        "replicas",
        "<integer>",
        "Number of desired pods",
    ]);
    k.run(&["explain", "pods.spec.containers"])
        .ok(&["image", "<string>"]);
}
