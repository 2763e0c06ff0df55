//! Reads: ranges at any uncompacted revision, and the event history watches replay.

use super::{Event, EventKind, Mvcc, Record, bounds_empty, key_bounds};
use crate::types::{ApplyError, KeyValue, Range, RangeResult, SortOrder, SortTarget};

/// The key-value a record shows for `key`, if it is a put.
pub(crate) fn record_kv(key: &[u8], r: &Record) -> Option<KeyValue> {
    r.value.as_ref().map(|v| KeyValue {
        key: key.to_vec(),
        create_revision: v.create_revision,
        mod_revision: r.main,
        version: v.version,
        value: v.data.clone(),
        lease: v.lease,
    })
}

/// The record of a history visible at revision `rev` (the last with main revision <= rev).
pub(crate) fn visible_at(history: &[Record], rev: i64) -> Option<&Record> {
    let idx = history.partition_point(|r| r.main <= rev);
    idx.checked_sub(1).map(|i| &history[i])
}

impl Mvcc {
    /// Checks that `rev` (0 = current) can be read; returns the effective revision.
    pub(crate) fn check_read_revision(&self, rev: i64) -> Result<i64, ApplyError> {
        if rev <= 0 {
            return Ok(self.revision);
        }
        if rev > self.revision {
            return Err(ApplyError::FutureRevision);
        }
        if rev < self.compact_revision {
            return Err(ApplyError::Compacted);
        }
        Ok(rev)
    }

    /// A range read, as etcd's Range.
    pub fn range(&self, req: &Range) -> Result<RangeResult, ApplyError> {
        let rev = self.check_read_revision(req.revision)?;
        Ok(self.range_at(req, rev))
    }

    /// A range read at an already checked revision (also used inside txns).
    pub(crate) fn range_at(&self, req: &Range, rev: i64) -> RangeResult {
        let bounds = key_bounds(&req.key, &req.range_end);
        let mut out = RangeResult::default();
        if bounds_empty(&bounds) {
            return out;
        }
        // Sorting by anything but ascending key needs every match before the limit applies.
        let sorted = !matches!(
            (req.sort_order, req.sort_target),
            (SortOrder::None, _) | (SortOrder::Ascend, SortTarget::Key)
        );
        let limit = if req.limit > 0 && !sorted {
            req.limit as usize
        } else {
            usize::MAX
        };
        // At the current revision with no revision filter, the live-key index counts the
        // range by rank (`keys.rs`), so the walk stops once the page is full.
        let indexed = rev == self.revision && !has_filters(req);
        if indexed {
            out.count = self.keys.count_live(&bounds);
            if req.count_only {
                return out;
            }
        }
        let mut walked = 0;
        for (key, history) in self.keys.map.range(bounds) {
            if indexed && out.kvs.len() >= limit {
                break;
            }
            let Some(r) = visible_at(history, rev) else {
                continue;
            };
            let Some(v) = &r.value else { continue };
            if !passes_filters(req, r.main, v.create_revision) {
                continue;
            }
            walked += 1;
            if req.count_only || out.kvs.len() >= limit {
                continue;
            }
            let mut kv = record_kv(key, r).expect("record has a value");
            if req.keys_only {
                kv.value.clear();
            }
            out.kvs.push(kv);
        }
        if !indexed {
            out.count = walked;
        }
        if sorted {
            sort_kvs(&mut out.kvs, req.sort_order, req.sort_target);
            if req.limit > 0 && out.kvs.len() > req.limit as usize {
                out.kvs.truncate(req.limit as usize);
            }
        }
        out.more = !req.count_only && (out.kvs.len() as i64) < out.count;
        out
    }

    /// The events on `key`/`range_end` with revision >= `from` up to the current revision,
    /// grouped by revision in order: what a watch starting at `from` replays before going live.
    pub fn history(
        &self,
        key: &[u8],
        range_end: &[u8],
        from: i64,
    ) -> Result<Vec<(i64, Vec<Event>)>, ApplyError> {
        if from < self.compact_revision {
            return Err(ApplyError::Compacted);
        }
        let bounds = key_bounds(key, range_end);
        let mut events: Vec<(i64, i64, Event)> = Vec::new();
        if !bounds_empty(&bounds) {
            for (k, history) in self.keys.map.range(bounds) {
                let start = history.partition_point(|r| r.main < from);
                for i in start..history.len() {
                    let r = &history[i];
                    let prev_kv = i.checked_sub(1).and_then(|p| record_kv(k, &history[p]));
                    events.push((r.main, r.sub, event_of(k, r, prev_kv)));
                }
            }
        }
        events.sort_by_key(|(main, sub, _)| (*main, *sub));
        let mut grouped: Vec<(i64, Vec<Event>)> = Vec::new();
        for (main, _, ev) in events {
            match grouped.last_mut() {
                Some((rev, evs)) if *rev == main => evs.push(ev),
                _ => grouped.push((main, vec![ev])),
            }
        }
        Ok(grouped)
    }
}

/// The watch event a record stands for.
pub(crate) fn event_of(key: &[u8], r: &Record, prev_kv: Option<KeyValue>) -> Event {
    match record_kv(key, r) {
        Some(kv) => Event {
            kind: EventKind::Put,
            kv,
            prev_kv,
        },
        None => Event {
            kind: EventKind::Delete,
            kv: KeyValue {
                key: key.to_vec(),
                mod_revision: r.main,
                ..Default::default()
            },
            prev_kv,
        },
    }
}

/// Whether a range filters by mod or create revision (so its count needs the walk).
fn has_filters(req: &Range) -> bool {
    req.min_mod_revision != 0
        || req.max_mod_revision != 0
        || req.min_create_revision != 0
        || req.max_create_revision != 0
}

fn passes_filters(req: &Range, mod_rev: i64, create_rev: i64) -> bool {
    (req.min_mod_revision == 0 || mod_rev >= req.min_mod_revision)
        && (req.max_mod_revision == 0 || mod_rev <= req.max_mod_revision)
        && (req.min_create_revision == 0 || create_rev >= req.min_create_revision)
        && (req.max_create_revision == 0 || create_rev <= req.max_create_revision)
}

fn sort_kvs(kvs: &mut [KeyValue], order: SortOrder, target: SortTarget) {
    kvs.sort_by(|a, b| {
        let ord = match target {
            SortTarget::Key => a.key.cmp(&b.key),
            SortTarget::Version => a.version.cmp(&b.version),
            SortTarget::Create => a.create_revision.cmp(&b.create_revision),
            SortTarget::Mod => a.mod_revision.cmp(&b.mod_revision),
            SortTarget::Value => a.value.cmp(&b.value),
        };
        if order == SortOrder::Descend {
            ord.reverse()
        } else {
            ord
        }
    });
}
