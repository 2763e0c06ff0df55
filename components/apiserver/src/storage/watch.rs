//! Watches: etcd watch streams from a revision, turned into object events.
//!
//! Data flow: [`Store::watch`] opens an etcd watch on a collection prefix with previous values
//! (`prev_kv`) so that deletes carry the last state of the object and updates carry the state
//! before (the handler needs both to apply selectors the way Kubernetes does: an object that
//! stops matching is reported as DELETED). [`Watcher::next`] yields batches of [`StoreEvent`];
//! progress notifications (answers to [`Watcher::request_progress`]) become
//! [`StoreEvent::Progress`], which the handler turns into BOOKMARK events. A watch whose start
//! revision was compacted ends with [`StorageError::Compacted`].

use etcd_client::{EventType, WatchOptions, WatchStream};
use serde_json::Value;

use super::{StorageError, Store, decode, list::prefix_end, map_compaction, with_revision};

/// One change in the store.
#[derive(Debug, Clone)]
pub enum StoreEvent {
    /// A key was written; `prev` is the value before (None for a create).
    Put {
        /// The new object, resourceVersion set.
        object: Value,
        /// The previous object, if any.
        prev: Option<Value>,
    },
    /// A key was deleted; the object is its last state with resourceVersion set to the
    /// delete's revision, as Kubernetes reports it.
    Delete {
        /// The object as it was.
        object: Value,
    },
    /// The watch has seen every change up to this revision.
    Progress {
        /// The revision.
        revision: i64,
    },
}

/// An open watch.
pub struct Watcher {
    stream: WatchStream,
    from: i64,
}

impl Store {
    /// Fails with [`StorageError::Compacted`] if `revision` is older than the compaction point,
    /// so a watch or list from it can be refused with 410 before streaming starts.
    pub async fn check_revision(&self, prefix: &str, revision: i64) -> Result<(), StorageError> {
        let req = super::range::RangeRequest {
            count_only: true,
            revision,
            ..super::range::RangeRequest::span(prefix, prefix_end(prefix))
        };
        self.range(req)
            .await
            .map(|_| ())
            .map_err(|e| map_compaction(e, revision))
            .or_else(|e| match e {
                // A watch from a revision the store has not reached yet simply waits for it.
                StorageError::FutureRevision(_) => Ok(()),
                other => Err(other),
            })
    }

    /// Watches every key under `prefix` for changes after `after_revision`.
    pub async fn watch(&self, prefix: &str, after_revision: i64) -> Result<Watcher, StorageError> {
        let options = WatchOptions::new()
            .with_range(prefix_end(prefix))
            .with_prev_key()
            .with_start_revision(after_revision + 1);
        let stream = self.watcher().watch(prefix, Some(options)).await?;
        Ok(Watcher {
            stream,
            from: after_revision + 1,
        })
    }
}

impl Watcher {
    /// Asks the store for a progress notification (answered as [`StoreEvent::Progress`]).
    pub async fn request_progress(&mut self) -> Result<(), StorageError> {
        Ok(self.stream.request_progress().await?)
    }

    /// The next batch of events; `Ok(None)` when the store closed the watch.
    pub async fn next(&mut self) -> Result<Option<Vec<StoreEvent>>, StorageError> {
        loop {
            let Some(resp) = self.stream.message().await? else {
                return Ok(None);
            };
            if resp.compact_revision() > 0 {
                return Err(StorageError::Compacted {
                    requested: self.from,
                    compacted: resp.compact_revision(),
                });
            }
            if resp.canceled() {
                return Ok(None);
            }
            if resp.created() {
                continue;
            }
            if resp.events().is_empty() {
                let revision = resp.header().map(|h| h.revision()).unwrap_or(0);
                return Ok(Some(vec![StoreEvent::Progress { revision }]));
            }
            let mut out = Vec::with_capacity(resp.events().len());
            for ev in resp.events() {
                let Some(kv) = ev.kv() else { continue };
                let prev = match ev.prev_kv() {
                    Some(p) => Some(decode(p.key(), p.value(), p.mod_revision())?.object),
                    None => None,
                };
                match ev.event_type() {
                    EventType::Put => out.push(StoreEvent::Put {
                        object: decode(kv.key(), kv.value(), kv.mod_revision())?.object,
                        prev,
                    }),
                    EventType::Delete => {
                        if let Some(prev) = prev {
                            out.push(StoreEvent::Delete {
                                object: with_revision(prev, kv.mod_revision()),
                            });
                        }
                    }
                }
            }
            if !out.is_empty() {
                return Ok(Some(out));
            }
        }
    }
}
