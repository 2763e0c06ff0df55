//! The guest binary is built the way the image needs it: static, and without the checkout or
//! cargo-home paths in it (`--remap-path-prefix`), so where the repository lives does not
//! change the image hash.

use crate::util;

#[test]
fn kubelabd_is_static_and_does_not_contain_build_paths() {
    let test = "kubelabd_is_static_and_does_not_contain_build_paths";
    if let Some(reason) = util::missing(&["cargo"], false) {
        return util::skip(test, &reason);
    }
    let bytes = std::fs::read(util::kubelabd()).unwrap();
    let contains = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    let repo = util::repo().display().to_string();
    assert!(
        !contains(&repo),
        "the checkout path {repo} leaks into kubelabd"
    );
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cargo")));
    if let Some(cargo_home) = cargo_home {
        let cargo_home = cargo_home.display().to_string();
        assert!(!contains(&cargo_home), "{cargo_home} leaks into kubelabd");
    }
    // A static executable names no interpreter (no PT_INTERP string in the binary).
    assert!(
        !contains("/lib64/ld-linux-x86-64.so.2"),
        "kubelabd is dynamically linked"
    );
}
