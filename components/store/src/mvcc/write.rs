//! Writes: apply one replicated [`Request`] and report its watch events.
//!
//! A request is validated against the state before it (so a failing txn changes nothing), then
//! executed: every write gets the next main revision and its own sub-revision, and the revision
//! only advances if something was written.

use std::collections::BTreeSet;

use super::read::{record_kv, visible_at};
use super::{Event, EventKind, Lease, MemberAttrs, Mvcc, Record, Value, bounds_empty, key_bounds};
use crate::types::{
    ApplyError, Compare, CompareResult, CompareTarget, DeleteRange, KeyValue, Op, OpResult,
    Outcome, Put, Request, Response, Txn, TxnResult,
};

/// The write in progress: its main revision, next sub-revision and events so far.
struct WriteCtx {
    main: i64,
    sub: i64,
    events: Vec<Event>,
}

impl Mvcc {
    /// Applies one request; returns the response and the events of the revision it created
    /// (empty if it wrote nothing).
    ///
    /// A [`Request::Batch`] is applied in order, each request with its own revision; its events
    /// come back concatenated (use [`Mvcc::apply_entry`] to get them per revision).
    pub fn apply(&mut self, req: &Request) -> (Response, Vec<Event>) {
        let mut all = Vec::new();
        let resp = self.apply_entry(req, |_, mut evs| all.append(&mut evs));
        (resp, all)
    }

    /// Applies one log entry's request, announcing each revision it creates with its events.
    pub fn apply_entry(
        &mut self,
        req: &Request,
        mut announce: impl FnMut(i64, Vec<Event>),
    ) -> Response {
        self.apply_dyn(req, &mut announce)
    }

    pub(super) fn apply_dyn(
        &mut self,
        req: &Request,
        announce: &mut dyn FnMut(i64, Vec<Event>),
    ) -> Response {
        if let Request::Batch(reqs) = req {
            let responses = reqs.iter().map(|r| self.apply_dyn(r, announce)).collect();
            return Response {
                revision: self.revision,
                result: Ok(Outcome::Batch(responses)),
            };
        }
        if let Request::Once {
            session,
            seq,
            done_below,
            req,
        } = req
        {
            return self.apply_once(*session, *seq, *done_below, req, announce);
        }
        let (resp, events) = self.apply_one(req);
        if !events.is_empty() {
            announce(resp.revision, events);
        }
        resp
    }

    fn apply_one(&mut self, req: &Request) -> (Response, Vec<Event>) {
        let mut ctx = WriteCtx {
            main: self.revision + 1,
            sub: 0,
            events: Vec::new(),
        };
        let result = self.apply_inner(req, &mut ctx);
        if ctx.sub > 0 {
            self.revision = ctx.main;
        }
        (
            Response {
                revision: self.revision,
                result,
            },
            ctx.events,
        )
    }

    fn apply_inner(&mut self, req: &Request, ctx: &mut WriteCtx) -> Result<Outcome, ApplyError> {
        match req {
            Request::Put(p) => {
                self.check_put(p)?;
                Ok(Outcome::Put(self.put(p, ctx)))
            }
            Request::DeleteRange(d) => {
                let (n, prev) = self.delete(d, ctx);
                Ok(Outcome::Delete(n, prev))
            }
            Request::Txn(t) => Ok(Outcome::Txn(self.txn(t, ctx)?)),
            Request::Compact(rev) => {
                self.compact(*rev)?;
                Ok(Outcome::Compacted)
            }
            Request::LeaseGrant { id, ttl } => {
                if self.leases.contains_key(id) {
                    return Err(ApplyError::LeaseExists);
                }
                self.leases.insert(
                    *id,
                    Lease {
                        ttl: *ttl,
                        keys: BTreeSet::new(),
                    },
                );
                Ok(Outcome::LeaseGranted(*ttl))
            }
            Request::LeaseRevoke(id) => {
                let lease = self.leases.remove(id).ok_or(ApplyError::LeaseNotFound)?;
                for key in lease.keys {
                    let d = DeleteRange {
                        key,
                        range_end: Vec::new(),
                        prev_kv: false,
                    };
                    self.delete(&d, ctx);
                }
                Ok(Outcome::LeaseRevoked)
            }
            Request::PublishMember {
                id,
                name,
                client_urls,
            } => {
                let m = self.members.entry(*id).or_default();
                m.name = name.clone();
                m.client_urls = client_urls.clone();
                Ok(Outcome::Member)
            }
            Request::MemberAdded { id, learner } => {
                self.members.insert(
                    *id,
                    MemberAttrs {
                        promote_pending: !learner,
                        ..Default::default()
                    },
                );
                Ok(Outcome::Member)
            }
            Request::MemberPromoted(id) => {
                if let Some(m) = self.members.get_mut(id) {
                    m.promote_pending = false;
                }
                Ok(Outcome::Member)
            }
            Request::MemberRemoved(id) => {
                self.members.remove(id);
                Ok(Outcome::Member)
            }
            Request::Batch(_) | Request::Once { .. } => {
                unreachable!("apply_dyn unpacks batches and tagged writes")
            }
        }
    }

    /// Checks a put against the current state: its lease exists, and the key exists when the
    /// put keeps its value or lease.
    fn check_put(&self, p: &Put) -> Result<(), ApplyError> {
        if (p.ignore_value || p.ignore_lease) && self.live(&p.key).is_none() {
            return Err(ApplyError::KeyNotFound);
        }
        if !p.ignore_lease && p.lease != 0 && !self.leases.contains_key(&p.lease) {
            return Err(ApplyError::LeaseNotFound);
        }
        Ok(())
    }

    /// The latest live value of a key.
    fn live(&self, key: &[u8]) -> Option<&Value> {
        self.keys
            .map
            .get(key)
            .and_then(|h| h.last())
            .and_then(|r| r.value.as_ref())
    }

    fn put(&mut self, p: &Put, ctx: &mut WriteCtx) -> Option<KeyValue> {
        let history = self.keys.map.entry(p.key.clone()).or_default();
        let prev_rec = history.last().filter(|r| r.value.is_some()).cloned();
        let prev = prev_rec.as_ref().and_then(|r| r.value.as_ref());
        let lease = if p.ignore_lease {
            prev.map_or(0, |v| v.lease)
        } else {
            p.lease
        };
        let data = if p.ignore_value {
            prev.map(|v| v.data.clone())
        } else {
            None
        }
        .unwrap_or_else(|| p.value.clone());
        let value = Value {
            create_revision: prev.map_or(ctx.main, |v| v.create_revision),
            version: prev.map_or(1, |v| v.version + 1),
            data,
            lease,
        };
        let old_lease = prev.map_or(0, |v| v.lease);
        let rec = Record {
            main: ctx.main,
            sub: ctx.sub,
            value: Some(value),
        };
        let prev_kv = prev_rec.as_ref().and_then(|r| record_kv(&p.key, r));
        let kv = record_kv(&p.key, &rec).expect("put record has a value");
        history.push(rec);
        if prev_rec.is_none() {
            self.keys.live.insert(p.key.clone());
        }
        ctx.sub += 1;
        if old_lease != lease
            && let Some(l) = self.leases.get_mut(&old_lease)
        {
            l.keys.remove(&p.key);
        }
        if let Some(l) = self.leases.get_mut(&lease) {
            l.keys.insert(p.key.clone());
        }
        ctx.events.push(Event {
            kind: EventKind::Put,
            kv,
            prev_kv: prev_kv.clone(),
        });
        if p.prev_kv { prev_kv } else { None }
    }

    fn delete(&mut self, d: &DeleteRange, ctx: &mut WriteCtx) -> (i64, Vec<KeyValue>) {
        let bounds = key_bounds(&d.key, &d.range_end);
        if bounds_empty(&bounds) {
            return (0, Vec::new());
        }
        let mut deleted = 0;
        let mut prevs = Vec::new();
        for (key, history) in self.keys.map.range_mut(bounds) {
            let Some(last) = history.last() else { continue };
            let Some(v) = &last.value else { continue };
            let lease = v.lease;
            let prev_kv = record_kv(key, last);
            let rec = Record {
                main: ctx.main,
                sub: ctx.sub,
                value: None,
            };
            ctx.sub += 1;
            history.push(rec);
            self.keys.live.remove(key);
            deleted += 1;
            if let Some(l) = self.leases.get_mut(&lease) {
                l.keys.remove(key);
            }
            ctx.events.push(Event {
                kind: EventKind::Delete,
                kv: KeyValue {
                    key: key.clone(),
                    mod_revision: ctx.main,
                    ..Default::default()
                },
                prev_kv: prev_kv.clone(),
            });
            if d.prev_kv {
                prevs.extend(prev_kv);
            }
        }
        (deleted, prevs)
    }

    fn txn(&mut self, t: &Txn, ctx: &mut WriteCtx) -> Result<TxnResult, ApplyError> {
        let succeeded = t.compare.iter().all(|c| self.compare(c));
        let ops = if succeeded { &t.success } else { &t.failure };
        self.check_ops(ops)?;
        let mut responses = Vec::with_capacity(ops.len());
        for op in ops {
            responses.push(match op {
                Op::Range(r) => {
                    // Reads see this txn's earlier writes, as in etcd.
                    let rev = if ctx.sub > 0 { ctx.main } else { self.revision };
                    let rev = if r.revision > 0 {
                        r.revision.min(rev)
                    } else {
                        rev
                    };
                    OpResult::Range(self.range_at(r, rev))
                }
                Op::Put(p) => OpResult::Put(self.put(p, ctx)),
                Op::Delete(d) => {
                    let (n, prev) = self.delete(d, ctx);
                    OpResult::Delete(n, prev)
                }
                Op::Txn(inner) => OpResult::Txn(self.txn(inner, ctx)?),
            });
        }
        Ok(TxnResult {
            succeeded,
            responses,
        })
    }

    /// Validates a txn branch before anything runs: puts are valid, no key is put twice, and
    /// reads at an explicit revision are readable.
    fn check_ops(&self, ops: &[Op]) -> Result<(), ApplyError> {
        let mut put_keys = BTreeSet::new();
        for op in ops {
            match op {
                Op::Put(p) => {
                    self.check_put(p)?;
                    if !put_keys.insert(p.key.as_slice()) {
                        return Err(ApplyError::DuplicateKey);
                    }
                }
                Op::Range(r) => {
                    self.check_read_revision(r.revision)?;
                }
                Op::Delete(_) => {}
                Op::Txn(inner) => {
                    self.check_ops(&inner.success)?;
                    self.check_ops(&inner.failure)?;
                }
            }
        }
        Ok(())
    }

    /// Evaluates one txn compare on the current state.
    pub(crate) fn compare(&self, c: &Compare) -> bool {
        let bounds = key_bounds(&c.key, &c.range_end);
        let live: Vec<(&Vec<u8>, &Record)> = if bounds_empty(&bounds) {
            Vec::new()
        } else {
            self.keys
                .map
                .range(bounds)
                .filter_map(|(k, h)| visible_at(h, self.revision).map(|r| (k, r)))
                .filter(|(_, r)| r.value.is_some())
                .collect()
        };
        if live.is_empty() {
            // etcd: comparing a value of a missing key always fails; other targets see zeros.
            if matches!(c.target, CompareTarget::Value(_)) {
                return false;
            }
            return compare_one(c, &KeyValue::default());
        }
        live.iter()
            .all(|(k, r)| compare_one(c, &record_kv(k, r).expect("live record")))
    }

    /// Compacts history up to `rev`: reads below it fail from now on.
    fn compact(&mut self, rev: i64) -> Result<(), ApplyError> {
        if rev <= self.compact_revision {
            return Err(ApplyError::Compacted);
        }
        if rev > self.revision {
            return Err(ApplyError::FutureRevision);
        }
        // What is live at the current revision does not change: the last record stays.
        self.keys.map.retain(|_, history| {
            let idx = history.partition_point(|r| r.main <= rev);
            if idx > 0 {
                // Keep the record visible at `rev` if it is a put; a tombstone goes.
                let keep_from = if history[idx - 1].value.is_some() {
                    idx - 1
                } else {
                    idx
                };
                history.drain(..keep_from);
            }
            !history.is_empty()
        });
        self.compact_revision = rev;
        Ok(())
    }
}

fn compare_one(c: &Compare, kv: &KeyValue) -> bool {
    use std::cmp::Ordering;
    let ord = match &c.target {
        CompareTarget::Version(v) => kv.version.cmp(v),
        CompareTarget::Create(v) => kv.create_revision.cmp(v),
        CompareTarget::Mod(v) => kv.mod_revision.cmp(v),
        CompareTarget::Lease(v) => kv.lease.cmp(v),
        CompareTarget::Value(v) => kv.value.as_slice().cmp(v.as_slice()),
    };
    match c.result {
        CompareResult::Equal => ord == Ordering::Equal,
        CompareResult::NotEqual => ord != Ordering::Equal,
        CompareResult::Greater => ord == Ordering::Greater,
        CompareResult::Less => ord == Ordering::Less,
    }
}
