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

/// The guest build is hermetic: after this test process (nextest's environment: `CARGO_*`,
/// `NEXTEST_*`, `RUSTUP_TOOLCHAIN`, `LD_LIBRARY_PATH`) has built kubelabd, a build with a
/// shell's environment and `kubelab image build` run from here rebuild nothing: the binary
/// is not rewritten and its bytes do not change. Prints how long each warm build took.
#[test]
fn a_build_from_any_caller_is_a_no_op_once_built() {
    let test = "a_build_from_any_caller_is_a_no_op_once_built";
    if let Some(reason) = util::missing(&["cargo", "apt-get", "dpkg-deb", "mksquashfs"], false) {
        return util::skip(test, &reason);
    }
    let binary = util::kubelabd();
    let bytes = std::fs::read(&binary).unwrap();
    let mtime = || std::fs::metadata(&binary).unwrap().modified().unwrap();
    let built_at = mtime();

    // A login shell's environment: only HOME and PATH.
    let shell = |name: &str| {
        matches!(name, "HOME" | "PATH")
            .then(|| std::env::var_os(name))
            .flatten()
    };
    let workspace = std::fs::canonicalize(util::repo()).unwrap();
    let started = std::time::Instant::now();
    let out = kubelab::image::kubelabd::command(&workspace, shell)
        .output()
        .unwrap();
    let from_shell = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        mtime(),
        built_at,
        "a build with a shell's environment rebuilt kubelabd"
    );

    // `kubelab image build` from this process, with the image already in the shared cache:
    // the warm build a test sees (cargo's check of kubelabd plus the cache lookup).
    util::shared_image();
    let started = std::time::Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kubelab"))
        .args(["image", "build", "--cache"])
        .arg(util::shared_cache())
        .output()
        .unwrap();
    let from_test = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("taken from the cache"), "{stderr}");
    assert_eq!(
        mtime(),
        built_at,
        "`kubelab image build` run from a test rebuilt kubelabd"
    );
    assert_eq!(std::fs::read(&binary).unwrap(), bytes);
    eprintln!(
        "warm builds: kubelabd with a shell's environment {from_shell:.2} s; \
         `kubelab image build` under the test's environment {from_test:.2} s"
    );
}

/// `kubelab image build | head -n1` once `head` has gone: the build completes, the dropped
/// second line is not an error, and nothing panics.
#[test]
fn image_build_into_a_closed_pipe_exits_quietly() {
    let test = "image_build_into_a_closed_pipe_exits_quietly";
    if let Some(reason) = util::missing(&["cargo", "apt-get", "dpkg-deb", "mksquashfs"], false) {
        return util::skip(test, &reason);
    }
    util::shared_image();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kubelab"))
        .args(["image", "build", "--cache"])
        .arg(util::shared_cache())
        .stdout(writer)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("taken from the cache"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
