//! Guest images: pinned inputs in, one content-addressed directory out.
//!
//! An image directory is named by the hash of everything that went into it and holds the
//! kernel, the initramfs, the root filesystem and a `manifest.json` ([`Manifest`]) that tells
//! the VM layer how to boot it. Nothing in an image directory changes after it is written.

mod manifest;

pub use manifest::{MANIFEST_FILE, Manifest};
