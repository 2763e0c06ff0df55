//! Two concurrent `kubectl replace` of one object from the same resourceVersion: exactly one
//! wins, the other gets 409 Conflict.

use crate::support::{Backend, Server};
use crate::util::Kubectl;

per_backend!(concurrent_replace_gives_exactly_one_conflict);
async fn concurrent_replace_gives_exactly_one_conflict(backend: Backend) {
    let s = Server::start_on(backend).await;
    let k = Kubectl::new(&s);
    k.run(&["create", "configmap", "shared", "--from-literal=k=v0"])
        .ok(&["configmap/shared created"]);
    let current = k.run(&["get", "configmap", "shared", "-o", "yaml"]);
    current.ok(&["resourceVersion"]);
    let a = k.file("a.yaml", &current.stdout.replace("k: v0", "k: from-a"));
    let b = k.file("b.yaml", &current.stdout.replace("k: v0", "k: from-b"));
    // Both start before either is waited for.
    let ha = k
        .command(&["replace", "-f", &a])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let hb = k
        .command(&["replace", "-f", &b])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (oa, ob) = (
        ha.wait_with_output().unwrap(),
        hb.wait_with_output().unwrap(),
    );
    let results = [&oa, &ob];
    let wins = results.iter().filter(|o| o.status.success()).count();
    let conflicts = results
        .iter()
        .filter(|o| {
            !o.status.success()
                && String::from_utf8_lossy(&o.stderr).contains("the object has been modified")
        })
        .count();
    assert_eq!((wins, conflicts), (1, 1), "a: {:?}\nb: {:?}", oa, ob);
    let value = k.run(&["get", "configmap", "shared", "-o", "jsonpath={.data.k}"]);
    let winner = if oa.status.success() {
        "from-a"
    } else {
        "from-b"
    };
    value.ok(&[winner]);
}
