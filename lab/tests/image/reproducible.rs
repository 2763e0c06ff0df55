//! Building twice, into two fresh caches, gives the same hash and bit-identical files; a
//! third build finds the image in the cache (its time is printed, not asserted).

use std::time::Instant;

use kubelab::image;

use crate::util;

#[test]
fn two_builds_in_fresh_caches_are_bit_identical() {
    let test = "two_builds_in_fresh_caches_are_bit_identical";
    if let Some(reason) = util::missing(&["apt-get", "dpkg-deb", "mksquashfs"], false) {
        return util::skip(test, &reason);
    }
    let started = Instant::now();
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let first = image::build(&util::options(a.path())).unwrap();
    eprintln!("cold build 1: {:.1} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let second = image::build(&util::options(b.path())).unwrap();
    eprintln!("cold build 2: {:.1} s", t.elapsed().as_secs_f64());
    assert!(!first.cached && !second.cached);
    assert_eq!(first.manifest, second.manifest);
    assert_eq!(first.dir.file_name(), second.dir.file_name());
    assert_eq!(
        first.dir.file_name().unwrap().to_str().unwrap(),
        first.manifest.hash
    );

    let mut names: Vec<_> = std::fs::read_dir(&first.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["initrd.img", "manifest.json", "rootfs.squashfs", "vmlinux"].map(std::ffi::OsString::from)
    );
    for name in &names {
        let x = std::fs::read(first.dir.join(name)).unwrap();
        let y = std::fs::read(second.dir.join(name)).unwrap();
        assert!(x == y, "{name:?} differs between the two builds");
        eprintln!("{name:?}: {} bytes, identical", x.len());
    }

    let t = Instant::now();
    let warm = image::build(&util::options(a.path())).unwrap();
    let warm_secs = t.elapsed().as_secs_f64();
    assert!(warm.cached);
    assert_eq!(warm.dir, first.dir);
    eprintln!("warm rebuild: {warm_secs:.3} s (target <= 2 s)");
    eprintln!("{test}: {:.1} s", started.elapsed().as_secs_f64());
}
