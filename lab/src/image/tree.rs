//! An in-memory file tree: the single model from which both the initramfs (cpio) and the
//! root filesystem (a staging directory handed to `mksquashfs`) are written.
//!
//! Entries are kept in a `BTreeMap` keyed by their path, so every output is produced in one
//! sorted order and carries only what the tree says: modes from the packages or the builder,
//! owner root, time zero. Nothing of the build host (umask, owner, mtimes) reaches an image.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::Error;
use super::cpio;

/// One entry of a [`Tree`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A directory with its permission bits.
    Dir {
        /// Permission bits (e.g. `0o755`).
        mode: u32,
    },
    /// A regular file.
    File {
        /// Permission bits.
        mode: u32,
        /// Contents.
        data: Vec<u8>,
    },
    /// A symbolic link.
    Symlink {
        /// Link target, exactly as stored.
        target: String,
    },
    /// A character device node (only `/dev/console` in the initramfs).
    CharDev {
        /// Permission bits.
        mode: u32,
        /// Device major number.
        major: u32,
        /// Device minor number.
        minor: u32,
    },
}

/// A file tree keyed by relative path (`usr/bin/busybox`, no leading slash).
#[derive(Debug, Default, Clone)]
pub struct Tree {
    entries: BTreeMap<String, Node>,
}

impl Tree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `node` at `path`, creating missing parent directories (mode 0755). A directory
    /// added over an existing directory keeps the first one's mode; anything else replaces
    /// what was there (a later package wins, as with dpkg `Replaces`).
    pub fn insert(&mut self, path: &str, node: Node) {
        let path = path.trim_matches('/');
        if path.is_empty() {
            return;
        }
        let mut prefix = String::new();
        for part in path.split('/').collect::<Vec<_>>().split_last().unwrap().1 {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            self.entries
                .entry(prefix.clone())
                .or_insert(Node::Dir { mode: 0o755 });
        }
        match (self.entries.get(path), &node) {
            (Some(Node::Dir { .. }), Node::Dir { .. }) => {}
            _ => {
                self.entries.insert(path.to_string(), node);
            }
        }
    }

    /// Adds a directory.
    pub fn dir(&mut self, path: &str, mode: u32) {
        self.insert(path, Node::Dir { mode });
    }

    /// Adds a regular file.
    pub fn file(&mut self, path: &str, mode: u32, data: impl Into<Vec<u8>>) {
        self.insert(
            path,
            Node::File {
                mode,
                data: data.into(),
            },
        );
    }

    /// Adds a symbolic link.
    pub fn symlink(&mut self, path: &str, target: &str) {
        self.insert(
            path,
            Node::Symlink {
                target: target.to_string(),
            },
        );
    }

    /// The entry at `path`, if any.
    pub fn get(&self, path: &str) -> Option<&Node> {
        self.entries.get(path.trim_matches('/'))
    }

    /// Whether `path` exists in the tree.
    pub fn contains(&self, path: &str) -> bool {
        self.get(path).is_some()
    }

    /// All entries in path order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Writes the tree below `root` (which must exist and be empty). Device nodes are not
    /// written: the root filesystem gets its `/dev` from devtmpfs at boot.
    pub fn write_to(&self, root: &Path) -> Result<(), Error> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Io { path, source }
        };
        for (rel, node) in &self.entries {
            let path = root.join(rel);
            match node {
                Node::Dir { .. } => std::fs::create_dir(&path).map_err(io(&path))?,
                Node::File { mode, data } => {
                    std::fs::write(&path, data).map_err(io(&path))?;
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode))
                        .map_err(io(&path))?;
                }
                Node::Symlink { target } => {
                    std::os::unix::fs::symlink(target, &path).map_err(io(&path))?
                }
                Node::CharDev { .. } => {}
            }
        }
        // Directory modes last, so a read-only directory does not stop its own filling.
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).map_err(io(root))?;
        for (rel, node) in &self.entries {
            if let Node::Dir { mode } = node {
                let path = root.join(rel);
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode))
                    .map_err(io(&path))?;
            }
        }
        Ok(())
    }

    /// The tree as a newc cpio archive (an initramfs), entries in path order.
    pub fn to_cpio(&self) -> Vec<u8> {
        let mut writer = cpio::Writer::new();
        for (rel, node) in &self.entries {
            match node {
                Node::Dir { mode } => writer.dir(rel, *mode),
                Node::File { mode, data } => writer.file(rel, *mode, data),
                Node::Symlink { target } => writer.symlink(rel, target),
                Node::CharDev { mode, major, minor } => writer.char_dev(rel, *mode, *major, *minor),
            }
        }
        writer.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_creates_parents_and_keeps_first_dir_mode() {
        let mut tree = Tree::new();
        tree.dir("root", 0o700);
        tree.file("root/.profile", 0o644, b"x".to_vec());
        tree.dir("root", 0o755);
        tree.file("usr/bin/busybox", 0o755, b"elf".to_vec());
        assert_eq!(tree.get("root"), Some(&Node::Dir { mode: 0o700 }));
        assert_eq!(tree.get("usr"), Some(&Node::Dir { mode: 0o755 }));
        assert_eq!(tree.get("usr/bin"), Some(&Node::Dir { mode: 0o755 }));
        let paths: Vec<_> = tree.iter().map(|(p, _)| p).collect();
        assert_eq!(
            paths,
            ["root", "root/.profile", "usr", "usr/bin", "usr/bin/busybox"]
        );
    }

    #[test]
    fn write_to_sets_modes_from_the_tree_not_the_umask() {
        let mut tree = Tree::new();
        tree.dir("tmp", 0o1777);
        tree.file("etc/shadow", 0o600, b"root:*:::::::\n".to_vec());
        tree.symlink("bin", "usr/bin");
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        tree.write_to(&root).unwrap();
        let mode = |p: &str| {
            std::fs::metadata(root.join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777
        };
        assert_eq!(mode("tmp"), 0o1777);
        assert_eq!(mode("etc/shadow"), 0o600);
        assert_eq!(
            std::fs::read_link(root.join("bin")).unwrap(),
            Path::new("usr/bin")
        );
    }
}
