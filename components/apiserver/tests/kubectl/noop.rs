//! Re-applying an unchanged manifest and re-labelling with the same value change nothing:
//! kubectl sees the same resourceVersion (kube-apiserver skips no-op writes).

use crate::support::{Backend, Server};
use crate::util::{Kubectl, manifest};

per_backend!(reapply_and_relabel_keep_the_resource_version);
async fn reapply_and_relabel_keep_the_resource_version(backend: Backend) {
    let s = Server::start_on(backend).await;
    let k = Kubectl::new(&s);
    k.run(&["create", "namespace", "demo"]).ok(&[]);
    let rvs = || {
        k.run(&[
            "get",
            "deploy/api",
            "service/api",
            "configmap/api-config",
            "secret/api-secret",
            "-n",
            "demo",
            "-o",
            "jsonpath={.items[*].metadata.resourceVersion}",
        ])
        .ok(&[])
        .stdout
        .clone()
    };
    let m = k.file("m.yaml", &manifest("demo", "api", 1, "api:1", "alpha"));
    k.run(&["apply", "--server-side", "-f", &m]).ok(&[]);
    let before = rvs();
    assert_eq!(before.split(' ').count(), 4, "{before}");
    k.run(&["apply", "--server-side", "-f", &m]).ok(&[]);
    assert_eq!(rvs(), before, "server-side re-apply of the same manifest");

    let c = k.file("c.yaml", &manifest("demo", "web", 1, "web:1", "one"));
    k.run(&["apply", "-f", &c]).ok(&[]);
    let get_rv = |what: &str| {
        k.run(&[
            "get",
            what,
            "-n",
            "demo",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ])
        .ok(&[])
        .stdout
        .clone()
    };
    let web = get_rv("deploy/web");
    k.run(&["apply", "-f", &c])
        .ok(&["deployment.apps/web unchanged"]);
    assert_eq!(get_rv("deploy/web"), web, "client-side re-apply");

    k.run(&["label", "configmap/web-config", "-n", "demo", "tier=x"])
        .ok(&["labeled"]);
    let labeled = get_rv("configmap/web-config");
    k.run(&[
        "label",
        "--overwrite",
        "configmap/web-config",
        "-n",
        "demo",
        "tier=x",
    ])
    .ok(&[]);
    assert_eq!(
        get_rv("configmap/web-config"),
        labeled,
        "label with the same value"
    );
}
