//! The kernel file an image ships: the uncompressed `vmlinux` taken out of Debian's
//! `bzImage`, booted by QEMU through its PVH entry point.
//!
//! Why: under TCG the kernel's own decompressor (xz, ~66 MB out) runs emulated and takes
//! 6-9 s of a boot, before the kernel prints its first line. Decompressing once on the host
//! at build time removes that; QEMU loads an ELF `vmlinux` that has a Xen PVH entry note
//! (`CONFIG_PVH=y`, as in Debian's kernel) straight into guest memory. A kernel without the
//! note is shipped as its `bzImage` unchanged.
//!
//! The `bzImage` layout (Documentation/arch/x86/boot.rst): `setup_sects` at 0x1f1, the
//! `HdrS` magic at 0x202, the protocol version at 0x206, and (protocol >= 2.08)
//! `payload_offset`/`payload_length` at 0x248/0x24c, relative to the protected-mode code that
//! starts at `(setup_sects + 1) * 512`.

use std::io::Write;
use std::process::{Command, Stdio};

use object::read::elf::{FileHeader, ProgramHeader};

use super::Error;

/// Xen's ELF note owner and the PVH 32-bit entry point note type (xen/include/public/elfnote.h).
const XEN_NOTE_NAME: &[u8] = b"Xen";
const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;

/// The kernel as the image ships it.
pub struct BootKernel {
    /// File name in the image directory.
    pub file: &'static str,
    /// Contents.
    pub data: Vec<u8>,
}

/// Turns Debian's `bzImage` into the kernel file to ship.
pub fn boot_kernel(bzimage: &[u8]) -> Result<BootKernel, Error> {
    match extract_vmlinux(bzimage)? {
        Some(vmlinux) if has_pvh_entry(&vmlinux) => Ok(BootKernel {
            file: "vmlinux",
            data: vmlinux,
        }),
        _ => {
            tracing::warn!(
                "kernel has no PVH entry point; shipping the compressed bzImage (slower boots under TCG)"
            );
            Ok(BootKernel {
                file: "vmlinuz",
                data: bzimage.to_vec(),
            })
        }
    }
}

/// The decompressed payload of a `bzImage`; `None` if the header is too old to say where
/// the payload is.
fn extract_vmlinux(bzimage: &[u8]) -> Result<Option<Vec<u8>>, Error> {
    let bad = |problem: &str| Error::MissingFile {
        path: "boot/vmlinuz-*".into(),
        problem: problem.to_string(),
    };
    if bzimage.len() < 0x250 || &bzimage[0x202..0x206] != b"HdrS" {
        return Err(bad("is not a bzImage (no HdrS header)"));
    }
    let version = u16::from_le_bytes([bzimage[0x206], bzimage[0x207]]);
    if version < 0x208 {
        return Ok(None);
    }
    let setup_sects = match bzimage[0x1f1] {
        0 => 4,
        n => n as usize,
    };
    let le32 =
        |at: usize| u32::from_le_bytes(bzimage[at..at + 4].try_into().expect("4 bytes")) as usize;
    let start = (setup_sects + 1) * 512 + le32(0x248);
    let end = start + le32(0x24c);
    let payload = bzimage
        .get(start..end)
        .ok_or_else(|| bad("payload lies outside the file"))?;
    let tool: &[&str] = match payload {
        [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => &["xz", "-dc", "--single-stream"],
        [0x1f, 0x8b, ..] => &["gzip", "-dc"],
        [0x28, 0xb5, 0x2f, 0xfd, ..] => &["zstd", "-dcq"],
        _ => return Ok(None),
    };
    Ok(Some(decompress(tool, payload)?))
}

/// Pipes `input` through a decompressor (the ordinary host tool) and returns its output.
fn decompress(tool: &[&str], input: &[u8]) -> Result<Vec<u8>, Error> {
    let command = tool.join(" ");
    let mut child = Command::new(tool[0])
        .args(&tool[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| Error::Spawn {
            command: command.clone(),
            source,
        })?;
    let mut stdin = child.stdin.take().expect("piped");
    let input = input.to_vec();
    // Feed from a thread: the output is far larger than a pipe buffer.
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().map_err(|source| Error::Spawn {
        command: command.clone(),
        source,
    })?;
    let _ = feeder.join();
    // The payload is followed by padding and a trailer the tool may complain about; what
    // matters is that the output is a whole ELF file, which the caller checks.
    if out.stdout.is_empty() {
        return Err(Error::CommandFailed {
            command,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(out.stdout)
}

/// Whether `vmlinux` is a 64-bit ELF with a Xen `PHYS32_ENTRY` note (QEMU's PVH boot).
fn has_pvh_entry(vmlinux: &[u8]) -> bool {
    let Ok(header) = object::elf::FileHeader64::<object::Endianness>::parse(vmlinux) else {
        return false;
    };
    let Ok(endian) = header.endian() else {
        return false;
    };
    let Ok(segments) = header.program_headers(endian, vmlinux) else {
        return false;
    };
    segments.iter().any(|segment| {
        let Ok(Some(mut notes)) = segment.notes(endian, vmlinux) else {
            return false;
        };
        while let Ok(Some(note)) = notes.next() {
            if note.name() == XEN_NOTE_NAME && note.n_type(endian).0 == XEN_ELFNOTE_PHYS32_ENTRY {
                return true;
            }
        }
        false
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_file_that_is_not_a_bzimage() {
        let err = boot_kernel(&[0u8; 4096])
            .err()
            .expect("not a bzImage")
            .to_string();
        assert!(err.contains("HdrS"), "{err}");
    }

    #[test]
    fn an_elf_without_the_xen_note_has_no_pvh_entry() {
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(!has_pvh_entry(&me));
        assert!(!has_pvh_entry(b"not elf"));
    }
}
