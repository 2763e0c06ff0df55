//! etcd's Watch service: one task per client stream multiplexes its watchers.
//!
//! Flow: the stream's task subscribes to the state machine's applied-revision broadcast
//! *before* serving any create request. A new watcher replays history from its start revision
//! up to the revision current at that moment (read under the state lock), then takes live
//! revisions from the broadcast, skipping what it already replayed (`next_rev`). So events are
//! ordered, never duplicated, and each revision's events (a txn's) go out in one response. If
//! the task falls behind the broadcast (lagged) or a snapshot replaced the state, every watcher
//! re-reads history from its `next_rev`; a watcher whose history was compacted meanwhile is
//! cancelled with the compact revision, as in etcd, so the client can resume.
//! Progress notifications carry the highest revision this stream has fully processed.

use std::collections::BTreeMap;
use std::sync::Arc;

use etcd_client::proto::{PbWatchRequest, PbWatchRequestUnion, PbWatchResponse, PbWatchService};
use futures::StreamExt;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::Api;
use super::convert::event_to_pb;
use crate::mvcc::{Event, EventKind, in_range};
use crate::state_machine::Applied;
use crate::types::ApplyError;

struct Watcher {
    key: Vec<u8>,
    range_end: Vec<u8>,
    prev_kv: bool,
    no_put: bool,
    no_delete: bool,
    progress_notify: bool,
    /// First revision not yet delivered.
    next_rev: i64,
}

impl Watcher {
    fn wants(&self, e: &Event) -> bool {
        in_range(&self.key, &self.range_end, &e.kv.key)
            && !(self.no_put && e.kind == EventKind::Put)
            && !(self.no_delete && e.kind == EventKind::Delete)
    }
}

struct Session {
    api: Api,
    out: mpsc::Sender<Result<PbWatchResponse, Status>>,
    watchers: BTreeMap<i64, Watcher>,
    next_id: i64,
    /// Highest revision this session has fully processed (for progress notifications).
    synced_rev: i64,
}

/// The client went away; stop the session.
struct Gone;

#[tonic::async_trait]
impl PbWatchService for Api {
    type WatchStream = ReceiverStream<Result<PbWatchResponse, Status>>;

    async fn watch(
        &self,
        req: Request<Streaming<PbWatchRequest>>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let inbound = req.into_inner();
        let (tx, rx) = mpsc::channel(256);
        let sub = self.node.sm.events.subscribe();
        let synced_rev = self.node.read(|d| d.mvcc.revision());
        let session = Session {
            api: self.clone(),
            out: tx,
            watchers: BTreeMap::new(),
            next_id: 0,
            synced_rev,
        };
        tokio::spawn(session.run(inbound, sub));
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

impl Session {
    async fn run(
        mut self,
        mut inbound: Streaming<PbWatchRequest>,
        mut sub: broadcast::Receiver<Arc<Applied>>,
    ) {
        let mut progress = tokio::time::interval(self.api.progress_notify);
        progress.tick().await;
        loop {
            let step = tokio::select! {
                msg = inbound.next() => match msg {
                    Some(Ok(req)) => self.handle(req).await,
                    Some(Err(status)) => {
                        tracing::debug!(%status, "watch stream closed by the client");
                        Err(Gone)
                    }
                    None => Err(Gone),
                },
                applied = sub.recv() => match applied {
                    Ok(a) => match &*a {
                        Applied::Events { revision, events } => self.deliver(*revision, events).await,
                        Applied::Reset => self.resync().await,
                    },
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::debug!(skipped = n, "watch session lagged; re-reading history");
                        self.resync().await
                    }
                    Err(broadcast::error::RecvError::Closed) => Err(Gone),
                },
                _ = progress.tick() => self.progress(false).await,
                _ = self.out.closed() => Err(Gone),
            };
            if step.is_err() {
                return;
            }
        }
    }

    async fn send(&self, r: PbWatchResponse) -> Result<(), Gone> {
        self.out.send(Ok(r)).await.map_err(|_| Gone)
    }

    fn response(&self, watch_id: i64, revision: i64) -> PbWatchResponse {
        PbWatchResponse {
            header: self.api.header(revision),
            watch_id,
            ..Default::default()
        }
    }

    async fn handle(&mut self, req: PbWatchRequest) -> Result<(), Gone> {
        match req.request_union {
            Some(PbWatchRequestUnion::CreateRequest(c)) => {
                let id = if c.watch_id != 0 {
                    c.watch_id
                } else {
                    self.fresh_id()
                };
                if self.watchers.contains_key(&id) || c.key.is_empty() {
                    let mut r = self.response(id, self.synced_rev);
                    r.created = true;
                    r.canceled = true;
                    r.cancel_reason = if c.key.is_empty() {
                        "etcdserver: key is not provided".into()
                    } else {
                        "etcdserver: duplicate watch id".into()
                    };
                    return self.send(r).await;
                }
                let w = Watcher {
                    key: c.key,
                    range_end: c.range_end,
                    prev_kv: c.prev_kv,
                    no_put: c.filters.contains(&0),
                    no_delete: c.filters.contains(&1),
                    progress_notify: c.progress_notify,
                    next_rev: 0,
                };
                let mut created = self.response(id, self.synced_rev);
                created.created = true;
                self.send(created).await?;
                self.start(id, w, c.start_revision).await
            }
            Some(PbWatchRequestUnion::CancelRequest(c)) => {
                if self.watchers.remove(&c.watch_id).is_some() {
                    let mut r = self.response(c.watch_id, self.synced_rev);
                    r.canceled = true;
                    self.send(r).await?;
                }
                Ok(())
            }
            Some(PbWatchRequestUnion::ProgressRequest(_)) => self.progress(true).await,
            None => Ok(()),
        }
    }

    fn fresh_id(&mut self) -> i64 {
        while self.watchers.contains_key(&self.next_id) {
            self.next_id += 1;
        }
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Replays history from `start` (0 = only future events), then the watcher goes live.
    async fn start(&mut self, id: i64, mut w: Watcher, start: i64) -> Result<(), Gone> {
        let (history, current, compacted) = self.api.node.read(|d| {
            let current = d.mvcc.revision();
            let h = if start > 0 && start <= current {
                Some(d.mvcc.history(&w.key, &w.range_end, start))
            } else {
                None
            };
            (h, current, d.mvcc.compact_revision())
        });
        w.next_rev = if start > current { start } else { current + 1 };
        self.synced_rev = self.synced_rev.max(current);
        match history {
            Some(Err(ApplyError::Compacted)) => return self.compacted(id, compacted).await,
            Some(Err(_)) | None => {}
            Some(Ok(groups)) => {
                for (rev, events) in groups {
                    self.send_events(id, &w, rev, &events).await?;
                }
            }
        }
        self.watchers.insert(id, w);
        Ok(())
    }

    async fn compacted(&mut self, id: i64, compact_revision: i64) -> Result<(), Gone> {
        self.watchers.remove(&id);
        let mut r = self.response(id, self.synced_rev);
        r.canceled = true;
        r.compact_revision = compact_revision;
        r.cancel_reason = ApplyError::Compacted.to_string();
        self.send(r).await
    }

    async fn send_events(
        &self,
        id: i64,
        w: &Watcher,
        rev: i64,
        events: &[Event],
    ) -> Result<(), Gone> {
        let evs: Vec<_> = events
            .iter()
            .filter(|e| w.wants(e))
            .map(|e| event_to_pb(e, w.prev_kv))
            .collect();
        if evs.is_empty() {
            return Ok(());
        }
        let mut r = self.response(id, rev);
        r.events = evs;
        self.send(r).await
    }

    async fn deliver(&mut self, revision: i64, events: &[Event]) -> Result<(), Gone> {
        for (id, w) in self.watchers.iter_mut() {
            if revision < w.next_rev {
                continue;
            }
            w.next_rev = revision + 1;
            let evs: Vec<_> = events
                .iter()
                .filter(|e| w.wants(e))
                .map(|e| event_to_pb(e, w.prev_kv))
                .collect();
            if !evs.is_empty() {
                let mut r = PbWatchResponse {
                    header: self.api.header(revision),
                    watch_id: *id,
                    ..Default::default()
                };
                r.events = evs;
                self.out.send(Ok(r)).await.map_err(|_| Gone)?;
            }
        }
        self.synced_rev = self.synced_rev.max(revision);
        Ok(())
    }

    /// Re-reads every watcher's history from its next revision (after lag or a snapshot).
    async fn resync(&mut self) -> Result<(), Gone> {
        let ids: Vec<i64> = self.watchers.keys().copied().collect();
        for id in ids {
            let w = self.watchers.remove(&id).expect("watcher listed");
            let from = w.next_rev;
            self.start(id, w, from.max(1)).await?;
        }
        Ok(())
    }

    /// Progress notification: to every progress-notify watcher (`requested`: one response with
    /// watch id -1, as etcd answers a progress request).
    async fn progress(&mut self, requested: bool) -> Result<(), Gone> {
        if requested {
            return self.send(self.response(-1, self.synced_rev)).await;
        }
        let ids: Vec<i64> = self
            .watchers
            .iter()
            .filter(|(_, w)| w.progress_notify)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.send(self.response(id, self.synced_rev)).await?;
        }
        Ok(())
    }
}
