//! Lists: one consistent snapshot (one store revision) read in pages.
//!
//! A page is a range read at a fixed revision; the `continue` token carries that revision and
//! the next key, so every page of one list sees the same snapshot, as in Kubernetes. Filters
//! (label/field selectors) run here so that `limit` counts matching objects: the range read is
//! repeated until `limit` matches are found or the range is exhausted. A token whose revision
//! was compacted fails with [`StorageError::Compacted`] (410 Gone).

use base64::Engine;
use etcd_client::GetOptions;
use serde_json::{Value, json};

use super::{StorageError, Store, Stored, decode, map_compaction};

/// What to read.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Read at this revision (`resourceVersionMatch=Exact`); `None` reads the latest.
    pub revision: Option<i64>,
    /// At most this many matching objects; `None` for all.
    pub limit: Option<usize>,
    /// The `continue` token of the previous page.
    pub continue_token: Option<String>,
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct ListPage {
    /// The matching objects, in key order.
    pub items: Vec<Stored>,
    /// The revision the page was read at (the list's resourceVersion).
    pub revision: i64,
    /// Token for the next page, if the range holds more.
    pub continue_token: Option<String>,
    /// Objects left after this page, when known (no filter).
    pub remaining: Option<i64>,
}

fn encode_token(revision: i64, start: &str) -> String {
    let raw = json!({"v": "meta.k8s.io/v1", "rv": revision, "start": start}).to_string();
    base64::engine::general_purpose::STANDARD.encode(raw)
}

fn decode_token(token: &str) -> Result<(i64, String), StorageError> {
    let bad = || StorageError::InvalidContinue(token.to_string());
    let raw = base64::engine::general_purpose::STANDARD
        .decode(token)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let rev = v
        .get("rv")
        .and_then(Value::as_i64)
        .filter(|r| *r > 0)
        .ok_or_else(bad)?;
    let start = v.get("start").and_then(Value::as_str).ok_or_else(bad)?;
    if start.contains("..") || start.starts_with('/') {
        return Err(bad());
    }
    Ok((rev, start.to_string()))
}

/// The first key after every key with this prefix.
pub(crate) fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// Keys per range read of an unlimited list: a list of any size is read in batches at one
/// revision, so no single store response grows with the collection.
pub const BATCH: i64 = 500;

/// How many keys one range read asks for when a filter may drop some: enough to rarely need
/// a second round trip, small enough to bound memory per page.
const FILTERED_BATCH: i64 = 500;

impl Store {
    /// Lists the objects under `prefix` that `keep` accepts.
    pub async fn list(
        &self,
        prefix: &str,
        options: &ListOptions,
        filtered: bool,
        keep: impl Fn(&Value) -> bool,
    ) -> Result<ListPage, StorageError> {
        let (mut revision, mut start) = match &options.continue_token {
            Some(t) => {
                let (rev, start) = decode_token(t)?;
                (rev, format!("{prefix}{start}"))
            }
            None => (options.revision.unwrap_or(0), prefix.to_string()),
        };
        let end = prefix_end(prefix);
        let mut items = Vec::new();
        let mut kv = self.kv();
        loop {
            let want = match options.limit {
                Some(l) if filtered => FILTERED_BATCH.max((l - items.len()) as i64),
                Some(l) => (l - items.len()) as i64,
                None => BATCH,
            };
            let mut opts = GetOptions::new().with_range(end.clone()).with_limit(want);
            if revision > 0 {
                opts = opts.with_revision(revision);
            }
            let resp = kv
                .get(start.as_bytes(), Some(opts))
                .await
                .map_err(|e| map_compaction(e, revision))?;
            if revision == 0 {
                revision = resp.header().map(|h| h.revision()).unwrap_or(0);
            }
            let kvs = resp.kvs();
            let mut last_key: Option<&[u8]> = None;
            for kv in kvs {
                last_key = Some(kv.key());
                let stored = decode(kv.key(), kv.value(), kv.mod_revision())?;
                if keep(&stored.object) {
                    items.push(stored);
                    if options.limit.is_some_and(|l| items.len() >= l) {
                        break;
                    }
                }
            }
            let scanned_all_returned = last_key == kvs.last().map(|k| k.key());
            let more_in_store = resp.more() || !scanned_all_returned;
            let full = options.limit.is_some_and(|l| items.len() >= l);
            if full || !more_in_store {
                let continue_token = match (more_in_store, last_key) {
                    (true, Some(k)) => {
                        let next = String::from_utf8_lossy(k).into_owned();
                        let rel = next.strip_prefix(prefix).unwrap_or(&next).to_string();
                        Some(encode_token(revision, &format!("{rel}\u{0}")))
                    }
                    _ => None,
                };
                let remaining = if !filtered && continue_token.is_some() {
                    let consumed = kvs
                        .iter()
                        .position(|kv| Some(kv.key()) == last_key)
                        .map(|p| p + 1)
                        .unwrap_or(0) as i64;
                    Some(resp.count() - consumed)
                } else {
                    None
                };
                return Ok(ListPage {
                    items,
                    revision,
                    continue_token,
                    remaining,
                });
            }
            // The batch was exhausted without filling the page: read on after its last key.
            let last = last_key.map(|k| k.to_vec()).unwrap_or_default();
            start = format!("{}\u{0}", String::from_utf8_lossy(&last));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trip_and_rejects_garbage() {
        let t = encode_token(42, "ns/name\u{0}");
        assert_eq!(decode_token(&t).unwrap(), (42, "ns/name\u{0}".to_string()));
        assert!(decode_token("not-base64!").is_err());
        let bad = base64::engine::general_purpose::STANDARD.encode(r#"{"rv":1,"start":"/etc"}"#);
        assert!(decode_token(&bad).is_err());
        let zero = base64::engine::general_purpose::STANDARD.encode(r#"{"rv":0,"start":"a"}"#);
        assert!(decode_token(&zero).is_err());
    }

    #[test]
    fn prefix_end_is_next_key() {
        assert_eq!(prefix_end("/registry/pods/"), b"/registry/pods0".to_vec());
    }
}
