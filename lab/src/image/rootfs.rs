//! Assembling the two file trees of an image from verified packages:
//!
//! - the **root filesystem**: the files of every non-skipped package of the lock (minus
//!   documentation), laid out merged-`/usr` like Debian bookworm, plus busybox applet links,
//!   the few `/etc` files a root-only guest needs, `kubelabd`, and the kernel modules loaded
//!   after the switch to it;
//! - the **initramfs**: `kubelabd` as `/init`, `/dev/console`, and just the modules needed to
//!   mount the root filesystem.
//!
//! Both are plain [`Tree`]s; writing them out is someone else's job.

use std::path::Path;
use std::process::Command;

use super::Error;
use super::deb::{self, Entry};
use super::elf;
use super::kmod::Module;
use super::tree::{Node, Tree};

/// Paths (after the `/usr` merge) of package content a guest never reads.
const EXCLUDED: &[&str] = &[
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/lintian",
    "usr/share/locale",
    "usr/share/bug",
    "usr/share/bash-completion",
    // glibc's charset converters (iconv): ~8 MB nothing in the guest uses.
    "usr/lib/x86_64-linux-gnu/gconv",
];

/// Where `kubelabd` lives in the root filesystem.
pub const KUBELABD_PATH: &str = "usr/bin/kubelabd";

/// Debian bookworm's merged `/usr`: `/bin`, `/sbin`, `/lib*` are links into `/usr`, while
/// packages still ship files under the old paths.
pub fn merged_usr(path: &str) -> String {
    let path = path.trim_start_matches('/');
    for top in ["bin", "sbin", "lib", "lib64", "lib32", "libx32"] {
        if path == top || path.starts_with(&format!("{top}/")) {
            return format!("usr/{path}");
        }
    }
    path.to_string()
}

fn excluded(path: &str) -> bool {
    EXCLUDED
        .iter()
        .any(|e| path == *e || path.starts_with(&format!("{e}/")))
}

/// Adds the files of one verified package to the root filesystem tree.
pub fn add_package(tree: &mut Tree, deb_path: &Path) -> Result<(), Error> {
    let mut hard_links = Vec::new();
    deb::for_each_entry(
        deb_path,
        |path| !excluded(&merged_usr(path)),
        |entry| {
            match entry {
                Entry::Dir { path, mode } => {
                    let path = merged_usr(&path);
                    if !excluded(&path) {
                        tree.dir(&path, mode);
                    }
                }
                Entry::File { path, mode, data } => tree.file(&merged_usr(&path), mode, data),
                Entry::Symlink { path, target } => {
                    let path = merged_usr(&path);
                    if !excluded(&path) {
                        tree.symlink(&path, &target);
                    }
                }
                Entry::HardLink { path, target } => hard_links.push((path, target)),
            }
            Ok(())
        },
    )?;
    for (path, target) in hard_links {
        if let Some(node @ Node::File { .. }) = tree.get(&merged_usr(&target)).cloned() {
            tree.insert(&merged_usr(&path), node);
        }
    }
    Ok(())
}

/// The skeleton every root filesystem has: `/usr`-merge links, mount points, and the `/etc`
/// files for a guest where only root logs in, by key.
pub fn add_base(tree: &mut Tree) {
    for dir in ["usr/bin", "usr/sbin", "usr/lib", "usr/lib64"] {
        tree.dir(dir, 0o755);
    }
    for top in ["bin", "sbin", "lib", "lib64"] {
        tree.symlink(top, &format!("usr/{top}"));
    }
    for dir in [
        "dev", "proc", "sys", "run", "mnt", "etc", "var", "var/log", "home",
    ] {
        tree.dir(dir, 0o755);
    }
    tree.dir("root", 0o700);
    tree.dir("tmp", 0o1777);
    tree.dir("var/tmp", 0o1777);
    let files: &[(&str, u32, &str)] = &[
        (
            "etc/passwd",
            0o644,
            "root:x:0:0:root:/root:/bin/sh\n\
             tcpdump:x:100:100:tcpdump:/nonexistent:/bin/false\n\
             nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        ),
        // tcpdump (Debian's build) drops privileges to user `tcpdump` after opening the
        // capture; without that user it refuses to run unless given `-Z root`.
        (
            "etc/group",
            0o644,
            "root:x:0:\ntcpdump:x:100:\nnogroup:x:65534:\n",
        ),
        // `*`: no password can ever match; login is by key only (dropbear -s).
        (
            "etc/shadow",
            0o600,
            "root:*:0:0:99999:7:::\ntcpdump:*:0:0:99999:7:::\nnobody:*:0:0:99999:7:::\n",
        ),
        ("etc/shells", 0o644, "/bin/sh\n/bin/ash\n"),
        ("etc/hosts", 0o644, "127.0.0.1\tlocalhost\n"),
        (
            "etc/nsswitch.conf",
            0o644,
            "passwd: files\ngroup: files\nshadow: files\nhosts: files\n",
        ),
        (
            "etc/profile",
            0o644,
            "export PATH=/usr/sbin:/usr/bin:/sbin:/bin\nexport PS1='\\h:\\w\\$ '\n",
        ),
        (
            "etc/os-release",
            0o644,
            "NAME=\"kubelab guest\"\nID=kubelab\nID_LIKE=debian\nVERSION_CODENAME=bookworm\n",
        ),
    ];
    for (path, mode, text) in files {
        tree.file(path, *mode, text.as_bytes().to_vec());
    }
}

/// Adds a link to busybox for every applet it has and no package already provides. The
/// applet list comes from the pinned busybox binary itself (`busybox --list-full`), run on
/// the build host (same architecture) from a scratch copy.
pub fn add_busybox_links(tree: &mut Tree, scratch: &Path) -> Result<(), Error> {
    let busybox = "usr/bin/busybox";
    let Some(Node::File { data, .. }) = tree.get(busybox) else {
        return Err(Error::MissingFile {
            path: busybox.into(),
            problem: "busybox-static must be a root of the recipe: it is the guest's shell".into(),
        });
    };
    let copy = scratch.join("busybox");
    std::fs::write(&copy, data).map_err(|source| Error::Io {
        path: copy.clone(),
        source,
    })?;
    std::fs::set_permissions(&copy, std::os::unix::fs::PermissionsExt::from_mode(0o755)).map_err(
        |source| Error::Io {
            path: copy.clone(),
            source,
        },
    )?;
    let out = Command::new(&copy)
        .arg("--list-full")
        .output()
        .map_err(|source| Error::Spawn {
            command: format!("{} --list-full", copy.display()),
            source,
        })?;
    if !out.status.success() {
        return Err(Error::CommandFailed {
            command: "busybox --list-full".into(),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    for applet in String::from_utf8_lossy(&out.stdout).lines() {
        let path = merged_usr(applet.trim());
        // `linuxrc` and the like live outside the bin directories: not wanted.
        if !(path.starts_with("usr/bin/") || path.starts_with("usr/sbin/")) {
            continue;
        }
        if !tree.contains(&path) {
            tree.symlink(&path, "/usr/bin/busybox");
        }
    }
    Ok(())
}

/// Adds kernel modules and their `modules.dep` under `lib/modules/<version>/` (as written
/// in `tree`: `usr/lib/...` for the root filesystem, `lib/...` for the initramfs).
pub fn add_modules(tree: &mut Tree, base: &str, modules: &[&Module], modules_dep: &str) {
    for module in modules {
        let data = super::kmod::strip_signature(&module.data).to_vec();
        tree.file(&format!("{base}/{}", module.path), 0o644, data);
    }
    tree.file(
        &format!("{base}/modules.dep"),
        0o644,
        modules_dep.as_bytes().to_vec(),
    );
}

/// The initramfs: `kubelabd` as `/init`, a console node, mount points, modules.
pub fn initramfs(
    kubelabd: &[u8],
    kernel_version: &str,
    modules: &[&Module],
    modules_dep: &str,
) -> Tree {
    let mut tree = Tree::new();
    for dir in ["dev", "proc", "sys", "run", "mnt", "root"] {
        tree.dir(dir, 0o755);
    }
    // The kernel opens /dev/console for init's stdio before devtmpfs can be mounted.
    tree.insert(
        "dev/console",
        Node::CharDev {
            mode: 0o600,
            major: 5,
            minor: 1,
        },
    );
    tree.file("init", 0o755, kubelabd.to_vec());
    add_modules(
        &mut tree,
        &format!("lib/modules/{kernel_version}"),
        modules,
        modules_dep,
    );
    tree
}

/// Checks that every dynamically linked ELF file in `tree` finds each `DT_NEEDED` library in
/// the tree's library directories, so a library missing from the image (for instance through
/// `packages.skip`) fails the build, not the guest.
pub fn check_libraries(tree: &Tree) -> Result<(), Error> {
    const LIB_DIRS: &[&str] = &["usr/lib/x86_64-linux-gnu", "usr/lib", "usr/lib64"];
    for (path, node) in tree.iter() {
        let Node::File { data, .. } = node else {
            continue;
        };
        if path.starts_with("usr/lib/modules/") {
            continue;
        }
        let Some(linking) = elf::linking(data) else {
            continue;
        };
        // Its own directory too: that is where `$ORIGIN` run paths point.
        let own_dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        for lib in &linking.needed {
            if !LIB_DIRS
                .iter()
                .chain([&own_dir])
                .any(|d| tree.contains(&format!("{d}/{lib}")))
            {
                return Err(Error::MissingLibrary {
                    file: path.to_string(),
                    library: lib.clone(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_usr() {
        assert_eq!(
            merged_usr("./bin/sh".trim_start_matches("./")),
            "usr/bin/sh"
        );
        assert_eq!(
            merged_usr("lib64/ld-linux-x86-64.so.2"),
            "usr/lib64/ld-linux-x86-64.so.2"
        );
        assert_eq!(merged_usr("lib"), "usr/lib");
        assert_eq!(merged_usr("library/x"), "library/x");
        assert_eq!(merged_usr("usr/sbin/dropbear"), "usr/sbin/dropbear");
        assert_eq!(merged_usr("etc/default/dropbear"), "etc/default/dropbear");
    }

    #[test]
    fn excludes_docs_but_not_lookalikes() {
        assert!(excluded("usr/share/doc/libc6/copyright"));
        assert!(excluded("usr/share/man"));
        assert!(!excluded("usr/share/docker/x"));
    }

    #[test]
    fn library_check_names_the_file_and_the_missing_library() {
        let mut tree = Tree::new();
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        tree.file("usr/bin/tool", 0o755, me);
        let err = check_libraries(&tree).unwrap_err().to_string();
        assert!(err.contains("usr/bin/tool") && err.contains(".so"), "{err}");
    }

    #[test]
    fn base_has_merged_links_and_private_root_home() {
        let mut tree = Tree::new();
        add_base(&mut tree);
        assert_eq!(
            tree.get("lib64"),
            Some(&Node::Symlink {
                target: "usr/lib64".into()
            })
        );
        assert_eq!(tree.get("root"), Some(&Node::Dir { mode: 0o700 }));
        assert!(matches!(
            tree.get("etc/shadow"),
            Some(Node::File { mode: 0o600, .. })
        ));
    }
}
