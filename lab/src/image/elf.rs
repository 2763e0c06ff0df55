//! The little the builder needs to know about ELF files, read with the `object` crate:
//! a kernel module's `.modinfo` (its name and dependencies), and how an executable or
//! library is linked (an interpreter? which `DT_NEEDED` libraries?).

use object::elf;
use object::read::elf::{Dyn, FileHeader, ProgramHeader, SectionHeader};

type Header = elf::FileHeader64<object::Endianness>;

/// `key=value` pairs of a kernel module's `.modinfo` section, in file order; `None` when
/// `bytes` is not a 64-bit ELF or has no such section.
pub fn modinfo(bytes: &[u8]) -> Option<Vec<(String, String)>> {
    let header = Header::parse(bytes).ok()?;
    let endian = header.endian().ok()?;
    let sections = header.sections(endian, bytes).ok()?;
    let (_, section) = sections.section_by_name(endian, b".modinfo")?;
    let data = section.data(endian, bytes).ok()?;
    Some(
        data.split(|&b| b == 0)
            .filter_map(|item| {
                let item = std::str::from_utf8(item).ok()?;
                let (k, v) = item.split_once('=')?;
                Some((k.to_string(), v.to_string()))
            })
            .collect(),
    )
}

/// How an ELF file is linked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Linking {
    /// Whether it names a program interpreter (`PT_INTERP`): a dynamic executable.
    pub interpreter: bool,
    /// Its `DT_NEEDED` libraries.
    pub needed: Vec<String>,
}

impl Linking {
    /// Runs on its own, without a dynamic loader or shared libraries.
    pub fn is_static(&self) -> bool {
        !self.interpreter && self.needed.is_empty()
    }
}

/// The linking of a 64-bit ELF executable or shared object; `None` for anything else
/// (scripts, data, kernel modules).
pub fn linking(bytes: &[u8]) -> Option<Linking> {
    let header = Header::parse(bytes).ok()?;
    let endian = header.endian().ok()?;
    let kind = header.e_type(endian);
    if kind != elf::ET_EXEC && kind != elf::ET_DYN {
        return None;
    }
    let interpreter = header
        .program_headers(endian, bytes)
        .ok()?
        .iter()
        .any(|ph| ph.p_type(endian) == elf::PT_INTERP);
    let sections = header.sections(endian, bytes).ok()?;
    let mut needed = Vec::new();
    if let Some((entries, strings_index)) = sections.dynamic(endian, bytes).ok()? {
        let strings = sections.strings(endian, bytes, strings_index).ok()?;
        for entry in entries {
            if entry.d_tag(endian) == elf::DT_NEEDED {
                let offset = u32::try_from(entry.d_val(endian)).ok()?;
                let name = strings.get(offset).ok()?;
                needed.push(String::from_utf8_lossy(name).into_owned());
            }
        }
    }
    Some(Linking {
        interpreter,
        needed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_binary_itself_is_a_dynamic_elf_with_libc() {
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let linking = linking(&exe).expect("our own test binary is an ELF executable");
        assert!(linking.interpreter);
        assert!(
            linking.needed.iter().any(|n| n.starts_with("libc.so")),
            "{linking:?}"
        );
        assert!(!linking.is_static());
    }

    #[test]
    fn non_elf_is_none() {
        assert_eq!(linking(b"#!/bin/sh\necho hi\n"), None);
        assert_eq!(modinfo(b"not an elf"), None);
    }
}
