//! Lists: one consistent snapshot (one store revision) read in pages.
//!
//! A page is a range read at a fixed revision; the `continue` token carries that revision and
//! the next key, so every page of one list sees the same snapshot, as in Kubernetes. Filters
//! (label/field selectors) run here so that `limit` counts matching objects: the range read is
//! repeated until `limit` matches are found or the range is exhausted. A token whose revision
//! was compacted fails with [`StorageError::Compacted`] (410 Gone).
//!
//! [`ListCursor`] reads one list batch by batch (at most [`BATCH`] keys per range read for a
//! list without `limit`), so the list handler can stream a collection of any size while
//! holding one batch; [`Store::list`] collects a cursor for internal callers.

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

/// A list being read batch by batch at one revision: what [`Store::list`] collects into a
/// [`ListPage`], and what the list handler streams to the client without holding the whole
/// collection. Each [`ListCursor::next_batch`] is one range read (at most [`BATCH`] keys,
/// or the page's remaining `limit`); the revision is fixed by the first read.
pub struct ListCursor {
    kv: etcd_client::KvClient,
    prefix: String,
    end: Vec<u8>,
    /// 0 until the first read when the list reads the latest revision.
    revision: i64,
    /// The next key to read from.
    start: String,
    limit: Option<usize>,
    filtered: bool,
    /// Matching objects returned so far.
    found: usize,
    /// `Some` once the range (or the page) is exhausted.
    end_state: Option<(Option<String>, Option<i64>)>,
}

impl ListCursor {
    /// The revision the list reads at (0 before the first batch of a latest-revision list).
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// Whether every batch was read.
    pub fn is_done(&self) -> bool {
        self.end_state.is_some()
    }

    /// The continue token and remaining-item count, once [`Self::is_done`].
    pub fn page_end(&self) -> (Option<String>, Option<i64>) {
        self.end_state.clone().unwrap_or((None, None))
    }

    /// Reads the next batch of objects `keep` accepts; `None` once done. A batch may be
    /// empty only when it is the last one.
    pub async fn next_batch(
        &mut self,
        keep: &(dyn Fn(&Value) -> bool + Sync),
    ) -> Result<Option<Vec<Stored>>, StorageError> {
        if self.is_done() {
            return Ok(None);
        }
        let mut items = Vec::new();
        loop {
            let left = self.limit.map(|l| l - self.found - items.len());
            let want = match left {
                Some(l) if self.filtered => FILTERED_BATCH.max(l as i64),
                Some(l) => l as i64,
                None => BATCH,
            };
            let mut opts = GetOptions::new()
                .with_range(self.end.clone())
                .with_limit(want);
            if self.revision > 0 {
                opts = opts.with_revision(self.revision);
            }
            let resp = self
                .kv
                .get(self.start.as_bytes(), Some(opts))
                .await
                .map_err(|e| map_compaction(e, self.revision))?;
            if self.revision == 0 {
                self.revision = resp.header().map(|h| h.revision()).unwrap_or(0);
            }
            let kvs = resp.kvs();
            let mut consumed: usize = 0;
            let mut full = false;
            for kv in kvs {
                consumed += 1;
                let stored = decode(kv.key(), kv.value(), kv.mod_revision())?;
                if keep(&stored.object) {
                    items.push(stored);
                    if self.limit.is_some_and(|l| self.found + items.len() >= l) {
                        full = true;
                        break;
                    }
                }
            }
            let last_key = consumed.checked_sub(1).map(|i| kvs[i].key());
            let more_in_store = resp.more() || consumed < kvs.len();
            if full || !more_in_store || last_key.is_none() {
                let continue_token = match (more_in_store, last_key) {
                    (true, Some(k)) => {
                        let next = String::from_utf8_lossy(k).into_owned();
                        let rel = next.strip_prefix(&self.prefix).unwrap_or(&next);
                        Some(encode_token(self.revision, &format!("{rel}\u{0}")))
                    }
                    _ => None,
                };
                let remaining = (!self.filtered && continue_token.is_some())
                    .then(|| resp.count() - consumed as i64);
                self.end_state = Some((continue_token, remaining));
            } else if let Some(k) = last_key {
                // Read on after the batch's last key.
                self.start = format!("{}\u{0}", String::from_utf8_lossy(k));
            }
            // An unlimited list hands each batch on; a page is read whole (bounded by its
            // limit) so that its continue token is known before anything is sent.
            if self.is_done() || (self.limit.is_none() && !items.is_empty()) {
                self.found += items.len();
                return Ok(Some(items));
            }
        }
    }
}

impl Store {
    /// Starts reading the objects under `prefix` (nothing is read until the first batch).
    pub fn list_cursor(
        &self,
        prefix: &str,
        options: &ListOptions,
        filtered: bool,
    ) -> Result<ListCursor, StorageError> {
        let (revision, start) = match &options.continue_token {
            Some(t) => {
                let (rev, start) = decode_token(t)?;
                (rev, format!("{prefix}{start}"))
            }
            None => (options.revision.unwrap_or(0), prefix.to_string()),
        };
        Ok(ListCursor {
            kv: self.kv(),
            prefix: prefix.to_string(),
            end: prefix_end(prefix),
            revision,
            start,
            limit: options.limit,
            filtered,
            found: 0,
            end_state: None,
        })
    }

    /// Lists the objects under `prefix` that `keep` accepts, all in memory: for internal
    /// callers and bounded pages; the list handler streams unlimited lists instead.
    pub async fn list(
        &self,
        prefix: &str,
        options: &ListOptions,
        filtered: bool,
        keep: impl Fn(&Value) -> bool + Sync,
    ) -> Result<ListPage, StorageError> {
        let mut cursor = self.list_cursor(prefix, options, filtered)?;
        let mut items = Vec::new();
        while let Some(batch) = cursor.next_batch(&keep).await? {
            items.extend(batch);
        }
        let (continue_token, remaining) = cursor.page_end();
        Ok(ListPage {
            items,
            revision: cursor.revision(),
            continue_token,
            remaining,
        })
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
