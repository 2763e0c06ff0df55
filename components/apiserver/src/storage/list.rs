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
use serde_json::{Value, json};

use super::range::RangeRequest;
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

/// A stored object's JSON with `"resourceVersion":"<revision>"` put into its metadata,
/// spliced into the stored bytes without a JSON tree (`storage/splice.rs`); `None` when the
/// value is not that simple, and the caller takes the decoding path.
pub use super::splice::{append_with_revision, with_revision_raw};

/// Decodes a stored value into an object with its resourceVersion (for [`ListCursor::next_with`]
/// callers falling back from the raw forms).
pub fn decode_stored(key: &[u8], value: &[u8], revision: i64) -> Result<Stored, StorageError> {
    decode(key, value, revision)
}

/// What a Table row needs from a stored object, without building a tree of
/// `metadata.managedFields` (most of a pod's metadata): the object as a tree *without*
/// managedFields (for cells and selectors), and the metadata as JSON with `resourceVersion`
/// and without managedFields (for the row's `PartialObjectMetadata`, which drops them — see
/// `crate::table` — byte-identical to encoding that decoded metadata for stored values).
/// `None` in the cases [`with_revision_raw`] refuses.
pub fn split_for_row(value: &[u8], revision: i64) -> Option<(Value, String)> {
    use serde_json::value::RawValue;
    use std::collections::BTreeMap;
    let top: BTreeMap<&str, &RawValue> = serde_json::from_slice(value).ok()?;
    let mut meta: BTreeMap<&str, &RawValue> =
        serde_json::from_str(top.get("metadata")?.get()).ok()?;
    let rv = RawValue::from_string(format!("\"{revision}\"")).ok()?;
    meta.insert("resourceVersion", &rv);
    meta.remove("managedFields");
    let meta_json = serde_json::to_string(&meta).ok()?;
    let mut light_meta = serde_json::Map::new();
    for (k, v) in &meta {
        light_meta.insert(k.to_string(), serde_json::from_str(v.get()).ok()?);
    }
    let mut object = serde_json::Map::new();
    for (k, v) in top {
        let v = match k {
            "metadata" => Value::Object(std::mem::take(&mut light_meta)),
            _ => serde_json::from_str(v.get()).ok()?,
        };
        object.insert(k.to_string(), v);
    }
    Some((Value::Object(object), meta_json))
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
    /// Where the range reads go (see `storage/range.rs`).
    kv: super::range::Kv,
    /// The store's round-trip latencies (each range read is a `list`).
    metrics: std::sync::Arc<crate::metrics::StoreMetrics>,
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
        self.next_with(|key, value, revision| {
            let stored = decode(key, value, revision)?;
            Ok(keep(&stored.object).then_some(stored))
        })
        .await
    }

    /// [`Self::next_batch`] of an unfiltered list as JSON bytes: the batch's objects, each
    /// with its `metadata.resourceVersion`, comma-separated in one buffer (empty for an empty
    /// last batch) — without building a JSON tree per object ([`append_with_revision`], the
    /// cost that dominates encoding a plain list) and without a buffer per object.
    pub async fn next_raw_joined(&mut self) -> Result<Option<Vec<u8>>, StorageError> {
        let mut out = Vec::new();
        // Objects expected in the batch: a page's remaining limit; an unlimited list's
        // batches grow the buffer as they fill.
        let expected = self
            .limit
            .map_or(64, |l| l.saturating_sub(self.found))
            .min(BATCH as usize);
        let batch = self
            .next_with(|key, value, revision| {
                if out.is_empty() {
                    // Sized for the whole batch at the first object's size (a page of
                    // similar objects grows at most once or twice).
                    out.reserve((value.len() + 32) * expected);
                } else {
                    out.push(b',');
                }
                if !append_with_revision(&mut out, value, revision) {
                    let stored = decode(key, value, revision)?;
                    // Encoding a serde_json::Value into a Vec cannot fail.
                    let _ = serde_json::to_writer(&mut out, &stored.object);
                }
                Ok(Some(()))
            })
            .await?;
        Ok(batch.map(|_| out))
    }

    /// The batch loop: `item` turns a key-value (key, value, mod revision) into an item, or
    /// `None` to skip it (a skipped object does not count towards `limit`).
    pub async fn next_with<T>(
        &mut self,
        mut item: impl FnMut(&[u8], &[u8], i64) -> Result<Option<T>, StorageError>,
    ) -> Result<Option<Vec<T>>, StorageError> {
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
            let req = RangeRequest {
                limit: want,
                revision: self.revision.max(0),
                ..RangeRequest::span(self.start.as_bytes(), self.end.clone())
            };
            let timer = self.metrics.timer(crate::metrics::StoreOp::List);
            let resp = self
                .kv
                .range(req)
                .await
                .map_err(|e| map_compaction(e, self.revision))?;
            drop(timer);
            if self.revision == 0 {
                self.revision = resp.header().map(|h| h.revision()).unwrap_or(0);
            }
            let kvs = resp.kvs();
            let mut consumed: usize = 0;
            let mut full = false;
            for kv in kvs {
                consumed += 1;
                if let Some(it) = item(kv.key(), kv.value(), kv.mod_revision())? {
                    items.push(it);
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
            kv: self.kv.clone(),
            metrics: self.metrics.clone(),
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
    fn raw_revision_matches_the_decoded_form() {
        let objects = [
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"n","labels":{"a":"b"},"managedFields":[{"manager":"m","fieldsV1":{"f:spec":{}}}]},"spec":{"template":{"metadata":{"name":"inner"}}},"status":{}}"#,
            r#"{"metadata":{"name":"p","resourceVersion":"3"},"data":{"k":"\"metadata\":{\u00e9"}}"#,
            r#"{"kind":"X","metadata":{}}"#,
            r#" { "metadata" : { "name" : "spaced" } , "z" : [1, 2.5, null, true] } "#,
            // Keys after resourceVersion, an old one to replace, look-alikes in strings and
            // nested objects, escapes, unicode, empty containers.
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"creationTimestamp":"2026-11-24T00:00:00Z","name":"p","uid":"u-1"},"spec":{"metadata":{"resourceVersion":"9"},"s":"}]\"{[,"},"status":{}}"#,
            r#"{"metadata":{"annotations":{"resourceVersion":"x"},"resourceVersion":"3","uid":"u"},"z":[[],{},"\u00e9\n"]}"#,
            r#"{"metadata":{"uid":"u","name":"unsorted"},"a":-1.5e3}"#,
            r#"{"metadata":{"zz":true,"resourceVersion":"1","a":null}}"#,
            r#"{"metadata":{"name":"élan"},"data":{"k":"v"}}"#,
        ];
        for o in objects {
            let raw = with_revision_raw(o.as_bytes(), 42).expect(o);
            let got: Value = serde_json::from_slice(&raw).unwrap();
            let want = super::super::with_revision(serde_json::from_str(o).unwrap(), 42);
            assert_eq!(got, want, "{o}");
            // Stored values are compact with sorted keys (`serde_json::to_vec`). Those without
            // the fast path's guard sequences get the member first in metadata; the others go
            // through the full scan, whose bytes are exactly what encoding the decoded object
            // gives.
            let parsed: Value = serde_json::from_str(o).unwrap();
            if serde_json::to_vec(&parsed).unwrap() == o.as_bytes() {
                let guarded = ["\"resourceVersion\"", "\"metadata\"", "\\u"]
                    .iter()
                    .any(|g| o.matches(g).count() > usize::from(*g == "\"metadata\""));
                if guarded {
                    assert_eq!(raw, serde_json::to_vec(&want).unwrap(), "{o}");
                } else {
                    let raw = String::from_utf8(raw).unwrap();
                    assert!(
                        raw.contains("\"metadata\":{\"resourceVersion\":\"42\""),
                        "{raw}"
                    );
                }
            }
        }
        // Not simple enough: the caller decodes instead (and reports corrupt values). (What
        // the fast path no longer checks: `storage::splice`'s tests.)
        for o in [
            r#"{"kind":"X"}"#,
            r#"{"metadata":null}"#,
            "[1]",
            "{",
            r#"{"meta\u0064ata":{}}"#,
            r#"{"metadata":{"resource\u0056ersion":"1"}}"#,
            r#"{"metadata":{},"metadata":{}}"#,
            r#"{"metadata":{"resourceVersion":"1","resourceVersion":"2"}}"#,
            r#"{"metadata":{}} x"#,
            "",
        ] {
            assert!(with_revision_raw(o.as_bytes(), 1).is_none(), "{o}");
        }
    }

    #[test]
    fn row_split_drops_managed_fields_from_tree_and_row_metadata() {
        let o = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"labels":{"a":"b"},"managedFields":[{"manager":"m"}],"name":"p"},"spec":{"nodeName":"n"}}"#;
        let (tree, meta) = split_for_row(o.as_bytes(), 7).unwrap();
        let full = super::super::with_revision(serde_json::from_str(o).unwrap(), 7);
        let mut light = full.clone();
        light["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("managedFields");
        assert_eq!(meta, serde_json::to_string(&light["metadata"]).unwrap());
        assert!(!meta.contains("managedFields"), "{meta}");
        assert_eq!(tree, light);
        assert!(split_for_row(br#"{"kind":"X"}"#, 1).is_none());
    }

    #[test]
    fn prefix_end_is_next_key() {
        assert_eq!(prefix_end("/registry/pods/"), b"/registry/pods0".to_vec());
    }
}
