//! Loading kernel modules without `modprobe`: read `modules.dep` (depmod's format, written
//! by the image builder), order every listed module after its dependencies, and hand each
//! file to `finit_module`. A module already present (`/sys/module/<name>`, or `EEXIST`) is
//! skipped.

use std::path::Path;

use super::{Context, Error};

/// The load order for a `modules.dep`: every module once, each after all of its
/// dependencies. In depmod's format a line lists the module's whole dependency closure with
/// the deepest last, so walking each list from the end gives dependencies first.
pub fn load_order(modules_dep: &str) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    for line in modules_dep.lines() {
        let Some((module, deps)) = line.split_once(':') else {
            continue;
        };
        for path in deps.split_whitespace().rev().chain([module.trim()]) {
            if !path.is_empty() && !order.iter().any(|p| p == path) {
                order.push(path.to_string());
            }
        }
    }
    order
}

/// The module name of a `.ko` path (`kernel/drivers/char/hw_random/virtio-rng.ko` ->
/// `virtio_rng`), as it appears under `/sys/module`.
pub fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.trim_end_matches(".ko").replace('-', "_")
}

/// Loads every module listed in `dir/modules.dep`. A directory without one loads nothing.
pub fn load_all(dir: &Path) -> Result<(), Error> {
    let dep_file = dir.join("modules.dep");
    let Ok(text) = std::fs::read_to_string(&dep_file) else {
        tracing::warn!(file = %dep_file.display(), "no modules.dep; loading no modules");
        return Ok(());
    };
    for rel in load_order(&text) {
        let name = module_name(&rel);
        if Path::new("/sys/module").join(&name).exists() {
            continue;
        }
        let path = dir.join(&rel);
        let file =
            std::fs::File::open(&path).ctx(|| format!("opening module {}", path.display()))?;
        match rustix::system::finit_module(&file, c"", 0) {
            Ok(()) => tracing::debug!(module = %name, "loaded"),
            Err(rustix::io::Errno::EXIST) => {}
            Err(errno) => {
                return Err(Error::Sys {
                    what: format!("loading module {name} ({})", path.display()),
                    source: errno.into(),
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
    fn dependencies_come_first_and_each_module_once() {
        let dep = "\
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/drivers/net/virtio_net.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/net/net_failover.ko kernel/drivers/virtio/virtio_ring.ko kernel/net/core/failover.ko
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/net/core/failover.ko:
";
        let order = load_order(dep);
        assert_eq!(
            order,
            [
                "kernel/net/core/failover.ko",
                "kernel/drivers/net/net_failover.ko",
                "kernel/drivers/virtio/virtio_ring.ko",
                "kernel/drivers/virtio/virtio.ko",
                "kernel/drivers/net/virtio_net.ko",
            ]
        );
        // Every module appears after each of its dependencies.
        for line in dep.lines() {
            let (module, deps) = line.split_once(':').unwrap();
            let at = |p: &str| order.iter().position(|o| o == p).unwrap();
            for d in deps.split_whitespace() {
                assert!(at(d) < at(module), "{d} must load before {module}");
            }
        }
    }

    #[test]
    fn module_names_use_underscores() {
        assert_eq!(
            module_name("kernel/drivers/char/hw_random/virtio-rng.ko"),
            "virtio_rng"
        );
        assert_eq!(module_name("kernel/fs/overlayfs/overlay.ko"), "overlay");
    }
}
