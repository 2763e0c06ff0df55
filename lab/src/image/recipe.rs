//! The image recipe (`images/guest.toml`): what goes into the guest, by name only. Exact
//! versions and hashes live in the lock ([`super::lock`]); `kubelab image lock` derives the
//! lock from the recipe.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Error;

/// The recipe file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// The guest kernel.
    pub kernel: KernelRecipe,
    /// Userspace packages.
    pub packages: PackagesRecipe,
}

/// Which kernel, and which of its modules the guest loads at boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelRecipe {
    /// Debian package name, usually the `linux-image-amd64` metapackage; the lock records the
    /// concrete `linux-image-<abi>-amd64` it pointed to.
    pub package: String,
    /// Modules needed to mount the root filesystem (as `modinfo` names them, `_` not `-`):
    /// they go into the initramfs, and init loads them first.
    pub initramfs_modules: Vec<String>,
    /// Modules init loads from the root filesystem once it runs there. For both lists the
    /// builder adds the dependencies, and init loads dependencies first (`modules.dep`).
    pub modules: Vec<String>,
}

/// Userspace packages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackagesRecipe {
    /// Packages the guest needs; the lock holds their whole dependency closure.
    pub roots: Vec<String>,
    /// Members of the closure whose files are not copied into the root filesystem (packages
    /// only maintainer scripts or PAM login paths need). The builder checks that every ELF
    /// file left in the image still finds its shared libraries, so a wrong entry here fails
    /// the build instead of the guest.
    #[serde(default)]
    pub skip: Vec<String>,
}

impl Recipe {
    /// Reads and validates a recipe file.
    pub fn load(path: &Path) -> Result<Self, Error> {
        Self::parse(&super::read_text(path)?, path)
    }

    /// Parses and validates recipe text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, Error> {
        let recipe: Self = super::parse_toml(text, path)?;
        recipe.validate(path)?;
        Ok(recipe)
    }

    /// Checks names and lists before anything is fetched.
    pub fn validate(&self, path: &Path) -> Result<(), Error> {
        let invalid = |field: String, problem: String| Error::Invalid {
            path: path.to_path_buf(),
            field,
            problem,
        };
        if !is_package_name(&self.kernel.package) {
            return Err(invalid(
                "kernel.package".into(),
                format!("{:?} is not a Debian package name", self.kernel.package),
            ));
        }
        for (field, list) in [
            ("kernel.initramfs_modules", &self.kernel.initramfs_modules),
            ("kernel.modules", &self.kernel.modules),
        ] {
            for (i, module) in list.iter().enumerate() {
                if module.is_empty()
                    || !module
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_')
                {
                    return Err(invalid(
                        format!("{field}[{i}]"),
                        format!("{module:?} is not a module name (letters, digits and `_`)"),
                    ));
                }
            }
        }
        if self.packages.roots.is_empty() {
            return Err(invalid(
                "packages.roots".into(),
                "is empty; the guest needs at least a shell and an SSH server".into(),
            ));
        }
        for (field, list) in [
            ("packages.roots", &self.packages.roots),
            ("packages.skip", &self.packages.skip),
        ] {
            for (i, name) in list.iter().enumerate() {
                if !is_package_name(name) {
                    return Err(invalid(
                        format!("{field}[{i}]"),
                        format!("{name:?} is not a Debian package name"),
                    ));
                }
                if list[..i].contains(name) {
                    return Err(invalid(
                        format!("{field}[{i}]"),
                        format!("{name:?} is listed twice"),
                    ));
                }
            }
        }
        if let Some(name) = self
            .packages
            .skip
            .iter()
            .find(|n| self.packages.roots.contains(n))
        {
            return Err(invalid(
                "packages.skip".into(),
                format!("{name:?} is also a root; a root cannot be skipped"),
            ));
        }
        Ok(())
    }
}

/// Debian policy 5.6.1: lower-case letters, digits, `+ - .`, at least two characters,
/// starting with an alphanumeric.
pub fn is_package_name(name: &str) -> bool {
    name.len() >= 2
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[kernel]
package = "linux-image-amd64"
initramfs_modules = ["squashfs"]
modules = ["virtio_net", "squashfs"]

[packages]
roots = ["busybox-static", "dropbear-bin"]
skip = ["debconf"]
"#;

    #[test]
    fn parses_a_good_recipe() {
        let recipe = Recipe::parse(GOOD, Path::new("guest.toml")).unwrap();
        assert_eq!(recipe.kernel.modules, ["virtio_net", "squashfs"]);
        assert_eq!(recipe.packages.skip, ["debconf"]);
    }

    #[test]
    fn refuses_unknown_keys_naming_the_file() {
        let text = GOOD.replace("[packages]", "[packages]\nextra = 1");
        let err = Recipe::parse(&text, Path::new("images/guest.toml")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("images/guest.toml"), "{msg}");
        let chain = format!("{:?}", err);
        assert!(chain.contains("extra"), "{chain}");
    }

    #[test]
    fn refuses_bad_module_and_package_names() {
        let text = GOOD.replace(
            "\"virtio_net\", \"squashfs\"",
            "\"virtio_net\", \"squash-fs\"",
        );
        let msg = Recipe::parse(&text, Path::new("g.toml"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("kernel.modules[1]"), "{msg}");
        let text = GOOD.replace("\"dropbear-bin\"", "\"Dropbear\"");
        let msg = Recipe::parse(&text, Path::new("g.toml"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("packages.roots[1]"), "{msg}");
    }

    #[test]
    fn refuses_skipping_a_root() {
        let text = GOOD.replace("skip = [\"debconf\"]", "skip = [\"dropbear-bin\"]");
        let msg = Recipe::parse(&text, Path::new("g.toml"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("also a root"), "{msg}");
    }
}
