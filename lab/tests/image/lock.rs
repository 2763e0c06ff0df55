//! The lock is enforced: a package whose bytes do not match its recorded sha256 stops the
//! build, naming the package and both hashes, and leaves no image or scratch directory.

use std::time::Instant;

use kubelab::image::{self, Error, Lock};

use crate::util;

#[test]
fn a_tampered_hash_in_the_lock_is_refused() {
    let test = "a_tampered_hash_in_the_lock_is_refused";
    if let Some(reason) = util::missing(&["apt-get", "dpkg-deb", "mksquashfs"], false) {
        return util::skip(test, &reason);
    }
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let repo = util::repo();
    let mut lock = Lock::load(&repo.join("images/debian.lock")).unwrap();
    let victim = lock
        .packages
        .iter_mut()
        .find(|p| p.name == "busybox-static")
        .expect("busybox-static is locked");
    let real = victim.sha256.clone();
    // Flip the last hex digit: a well-formed hash that is not the package's.
    let mut tampered = real.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == '0' { '1' } else { '0' });
    victim.sha256 = tampered.clone();
    let lock_path = dir.path().join("debian.lock");
    std::fs::write(&lock_path, lock.to_text()).unwrap();

    let cache = dir.path().join("cache");
    let mut options = util::options(&cache);
    options.lock = lock_path;
    let err = image::build(&options).expect_err("a tampered lock must not build");
    match &err {
        Error::HashMismatch {
            package,
            expected,
            actual,
            ..
        } => {
            assert_eq!(package, "busybox-static");
            assert_eq!(expected, &tampered);
            assert_eq!(actual, &real);
        }
        other => panic!("expected a hash mismatch, got: {other}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("busybox-static") && msg.contains(&tampered) && msg.contains(&real),
        "{msg}"
    );
    let images: Vec<_> = std::fs::read_dir(cache.join("images")).unwrap().collect();
    assert!(images.is_empty(), "no image may be left behind: {images:?}");
    let scratch: Vec<_> = std::fs::read_dir(cache.join("tmp")).unwrap().collect();
    assert!(
        scratch.is_empty(),
        "scratch dirs must be removed on failure: {scratch:?}"
    );
    assert!(
        !cache.join("debs").join(format!("{tampered}.deb")).exists(),
        "the refused package must not enter the cache"
    );
    eprintln!("{test}: {:.1} s", started.elapsed().as_secs_f64());
}

#[test]
fn a_damaged_cached_package_is_fetched_again_not_used() {
    let test = "a_damaged_cached_package_is_fetched_again_not_used";
    if let Some(reason) = util::missing(&["apt-get", "dpkg-deb", "mksquashfs"], false) {
        return util::skip(test, &reason);
    }
    let started = Instant::now();
    // A verified package cache to copy from (the boot tests' shared cache).
    let reference = util::shared_image();
    let dir = tempfile::tempdir().unwrap();
    let debs = dir.path().join("debs");
    std::fs::create_dir(&debs).unwrap();
    for entry in std::fs::read_dir(util::shared_cache().join("debs")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), debs.join(entry.file_name())).unwrap();
    }
    let lock = Lock::load(&util::repo().join("images/debian.lock")).unwrap();
    let busybox = lock.get("busybox-static").unwrap();
    let cached = debs.join(format!("{}.deb", busybox.sha256));
    let mut bytes = std::fs::read(&cached).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&cached, &bytes).unwrap();

    let mut options = util::options(&dir.path().join("cache"));
    options.deb_dir = Some(debs.clone());
    let image = image::build(&options).expect("the damaged file is replaced, the build succeeds");
    assert_eq!(image.manifest.hash, reference.manifest.hash);
    for file in ["initrd.img", "rootfs.squashfs"] {
        assert!(
            std::fs::read(image.dir.join(file)).unwrap()
                == std::fs::read(reference.dir.join(file)).unwrap(),
            "{file} differs from the reference build"
        );
    }
    busybox
        .verify(&std::fs::read(&cached).unwrap())
        .expect("the cache now holds the right bytes");
    eprintln!("{test}: {:.1} s", started.elapsed().as_secs_f64());
}
