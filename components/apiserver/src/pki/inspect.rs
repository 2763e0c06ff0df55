//! What the server needs to know about a DER certificate: subject (CN = user, O = groups, as
//! Kubernetes reads client certificates), SANs, validity, CA flag, public key — parsed with
//! x509-parser.

use std::net::IpAddr;

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer as _, X509Certificate};

/// The facts of one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Subject common name.
    pub common_name: Option<String>,
    /// Subject organizations, in order.
    pub organizations: Vec<String>,
    /// Basic constraints CA flag.
    pub is_ca: bool,
    /// Not valid before (Unix seconds).
    pub not_before: i64,
    /// Not valid after (Unix seconds).
    pub not_after: i64,
    /// DNS SANs.
    pub dns_names: Vec<String>,
    /// IP SANs.
    pub ip_addresses: Vec<IpAddr>,
    /// DER SubjectPublicKeyInfo (compared with a key file's public half).
    pub public_key_info: Vec<u8>,
}

/// Parses a DER certificate; the error says what is wrong with it.
pub fn inspect(der: &[u8]) -> Result<CertInfo, String> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let name = |it: &mut dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue<'_>>| {
        it.filter_map(|a| a.as_str().ok().map(str::to_string))
            .collect::<Vec<_>>()
    };
    let mut dns_names = Vec::new();
    let mut ip_addresses = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(d) => dns_names.push(d.to_string()),
                GeneralName::IPAddress(b) => match b.len() {
                    4 => {
                        ip_addresses.push(IpAddr::from(<[u8; 4]>::try_from(*b).unwrap_or_default()))
                    }
                    16 => ip_addresses
                        .push(IpAddr::from(<[u8; 16]>::try_from(*b).unwrap_or_default())),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    Ok(CertInfo {
        common_name: name(&mut cert.subject().iter_common_name())
            .into_iter()
            .next(),
        organizations: name(&mut cert.subject().iter_organization()),
        is_ca: cert.is_ca(),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        dns_names,
        ip_addresses,
        public_key_info: cert.public_key().raw.to_vec(),
    })
}

/// Whether `cert` carries a valid signature by the key of `issuer` (both DER).
pub fn signed_by(cert: &[u8], issuer: &[u8]) -> bool {
    let (Ok((_, c)), Ok((_, i))) = (
        X509Certificate::from_der(cert),
        X509Certificate::from_der(issuer),
    ) else {
        return false;
    };
    c.verify_signature(Some(i.public_key())).is_ok()
}

/// Unix seconds as an RFC 3339 UTC time, for messages.
pub fn show_time(unix: i64) -> String {
    jiff::Timestamp::from_second(unix)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| unix.to_string())
}
