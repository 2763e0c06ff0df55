//! Several Organization (O) attributes in one subject — how Kubernetes reads a user's groups
//! from a client certificate — which rcgen cannot express: its `DistinguishedName` holds one
//! value per attribute type.
//!
//! How: the first group is a real `O`; each further group is written under a placeholder
//! attribute type whose DER OID has the same length as `O`'s (`1.3.127.<i>`, 3 bytes like
//! `2.5.4.10`). The [`Patching`] signer rewrites the placeholder OIDs inside the subject to
//! `O` before signing, and [`patch_certificate`] applies the same same-length rewrite to the
//! issued certificate, so the certificate carries exactly the bytes that were signed.
//! Rewrites touch only the subject, whose values are printable text (checked), so the
//! pattern cannot occur inside a value. The caller verifies the result (parse + signature).

use rcgen::{DnType, KeyPair, PublicKeyData, SigningKey};
use x509_parser::prelude::{FromDer as _, TbsCertificate, X509Certificate};

/// DER content of the `O` OID, 2.5.4.10.
const ORGANIZATION: [u8; 3] = [0x55, 0x04, 0x0a];
/// Most groups one certificate may carry.
pub const MAX_GROUPS: usize = 100;

/// The placeholder attribute type of group number `i` (1-based; group 0 is a real `O`).
pub fn placeholder(i: usize) -> DnType {
    DnType::CustomDnType(vec![1, 3, 127, i as u64])
}

/// The OID TLV of placeholder `i`: `06 03 2B 7F <i>` (1.3 → 0x2B).
fn placeholder_tlv(i: usize) -> [u8; 5] {
    [0x06, 0x03, 0x2b, 0x7f, i as u8]
}

/// Whether a name can go into a subject that is rewritten (printable, no control bytes).
pub fn printable(name: &str) -> bool {
    !name.chars().any(char::is_control)
}

/// Rewrites every placeholder OID in `subject` to `O`.
fn rewrite(subject: &mut [u8], count: usize) {
    for i in 1..count {
        let tlv = placeholder_tlv(i);
        let mut at = 0;
        while let Some(pos) = subject[at..].windows(5).position(|w| w == tlv) {
            let p = at + pos;
            subject[p + 2..p + 5].copy_from_slice(&ORGANIZATION);
            at = p + 5;
        }
    }
}

/// The byte range of the subject inside `tbs` (a DER TBSCertificate).
fn subject_range(tbs: &[u8]) -> Option<std::ops::Range<usize>> {
    let (_, parsed) = TbsCertificate::from_der(tbs).ok()?;
    let raw = parsed.subject().as_raw();
    let start = raw.as_ptr() as usize - tbs.as_ptr() as usize;
    Some(start..start + raw.len())
}

/// A signer that signs the TBS with placeholders rewritten (see the module doc).
pub struct Patching<'a> {
    /// The CA key.
    pub key: &'a KeyPair,
    /// Number of groups (placeholders are 1..count).
    pub count: usize,
}

impl PublicKeyData for Patching<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.key.der_bytes()
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        PublicKeyData::algorithm(self.key)
    }
}

impl SigningKey for Patching<'_> {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        let mut tbs = msg.to_vec();
        let range = subject_range(msg).ok_or(rcgen::Error::CouldNotParseCertificate)?;
        rewrite(&mut tbs[range], self.count);
        self.key.sign(&tbs)
    }
}

/// Applies the rewrite to an issued certificate's subject (in place).
pub fn patch_certificate(der: &mut [u8], count: usize) -> Option<()> {
    let (tbs_start, range) = {
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        let tbs = cert.tbs_certificate.as_ref();
        let start = tbs.as_ptr() as usize - der.as_ptr() as usize;
        (start, subject_range(tbs)?)
    };
    rewrite(
        &mut der[tbs_start + range.start..tbs_start + range.end],
        count,
    );
    Some(())
}
