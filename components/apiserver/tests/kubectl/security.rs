//! Security through the real kubectl (and a raw HTTPS client where kubectl hides the status):
//! 401 for missing, unknown, foreign and expired credentials; RBAC with a namespaced
//! read-only Role (403 with Kubernetes' message); a token-file user; `kubectl auth can-i`
//! (yes/no, `--list`) and `auth whoami`; ServiceAccount tokens; RBAC changes taking effect without a restart.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use kubelab_apiserver::kubeconfig::{self, Credentials};
use kubelab_apiserver::pki;

use crate::support::{self, Backend, Client, DEV_TOKEN, DEV_TOKEN_USER, Server};
use crate::util::{Kubectl, Run};

/// How long an RBAC change may take to reach the server's watch-fed cache.
const RBAC_PROPAGATION: Duration = Duration::from_secs(15);

/// A kubeconfig trusting the cluster CA with the given credentials.
fn kubeconfig_with(s: &Server, name: &str, credentials: &Credentials) -> PathBuf {
    let text = kubeconfig::render(&s.url, Some(&s.ca_pem()), name, credentials);
    let path = s.dir.path().join(format!("{name}.kubeconfig"));
    kubeconfig::write(&path, &text).expect("write kubeconfig");
    path
}

/// A client presenting the client certificate of a kubeconfig file.
fn client_of(s: &Server, path: &std::path::Path) -> Client {
    let (cert, key) = support::kubeconfig_credentials(path);
    Client::new(&s.url, Some(&s.ca_pem()), Some((&cert, &key)), None)
}

/// Asserts a raw 401 carries Kubernetes' Status body.
#[track_caller]
fn assert_unauthorized((code, body): (u16, serde_json::Value)) {
    assert_eq!(code, 401, "{body}");
    assert_eq!(body["kind"], "Status", "{body}");
    assert_eq!(body["reason"], "Unauthorized", "{body}");
    assert_eq!(body["code"], 401, "{body}");
}

/// kubectl's words for a 401.
const KUBECTL_401: &str = "You must be logged in to the server";

per_backend!(missing_unknown_foreign_and_expired_credentials_are_401);
async fn missing_unknown_foreign_and_expired_credentials_are_401(backend: Backend) {
    let s = Server::start_on(backend).await;

    // Nothing at all: 401 with a Status body, except kube's anonymous health checks.
    assert_unauthorized(s.anonymous().get("/api/v1/namespaces").await);
    assert_unauthorized(s.anonymous().get("/version").await);
    assert_eq!(s.anonymous().get("/healthz").await.0, 200);
    assert_eq!(s.anonymous().get("/readyz").await.0, 200);
    // (kubectl itself never sends a credential-less request: with an empty kubeconfig user
    // it prompts for a basic-auth user name instead — hence the raw client above.)

    // A bearer token nobody issued.
    assert_unauthorized(s.token_client("not-a-token").get("/api/v1/pods").await);
    let forged = kubeconfig_with(&s, "forged", &Credentials::Token("not-a-token".into()));
    Kubectl::with_kubeconfig(&s, forged, "forged-home")
        .run(&["get", "pods"])
        .fails(&[KUBECTL_401]);

    // A client certificate claiming to be the admin, signed by another CA.
    let (foreign, _) = pki::Ca::generate("kubernetes").expect("foreign CA");
    let text = kubeconfig::for_user(
        &foreign,
        &s.url,
        "kubernetes-admin",
        &["system:masters".to_string()],
        pki::Validity::from_now(Duration::from_secs(3600)),
    )
    .expect("foreign kubeconfig");
    // The cluster entry must still trust our CA, so only the client certificate is foreign.
    let (cert_pem, key_pem) = {
        let path = s.dir.path().join("foreign-raw.kubeconfig");
        kubeconfig::write(&path, &text).expect("write");
        support::kubeconfig_credentials(&path)
    };
    let foreign_path = kubeconfig_with(
        &s,
        "foreign",
        &Credentials::ClientCertificate { cert_pem, key_pem },
    );
    assert_unauthorized(client_of(&s, &foreign_path).get("/api/v1/pods").await);
    Kubectl::with_kubeconfig(&s, foreign_path, "foreign-home")
        .run(&["get", "pods"])
        .fails(&[KUBECTL_401]);

    // A certificate from the cluster CA that expired an hour ago.
    let ca = pki::load_ca(&pki::CertDir::new(s.dir.path().join("pki"))).expect("cluster CA");
    let now = SystemTime::now();
    let expired = kubeconfig::for_user(
        &ca,
        &s.url,
        "kubernetes-admin",
        &["system:masters".to_string()],
        pki::Validity {
            not_before: now - Duration::from_secs(7200),
            not_after: now - Duration::from_secs(3600),
        },
    )
    .expect("expired kubeconfig");
    let expired_path = s.dir.path().join("expired.kubeconfig");
    kubeconfig::write(&expired_path, &expired).expect("write");
    assert_unauthorized(client_of(&s, &expired_path).get("/api/v1/pods").await);
    Kubectl::with_kubeconfig(&s, expired_path, "expired-home")
        .run(&["get", "pods"])
        .fails(&[KUBECTL_401]);

    // The admin kubeconfig the server wrote still works after all that.
    Kubectl::new(&s)
        .run(&["get", "namespaces"])
        .ok(&["default"]);
}

per_backend!(namespaced_read_only_role_allows_reads_and_forbids_the_rest);
async fn namespaced_read_only_role_allows_reads_and_forbids_the_rest(backend: Backend) {
    let s = Server::start_on(backend).await;
    let admin = Kubectl::new(&s);
    for ns in ["sec-a", "sec-b"] {
        admin.run(&["create", "namespace", ns]).ok(&["created"]);
    }
    admin
        .run(&["run", "web", "--image=nginx", "-n", "sec-a"])
        .ok(&["pod/web created"]);
    admin
        .run(&["run", "web", "--image=nginx", "-n", "sec-b"])
        .ok(&["pod/web created"]);
    admin
        .run(&[
            "create",
            "role",
            "pod-reader",
            "-n",
            "sec-a",
            "--verb=get,list,watch",
            "--resource=pods",
        ])
        .ok(&["role.rbac.authorization.k8s.io/pod-reader created"]);
    admin
        .run(&[
            "create",
            "rolebinding",
            "alice-reads",
            "-n",
            "sec-a",
            "--role=pod-reader",
            "--user=alice",
        ])
        .ok(&["rolebinding.rbac.authorization.k8s.io/alice-reads created"]);

    let (_, path) = s.user("alice", &["dev"]);
    let alice = Kubectl::with_kubeconfig(&s, path, "alice-home");
    // The cache follows the store by watch: poll until the binding is seen.
    support::wait_until(
        "alice's binding in the RBAC cache",
        RBAC_PROPAGATION,
        || (alice.run(&["get", "pods", "-n", "sec-a"]).code == 0).then_some(()),
    );
    alice
        .run(&["get", "pods", "-n", "sec-a"])
        .ok(&["web", "Pending"]);
    alice
        .run(&[
            "get",
            "pod",
            "web",
            "-n",
            "sec-a",
            "-o",
            "jsonpath={.spec.containers[0].image}",
        ])
        .ok(&["nginx"]);
    alice
        .run(&["run", "mine", "--image=nginx", "-n", "sec-a"])
        .fails(&[
            "Error from server (Forbidden)",
            r#"pods is forbidden: User "alice" cannot create resource "pods" in API group "" in the namespace "sec-a""#,
        ]);
    alice
        .run(&["delete", "pod", "web", "-n", "sec-a"])
        .fails(&[r#"pods "web" is forbidden: User "alice" cannot delete resource "pods" in API group "" in the namespace "sec-a""#]);
    alice.run(&["get", "pods", "-n", "sec-b"]).fails(&[
        r#"pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "sec-b""#,
    ]);
    alice.run(&["get", "configmaps", "-n", "sec-a"]).fails(&[
        r#"configmaps is forbidden: User "alice" cannot list resource "configmaps" in API group "" in the namespace "sec-a""#,
    ]);
    alice.run(&["get", "deployments", "-A"]).fails(&[
        r#"User "alice" cannot list resource "deployments" in API group "apps" at the cluster scope"#,
    ]);
    // Nothing she was refused happened.
    admin.run(&["get", "pods", "-n", "sec-a"]).ok(&["web"]);
    assert!(
        !admin
            .run(&["get", "pods", "-n", "sec-a"])
            .stdout
            .contains("mine"),
        "a forbidden create must not store anything"
    );
}

/// `kubectl auth can-i`: exit 0 and `yes`, or exit 1 and `no`.
#[track_caller]
fn can_i(k: &Kubectl, args: &[&str]) -> bool {
    let mut full = vec!["auth", "can-i"];
    full.extend_from_slice(args);
    let r: Run = k.run(&full);
    match (r.code, r.stdout.trim()) {
        (0, "yes") => true,
        (1, "no") => false,
        _ => panic!(
            "kubectl auth can-i {args:?}: exit {}\nstdout: {}\nstderr: {}",
            r.code, r.stdout, r.stderr
        ),
    }
}

per_backend!(auth_can_i_whoami_and_live_rbac_changes);
async fn auth_can_i_whoami_and_live_rbac_changes(backend: Backend) {
    let s = Server::start_on(backend).await;
    let admin = Kubectl::new(&s);
    admin
        .run(&["create", "namespace", "sec-c"])
        .ok(&["created"]);
    assert!(can_i(&admin, &["create", "pods", "-n", "sec-c"]));
    assert!(can_i(&admin, &["*", "*"]));
    admin.run(&["auth", "whoami"]).ok(&[
        "kubernetes-admin",
        "system:masters",
        "system:authenticated",
    ]);

    let (_, path) = s.user("carol", &["dev", "qa"]);
    let carol = Kubectl::with_kubeconfig(&s, path, "carol-home");
    carol
        .run(&["auth", "whoami"])
        .ok(&["carol", "dev", "qa", "system:authenticated"]);
    assert!(!can_i(&carol, &["create", "pods", "-n", "sec-c"]));
    assert!(!can_i(&carol, &["list", "pods", "-n", "sec-c"]));
    // The admin may ask about someone else (SubjectAccessReview via --as is impersonation,
    // which is not served; `auth can-i` for another user is asked with a raw review).
    let (code, review) = s
        .client()
        .json(
            "POST",
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            &serde_json::json!({
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "spec": {"user": "carol", "groups": ["dev"],
                         "resourceAttributes": {"namespace": "sec-c", "verb": "list", "resource": "pods"}}
            }),
        )
        .await;
    assert_eq!(code, 201, "{review}");
    assert_eq!(review["status"]["allowed"], false, "{review}");
    // ... and carol may not ask about others.
    let (code, body) = client_of(&s, &s.dir.path().join("carol.kubeconfig"))
        .json(
            "POST",
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            &serde_json::json!({
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "spec": {"user": "kubernetes-admin", "resourceAttributes": {"verb": "get", "resource": "pods"}}
            }),
        )
        .await;
    assert_eq!(code, 403, "{body}");

    // Grant edit in sec-c to group qa: takes effect without a restart.
    admin
        .run(&[
            "create",
            "rolebinding",
            "qa-edit",
            "-n",
            "sec-c",
            "--clusterrole=edit",
            "--group=qa",
        ])
        .ok(&["created"]);
    support::wait_until("the qa-edit binding to apply", RBAC_PROPAGATION, || {
        can_i(&carol, &["create", "pods", "-n", "sec-c"]).then_some(())
    });
    assert!(can_i(&carol, &["delete", "configmaps", "-n", "sec-c"]));
    assert!(!can_i(&carol, &["create", "pods", "-n", "default"]));
    assert!(!can_i(&carol, &["create", "roles", "-n", "sec-c"]));
    let list = carol.run(&["auth", "can-i", "--list", "-n", "sec-c"]);
    list.ok(&[
        "Resources",
        "Verbs",
        "selfsubjectaccessreviews.authorization.k8s.io",
        "pods",
        "deployments.apps",
    ]);
    let pods_line = list
        .stdout
        .lines()
        .find(|l| l.starts_with("pods "))
        .unwrap_or_else(|| panic!("no pods line:\n{}", list.stdout));
    for verb in [
        "create", "delete", "get", "list", "patch", "update", "watch",
    ] {
        assert!(pods_line.contains(verb), "{verb} missing: {pods_line}");
    }
    carol
        .run(&["run", "c1", "--image=busybox", "-n", "sec-c"])
        .ok(&["pod/c1 created"]);

    // Narrow it to a named read-only role: the change replaces what was allowed.
    admin
        .run(&["delete", "rolebinding", "qa-edit", "-n", "sec-c"])
        .ok(&["deleted"]);
    support::wait_until(
        "the qa-edit binding removal to apply",
        RBAC_PROPAGATION,
        || (!can_i(&carol, &["create", "pods", "-n", "sec-c"])).then_some(()),
    );
    carol
        .run(&["get", "pods", "-n", "sec-c"])
        .fails(&[r#"User "carol" cannot list resource "pods""#]);
    admin
        .run(&[
            "create",
            "role",
            "one-pod",
            "-n",
            "sec-c",
            "--verb=get",
            "--resource=pods",
            "--resource-name=c1",
        ])
        .ok(&["created"]);
    admin
        .run(&[
            "create",
            "rolebinding",
            "carol-one-pod",
            "-n",
            "sec-c",
            "--role=one-pod",
            "--user=carol",
        ])
        .ok(&["created"]);
    support::wait_until("the one-pod binding to apply", RBAC_PROPAGATION, || {
        (carol.run(&["get", "pod", "c1", "-n", "sec-c"]).code == 0).then_some(())
    });
    assert!(!can_i(&carol, &["get", "pods/other", "-n", "sec-c"]));
    assert!(can_i(&carol, &["get", "pods/c1", "-n", "sec-c"]));
    // Editing the role (not the binding) also applies live.
    admin
        .run(&[
            "patch",
            "role",
            "one-pod",
            "-n",
            "sec-c",
            "--type=json",
            "-p",
            r#"[{"op":"add","path":"/rules/0/verbs/-","value":"delete"}]"#,
        ])
        .ok(&["patched"]);
    support::wait_until("the role edit to apply", RBAC_PROPAGATION, || {
        can_i(&carol, &["delete", "pods/c1", "-n", "sec-c"]).then_some(())
    });
}

per_backend!(token_file_users_authenticate_and_are_authorized_by_group);
async fn token_file_users_authenticate_and_are_authorized_by_group(backend: Backend) {
    let s = Server::start_on(backend).await;
    let admin = Kubectl::new(&s);
    let path = kubeconfig_with(&s, "dev", &Credentials::Token(DEV_TOKEN.into()));
    let dev = Kubectl::with_kubeconfig(&s, path, "dev-home");
    dev.run(&["auth", "whoami"])
        .ok(&[DEV_TOKEN_USER, "dev-team", "qa", "system:authenticated"]);
    dev.run(&["get", "pods", "-n", "default"]).fails(&[&format!(
        r#"pods is forbidden: User "{DEV_TOKEN_USER}" cannot list resource "pods" in API group "" in the namespace "default""#
    )]);
    admin
        .run(&[
            "create",
            "clusterrolebinding",
            "dev-team-view",
            "--clusterrole=view",
            "--group=dev-team",
        ])
        .ok(&["created"]);
    support::wait_until("the dev-team binding to apply", RBAC_PROPAGATION, || {
        (dev.run(&["get", "pods", "-A"]).code == 0).then_some(())
    });
    // view reads namespaces but not nodes, as in Kubernetes.
    dev.run(&["get", "namespaces"]).ok(&["kube-system"]);
    dev.run(&["get", "nodes"]).fails(&[&format!(
        r#"User "{DEV_TOKEN_USER}" cannot list resource "nodes" in API group "" at the cluster scope"#
    )]);
    assert!(!can_i(&dev, &["create", "configmaps", "-n", "default"]));
    assert!(can_i(&dev, &["list", "configmaps", "-n", "kube-system"]));
    // view does not include secrets, as in Kubernetes.
    assert!(!can_i(&dev, &["get", "secrets", "-n", "default"]));
    // The raw API agrees.
    let (code, body) = s
        .token_client(DEV_TOKEN)
        .get("/api/v1/namespaces/default/secrets")
        .await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(body["reason"], "Forbidden", "{body}");
    assert_eq!(body["details"]["kind"], "secrets", "{body}");

    // A ServiceAccount token (TokenRequest) authenticates while the ServiceAccount exists.
    admin
        .run(&["create", "serviceaccount", "bot", "-n", "default"])
        .ok(&["serviceaccount/bot created"]);
    let token = admin.run(&["create", "token", "bot", "-n", "default"]);
    token.ok(&["."]);
    let path = kubeconfig_with(&s, "bot", &Credentials::Token(token.stdout.trim().into()));
    let bot = Kubectl::with_kubeconfig(&s, path, "bot-home");
    support::wait_until("the ServiceAccount in the cache", RBAC_PROPAGATION, || {
        (bot.run(&["auth", "whoami"]).code == 0).then_some(())
    });
    bot.run(&["auth", "whoami"]).ok(&[
        "system:serviceaccount:default:bot",
        "system:serviceaccounts:default",
    ]);
    admin
        .run(&["delete", "serviceaccount", "bot", "-n", "default"])
        .ok(&["deleted"]);
    support::wait_until(
        "the deleted ServiceAccount's token to be refused",
        RBAC_PROPAGATION,
        || {
            bot.run(&["auth", "whoami"])
                .stderr
                .contains(KUBECTL_401)
                .then_some(())
        },
    );
}
