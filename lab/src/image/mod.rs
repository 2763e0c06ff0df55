//! Guest images: pinned inputs in, one content-addressed directory out.
//!
//! An image directory is named by the hash of everything that went into it and holds the
//! kernel, the initramfs, the root filesystem and a `manifest.json` ([`Manifest`]) that tells
//! the VM layer how to boot it. Nothing in an image directory changes after it is written.
//!
//! # Layout
//!
//! - [`recipe`]: `images/guest.toml`, what goes in, by name;
//! - [`lock`]: `images/debian.lock`, every package pinned by version and sha256;
//! - `apt`: resolving a recipe into a lock, downloading pinned packages;
//! - `deb`, `elf`, `kmod`: reading packages, ELF files and kernel modules;
//! - `kernel`: the uncompressed, PVH-bootable `vmlinux` out of Debian's `bzImage`;
//! - `tree`, `cpio`, `rootfs`: the initramfs and root filesystem as sorted in-memory trees;
//! - `build`: the pipeline ([`build()`]); `cache`: verified packages and scratch dirs;
//! - [`kubelabd`]: the reproducible static build of the guest binary;
//! - [`cli`]: `kubelab image build|lock`.
//!
//! Cache layout (`<cache>` = [`default_cache_dir`] unless told otherwise):
//! `<cache>/images/<hash>/` finished images, `<cache>/debs/<sha256>.deb` verified packages,
//! `<cache>/tmp/` scratch directories of running builds.

mod apt;
mod build;
mod cache;
pub mod cli;
mod cpio;
mod deb;
mod elf;
mod kernel;
mod kmod;
pub mod kubelabd;
pub mod lock;
mod manifest;
pub mod recipe;
mod rootfs;
mod tree;

use std::path::{Path, PathBuf};

pub use build::{CMDLINE, FORMAT_VERSION, build, input_hash};
pub use lock::{Lock, LockedPackage};
pub use manifest::{MANIFEST_FILE, Manifest};
pub use recipe::Recipe;

/// What to build an image from, and where to keep it.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The recipe, normally `images/guest.toml`.
    pub recipe: PathBuf,
    /// The lock, normally `images/debian.lock`.
    pub lock: PathBuf,
    /// The static `kubelabd` binary to ship (see [`kubelabd::build_kubelabd`]).
    pub kubelabd: PathBuf,
    /// Cache directory; images go to `<cache_dir>/images/<hash>`.
    pub cache_dir: PathBuf,
    /// Where verified `.deb`s are kept (default `<cache_dir>/debs`).
    pub deb_dir: Option<PathBuf>,
}

impl BuildOptions {
    /// The recipe and lock of the checkout at `repo`, the default cache.
    pub fn for_repo(repo: &Path, kubelabd: PathBuf) -> Self {
        Self {
            recipe: repo.join("images/guest.toml"),
            lock: repo.join("images/debian.lock"),
            kubelabd,
            cache_dir: default_cache_dir(),
            deb_dir: None,
        }
    }
}

/// A finished image.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    /// The image directory (`<cache>/images/<hash>`).
    pub dir: PathBuf,
    /// Its manifest; paths in it are relative to `dir`.
    pub manifest: Manifest,
    /// True when the image came from the cache rather than being built now.
    pub cached: bool,
}

impl BuiltImage {
    /// Absolute path of the kernel.
    pub fn kernel(&self) -> PathBuf {
        self.dir.join(&self.manifest.kernel)
    }

    /// Absolute path of the initramfs.
    pub fn initrd(&self) -> PathBuf {
        self.dir.join(&self.manifest.initrd)
    }

    /// Absolute path of the root filesystem, if the image has one.
    pub fn rootfs(&self) -> Option<PathBuf> {
        self.manifest.rootfs.as_ref().map(|r| self.dir.join(r))
    }

    /// The QEMU arguments that boot this image; see [`qemu_image_args`].
    pub fn qemu_args(&self, extra_cmdline: &str, transport: VirtioTransport) -> Vec<String> {
        qemu_image_args(&self.dir, &self.manifest, extra_cmdline, transport)
    }
}

/// Where Debian's `qemu-system-x86` puts qboot, the minimal firmware that boots a `-kernel`
/// faster than SeaBIOS (docs/images.md, "Boot speed").
pub const QBOOT_ROM: &str = "/usr/share/qemu/qboot.rom";

/// How a machine attaches virtio devices. The image's initramfs has the drivers of both,
/// so it boots on `microvm` as well as on `q35` or `pc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VirtioTransport {
    /// PCI (`q35`, `pc`): devices are `virtio-<kind>-pci`.
    Pci,
    /// Memory-mapped (`microvm`, described to the guest by ACPI): `virtio-<kind>-device`.
    Mmio,
}

impl VirtioTransport {
    /// The QEMU device name of a virtio `kind` (`blk`, `net`, `rng`) on this transport.
    pub fn device(self, kind: &str) -> String {
        match self {
            VirtioTransport::Pci => format!("virtio-{kind}-pci"),
            VirtioTransport::Mmio => format!("virtio-{kind}-device"),
        }
    }
}

/// The QEMU arguments that boot the image in `dir`: kernel, initramfs, command line (plus
/// `extra_cmdline`, if any), the root filesystem as a read-only virtio disk (QEMU takes a
/// shared lock, so every VM of a lab can use the same file) and a virtio RNG (entropy at
/// once), both on `transport`. Machine, firmware, CPU, memory, NICs, fw_cfg, serial and QMP
/// are the VM layer's; docs/images.md lists what the image expects of them.
pub fn qemu_image_args(
    dir: &Path,
    manifest: &Manifest,
    extra_cmdline: &str,
    transport: VirtioTransport,
) -> Vec<String> {
    let mut cmdline = manifest.cmdline.clone();
    if !extra_cmdline.is_empty() {
        cmdline.push(' ');
        cmdline.push_str(extra_cmdline);
    }
    let mut args = vec![
        "-kernel".to_string(),
        dir.join(&manifest.kernel).display().to_string(),
        "-initrd".into(),
        dir.join(&manifest.initrd).display().to_string(),
        "-append".into(),
        cmdline,
    ];
    if let Some(rootfs) = &manifest.rootfs {
        args.extend([
            "-drive".into(),
            format!(
                "file={},if=none,id=rootfs,format=raw,readonly=on",
                dir.join(rootfs).display()
            ),
            "-device".into(),
            format!("{},drive=rootfs", transport.device("blk")),
        ]);
    }
    args.extend(["-device".into(), transport.device("rng")]);
    args
}

/// `$KUBELAB_CACHE` if set, else `/var/cache/kubelab`.
pub fn default_cache_dir() -> PathBuf {
    std::env::var_os("KUBELAB_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/kubelab"))
}

/// Why an image could not be built (or a lock not made).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{}: I/O error", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A recipe or lock is not valid TOML of the expected shape.
    #[error("{}: not a valid file of its kind", path.display())]
    Toml {
        /// The file.
        path: PathBuf,
        /// What the parser said (with line and column).
        #[source]
        source: Box<toml::de::Error>,
    },
    /// A recipe or lock field holds an unusable value.
    #[error("{}: {field}: {problem}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Dotted path of the field.
        field: String,
        /// What is wrong.
        problem: String,
    },
    /// The lock was made from another recipe.
    #[error("{}: the lock does not match the recipe: {problem}; run `kubelab image lock`", path.display())]
    StaleLock {
        /// The lock file.
        path: PathBuf,
        /// What differs.
        problem: String,
    },
    /// A package's bytes are not what the lock says.
    #[error(
        "package {package} {version}: sha256 is {actual}, the lock expects {expected}; refusing to use it"
    )]
    HashMismatch {
        /// Package name.
        package: String,
        /// Package version.
        version: String,
        /// sha256 recorded in the lock.
        expected: String,
        /// sha256 of the bytes at hand.
        actual: String,
    },
    /// apt could not resolve or provide a package.
    #[error("package {package}: {problem}")]
    AptUnresolved {
        /// `name` or `name=version`.
        package: String,
        /// What went wrong.
        problem: String,
    },
    /// A program could not be started.
    #[error("could not run {command}")]
    Spawn {
        /// The command line.
        command: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A program failed.
    #[error("{command} failed ({status}): {stderr}")]
    CommandFailed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// The guest binary is not statically linked.
    #[error("{}: kubelabd must be a static ELF executable (build it with `kubelab image build` or RUSTFLAGS=\"-C target-feature=+crt-static\" --target x86_64-unknown-linux-gnu)", path.display())]
    NotStatic {
        /// The binary.
        path: PathBuf,
    },
    /// A kernel module is missing or unreadable.
    #[error("kernel module {module}: {problem}")]
    Module {
        /// Module name or path.
        module: String,
        /// What is wrong.
        problem: String,
    },
    /// An expected file is not in the packages.
    #[error("{}: {problem}", path.display())]
    MissingFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A binary in the root filesystem needs a library the image does not have.
    #[error("{file} needs {library}, which is not in the image (is its package in packages.skip?)")]
    MissingLibrary {
        /// The binary or library (path in the image).
        file: String,
        /// The `DT_NEEDED` name.
        library: String,
    },
}

/// Runs a command and returns its stdout, or an error with its stderr.
/// Reads a text input file (recipe, lock); the error names the file.
fn read_text(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Parses TOML text of type `T`; `path` is only used in messages (with line and column).
fn parse_toml<T: serde::de::DeserializeOwned>(text: &str, path: &Path) -> Result<T, Error> {
    toml::from_str(text).map_err(|source| Error::Toml {
        path: path.to_path_buf(),
        source: Box::new(source),
    })
}

fn run_command(cmd: &mut std::process::Command) -> Result<String, Error> {
    let shown = format!("{cmd:?}");
    let out = cmd.output().map_err(|source| Error::Spawn {
        command: shown.clone(),
        source,
    })?;
    if !out.status.success() {
        return Err(Error::CommandFailed {
            command: shown,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
