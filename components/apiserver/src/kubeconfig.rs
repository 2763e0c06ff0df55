//! Kubeconfig files for kubectl and client libraries: the cluster CA embedded
//! (`certificate-authority-data`) and the user's credentials — a client certificate issued by
//! the cluster CA (CN = user, O = groups) or a bearer token.
//!
//! `kubelabd apiserver --kubeconfig-out` writes the admin one ([`ADMIN_USER`] in
//! `system:masters`, as kubeadm's `admin.conf`); `kubelabd kubeconfig` mints one for any
//! user and groups from a cert dir.

use std::path::Path;

use base64::Engine as _;
use serde_json::json;

use crate::pki::{Ca, PkiError, Validity};

/// The admin user kubeadm names.
pub const ADMIN_USER: &str = "kubernetes-admin";

/// What a kubeconfig user presents.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// A client certificate and its key (PEM).
    ClientCertificate {
        /// Certificate PEM.
        cert_pem: String,
        /// Key PEM.
        key_pem: String,
    },
    /// A bearer token.
    Token(String),
    /// Nothing (anonymous).
    None,
}

/// A server URL for an address: `https://127.0.0.1:6443`, `https://[::1]:6443`.
pub fn server_url(scheme: &str, address: std::net::SocketAddr) -> String {
    format!("{scheme}://{address}")
}

/// The kubeconfig text.
pub fn render(server: &str, ca_pem: Option<&str>, user: &str, credentials: &Credentials) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    let mut cluster = json!({"server": server});
    if let Some(ca) = ca_pem {
        cluster["certificate-authority-data"] = json!(b64(ca));
    }
    let user_entry = match credentials {
        Credentials::ClientCertificate { cert_pem, key_pem } => json!({
            "client-certificate-data": b64(cert_pem),
            "client-key-data": b64(key_pem),
        }),
        Credentials::Token(t) => json!({"token": t}),
        Credentials::None => json!({}),
    };
    let doc = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kubelab", "cluster": cluster}],
        "users": [{"name": user, "user": user_entry}],
        "contexts": [{"name": format!("{user}@kubelab"),
                      "context": {"cluster": "kubelab", "user": user, "namespace": "default"}}],
        "current-context": format!("{user}@kubelab"),
        "preferences": {},
    });
    serde_yaml_ng::to_string(&doc).unwrap_or_default()
}

/// A kubeconfig for `user` in `groups` with a fresh client certificate from `ca`.
pub fn for_user(
    ca: &Ca,
    server: &str,
    user: &str,
    groups: &[String],
    validity: Validity,
) -> Result<String, PkiError> {
    let issued = ca.issue_client(user, groups, validity)?;
    Ok(render(
        server,
        Some(ca.cert_pem()),
        user,
        &Credentials::ClientCertificate {
            cert_pem: issued.cert_pem,
            key_pem: issued.key_pem,
        },
    ))
}

/// Writes a kubeconfig atomically (temp file + rename), mode 0600: it holds a private key.
pub fn write(path: &Path, text: &str) -> Result<(), PkiError> {
    crate::pki::files::write(path, text.as_bytes(), crate::pki::files::KEY_MODE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeds_ca_and_client_certificate() {
        let (ca, _) = Ca::generate("kubernetes").unwrap();
        let text = for_user(
            &ca,
            "https://127.0.0.1:6443",
            "alice",
            &["dev".into()],
            Validity::from_now(std::time::Duration::from_secs(3600)),
        )
        .unwrap();
        let v: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(
            v["clusters"][0]["cluster"]["server"],
            "https://127.0.0.1:6443"
        );
        assert_eq!(v["current-context"], "alice@kubelab");
        let decode = |p: &str| {
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(v.pointer(p).unwrap().as_str().unwrap())
                    .unwrap(),
            )
            .unwrap()
        };
        assert_eq!(
            decode("/clusters/0/cluster/certificate-authority-data"),
            ca.cert_pem()
        );
        assert!(decode("/users/0/user/client-key-data").contains("PRIVATE KEY"));
        let cert = decode("/users/0/user/client-certificate-data");
        let der = crate::pki::files::certificates(Path::new("x"), &cert).unwrap();
        let info = crate::pki::inspect::inspect(&der[0]).unwrap();
        assert_eq!(info.common_name.as_deref(), Some("alice"));
        assert_eq!(info.organizations, ["dev"]);

        let token = render(
            "https://h:1",
            None,
            "bob",
            &Credentials::Token("t0k".into()),
        );
        let v: serde_json::Value = serde_yaml_ng::from_str(&token).unwrap();
        assert_eq!(v["users"][0]["user"]["token"], "t0k");
    }
}
