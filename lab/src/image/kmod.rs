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

/// The trailer the kernel's `scripts/sign-file` appends to a signed module.
const SIGNATURE_MAGIC: &[u8] = b"~Module signature appended~\n";

/// `data` without its appended signature, if it has one.
///
/// Why: the kernel checks an appended signature on every `finit_module` (a PKCS#7 RSA
/// verification, slow when emulated under TCG) but loads an unsigned module without any check
/// when signatures are not enforced (Debian: `CONFIG_MODULE_SIG_FORCE` unset, no lockdown
/// without Secure Boot); it only marks the kernel tainted. The package's integrity is already
/// established by the lock's sha256 before the module is read.
///
/// Layout (`include/linux/module_signature.h`): `... module | signature | struct
/// module_signature (12 bytes, sig_len big-endian in the last 4) | magic`.
pub fn strip_signature(data: &[u8]) -> &[u8] {
    let Some(body) = data.strip_suffix(SIGNATURE_MAGIC) else {
        return data;
    };
    let Some(info_at) = body.len().checked_sub(12) else {
        return data;
    };
    let info = &body[info_at..];
    let sig_len = u32::from_be_bytes([info[8], info[9], info[10], info[11]]) as usize;
    let extra = info[3] as usize + info[4] as usize; // signer name and key id (0 for PKCS#7)
    match info_at.checked_sub(sig_len + extra) {
        Some(end) => &body[..end],
        None => data,
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
    fn strips_an_appended_signature_and_leaves_unsigned_modules_alone() {
        let module = b"\x7fELF module body".to_vec();
        let signature = vec![0xab; 5];
        let mut info = vec![0u8; 12];
        info[2] = 2; // PKCS#7
        info[8..12].copy_from_slice(&(signature.len() as u32).to_be_bytes());
        let signed = [module.clone(), signature, info, SIGNATURE_MAGIC.to_vec()].concat();
        assert_eq!(strip_signature(&signed), &module[..]);
        assert_eq!(strip_signature(&module), &module[..]);
        // A lying length never cuts outside the file.
        let mut bogus = signed.clone();
        let at = bogus.len() - SIGNATURE_MAGIC.len() - 4;
        bogus[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(strip_signature(&bogus), &bogus[..]);
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
