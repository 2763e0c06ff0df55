//! ServiceAccount tokens: ES256-signed JWTs in the shape of Kubernetes' bound tokens, issued
//! by the TokenRequest API (`serviceaccounts/<name>/token`, `kubectl create token`) and
//! accepted as bearer tokens while the ServiceAccount still exists with the same uid.
//!
//! Claims: `iss` (the issuer), `sub` (`system:serviceaccount:<ns>:<name>`), `aud`, `exp`,
//! `iat`, `nbf`, `jti`, and `kubernetes.io: {namespace, serviceaccount: {name, uid}}`.
//! Header: `alg: ES256`, `kid` = base64url(SHA-256(DER public key)), as kube computes it.
//!
//! Verification: a token that is not a JWT, or whose issuer is not ours, is not ours
//! (`Ok(None)`: another authenticator may know it); one that is ours but has a bad
//! signature, is expired or not yet valid, is for another audience, or names a
//! ServiceAccount that no longer exists (or was re-created: uid differs) is an error.
//! The key (`--service-account-key-file`, default `<cert-dir>/sa.key`) is an ECDSA P-256
//! PKCS#8 PEM key; its public half verifies.

use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _,
    UnparsedPublicKey,
};
use serde::{Deserialize, Serialize};

use super::{Authenticator, AuthnError, Credentials, User};
use crate::authz::cache::PolicyCache;
use crate::authz::rbac::service_account_user;
use crate::pki::PkiError;

/// Kubernetes' usual issuer (and, by default, the API audience).
pub const DEFAULT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// Group of every ServiceAccount.
pub const SERVICE_ACCOUNTS: &str = "system:serviceaccounts";
/// Clock skew tolerated on `nbf`/`iat`.
const LEEWAY: i64 = 60;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()
}

/// A JWT segment: base64url of the JSON.
fn encode<T: Serialize>(value: &T) -> String {
    b64(&serde_json::to_vec(value).unwrap_or_default())
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct AccountRef {
    name: String,
    uid: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct KubeClaims {
    namespace: String,
    serviceaccount: AccountRef,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Claims {
    iss: String,
    sub: String,
    aud: Vec<String>,
    exp: i64,
    iat: i64,
    nbf: i64,
    jti: String,
    #[serde(rename = "kubernetes.io")]
    kubernetes: KubeClaims,
}

/// The ServiceAccount a token is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Uid of the ServiceAccount object.
    pub uid: String,
}

/// Signs and verifies ServiceAccount tokens.
pub struct Tokens {
    key: EcdsaKeyPair,
    kid: String,
    issuer: String,
    audiences: Vec<String>,
    rng: SystemRandom,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl Tokens {
    /// Loads the signing key; `audiences` are the API audiences (default: the issuer).
    pub fn load(path: &Path, issuer: &str, audiences: &[String]) -> Result<Tokens, PkiError> {
        let key = crate::pki::read_key(path)?;
        let bad = |what: String| PkiError::Parse {
            path: path.into(),
            what,
        };
        let rng = SystemRandom::new();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, key.serialized_der(), &rng)
                .map_err(|e| {
                    bad(format!(
                        "the ServiceAccount key must be an ECDSA P-256 PKCS#8 key ({e})"
                    ))
                })?;
        let spki = rcgen::PublicKeyData::subject_public_key_info(&key);
        let kid = b64(ring::digest::digest(&ring::digest::SHA256, &spki).as_ref());
        let audiences = if audiences.is_empty() {
            vec![issuer.to_string()]
        } else {
            audiences.to_vec()
        };
        Ok(Tokens {
            key: pair,
            kid,
            issuer: issuer.to_string(),
            audiences,
            rng,
        })
    }

    /// The API audiences (a TokenRequest without audiences gets these).
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// A token for `account`, valid from `now` (Unix seconds) for `lifetime_secs`.
    pub fn issue(
        &self,
        account: &Account,
        audiences: &[String],
        now: i64,
        lifetime_secs: i64,
    ) -> Result<String, ring::error::Unspecified> {
        let header = Header {
            alg: "ES256".into(),
            kid: self.kid.clone(),
        };
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: service_account_user(&account.namespace, &account.name),
            aud: if audiences.is_empty() {
                self.audiences.clone()
            } else {
                audiences.to_vec()
            },
            exp: now + lifetime_secs,
            iat: now,
            nbf: now,
            jti: uuid::Uuid::new_v4().to_string(),
            kubernetes: KubeClaims {
                namespace: account.namespace.clone(),
                serviceaccount: AccountRef {
                    name: account.name.clone(),
                    uid: account.uid.clone(),
                },
            },
        };
        let signing_input = format!("{}.{}", encode(&header), encode(&claims));
        let sig = self.key.sign(&self.rng, signing_input.as_bytes())?;
        Ok(format!("{signing_input}.{}", b64(sig.as_ref())))
    }

    /// Checks a token's signature and claims at `now`; `Ok(None)` when it is not ours.
    fn verify(&self, token: &str, now: i64) -> Result<Option<(Claims, Account)>, AuthnError> {
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Ok(None);
        };
        let Some(header) = unb64(h).and_then(|b| serde_json::from_slice::<Header>(&b).ok()) else {
            return Ok(None);
        };
        let Some(claims) = unb64(c).and_then(|b| serde_json::from_slice::<Claims>(&b).ok()) else {
            return Ok(None);
        };
        if claims.iss != self.issuer {
            return Ok(None);
        }
        let bad = |why: &str| Err(AuthnError::Token(why.to_string()));
        if header.alg != "ES256" {
            return bad("unsupported signing algorithm");
        }
        let signature = unb64(s).unwrap_or_default();
        let public =
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, self.key.public_key().as_ref());
        if public
            .verify(format!("{h}.{c}").as_bytes(), &signature)
            .is_err()
        {
            return bad("invalid signature");
        }
        if now >= claims.exp {
            return bad("token has expired");
        }
        if claims.nbf > now + LEEWAY || claims.iat > now + LEEWAY {
            return bad("token is not valid yet");
        }
        if !claims.aud.iter().any(|a| self.audiences.contains(a)) {
            return Err(AuthnError::Token(format!(
                "token audiences {:?} are invalid for the target audiences {:?}",
                claims.aud, self.audiences
            )));
        }
        let k = &claims.kubernetes;
        if claims.sub != service_account_user(&k.namespace, &k.serviceaccount.name) {
            return bad("subject does not match the service account claims");
        }
        let account = Account {
            namespace: k.namespace.clone(),
            name: k.serviceaccount.name.clone(),
            uid: k.serviceaccount.uid.clone(),
        };
        Ok(Some((claims, account)))
    }
}

/// Knows which ServiceAccounts exist (the watch-fed cache in the server).
pub trait AccountLookup: Send + Sync {
    /// The uid of a ServiceAccount, if it exists.
    fn uid(&self, namespace: &str, name: &str) -> Option<String>;
}

impl AccountLookup for PolicyCache {
    fn uid(&self, namespace: &str, name: &str) -> Option<String> {
        self.service_account_uid(namespace, name)
    }
}

/// The bearer-token authenticator for ServiceAccount tokens.
pub struct ServiceAccountTokens {
    tokens: Arc<Tokens>,
    accounts: Arc<dyn AccountLookup>,
}

impl ServiceAccountTokens {
    /// Verifies with `tokens`' key and checks accounts in `accounts`.
    pub fn new(tokens: Arc<Tokens>, accounts: Arc<dyn AccountLookup>) -> ServiceAccountTokens {
        ServiceAccountTokens { tokens, accounts }
    }

    fn at(&self, token: &str, now: i64) -> Result<Option<User>, AuthnError> {
        let Some((claims, account)) = self.tokens.verify(token, now)? else {
            return Ok(None);
        };
        match self.accounts.uid(&account.namespace, &account.name) {
            None => Err(AuthnError::Token(format!(
                "service account {}/{} has been deleted",
                account.namespace, account.name
            ))),
            Some(uid) if uid != account.uid => Err(AuthnError::Token(format!(
                "service account UID ({uid}) does not match claim ({})",
                account.uid
            ))),
            Some(uid) => Ok(Some(User {
                name: claims.sub,
                uid,
                groups: vec![
                    SERVICE_ACCOUNTS.to_string(),
                    format!("{SERVICE_ACCOUNTS}:{}", account.namespace),
                ],
                extra: [(
                    "authentication.kubernetes.io/credential-id".to_string(),
                    vec![format!("JTI={}", claims.jti)],
                )]
                .into(),
            })),
        }
    }
}

impl Authenticator for ServiceAccountTokens {
    fn authenticate(&self, credentials: &Credentials<'_>) -> Result<Option<User>, AuthnError> {
        match credentials.bearer_token() {
            Some(t) => self.at(t, jiff::Timestamp::now().as_second()),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    struct Accounts(Mutex<HashMap<(String, String), String>>);
    impl AccountLookup for Accounts {
        fn uid(&self, ns: &str, name: &str) -> Option<String> {
            self.0
                .lock()
                .unwrap()
                .get(&(ns.to_string(), name.to_string()))
                .cloned()
        }
    }

    fn tokens(dir: &Path, issuer: &str) -> Arc<Tokens> {
        let path = dir.join("sa.key");
        if !path.exists() {
            std::fs::write(&path, rcgen::KeyPair::generate().unwrap().serialize_pem()).unwrap();
        }
        Arc::new(Tokens::load(&path, issuer, &[]).unwrap())
    }

    #[test]
    fn issue_verify_and_every_refusal() {
        let dir = tempfile::tempdir().unwrap();
        let t = tokens(dir.path(), DEFAULT_ISSUER);
        let accounts = Arc::new(Accounts(Mutex::new(HashMap::new())));
        accounts
            .0
            .lock()
            .unwrap()
            .insert(("dev".into(), "robot".into()), "u1".into());
        let auth = ServiceAccountTokens::new(t.clone(), accounts.clone());
        let robot = Account {
            namespace: "dev".into(),
            name: "robot".into(),
            uid: "u1".into(),
        };
        let now = 1_700_000_000;
        let token = t.issue(&robot, &[], now, 3600).unwrap();

        let u = auth.at(&token, now + 10).unwrap().unwrap();
        assert_eq!(u.name, "system:serviceaccount:dev:robot");
        assert_eq!(
            u.groups,
            ["system:serviceaccounts", "system:serviceaccounts:dev"]
        );
        assert_eq!(u.uid, "u1");

        // Expired; not yet valid.
        assert!(auth.at(&token, now + 3600).is_err());
        assert!(auth.at(&token, now - 3600).is_err());
        // Another audience.
        let other = t.issue(&robot, &["vault".into()], now, 3600).unwrap();
        assert!(
            auth.at(&other, now)
                .unwrap_err()
                .to_string()
                .contains("audiences")
        );
        // Tampered claims (signature no longer matches).
        let mut parts: Vec<&str> = token.split('.').collect();
        let claims = String::from_utf8(unb64(parts[1]).unwrap())
            .unwrap()
            .replace("robot", "admin");
        let forged = b64(claims.as_bytes());
        parts[1] = &forged;
        assert!(
            auth.at(&parts.join("."), now)
                .unwrap_err()
                .to_string()
                .contains("signature")
        );
        // Signed by another key with the same issuer.
        let other_dir = tempfile::tempdir().unwrap();
        let foreign = tokens(other_dir.path(), DEFAULT_ISSUER);
        let f = foreign.issue(&robot, &[], now, 3600).unwrap();
        assert!(auth.at(&f, now).is_err());
        // Another issuer, or not a JWT: not ours.
        let elsewhere = tokens(other_dir.path(), "https://elsewhere");
        let e = elsewhere.issue(&robot, &[], now, 3600).unwrap();
        assert_eq!(auth.at(&e, now), Ok(None));
        assert_eq!(auth.at("static-token", now), Ok(None));
        // The account is re-created (new uid), then deleted.
        accounts
            .0
            .lock()
            .unwrap()
            .insert(("dev".into(), "robot".into()), "u2".into());
        assert!(
            auth.at(&token, now)
                .unwrap_err()
                .to_string()
                .contains("UID")
        );
        accounts.0.lock().unwrap().clear();
        assert!(
            auth.at(&token, now)
                .unwrap_err()
                .to_string()
                .contains("deleted")
        );
    }
}
