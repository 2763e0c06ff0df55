//! Static bearer tokens (`--token-auth-file`), Kubernetes' CSV format:
//!
//! ```text
//! token,user,uid,"group1,group2"
//! ```
//!
//! At least three columns; the fourth (optional) is a comma-separated group list. Blank lines
//! and lines starting with `#` are skipped. Read once at start. Stricter than kube, which
//! only warns: an empty token or user name and a token listed twice are errors naming the
//! line, so a typo never silently changes who a token is.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{Authenticator, AuthnError, Credentials, User};

/// A token file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    /// The file cannot be read.
    #[error("{path}: cannot read the token file")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A record is malformed.
    #[error("{path}:{line}: {what} (expected token,user,uid[,\"group1,group2\"])")]
    Record {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// What is wrong.
        what: String,
    },
}

/// The tokens of one file.
#[derive(Debug, Default)]
pub struct TokenFile {
    tokens: HashMap<String, User>,
}

impl TokenFile {
    /// Reads and checks a token file.
    pub fn load(path: &Path) -> Result<TokenFile, TokenFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Io {
            path: path.into(),
            source,
        })?;
        TokenFile::parse(path, &text)
    }

    /// Parses token file text (`path` names it in errors).
    pub fn parse(path: &Path, text: &str) -> Result<TokenFile, TokenFileError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .comment(Some(b'#'))
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let mut tokens: HashMap<String, User> = HashMap::new();
        let mut lines: HashMap<String, u64> = HashMap::new();
        for record in reader.records() {
            let bad = |line: u64, what: String| TokenFileError::Record {
                path: path.into(),
                line,
                what,
            };
            let record = record.map_err(|e| {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                bad(line, format!("not valid CSV: {e}"))
            })?;
            let line = record.position().map(|p| p.line()).unwrap_or(0);
            if record.len() == 1 && record[0].is_empty() {
                continue;
            }
            if record.len() < 3 {
                return Err(bad(
                    line,
                    format!("{} column(s), at least 3 are needed", record.len()),
                ));
            }
            let (token, name, uid) = (&record[0], &record[1], &record[2]);
            if token.is_empty() {
                return Err(bad(line, "the token is empty".into()));
            }
            if name.is_empty() {
                return Err(bad(line, "the user name is empty".into()));
            }
            if let Some(first) = lines.get(token) {
                return Err(bad(
                    line,
                    format!("the token of line {first} is listed again"),
                ));
            }
            let groups = record
                .get(3)
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(str::to_string)
                .collect();
            lines.insert(token.to_string(), line);
            tokens.insert(
                token.to_string(),
                User {
                    name: name.to_string(),
                    uid: uid.to_string(),
                    groups,
                    ..User::default()
                },
            );
        }
        Ok(TokenFile { tokens })
    }

    /// How many tokens the file holds.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether the file holds no token.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

impl Authenticator for TokenFile {
    fn authenticate(&self, credentials: &Credentials<'_>) -> Result<Option<User>, AuthnError> {
        Ok(credentials
            .bearer_token()
            .and_then(|t| self.tokens.get(t))
            .cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<TokenFile, TokenFileError> {
        TokenFile::parse(Path::new("/etc/tokens.csv"), text)
    }

    fn user(f: &TokenFile, token: &str) -> Option<User> {
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        f.authenticate(&Credentials {
            headers: &h,
            peer_certificates: None,
        })
        .unwrap()
    }

    #[test]
    fn kubernetes_format() {
        let f = parse(
            "# comment\nt1,alice,1001,\"dev,ops\"\n\n t2 , bob , 1002\nt3,carol,1003,viewers\n",
        )
        .unwrap();
        assert_eq!(f.len(), 3);
        let a = user(&f, "t1").unwrap();
        assert_eq!(
            (a.name.as_str(), a.uid.as_str(), a.groups.clone()),
            ("alice", "1001", vec!["dev".to_string(), "ops".to_string()])
        );
        assert!(user(&f, "t2").unwrap().groups.is_empty());
        assert_eq!(user(&f, "t3").unwrap().groups, ["viewers"]);
        assert_eq!(user(&f, "nope"), None);
    }

    #[test]
    fn bad_records_name_the_line() {
        let cases = [
            ("t1,alice\n", ":1:", "at least 3"),
            ("t1,alice,1\n,bob,2\n", ":2:", "token is empty"),
            ("t1,,1\n", ":1:", "user name is empty"),
            ("t1,a,1\nt1,b,2\n", ":2:", "line 1"),
        ];
        for (text, at, what) in cases {
            let e = parse(text).unwrap_err().to_string();
            assert!(
                e.starts_with("/etc/tokens.csv") && e.contains(at) && e.contains(what),
                "{text:?}: {e}"
            );
        }
    }
}
