//! The storage layer: Kubernetes objects in a store that speaks the etcd v3 API.
//!
//! The API server reaches the store only through this module, so the same code runs on the
//! embedded kubelab store, a 3-member kubelab store or a real etcd.
//!
//! - [`keys`]: key layout `/registry/<resource>/<namespace>/<name>` (cluster-scoped:
//!   `/registry/<resource>/<name>`), and the allocator marker keys.
//! - [`Store`] (here): get / create / update / delete as etcd transactions. Values are the
//!   object's JSON without `metadata.resourceVersion`; the resourceVersion a client sees is the
//!   key's `mod_revision`, injected on read. Writes compare `create_revision` (create) or
//!   `mod_revision` (update, delete), which gives Kubernetes' optimistic concurrency: a stale
//!   resourceVersion fails the compare and surfaces as 409 Conflict.
//! - [`list`]: range reads at one revision with `limit` and `continue` tokens.
//! - `range`: the one range read every read here goes through, over gRPC or — for the
//!   embedded store — directly into the member ([`Store::with_direct_kv`]).
//! - `txn`: the one transaction every write here goes through, the same two ways.
//! - [`watch`]: etcd watches from a revision, with previous values, turned into object events;
//!   a compacted revision becomes [`StorageError::Compacted`] (HTTP 410 Gone).
//!
//! Guards: a create may carry a [`Guard`], a key whose `mod_revision` must be unchanged in the
//! same transaction (the namespace a namespaced object is created in). The handlers remember
//! the revision of a namespace they found live and not terminating ([`Store::recall`]), so a
//! create costs one store round trip (the transaction) instead of a read and a transaction;
//! a namespace changed since (deleted, marked terminating) fails the compare and is re-read.
//!
//! Side keys: a write may carry [`Marker`]s, extra keys created (only if absent) or deleted in
//! the same transaction. The Service IP and NodePort allocators use them so that two Services
//! can never hold the same address, even when created concurrently by different API servers.

pub mod keys;
pub mod list;
mod range;
mod splice;
mod txn;
pub mod watch;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use etcd_client::{Client, Compare, CompareOp, ConnectOptions, Txn, TxnOp, TxnOpResponse};
use serde_json::Value;

use crate::metrics::{StoreMetrics, StoreOp};
use range::{Kv, RangeRequest};

pub use keys::Key;

/// A failure of the store or of a storage precondition.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The store is unreachable or answered with an error.
    #[error("the store at {0} is unavailable")]
    Unavailable(String, #[source] etcd_client::Error),
    /// A store call failed.
    #[error("store request failed")]
    Etcd(#[from] etcd_client::Error),
    /// The key already exists (create).
    #[error("key {0} already exists")]
    Exists(String),
    /// The key does not exist.
    #[error("key {0} not found")]
    NotFound(String),
    /// The key changed since the given revision (update/delete compare failed).
    #[error("key {key} was modified: expected revision {expected}, found {actual}")]
    Modified {
        /// The key.
        key: String,
        /// The revision the caller based its write on.
        expected: i64,
        /// The current revision.
        actual: i64,
    },
    /// A marker key to be created is already held (allocation collision).
    #[error("marker {0} is already held")]
    MarkerTaken(String),
    /// A [`Guard`] key changed (or vanished) since its revision was taken.
    #[error("key {0} changed since it was checked")]
    GuardChanged(String),
    /// The requested revision was compacted away.
    #[error("required revision {requested} has been compacted (compacted up to {compacted})")]
    Compacted {
        /// The revision asked for.
        requested: i64,
        /// The store's compaction point (0 if unknown).
        compacted: i64,
    },
    /// A `continue` token that this server did not issue or cannot read.
    #[error("invalid continue token {0:?}: it must be the metadata.continue of a previous list")]
    InvalidContinue(String),
    /// The requested revision is newer than the store's current one.
    #[error("revision {0} is newer than the store's current revision")]
    FutureRevision(i64),
    /// A stored value is not valid JSON (store corrupted by another writer).
    #[error("stored value at {key} is not valid JSON")]
    Corrupt {
        /// The key.
        key: String,
        /// The decode failure.
        #[source]
        source: serde_json::Error,
    },
}

/// An object as read from the store.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The object JSON with `metadata.resourceVersion` set to `revision`.
    pub object: Value,
    /// The key's `mod_revision`.
    pub revision: i64,
}

/// An extra key written in the same transaction as an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Marker {
    /// Create this key with this value; fail with [`StorageError::MarkerTaken`] if present.
    Claim(String, String),
    /// Delete this key (no-op if absent).
    Release(String),
}

/// A key a write requires unchanged: its `mod_revision` is compared in the write's
/// transaction (0 never matches a live key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guard {
    /// The guarded key.
    pub key: Key,
    /// Its `mod_revision` when it was checked.
    pub revision: i64,
}

/// How many guard revisions [`Store::remember`] keeps before starting over: namespaces are
/// few; the bound only keeps a pathological client from growing the map without end.
const MEMO_CAPACITY: usize = 4096;

/// Largest gRPC message accepted from the store. Objects are at most ~1.5 MiB and lists are
/// read in batches of [`list::BATCH`] keys, so this bounds a batch of big objects.
const MAX_MESSAGE: usize = 512 * 1024 * 1024;

/// Handle on the store. Cheap to clone; all clones share one gRPC channel.
#[derive(Clone)]
pub struct Store {
    client: Client,
    /// Where range reads and transactions (every write) go: the client's KV service, or the
    /// embedded member directly.
    kv: Kv,
    /// Last seen `mod_revision` of guard keys (namespaces found live): a hint only, every use
    /// is checked by the transaction's compare.
    memo: Arc<Mutex<HashMap<String, i64>>>,
    /// Round-trip latencies (`etcd_request_duration_seconds`).
    pub(crate) metrics: Arc<StoreMetrics>,
}

fn is_compaction_error(e: &etcd_client::Error) -> bool {
    matches!(e, etcd_client::Error::GRpcStatus(s) if s.message().contains("compacted"))
}

/// Sets `metadata.resourceVersion` on an object read from the store.
pub fn with_revision(mut object: Value, revision: i64) -> Value {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert(
            "resourceVersion".into(),
            Value::String(revision.to_string()),
        );
    }
    object
}

fn decode(key: &[u8], value: &[u8], revision: i64) -> Result<Stored, StorageError> {
    let object: Value = serde_json::from_slice(value).map_err(|source| StorageError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        source,
    })?;
    Ok(Stored {
        object: with_revision(object, revision),
        revision,
    })
}

fn connect_options() -> ConnectOptions {
    ConnectOptions::new()
        .with_connect_timeout(std::time::Duration::from_secs(5))
        .with_timeout(std::time::Duration::from_secs(30))
}

/// The object JSON as stored: without resourceVersion (the revision is the store's).
fn encode(object: &Value) -> Vec<u8> {
    if object.pointer("/metadata/resourceVersion").is_none() {
        // The handlers strip it already: serialize without copying the object.
        return serde_json::to_vec(object).unwrap_or_default();
    }
    let mut object = object.clone();
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
    }
    serde_json::to_vec(&object).unwrap_or_default()
}

impl Store {
    /// Connects to the store endpoints (`http://127.0.0.1:2379`, ...).
    pub async fn connect(endpoints: &[String]) -> Result<Store, StorageError> {
        let client = Client::connect(endpoints, Some(connect_options()))
            .await
            .map_err(|e| StorageError::Unavailable(endpoints.join(","), e))?;
        Ok(Store::with_client(client))
    }

    /// Connects to a store member in this process through its gRPC services (the embedded
    /// store): the same etcd client and protobuf messages as [`Store::connect`], without
    /// HTTP/2 and loopback TCP in between. `name` only labels errors.
    pub async fn connect_in_process(
        name: &str,
        api: tonic::service::Routes,
    ) -> Result<Store, StorageError> {
        use tower::ServiceExt;
        let api = ServiceExt::<http::Request<tonic::body::Body>>::map_err(
            api,
            |e: std::convert::Infallible| -> tower::BoxError { match e {} },
        );
        let channel = etcd_client::Channel::Custom(tower::util::BoxCloneSyncService::new(api));
        let client = Client::from_channel(channel, Some(connect_options()))
            .await
            .map_err(|e| StorageError::Unavailable(name.to_string(), e))?;
        Ok(Store::with_client(client))
    }

    /// Sends this store's range reads (gets, list batches, counts) and transactions
    /// (creates, updates, deletes) directly into the embedded member instead of through its
    /// gRPC services: same handlers, same results and errors, no protobuf codec (see
    /// `storage/range.rs`, `storage/txn.rs`). Watches and compaction stay on gRPC.
    pub fn with_direct_kv(mut self, direct: kubelab_store::DirectKv) -> Store {
        self.kv = Kv::Direct(direct);
        self
    }

    fn with_client(client: Client) -> Store {
        Store {
            kv: Kv::Grpc(Box::new(
                client.kv_client().max_decoding_message_size(MAX_MESSAGE),
            )),
            client,
            memo: Arc::default(),
            metrics: Arc::default(),
        }
    }

    /// Compacts the store's history up to `revision` (kube-apiserver's periodic compaction).
    pub async fn compact(&self, revision: i64) -> Result<(), StorageError> {
        self.client
            .kv_client()
            .compact(revision, None)
            .await
            .map_err(|e| map_compaction(e, revision))?;
        Ok(())
    }

    /// The store's current revision.
    pub async fn current_revision(&self) -> Result<i64, StorageError> {
        let _timer = self.metrics.timer(StoreOp::Count);
        let resp = self
            .range(RangeRequest {
                count_only: true,
                limit: 1,
                ..RangeRequest::key("/registry/")
            })
            .await?;
        Ok(resp.header().map(|h| h.revision()).unwrap_or(0))
    }

    /// How many keys hold objects under `prefix` (`apiserver_storage_objects`).
    pub async fn count(&self, prefix: &str) -> Result<i64, StorageError> {
        let _timer = self.metrics.timer(StoreOp::Count);
        let req = RangeRequest {
            count_only: true,
            ..RangeRequest::span(prefix, list::prefix_end(prefix))
        };
        Ok(self.range(req).await?.count())
    }

    /// The store's round-trip latencies.
    pub fn metrics(&self) -> &StoreMetrics {
        &self.metrics
    }

    /// Reads one object.
    pub async fn get(&self, key: &Key) -> Result<Option<Stored>, StorageError> {
        let _timer = self.metrics.timer(StoreOp::Get);
        let resp = self.range(RangeRequest::key(key.as_str())).await?;
        match resp.kvs().first() {
            Some(kv) => Ok(Some(decode(kv.key(), kv.value(), kv.mod_revision())?)),
            None => Ok(None),
        }
    }

    /// Reads one object from the member's applied state without a leadership round
    /// (`serializable`). It may be stale on a follower; callers use it only where the write's
    /// revision compare catches staleness, and re-read with [`Store::get`] when it matters.
    pub async fn get_serializable(&self, key: &Key) -> Result<Option<Stored>, StorageError> {
        let _timer = self.metrics.timer(StoreOp::Get);
        let resp = self
            .range(RangeRequest {
                serializable: true,
                ..RangeRequest::key(key.as_str())
            })
            .await?;
        match resp.kvs().first() {
            Some(kv) => Ok(Some(decode(kv.key(), kv.value(), kv.mod_revision())?)),
            None => Ok(None),
        }
    }

    /// The revision last remembered for a guard key.
    pub fn recall(&self, key: &Key) -> Option<i64> {
        self.memo
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key.as_str())
            .copied()
    }

    /// Remembers a guard key's revision (see [`Store::recall`]).
    pub fn remember(&self, key: &Key, revision: i64) {
        let mut memo = self.memo.lock().unwrap_or_else(|p| p.into_inner());
        if memo.len() >= MEMO_CAPACITY && !memo.contains_key(key.as_str()) {
            memo.clear();
        }
        memo.insert(key.to_string(), revision);
    }

    /// Forgets a guard key's revision.
    pub fn forget(&self, key: &Key) {
        self.memo
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key.as_str());
    }

    fn marker_ops(markers: &[Marker]) -> (Vec<Compare>, Vec<TxnOp>) {
        let mut compares = Vec::new();
        let mut ops = Vec::new();
        for m in markers {
            match m {
                Marker::Claim(k, v) => {
                    compares.push(Compare::create_revision(k.as_str(), CompareOp::Equal, 0));
                    ops.push(TxnOp::put(k.as_str(), v.as_str(), None));
                }
                Marker::Release(k) => ops.push(TxnOp::delete(k.as_str(), None)),
            }
        }
        (compares, ops)
    }

    /// After a failed transaction, finds which marker claim collided.
    async fn taken_marker(&self, markers: &[Marker]) -> Result<Option<String>, StorageError> {
        for m in markers {
            if let Marker::Claim(k, _) = m
                && !self
                    .range(RangeRequest::key(k.as_str()))
                    .await?
                    .kvs()
                    .is_empty()
            {
                return Ok(Some(k.clone()));
            }
        }
        Ok(None)
    }

    /// Creates an object; fails with [`StorageError::Exists`] if the key is taken. Returns the
    /// new revision.
    pub async fn create(
        &self,
        key: &Key,
        object: &Value,
        markers: &[Marker],
    ) -> Result<i64, StorageError> {
        self.create_guarded(key, object, markers, None).await
    }

    /// [`Store::create`] that also requires `guard` unchanged, in the same transaction; fails
    /// with [`StorageError::GuardChanged`] when it is not.
    pub async fn create_guarded(
        &self,
        key: &Key,
        object: &Value,
        markers: &[Marker],
        guard: Option<&Guard>,
    ) -> Result<i64, StorageError> {
        let _timer = self.metrics.timer(StoreOp::Create);
        let (mut compares, mut ops) = Self::marker_ops(markers);
        compares.push(Compare::create_revision(key.as_str(), CompareOp::Equal, 0));
        let mut otherwise = Vec::new();
        if let Some(g) = guard {
            compares.push(Compare::mod_revision(
                g.key.as_str(),
                CompareOp::Equal,
                g.revision,
            ));
            otherwise.push(TxnOp::get(g.key.as_str(), None));
        }
        ops.push(TxnOp::put(key.as_str(), encode(object), None));
        let txn = Txn::new().when(compares).and_then(ops).or_else(otherwise);
        let resp = self.kv.txn(txn).await?;
        if resp.succeeded() {
            return Ok(resp.header().map(|h| h.revision()).unwrap_or(0));
        }
        if let Some(g) = guard {
            let now = resp.op_responses().iter().find_map(|r| match r {
                TxnOpResponse::Get(get) => {
                    Some(get.kvs().first().map(|kv| kv.mod_revision()).unwrap_or(0))
                }
                _ => None,
            });
            if now != Some(g.revision) {
                return Err(StorageError::GuardChanged(g.key.to_string()));
            }
        }
        if let Some(k) = self.taken_marker(markers).await? {
            return Err(StorageError::MarkerTaken(k));
        }
        Err(StorageError::Exists(key.to_string()))
    }

    /// Replaces an object if its revision is still `expected`. Returns the new revision.
    pub async fn update(
        &self,
        key: &Key,
        object: &Value,
        expected: i64,
        markers: &[Marker],
    ) -> Result<i64, StorageError> {
        let _timer = self.metrics.timer(StoreOp::Update);
        let (mut compares, mut ops) = Self::marker_ops(markers);
        compares.push(Compare::mod_revision(
            key.as_str(),
            CompareOp::Equal,
            expected,
        ));
        ops.push(TxnOp::put(key.as_str(), encode(object), None));
        let txn = Txn::new()
            .when(compares)
            .and_then(ops)
            .or_else(vec![TxnOp::get(key.as_str(), None)]);
        let resp = self.kv.txn(txn).await?;
        if resp.succeeded() {
            return Ok(resp.header().map(|h| h.revision()).unwrap_or(0));
        }
        self.explain_failure(key, expected, markers, resp.op_responses())
            .await
    }

    /// Deletes an object if its revision is still `expected`. Returns the delete's revision.
    pub async fn delete(
        &self,
        key: &Key,
        expected: i64,
        markers: &[Marker],
    ) -> Result<i64, StorageError> {
        let _timer = self.metrics.timer(StoreOp::Delete);
        let (mut compares, mut ops) = Self::marker_ops(markers);
        compares.push(Compare::mod_revision(
            key.as_str(),
            CompareOp::Equal,
            expected,
        ));
        ops.push(TxnOp::delete(key.as_str(), None));
        let txn = Txn::new()
            .when(compares)
            .and_then(ops)
            .or_else(vec![TxnOp::get(key.as_str(), None)]);
        let resp = self.kv.txn(txn).await?;
        if resp.succeeded() {
            return Ok(resp.header().map(|h| h.revision()).unwrap_or(0));
        }
        self.explain_failure(key, expected, markers, resp.op_responses())
            .await
    }

    async fn explain_failure(
        &self,
        key: &Key,
        expected: i64,
        markers: &[Marker],
        responses: Vec<TxnOpResponse>,
    ) -> Result<i64, StorageError> {
        let actual = responses.iter().find_map(|r| match r {
            TxnOpResponse::Get(g) => Some(g.kvs().first().map(|kv| kv.mod_revision()).unwrap_or(0)),
            _ => None,
        });
        match actual {
            Some(0) | None => Err(StorageError::NotFound(key.to_string())),
            Some(actual) if actual != expected => Err(StorageError::Modified {
                key: key.to_string(),
                expected,
                actual,
            }),
            Some(_) => match self.taken_marker(markers).await? {
                Some(k) => Err(StorageError::MarkerTaken(k)),
                None => Err(StorageError::Modified {
                    key: key.to_string(),
                    expected,
                    actual: expected,
                }),
            },
        }
    }

    /// Keys under a prefix (allocator markers), without values.
    pub async fn keys_with_prefix(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let resp = self
            .range(RangeRequest {
                keys_only: true,
                ..RangeRequest::span(prefix, list::prefix_end(prefix))
            })
            .await?;
        Ok(resp
            .kvs()
            .iter()
            .map(|kv| String::from_utf8_lossy(kv.key()).into_owned())
            .collect())
    }

    /// One range read, over gRPC or directly into the embedded member.
    pub(crate) async fn range(
        &self,
        req: RangeRequest,
    ) -> Result<etcd_client::GetResponse, etcd_client::Error> {
        self.kv.range(req).await
    }

    /// A watch client that accepts large event batches.
    pub(crate) fn watcher(&self) -> etcd_client::WatchClient {
        self.client
            .watch_client()
            .max_decoding_message_size(MAX_MESSAGE)
    }
}

pub(crate) fn map_compaction(e: etcd_client::Error, requested: i64) -> StorageError {
    if matches!(&e, etcd_client::Error::GRpcStatus(st) if st.message().contains("future revision"))
    {
        return StorageError::FutureRevision(requested);
    }
    if is_compaction_error(&e) {
        StorageError::Compacted {
            requested,
            compacted: 0,
        }
    } else {
        StorageError::Etcd(e)
    }
}
