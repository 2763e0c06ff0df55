//! Kernel modules: from the kernel package's `.ko` files to the few the guest loads, plus a
//! `modules.dep` for them.
//!
//! Debian's kernel package ships no `modules.dep` (its postinst runs `depmod`), so the
//! dependencies are read from each module's `.modinfo` (`depends=`). The guest init reads the
//! `modules.dep` written here, in depmod's format: `path: dep-path...` where a module's line
//! lists its whole dependency closure, the deepest last, so loading the list from the end and
//! the module last is a valid order.

use std::collections::{BTreeMap, BTreeSet};

use super::Error;
use super::elf;

/// One module of the kernel package.
#[derive(Debug, Clone)]
pub struct Module {
    /// Name (`virtio_net`; `-` in file names reads as `_`).
    pub name: String,
    /// Path below `lib/modules/<version>/` (`kernel/drivers/net/virtio_net.ko`).
    pub path: String,
    /// Names of the modules it needs loaded first.
    pub depends: Vec<String>,
    /// The `.ko` file.
    pub data: Vec<u8>,
}

impl Module {
    /// Reads name and dependencies from a `.ko` file.
    pub fn parse(path: &str, data: Vec<u8>) -> Result<Self, Error> {
        let info = elf::modinfo(&data).ok_or_else(|| Error::Module {
            module: path.to_string(),
            problem: "is not an ELF kernel module with a .modinfo section".into(),
        })?;
        let file_name = path.rsplit('/').next().unwrap_or(path);
        let name = info
            .iter()
            .find(|(k, _)| k == "name")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| file_name.trim_end_matches(".ko").replace('-', "_"));
        let depends = info
            .iter()
            .filter(|(k, _)| k == "depends")
            .flat_map(|(_, v)| v.split(','))
            .filter(|d| !d.is_empty())
            .map(|d| d.replace('-', "_"))
            .collect();
        Ok(Module {
            name,
            path: path.to_string(),
            depends,
            data,
        })
    }
}

/// The modules named in `wanted` and everything they depend on, sorted by path. A wanted
/// name listed in `builtin` (the kernel's `modules.builtin`, as names) needs no file and is
/// left out.
pub fn closure<'a>(
    all: &'a BTreeMap<String, Module>,
    builtin: &BTreeSet<String>,
    wanted: &[String],
    kernel_version: &str,
) -> Result<Vec<&'a Module>, Error> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<String> = wanted.to_vec();
    while let Some(name) = stack.pop() {
        if builtin.contains(&name) || !seen.insert(name.clone()) {
            continue;
        }
        let module = all.get(&name).ok_or_else(|| Error::Module {
            module: name.clone(),
            problem: format!(
                "is neither a module file nor built into kernel {kernel_version}; check the name in the recipe's kernel.modules"
            ),
        })?;
        stack.extend(module.depends.iter().cloned());
    }
    let mut out: Vec<&Module> = seen.iter().map(|n| &all[n]).collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// `modules.dep` text for `modules` (a set closed under dependencies).
pub fn modules_dep(modules: &[&Module]) -> String {
    let by_name: BTreeMap<&str, &Module> = modules.iter().map(|m| (m.name.as_str(), *m)).collect();
    let mut out = String::new();
    for module in modules {
        // Breadth-first from the module: direct deps first, their deps after, so the deepest
        // come last, as depmod writes them.
        let mut order: Vec<&str> = Vec::new();
        let mut queue: std::collections::VecDeque<&str> =
            module.depends.iter().map(String::as_str).collect();
        while let Some(name) = queue.pop_front() {
            if let Some(pos) = order.iter().position(|n| *n == name) {
                order.remove(pos);
            }
            order.push(name);
            if let Some(dep) = by_name.get(name) {
                queue.extend(dep.depends.iter().map(String::as_str));
            }
        }
        out.push_str(&module.path);
        out.push(':');
        for name in order {
            if let Some(dep) = by_name.get(name) {
                out.push(' ');
                out.push_str(&dep.path);
            }
        }
        out.push('\n');
    }
    out
}

/// Module names from `modules.builtin` text (one `kernel/.../name.ko` path per line).
pub fn builtin_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.rsplit('/').next())
        .map(|f| f.trim_end_matches(".ko").replace('-', "_"))
        .filter(|n| !n.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(name: &str, path: &str, depends: &[&str]) -> Module {
        Module {
            name: name.into(),
            path: path.into(),
            depends: depends.iter().map(|s| s.to_string()).collect(),
            data: Vec::new(),
        }
    }

    fn kernel() -> BTreeMap<String, Module> {
        [
            module(
                "virtio_net",
                "kernel/drivers/net/virtio_net.ko",
                &["virtio_ring", "virtio", "net_failover"],
            ),
            module(
                "net_failover",
                "kernel/drivers/net/net_failover.ko",
                &["failover"],
            ),
            module("failover", "kernel/net/core/failover.ko", &[]),
            module(
                "virtio",
                "kernel/drivers/virtio/virtio.ko",
                &["virtio_ring"],
            ),
            module("virtio_ring", "kernel/drivers/virtio/virtio_ring.ko", &[]),
            module("squashfs", "kernel/fs/squashfs/squashfs.ko", &[]),
            module("unrelated", "kernel/x/unrelated.ko", &[]),
        ]
        .into_iter()
        .map(|m| (m.name.clone(), m))
        .collect()
    }

    #[test]
    fn closure_adds_dependencies_and_skips_builtins() {
        let all = kernel();
        let builtin = builtin_names("kernel/net/packet/af_packet.ko\n");
        let wanted = vec!["virtio_net".to_string(), "af_packet".to_string()];
        let names: Vec<_> = closure(&all, &builtin, &wanted, "6.1")
            .unwrap()
            .iter()
            .map(|m| m.name.as_str())
            .collect();
        // Sorted by path: drivers/net, drivers/virtio, net/core.
        assert_eq!(
            names,
            [
                "net_failover",
                "virtio_net",
                "virtio",
                "virtio_ring",
                "failover"
            ]
        );
    }

    #[test]
    fn closure_names_an_unknown_module() {
        let err = closure(
            &kernel(),
            &BTreeSet::new(),
            &["virtio_nett".into()],
            "6.1-x",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("virtio_nett") && err.contains("6.1-x"),
            "{err}"
        );
    }

    #[test]
    fn modules_dep_lists_whole_closure_deepest_last() {
        let all = kernel();
        let mods = closure(&all, &BTreeSet::new(), &["virtio_net".into()], "6.1").unwrap();
        let dep = modules_dep(&mods);
        let line = dep
            .lines()
            .find(|l| l.starts_with("kernel/drivers/net/virtio_net.ko:"))
            .unwrap();
        assert_eq!(
            line,
            "kernel/drivers/net/virtio_net.ko: kernel/drivers/virtio/virtio.ko \
             kernel/drivers/net/net_failover.ko kernel/drivers/virtio/virtio_ring.ko \
             kernel/net/core/failover.ko"
        );
        assert!(dep.contains("kernel/net/core/failover.ko:\n"));
    }
}
