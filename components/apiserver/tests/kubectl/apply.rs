//! create namespace; apply client-side and server-side, then re-apply changed copies.

use crate::support::{Backend, Server};
use crate::util::{Kubectl, manifest};

per_backend!(apply_client_side_and_server_side);
async fn apply_client_side_and_server_side(backend: Backend) {
    let s = Server::start_on(backend).await;
    let k = Kubectl::new(&s);
    k.run(&["create", "namespace", "demo"])
        .ok(&["namespace/demo created"]);
    k.run(&["create", "namespace", "demo"])
        .fails(&["AlreadyExists"]);

    // Client-side apply of the four kinds, then a changed copy.
    let v1 = k.file("v1.yaml", &manifest("demo", "web", 2, "nginx:1.25", "one"));
    k.run(&["apply", "-f", &v1]).ok(&[
        "deployment.apps/web created",
        "service/web created",
        "configmap/web-config created",
        "secret/web-secret created",
    ]);
    let v2 = k.file("v2.yaml", &manifest("demo", "web", 3, "nginx:1.26", "two"));
    k.run(&["apply", "-f", &v2]).ok(&[
        "deployment.apps/web configured",
        "service/web unchanged",
        "configmap/web-config configured",
    ]);
    k.run(&["get", "deploy", "web", "-n", "demo", "-o", "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image} {.metadata.generation}"])
        .ok(&["3 nginx:1.26 2"]);
    k.run(&[
        "get",
        "cm",
        "web-config",
        "-n",
        "demo",
        "-o",
        "jsonpath={.data.key}",
    ])
    .ok(&["two"]);
    k.run(&[
        "get",
        "secret",
        "web-secret",
        "-n",
        "demo",
        "-o",
        "jsonpath={.data.password}",
    ])
    .ok(&["dHdv"]);

    // Server-side apply of a second set, then a changed copy.
    let s1 = k.file("s1.yaml", &manifest("demo", "api", 1, "api:1", "alpha"));
    k.run(&["apply", "--server-side", "-f", &s1]).ok(&[
        "deployment.apps/api serverside-applied",
        "service/api serverside-applied",
        "configmap/api-config serverside-applied",
        "secret/api-secret serverside-applied",
    ]);
    let s2 = k.file("s2.yaml", &manifest("demo", "api", 4, "api:2", "beta"));
    k.run(&["apply", "--server-side", "-f", &s2])
        .ok(&["deployment.apps/api serverside-applied"]);
    k.run(&[
        "get",
        "deploy",
        "api",
        "-n",
        "demo",
        "-o",
        "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image}",
    ])
    .ok(&["4 api:2"]);
    k.run(&[
        "get",
        "deploy",
        "api",
        "-n",
        "demo",
        "--show-managed-fields",
        "-o",
        "jsonpath={.metadata.managedFields[*].manager}",
    ])
    .ok(&["kubectl"]);

    // Another manager takes .spec.replicas; re-applying a different value conflicts.
    k.run(&["scale", "deploy", "api", "-n", "demo", "--replicas=6"])
        .ok(&["deployment.apps/api scaled"]);
    k.run(&["apply", "--server-side", "-f", &s2])
        .fails(&["conflict", ".spec.replicas"]);
    k.run(&["apply", "--server-side", "--force-conflicts", "-f", &s2])
        .ok(&["deployment.apps/api serverside-applied"]);
    k.run(&[
        "get",
        "deploy",
        "api",
        "-n",
        "demo",
        "-o",
        "jsonpath={.spec.replicas}",
    ])
    .ok(&["4"]);

    // Server-side dry run changes nothing.
    let s3 = k.file("s3.yaml", &manifest("demo", "api", 9, "api:3", "gamma"));
    k.run(&["apply", "--server-side", "--dry-run=server", "-f", &s3])
        .ok(&["(server dry run)"]);
    k.run(&[
        "get",
        "deploy",
        "api",
        "-n",
        "demo",
        "-o",
        "jsonpath={.spec.replicas}",
    ])
    .ok(&["4"]);
}
