//! Conversions between etcd's protobuf messages and the store's own request/result types.
//! Enum values follow `rpc.proto` (e.g. `Compare.CompareResult`: EQUAL=0, GREATER=1, LESS=2,
//! NOT_EQUAL=3); an unknown value is an invalid-argument error, not a guess.

use etcd_client::proto::{
    PbCompare, PbDeleteRequest, PbDeleteResponse, PbEvent, PbKeyValue, PbPutRequest, PbPutResponse,
    PbRangeRequest, PbRangeResponse, PbResponseOp, PbTargetUnion, PbTxnOpRequest, PbTxnOpResponse,
    PbTxnRequest, PbTxnResponse,
};
use tonic::Status;

use super::{Api, MAX_TXN_OPS, empty_key, too_large};
use crate::mvcc::{Event, EventKind};
use crate::types::{
    Compare, CompareResult, CompareTarget, DeleteRange, KeyValue, Op, OpResult, Put, Range,
    RangeResult, SortOrder, SortTarget, Txn, TxnResult,
};

pub(crate) fn kv_to_pb(kv: KeyValue) -> PbKeyValue {
    PbKeyValue {
        key: kv.key,
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        value: kv.value,
        lease: kv.lease,
    }
}

pub(crate) fn event_to_pb(e: &Event, with_prev: bool) -> PbEvent {
    PbEvent {
        r#type: match e.kind {
            EventKind::Put => 0,
            EventKind::Delete => 1,
        },
        kv: Some(kv_to_pb(e.kv.clone())),
        prev_kv: if with_prev {
            e.prev_kv.clone().map(kv_to_pb)
        } else {
            None
        },
    }
}

fn bad(what: &str, v: i32) -> Status {
    Status::invalid_argument(format!("etcdserver: invalid {what} {v}"))
}

impl Api {
    fn check_size(&self, n: usize) -> Result<(), Status> {
        if n > self.max_request_bytes {
            Err(too_large())
        } else {
            Ok(())
        }
    }

    pub(crate) fn range_from_pb(&self, r: PbRangeRequest) -> Result<Range, Status> {
        if r.key.is_empty() {
            return Err(empty_key());
        }
        Ok(Range {
            key: r.key,
            range_end: r.range_end,
            limit: r.limit,
            revision: r.revision,
            sort_order: match r.sort_order {
                0 => SortOrder::None,
                1 => SortOrder::Ascend,
                2 => SortOrder::Descend,
                v => return Err(bad("sort order", v)),
            },
            sort_target: match r.sort_target {
                0 => SortTarget::Key,
                1 => SortTarget::Version,
                2 => SortTarget::Create,
                3 => SortTarget::Mod,
                4 => SortTarget::Value,
                v => return Err(bad("sort target", v)),
            },
            keys_only: r.keys_only,
            count_only: r.count_only,
            min_mod_revision: r.min_mod_revision,
            max_mod_revision: r.max_mod_revision,
            min_create_revision: r.min_create_revision,
            max_create_revision: r.max_create_revision,
        })
    }

    pub(crate) fn put_from_pb(&self, p: PbPutRequest) -> Result<Put, Status> {
        if p.key.is_empty() {
            return Err(empty_key());
        }
        self.check_size(p.key.len() + p.value.len())?;
        Ok(Put {
            key: p.key,
            value: p.value,
            lease: p.lease,
            prev_kv: p.prev_kv,
            ignore_value: p.ignore_value,
            ignore_lease: p.ignore_lease,
        })
    }

    pub(crate) fn delete_from_pb(&self, d: PbDeleteRequest) -> Result<DeleteRange, Status> {
        if d.key.is_empty() {
            return Err(empty_key());
        }
        Ok(DeleteRange {
            key: d.key,
            range_end: d.range_end,
            prev_kv: d.prev_kv,
        })
    }

    pub(crate) fn txn_from_pb(&self, t: PbTxnRequest) -> Result<Txn, Status> {
        if t.compare.len() > MAX_TXN_OPS
            || t.success.len() > MAX_TXN_OPS
            || t.failure.len() > MAX_TXN_OPS
        {
            return Err(Status::invalid_argument(
                "etcdserver: too many operations in txn request",
            ));
        }
        let compare = t
            .compare
            .into_iter()
            .map(compare_from_pb)
            .collect::<Result<_, _>>()?;
        let ops = |ops: Vec<etcd_client::proto::PbTxnRequestOp>| -> Result<Vec<Op>, Status> {
            ops.into_iter()
                .map(|op| match op.request {
                    Some(PbTxnOpRequest::RequestRange(r)) => Ok(Op::Range(self.range_from_pb(r)?)),
                    Some(PbTxnOpRequest::RequestPut(p)) => Ok(Op::Put(self.put_from_pb(p)?)),
                    Some(PbTxnOpRequest::RequestDeleteRange(d)) => {
                        Ok(Op::Delete(self.delete_from_pb(d)?))
                    }
                    Some(PbTxnOpRequest::RequestTxn(t)) => Ok(Op::Txn(self.txn_from_pb(t)?)),
                    None => Err(Status::invalid_argument("etcdserver: empty txn operation")),
                })
                .collect()
        };
        Ok(Txn {
            compare,
            success: ops(t.success)?,
            failure: ops(t.failure)?,
        })
    }

    pub(crate) fn range_to_pb(&self, r: RangeResult, revision: i64) -> PbRangeResponse {
        PbRangeResponse {
            header: self.header(revision),
            kvs: r.kvs.into_iter().map(kv_to_pb).collect(),
            more: r.more,
            count: r.count,
        }
    }

    pub(crate) fn put_to_pb(&self, prev: Option<KeyValue>, revision: i64) -> PbPutResponse {
        PbPutResponse {
            header: self.header(revision),
            prev_kv: prev.map(kv_to_pb),
        }
    }

    pub(crate) fn delete_to_pb(
        &self,
        n: i64,
        prev: Vec<KeyValue>,
        revision: i64,
    ) -> PbDeleteResponse {
        PbDeleteResponse {
            header: self.header(revision),
            deleted: n,
            prev_kvs: prev.into_iter().map(kv_to_pb).collect(),
        }
    }

    pub(crate) fn txn_to_pb(&self, t: TxnResult, revision: i64) -> PbTxnResponse {
        let responses = t
            .responses
            .into_iter()
            .map(|r| PbResponseOp {
                response: Some(match r {
                    OpResult::Range(r) => {
                        PbTxnOpResponse::ResponseRange(self.range_to_pb(r, revision))
                    }
                    OpResult::Put(p) => PbTxnOpResponse::ResponsePut(self.put_to_pb(p, revision)),
                    OpResult::Delete(n, prev) => {
                        PbTxnOpResponse::ResponseDeleteRange(self.delete_to_pb(n, prev, revision))
                    }
                    OpResult::Txn(t) => PbTxnOpResponse::ResponseTxn(self.txn_to_pb(t, revision)),
                }),
            })
            .collect();
        PbTxnResponse {
            header: self.header(revision),
            succeeded: t.succeeded,
            responses,
        }
    }
}

fn compare_from_pb(c: PbCompare) -> Result<Compare, Status> {
    let result = match c.result {
        0 => CompareResult::Equal,
        1 => CompareResult::Greater,
        2 => CompareResult::Less,
        3 => CompareResult::NotEqual,
        v => return Err(bad("compare result", v)),
    };
    let target = match (c.target, c.target_union) {
        (0, Some(PbTargetUnion::Version(v))) => CompareTarget::Version(v),
        (1, Some(PbTargetUnion::CreateRevision(v))) => CompareTarget::Create(v),
        (2, Some(PbTargetUnion::ModRevision(v))) => CompareTarget::Mod(v),
        (3, Some(PbTargetUnion::Value(v))) => CompareTarget::Value(v),
        (4, Some(PbTargetUnion::Lease(v))) => CompareTarget::Lease(v),
        // A zero value is sent as an absent union field by proto3 encoders.
        (0, None) => CompareTarget::Version(0),
        (1, None) => CompareTarget::Create(0),
        (2, None) => CompareTarget::Mod(0),
        (3, None) => CompareTarget::Value(Vec::new()),
        (4, None) => CompareTarget::Lease(0),
        (t, _) => return Err(bad("compare target", t)),
    };
    if c.key.is_empty() {
        return Err(empty_key());
    }
    Ok(Compare {
        key: c.key,
        range_end: c.range_end,
        result,
        target,
    })
}
