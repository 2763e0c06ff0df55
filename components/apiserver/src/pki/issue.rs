//! The cluster CA and the certificates it issues (rcgen, ECDSA P-256 keys):
//! - the CA itself (self-signed, 10 years, as kubeadm makes it),
//! - the API server's serving certificate (SANs: [`ServingNames`]; server auth; 1 year),
//! - client certificates (CN = user, O = groups; client auth), which is how Kubernetes names
//!   a user by certificate — the admin kubeconfig and `kubelabd kubeconfig` use them.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use ipnetwork::Ipv4Network;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::{PkiError, groups};

/// How long the generated CA is valid (kubeadm: 10 years).
pub const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// How long a serving or client certificate is valid (kubeadm: 1 year).
pub const LEAF_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// Certificates start a little in the past, so a peer with a slightly slow clock accepts them.
const BACKDATE: Duration = Duration::from_secs(300);

/// A validity window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// Not before.
    pub not_before: SystemTime,
    /// Not after.
    pub not_after: SystemTime,
}

impl Validity {
    /// From now (backdated a little) for `lifetime`.
    pub fn from_now(lifetime: Duration) -> Validity {
        let now = SystemTime::now();
        Validity {
            not_before: now - BACKDATE,
            not_after: now + lifetime,
        }
    }
}

/// The names the serving certificate must carry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServingNames {
    /// IP SANs.
    pub ips: BTreeSet<IpAddr>,
    /// DNS SANs.
    pub dns: BTreeSet<String>,
}

/// The DNS names every serving certificate carries, as kube-apiserver's: the in-cluster
/// names of the `kubernetes` Service and `localhost`.
pub const REQUIRED_DNS_NAMES: [&str; 5] = [
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];

impl ServingNames {
    /// Kubernetes' set: `localhost`, `127.0.0.1`, the `kubernetes[.default[.svc[.cluster.local]]]`
    /// names, the first address of the Service range (the `kubernetes` Service's ClusterIP),
    /// the bind address (unless unspecified) and the advertise address, plus `extra` entries
    /// (`--tls-sans`: IPs or DNS names).
    pub fn required(
        bind: IpAddr,
        advertise: Option<IpAddr>,
        service_range: Ipv4Network,
        extra: &[String],
    ) -> ServingNames {
        let mut n = ServingNames::default();
        for d in REQUIRED_DNS_NAMES {
            n.dns.insert(d.to_string());
        }
        n.ips.insert(IpAddr::from([127, 0, 0, 1]));
        n.ips.insert(IpAddr::V4(first_service_ip(service_range)));
        if !bind.is_unspecified() {
            n.ips.insert(bind);
        }
        if let Some(a) = advertise {
            n.ips.insert(a);
        }
        for e in extra {
            match e.parse::<IpAddr>() {
                Ok(ip) => n.ips.insert(ip),
                Err(_) => n.dns.insert(e.to_ascii_lowercase()),
            };
        }
        n
    }

    /// Entries of `self` that `have` lacks, as text.
    pub fn missing_from(&self, dns: &[String], ips: &[IpAddr]) -> Vec<String> {
        let mut out: Vec<String> = self
            .dns
            .iter()
            .filter(|d| !dns.iter().any(|h| h.eq_ignore_ascii_case(d)))
            .cloned()
            .collect();
        out.extend(
            self.ips
                .iter()
                .filter(|i| !ips.contains(i))
                .map(|i| i.to_string()),
        );
        out
    }
}

/// The first usable address of the Service range: the `kubernetes` Service's ClusterIP.
pub fn first_service_ip(range: Ipv4Network) -> std::net::Ipv4Addr {
    let base = u32::from(range.network());
    std::net::Ipv4Addr::from(base.wrapping_add(1))
}

/// A certificate and its freshly generated key, in PEM and DER.
pub struct Issued {
    /// Certificate PEM.
    pub cert_pem: String,
    /// PKCS#8 private key PEM.
    pub key_pem: String,
    /// Certificate DER.
    pub cert_der: CertificateDer<'static>,
    /// Private key DER.
    pub key_der: PrivateKeyDer<'static>,
}

fn random_serial() -> SerialNumber {
    // 16 random bytes, top bit clear so the DER integer stays positive.
    let mut bytes = *uuid::Uuid::new_v4().as_bytes();
    bytes[0] &= 0x7f;
    SerialNumber::from_slice(&bytes)
}

fn params(common_name: &str, validity: Validity) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name
        .push(DnType::CommonName, common_name.to_string());
    p.not_before = validity.not_before.into();
    p.not_after = validity.not_after.into();
    p.serial_number = Some(random_serial());
    p
}

fn generate(
    what: &str,
    f: impl FnOnce() -> Result<(rcgen::Certificate, KeyPair), rcgen::Error>,
) -> Result<Issued, PkiError> {
    let (cert, key) = f().map_err(|source| PkiError::Generate {
        what: what.to_string(),
        source,
    })?;
    Ok(Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        cert_der: cert.der().clone(),
        key_der: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    })
}

/// The cluster CA: its certificate and the key that signs.
pub struct Ca {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").finish_non_exhaustive()
    }
}

impl Ca {
    /// A new self-signed CA named `common_name`; returns it and its key PEM.
    pub fn generate(common_name: &str) -> Result<(Ca, String), PkiError> {
        let fail = |source| PkiError::Generate {
            what: "the cluster CA".into(),
            source,
        };
        let key = KeyPair::generate().map_err(fail)?;
        let mut p = params(common_name, Validity::from_now(CA_VALIDITY));
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ];
        let cert = p.self_signed(&key).map_err(fail)?;
        let key_pem = key.serialize_pem();
        let ca = Ca {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            issuer: Issuer::new(p, key),
        };
        Ok((ca, key_pem))
    }

    /// A CA from its certificate and key (checked by the caller to belong together).
    pub fn from_parts(
        cert_pem: String,
        cert_der: CertificateDer<'static>,
        key: KeyPair,
    ) -> Result<Ca, rcgen::Error> {
        let issuer = Issuer::from_ca_cert_der(&cert_der, key)?;
        Ok(Ca {
            cert_pem,
            cert_der,
            issuer,
        })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The API server's serving certificate.
    pub fn issue_serving(&self, names: &ServingNames) -> Result<Issued, PkiError> {
        generate("the serving certificate", || {
            let key = KeyPair::generate()?;
            let mut p = params("kube-apiserver", Validity::from_now(LEAF_VALIDITY));
            p.subject_alt_names = names
                .dns
                .iter()
                .map(|d| d.clone().try_into().map(SanType::DnsName))
                .collect::<Result<Vec<_>, _>>()?;
            p.subject_alt_names
                .extend(names.ips.iter().map(|i| SanType::IpAddress(*i)));
            p.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            p.use_authority_key_identifier_extension = true;
            Ok((p.signed_by(&key, &self.issuer)?, key))
        })
    }

    /// A client certificate naming `user` (CN) in `groups` (one O attribute each, in order;
    /// see [`super::groups`] for how several O attributes are written).
    pub fn issue_client(
        &self,
        user: &str,
        groups: &[String],
        validity: Validity,
    ) -> Result<Issued, PkiError> {
        let what = format!("a client certificate for {user:?}");
        if let Some(bad) = std::iter::once(user)
            .chain(groups.iter().map(String::as_str))
            .find(|n| !groups::printable(n))
        {
            return Err(PkiError::BadName(format!(
                "{bad:?} contains control characters; user and group names must be printable"
            )));
        }
        if groups.len() > groups::MAX_GROUPS {
            return Err(PkiError::BadName(format!(
                "{} groups; a certificate carries at most {}",
                groups.len(),
                groups::MAX_GROUPS
            )));
        }
        let (cert, key) = (|| {
            let key = KeyPair::generate()?;
            let mut p = params(user, validity);
            for (i, g) in groups.iter().enumerate() {
                let ty = if i == 0 {
                    DnType::OrganizationName
                } else {
                    groups::placeholder(i)
                };
                p.distinguished_name.push(ty, g.clone());
            }
            p.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            p.use_authority_key_identifier_extension = true;
            let signer = groups::Patching {
                key: self.issuer.key(),
                count: groups.len(),
            };
            let issuer = Issuer::from_ca_cert_der(&self.cert_der, signer)?;
            Ok((p.signed_by(&key, &issuer)?, key))
        })()
        .map_err(|source| PkiError::Generate {
            what: what.clone(),
            source,
        })?;
        let mut der = cert.der().to_vec();
        if groups.len() > 1 {
            groups::patch_certificate(&mut der, groups.len())
                .ok_or_else(|| PkiError::Verify(format!("{what}: cannot rewrite the subject")))?;
        }
        // The certificate must say exactly what was asked, with a valid CA signature.
        let info =
            super::inspect::inspect(&der).map_err(|e| PkiError::Verify(format!("{what}: {e}")))?;
        if info.common_name.as_deref() != Some(user)
            || info.organizations != groups
            || !super::inspect::signed_by(&der, &self.cert_der)
        {
            return Err(PkiError::Verify(format!(
                "{what}: the issued certificate does not verify"
            )));
        }
        Ok(Issued {
            cert_pem: super::files::pem("CERTIFICATE", &der),
            key_pem: key.serialize_pem(),
            cert_der: CertificateDer::from(der),
            key_der: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::inspect::{inspect, signed_by};
    use super::*;

    #[test]
    fn required_names_are_kubernetes_set() {
        let n = ServingNames::required(
            "10.0.0.5".parse().unwrap(),
            Some("192.168.1.2".parse().unwrap()),
            "10.96.0.0/12".parse().unwrap(),
            &["api.example.org".into(), "10.9.9.9".into()],
        );
        for d in REQUIRED_DNS_NAMES.into_iter().chain(["api.example.org"]) {
            assert!(n.dns.contains(d), "{d}");
        }
        assert!(REQUIRED_DNS_NAMES.contains(&"kubernetes.default.svc.cluster.local"));
        for i in [
            "127.0.0.1",
            "10.96.0.1",
            "10.0.0.5",
            "192.168.1.2",
            "10.9.9.9",
        ] {
            assert!(n.ips.contains(&i.parse().unwrap()), "{i}");
        }
        let any = ServingNames::required(
            "0.0.0.0".parse().unwrap(),
            None,
            "10.0.0.0/24".parse().unwrap(),
            &[],
        );
        assert!(!any.ips.contains(&"0.0.0.0".parse().unwrap()));
        assert!(any.ips.contains(&"10.0.0.1".parse().unwrap()));
        assert_eq!(
            any.missing_from(&["LOCALHOST".into()], &["127.0.0.1".parse().unwrap()]),
            vec![
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
                "10.0.0.1"
            ]
        );
    }

    #[test]
    fn ca_issues_serving_and_client_certificates() {
        let (ca, _) = Ca::generate("kubelab-ca").unwrap();
        let info = inspect(ca.cert_der()).unwrap();
        assert!(info.is_ca);
        assert_eq!(info.common_name.as_deref(), Some("kubelab-ca"));
        assert!(info.not_after - info.not_before > 9 * 365 * 24 * 3600);

        let names = ServingNames::required(
            "127.0.0.1".parse().unwrap(),
            None,
            "10.96.0.0/12".parse().unwrap(),
            &[],
        );
        let serving = ca.issue_serving(&names).unwrap();
        let s = inspect(&serving.cert_der).unwrap();
        assert!(!s.is_ca);
        assert!(names.missing_from(&s.dns_names, &s.ip_addresses).is_empty());
        assert!(signed_by(&serving.cert_der, ca.cert_der()));

        let client = ca
            .issue_client(
                "alice",
                &["dev".into(), "ops".into()],
                Validity::from_now(LEAF_VALIDITY),
            )
            .unwrap();
        let c = inspect(&client.cert_der).unwrap();
        assert_eq!(c.common_name.as_deref(), Some("alice"));
        assert_eq!(c.organizations, ["dev", "ops"]);
        assert!(signed_by(&client.cert_der, ca.cert_der()));
        // Many groups, in order; one group; none.
        let many: Vec<String> = (0..12).map(|i| format!("group-{i}")).collect();
        for gs in [many.clone(), vec!["solo".to_string()], vec![]] {
            let c = ca
                .issue_client("bob", &gs, Validity::from_now(LEAF_VALIDITY))
                .unwrap();
            assert_eq!(inspect(&c.cert_der).unwrap().organizations, gs);
            assert!(signed_by(&c.cert_der, ca.cert_der()));
            let reparsed =
                super::super::files::certificates(std::path::Path::new("x"), &c.cert_pem).unwrap();
            assert_eq!(reparsed[0], c.cert_der);
        }
        assert!(
            ca.issue_client("bad\nname", &[], Validity::from_now(LEAF_VALIDITY))
                .is_err()
        );
        let (other, _) = Ca::generate("other").unwrap();
        assert!(!signed_by(&client.cert_der, other.cert_der()));
    }
}
