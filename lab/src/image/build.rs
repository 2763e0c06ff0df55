//! `build`: recipe + lock + `kubelabd` -> one content-addressed image directory.
//!
//! 1. Load and cross-check recipe and lock; check `kubelabd` is a static ELF.
//! 2. Hash every input (builder format version, recipe bytes, lock bytes, `kubelabd` bytes,
//!    the `mksquashfs` version). The hash names the image: `<cache>/images/<hash>/`. If that
//!    directory exists it is complete (it is only ever created by a rename) and is returned.
//! 3. Otherwise, in a scratch directory under `<cache>/tmp/` (removed on every exit path):
//!    fetch the needed `.deb`s into `<cache>/debs/<sha256>.deb` (apt-get download, each file
//!    verified against the lock before it is kept or used), read the kernel and the wanted
//!    modules, assemble initramfs and root filesystem trees, check shared libraries, write
//!    the kernel (`vmlinux`, decompressed for PVH boot), `initrd.img`, `rootfs.squashfs`
//!    and — last — `manifest.json`.
//! 4. Rename the finished directory into place. A concurrent build of the same hash that
//!    wins the race is fine: its result is identical.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use sha2::{Digest, Sha256};

use super::cache::{fetch, mkdir, read, remove_stale_scratch, set_mode, write};
use super::kmod::{self, Module};
use super::lock::{Lock, LockedPackage};
use super::recipe::Recipe;
use super::tree::Tree;
use super::{BuildOptions, BuiltImage, Error, MANIFEST_FILE, Manifest, deb, elf, kernel, rootfs};

/// Version of the builder's output format. The builder's own source is an input of the hash
/// too ([`BUILDER_SOURCE`]), so this only needs a bump when something outside those files
/// changes the bytes written.
pub const FORMAT_VERSION: u32 = 5;

/// The source of every module that decides the bytes of an image. Hashing it with the other
/// inputs means a changed builder never reuses an image built by an older one: the cache is
/// keyed on everything that made the output, like a Nix store path. (`cli`, `cache`, `apt`,
/// `lock` and `recipe` only find and check inputs, and `kubelabd` builds one; the inputs are
/// hashed themselves.)
const BUILDER_SOURCE: &[&str] = &[
    include_str!("build.rs"),
    include_str!("cpio.rs"),
    include_str!("deb.rs"),
    include_str!("elf.rs"),
    include_str!("kernel.rs"),
    include_str!("kmod.rs"),
    include_str!("manifest.rs"),
    include_str!("rootfs.rs"),
    include_str!("tree.rs"),
];

/// The image's name: the hash of everything that decides its bytes.
fn image_hash(
    builder: &[&str],
    recipe: &[u8],
    lock: &[u8],
    kubelabd: &[u8],
    squashfs_version: &str,
) -> String {
    let builder = builder.concat();
    input_hash(&[
        ("format", FORMAT_VERSION.to_string().as_bytes()),
        ("builder", builder.as_bytes()),
        ("recipe", recipe),
        ("lock", lock),
        ("kubelabd", kubelabd),
        ("mksquashfs", squashfs_version.as_bytes()),
    ])
}

/// Kernel command line every VM of the image gets. `quiet`: every console line costs a trap
/// into QEMU; `cryptomgr.notests`: the crypto self-tests take ~1 s of a TCG boot
/// (docs/images.md, "Boot speed"); `panic=-1`: a panic reboots at once, which ends QEMU
/// under `-no-reboot`.
pub const CMDLINE: &str =
    "console=ttyS0 root=/dev/vda rootfstype=squashfs ro quiet cryptomgr.notests panic=-1";

/// File names inside an image directory (the kernel's is chosen by [`kernel::boot_kernel`]).
const INITRD_FILE: &str = "initrd.img";
const ROOTFS_FILE: &str = "rootfs.squashfs";

/// Builds the image described by `options`, or returns it from the cache.
pub fn build(options: &BuildOptions) -> Result<BuiltImage, Error> {
    let started = Instant::now();
    let recipe_bytes = read(&options.recipe)?;
    let lock_bytes = read(&options.lock)?;
    let recipe = Recipe::parse(&String::from_utf8_lossy(&recipe_bytes), &options.recipe)?;
    let lock = Lock::parse(&String::from_utf8_lossy(&lock_bytes), &options.lock)?;
    lock.check_matches(&recipe, &options.lock)?;
    let kubelabd = read(&options.kubelabd)?;
    match elf::linking(&kubelabd) {
        Some(linking) if linking.is_static() => {}
        _ => {
            return Err(Error::NotStatic {
                path: options.kubelabd.clone(),
            });
        }
    }
    let squashfs_version = mksquashfs_version()?;

    let hash = image_hash(
        BUILDER_SOURCE,
        &recipe_bytes,
        &lock_bytes,
        &kubelabd,
        &squashfs_version,
    );
    let images = options.cache_dir.join("images");
    let dir = images.join(&hash);
    if dir.join(MANIFEST_FILE).exists() {
        let manifest = Manifest::load(&dir).map_err(|source| Error::Io {
            path: dir.join(MANIFEST_FILE),
            source,
        })?;
        tracing::info!(%hash, dir = %dir.display(), "image found in cache");
        return Ok(BuiltImage {
            dir,
            manifest,
            cached: true,
        });
    }

    let tmp_root = options.cache_dir.join("tmp");
    mkdir(&tmp_root)?;
    mkdir(&images)?;
    remove_stale_scratch(&tmp_root);
    let scratch = tempfile::Builder::new()
        .prefix(&format!("build-{}-", std::process::id()))
        .tempdir_in(&tmp_root)
        .map_err(|source| Error::Io {
            path: tmp_root.clone(),
            source,
        })?;

    let skip: BTreeSet<&str> = recipe.packages.skip.iter().map(String::as_str).collect();
    let wanted: Vec<&LockedPackage> = lock
        .packages
        .iter()
        .filter(|p| p.name == lock.kernel || !skip.contains(p.name.as_str()))
        .collect();
    let debs_dir = options
        .deb_dir
        .clone()
        .unwrap_or_else(|| options.cache_dir.join("debs"));
    let debs = fetch(&wanted, &debs_dir, scratch.path())?;
    tracing::info!(packages = debs.len(), "packages fetched and verified");

    // Kernel and modules.
    let kernel = read_kernel(&debs[&lock.kernel])?;
    let early = kmod::closure(
        &kernel.modules,
        &kernel.builtin,
        &recipe.kernel.initramfs_modules,
        &kernel.version,
    )?;
    let all_wanted: Vec<String> = recipe
        .kernel
        .initramfs_modules
        .iter()
        .chain(&recipe.kernel.modules)
        .cloned()
        .collect();
    let late = kmod::closure(
        &kernel.modules,
        &kernel.builtin,
        &all_wanted,
        &kernel.version,
    )?;

    // Root filesystem.
    let mut root = Tree::new();
    rootfs::add_base(&mut root);
    for package in &wanted {
        if package.name != lock.kernel {
            rootfs::add_package(&mut root, &debs[&package.name])?;
        }
    }
    rootfs::add_busybox_links(&mut root, scratch.path())?;
    root.file(rootfs::KUBELABD_PATH, 0o755, kubelabd.clone());
    rootfs::add_modules(
        &mut root,
        &format!("usr/lib/modules/{}", kernel.version),
        &late,
        &kmod::modules_dep(&late),
    );
    rootfs::check_libraries(&root)?;

    // Output files, manifest last.
    let out = scratch.path().join("out");
    mkdir(&out)?;
    let boot_kernel = kernel::boot_kernel(&kernel.vmlinuz)?;
    write(&out.join(boot_kernel.file), &boot_kernel.data)?;
    let initramfs = rootfs::initramfs(
        &kubelabd,
        &kernel.version,
        &early,
        &kmod::modules_dep(&early),
    );
    write(&out.join(INITRD_FILE), &initramfs.to_cpio())?;
    let stage = scratch.path().join("stage");
    mkdir(&stage)?;
    root.write_to(&stage)?;
    mksquashfs(&stage, &out.join(ROOTFS_FILE))?;
    let manifest = Manifest {
        hash: hash.clone(),
        kernel_version: kernel.version.clone(),
        kernel: boot_kernel.file.into(),
        initrd: INITRD_FILE.into(),
        rootfs: Some(ROOTFS_FILE.into()),
        cmdline: CMDLINE.into(),
    };
    let mut json = serde_json::to_vec_pretty(&manifest).expect("a manifest always serializes");
    json.push(b'\n');
    write(&out.join(MANIFEST_FILE), &json)?;
    set_mode(&out, 0o755)?;

    match std::fs::rename(&out, &dir) {
        Ok(()) => {}
        // Someone else finished the same build first; theirs is bit-identical.
        Err(_) if dir.join(MANIFEST_FILE).exists() => {}
        Err(source) => return Err(Error::Io { path: dir, source }),
    }
    tracing::info!(%hash, dir = %dir.display(), seconds = started.elapsed().as_secs_f64(), "image built");
    Ok(BuiltImage {
        dir,
        manifest,
        cached: false,
    })
}

/// Hex sha256 over labelled, length-prefixed inputs (so no two input sets collide by
/// concatenation).
pub fn input_hash(inputs: &[(&str, &[u8])]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"kubelab-image\0");
    for (label, bytes) in inputs {
        hasher.update(label.as_bytes());
        hasher.update([0]);
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    }
    hex::encode(hasher.finalize())
}

/// What the builder takes from the kernel package.
struct Kernel {
    version: String,
    vmlinuz: Vec<u8>,
    modules: BTreeMap<String, Module>,
    builtin: BTreeSet<String>,
}

/// Reads `vmlinuz-*`, every `.ko` (with its modinfo) and `modules.builtin` from the kernel
/// package. All modules are held in memory briefly (a few hundred MB): the dependency closure
/// is only known once all of them have been read.
fn read_kernel(deb_path: &Path) -> Result<Kernel, Error> {
    let mut vmlinuz = None;
    let mut version = None;
    let mut modules = BTreeMap::new();
    let mut builtin = BTreeSet::new();
    deb::for_each_entry(
        deb_path,
        |path| {
            path.starts_with("boot/vmlinuz-")
                || (path.starts_with("lib/modules/")
                    && (path.ends_with(".ko") || path.ends_with("/modules.builtin")))
        },
        |entry| {
            if let deb::Entry::File { path, data, .. } = entry {
                if let Some(v) = path.strip_prefix("boot/vmlinuz-") {
                    version = Some(v.to_string());
                    vmlinuz = Some(data);
                } else if path.ends_with("/modules.builtin") {
                    builtin = kmod::builtin_names(&String::from_utf8_lossy(&data));
                } else {
                    // lib/modules/<version>/<rel>
                    let rel = path.splitn(4, '/').nth(3).unwrap_or(&path).to_string();
                    let module = Module::parse(&rel, data)?;
                    modules.insert(module.name.clone(), module);
                }
            }
            Ok(())
        },
    )?;
    let (Some(version), Some(vmlinuz)) = (version, vmlinuz) else {
        return Err(Error::MissingFile {
            path: deb_path.to_path_buf(),
            problem: "the kernel package holds no boot/vmlinuz-*".into(),
        });
    };
    Ok(Kernel {
        version,
        vmlinuz,
        modules,
        builtin,
    })
}

/// First line of `mksquashfs -version`: part of the input hash, since it shapes the bytes.
fn mksquashfs_version() -> Result<String, Error> {
    let out = Command::new("mksquashfs")
        .arg("-version")
        .output()
        .map_err(|source| Error::Spawn {
            command: "mksquashfs -version (install squashfs-tools: scripts/setup-host)".into(),
            source,
        })?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string())
}

/// Packs `stage` into a squashfs with every source of variation pinned: owners root, all
/// times 0, no xattrs, sorted directories (mksquashfs's default order), reproducible mode.
/// lz4: the fastest decompression under TCG (see docs/images.md).
fn mksquashfs(stage: &Path, out: &Path) -> Result<(), Error> {
    let mut cmd = Command::new("mksquashfs");
    cmd.arg(stage)
        .arg(out)
        .args(["-noappend", "-all-root", "-no-xattrs", "-reproducible"])
        .args(["-mkfs-time", "0", "-all-time", "0"])
        .args(["-comp", "lz4", "-quiet", "-no-progress"]);
    let shown = format!("{cmd:?}");
    let output = cmd.output().map_err(|source| Error::Spawn {
        command: shown.clone(),
        source,
    })?;
    if !output.status.success() {
        return Err(Error::CommandFailed {
            command: shown,
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_hash_depends_on_every_input_and_its_boundaries() {
        let base = input_hash(&[("a", b"xy"), ("b", b"z")]);
        assert_eq!(base, input_hash(&[("a", b"xy"), ("b", b"z")]));
        assert_ne!(base, input_hash(&[("a", b"x"), ("b", b"yz")]));
        assert_ne!(base, input_hash(&[("a", b"xy"), ("b", b"Z")]));
        assert_eq!(base.len(), 64);
    }

    #[test]
    fn a_changed_builder_changes_the_image_hash() {
        let hash = |builder: &[&str]| image_hash(builder, b"recipe", b"lock", b"elf", "4.5.1");
        let base = hash(BUILDER_SOURCE);
        let mut edited: Vec<String> = BUILDER_SOURCE.iter().map(|s| s.to_string()).collect();
        edited[3].push(' ');
        let edited: Vec<&str> = edited.iter().map(String::as_str).collect();
        assert_ne!(base, hash(&edited), "one byte more in one builder module");
        assert_ne!(
            base,
            image_hash(BUILDER_SOURCE, b"recipe", b"lock", b"elf", "4.6")
        );
        assert_eq!(base, hash(BUILDER_SOURCE));
    }

    /// Every module of the image builder is either hashed as builder source or listed here as
    /// one that only finds and checks inputs (which are hashed themselves) — so a new module
    /// that writes image bytes cannot be forgotten in [`BUILDER_SOURCE`].
    #[test]
    fn every_builder_module_is_hashed_or_known_not_to_shape_the_output() {
        // `kubelabd.rs` builds the guest binary, whose bytes are an input of the hash.
        const INPUT_ONLY: &[&str] = &[
            "apt.rs",
            "cache.rs",
            "cli.rs",
            "kubelabd.rs",
            "lock.rs",
            "mod.rs",
            "recipe.rs",
        ];
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/image");
        let mut missing = Vec::new();
        for entry in std::fs::read_dir(&dir).expect("read src/image") {
            let path = entry.expect("dir entry").path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if path.extension().is_none_or(|e| e != "rs") || INPUT_ONLY.contains(&name.as_str()) {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("read module");
            if !BUILDER_SOURCE.contains(&text.as_str()) {
                missing.push(name);
            }
        }
        assert!(
            missing.is_empty(),
            "modules neither in BUILDER_SOURCE nor in INPUT_ONLY: {missing:?}"
        );
    }
}
