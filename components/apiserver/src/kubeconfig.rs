//! The admin kubeconfig `kubelabd apiserver --kubeconfig-out` writes for kubectl.
//!
//! This increment serves plain HTTP on loopback, so the kubeconfig carries no credentials;
//! the security increment adds the CA and client certificate here.

use std::path::Path;

/// The kubeconfig text for a server URL (`http://127.0.0.1:6443`).
pub fn render(server: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kubelab\n  cluster:\n    server: {server}\ncontexts:\n- name: kubelab\n  context:\n    cluster: kubelab\n    user: admin\n    namespace: default\ncurrent-context: kubelab\nusers:\n- name: admin\n  user: {{}}\npreferences: {{}}\n"
    )
}

/// Writes the kubeconfig atomically (temp file + rename), mode 0600.
pub fn write(path: &Path, server: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(render(server).as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_the_server() {
        let text = super::render("http://127.0.0.1:1234");
        assert!(text.contains("server: http://127.0.0.1:1234"));
        assert!(text.contains("current-context: kubelab"));
    }
}
