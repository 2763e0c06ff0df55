//! Watch: a chunked stream of `{"type": ..., "object": ...}` lines, as Kubernetes serves it.
//!
//! 1. Start point: with `resourceVersion=N` (N > 0) the watch starts after N — a compacted N
//!    is refused with 410 before streaming. Without one (or `0`) the current state is sent as
//!    ADDED events first, then changes after that list's revision.
//! 2. `sendInitialEvents=true` (needs `allowWatchBookmarks=true` and
//!    `resourceVersionMatch=NotOlderThan`, as in Kubernetes) sends the current state as ADDED,
//!    then a BOOKMARK annotated `k8s.io/initial-events-end: "true"`, then changes.
//!    With a resourceVersion the store has not reached, the watch waits for it like a get
//!    ([`super::fresh`]) and ends with an ERROR event (504 `Timeout`) if it does not come;
//!    a watch without initial events from a future resourceVersion simply starts there.
//! 3. Store events pass the label/field selectors; an object that stops (starts) matching is
//!    sent as DELETED (ADDED). With `allowWatchBookmarks=true`, a progress request every
//!    `bookmark_interval` turns into a BOOKMARK carrying the watch's current revision.
//! 4. The stream ends after `timeoutSeconds` (or the configured maximum), when the client goes
//!    away, or with an ERROR event (410 Expired) if the store compacts past the watch.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::meta::{Filter, meta_str};
use super::{Ctx, Format, Reply, Req};
use crate::error::ApiError;
use crate::registry::Resource;
use crate::storage::list::ListOptions;
use crate::storage::watch::StoreEvent;
use crate::storage::{StorageError, keys};
use crate::table::{self, IncludeObject};

/// Channel depth between the store reader and the HTTP writer.
const BUFFER: usize = 256;

struct Encoder {
    resource: std::sync::Arc<dyn Resource>,
    format: Format,
    include: IncludeObject,
    sent_columns: bool,
}

impl Encoder {
    fn event(&mut self, kind: &str, object: Value) -> Bytes {
        let object = if self.format == Format::Table && kind != "BOOKMARK" && kind != "ERROR" {
            let row = table::row(
                self.resource.as_ref(),
                &object,
                self.include,
                jiff::Timestamp::now(),
            );
            let meta = json!({"resourceVersion": meta_str(&object, "resourceVersion")});
            let mut t = table::table(self.resource.as_ref(), vec![row], meta);
            if self.sent_columns {
                t["columnDefinitions"] = json!([]);
            }
            self.sent_columns = true;
            t
        } else if let Format::Metadata { version, .. } = self.format
            && kind != "ERROR"
        {
            super::partial::object(object, version)
        } else {
            object
        };
        let mut line =
            serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
        line.push(b'\n');
        Bytes::from(line)
    }

    fn bookmark(&mut self, revision: i64, initial_end: bool) -> Bytes {
        let info = self.resource.info();
        let mut meta = json!({"resourceVersion": revision.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        self.event(
            "BOOKMARK",
            json!({"kind": info.kind, "apiVersion": info.api_version(), "metadata": meta}),
        )
    }
}

/// Starts a watch.
pub async fn watch(ctx: &Ctx, req: &Req) -> Result<Reply, ApiError> {
    let info = req.resource.info();
    let mut req_query = req.query.clone();
    if let Some(name) = &req.path.name {
        // GET .../pods/x?watch=1: a watch of one object.
        let fs = req_query
            .get("fieldSelector")
            .map(|s| format!("{s},"))
            .unwrap_or_default();
        req_query
            .0
            .insert("fieldSelector".into(), format!("{fs}metadata.name={name}"));
    }
    let scoped = Req {
        resource: req.resource.clone(),
        path: req.path.clone(),
        verb: req.verb,
        query: req_query,
        body: None,
        format: req.format,
        user_agent: req.user_agent.clone(),
        user: req.user.clone(),
    };
    let filter = Filter::from_request(&scoped)?;
    let bookmarks = req.query.flag("allowWatchBookmarks")?;
    let send_initial = match req.query.get("sendInitialEvents") {
        None => None,
        Some(_) => Some(req.query.flag("sendInitialEvents")?),
    };
    let rv = match req.query.get("resourceVersion") {
        Some(v) => super::list::parse_rv(v)?,
        None => 0,
    };
    if send_initial.is_some() {
        if req.query.get("resourceVersionMatch") != Some("NotOlderThan") || !bookmarks {
            return Err(ApiError::BadRequest(
                "sendInitialEvents requires resourceVersionMatch=NotOlderThan and allowWatchBookmarks=true".into(),
            ));
        }
    } else if req.query.get("resourceVersionMatch").is_some() {
        return Err(ApiError::BadRequest(
            "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"
                .into(),
        ));
    }
    let timeout = match req.query.int("timeoutSeconds")? {
        Some(t) if t > 0 => Duration::from_secs(t as u64).min(ctx.config.max_watch),
        _ => ctx.config.max_watch,
    };
    let include =
        IncludeObject::parse(req.query.get("includeObject")).map_err(ApiError::BadRequest)?;
    let prefix = keys::collection(info.plural, req.namespace());
    let mut enc = Encoder {
        resource: req.resource.clone(),
        format: req.format,
        include,
        sent_columns: false,
    };

    // Initial state, when asked for (explicitly, or implicitly by giving no resourceVersion).
    // The first batch is read here (errors are a Status); the pump sends the rest batch by
    // batch as the client takes them, so a big initial state is never held whole.
    let wants_initial = send_initial.unwrap_or(rv == 0);
    if send_initial == Some(true) && rv > 0 {
        // The initial state must not be older than `rv`: wait for it as a get does, and
        // fail as kube-apiserver's watch does, with an ERROR event (the stream is open).
        if let Err(e) = super::fresh::wait_for(ctx, rv).await {
            let status = e.to_status();
            let line = enc.event("ERROR", status);
            let once = futures::stream::iter([line]);
            return Ok(Reply::Stream(Box::pin(once)));
        }
    }
    let mut initial = Initial {
        first: Vec::new(),
        cursor: None,
        end_bookmark: false,
    };
    let start = if wants_initial {
        let mut cursor =
            ctx.store
                .list_cursor(&prefix, &ListOptions::default(), !filter.is_empty())?;
        let first = cursor
            .next_batch(&|o: &Value| filter.matches(o))
            .await?
            .unwrap_or_default();
        let revision = cursor.revision();
        if rv > revision {
            return Err(ApiError::TooLargeResourceVersion {
                requested: rv,
                current: revision,
            });
        }
        for item in first {
            initial.first.push(enc.event("ADDED", item.object));
        }
        initial.end_bookmark = send_initial == Some(true);
        initial.cursor = Some(cursor);
        revision
    } else if rv > 0 {
        ctx.store
            .check_revision(&prefix, rv)
            .await
            .map_err(|e| match e {
                StorageError::Compacted { requested, .. } => {
                    ApiError::Gone(format!("too old resource version: {requested}"))
                }
                other => other.into(),
            })?;
        rv
    } else {
        ctx.store.current_revision().await?
    };
    let watcher = ctx.store.watch(&prefix, start).await?;
    let (tx, rx) = mpsc::channel::<Bytes>(BUFFER);
    let interval = ctx.config.bookmark_interval;
    tokio::spawn(pump(
        watcher, tx, initial, enc, filter, bookmarks, interval, timeout,
    ));
    // Counted as a registered watcher while the response streams.
    let registered = ctx.metrics.watch_started(info.plural);
    let stream = ReceiverStream::new(rx).map(move |chunk| {
        let _ = &registered;
        chunk
    });
    Ok(Reply::Stream(Box::pin(stream)))
}

/// The initial state a watch sends before its events: the first batch (already read and
/// encoded), the rest of the list to read, and whether the `initial-events-end` bookmark
/// follows.
struct Initial {
    first: Vec<Bytes>,
    cursor: Option<crate::storage::list::ListCursor>,
    end_bookmark: bool,
}

#[allow(clippy::too_many_arguments)]
async fn pump(
    mut watcher: crate::storage::watch::Watcher,
    tx: mpsc::Sender<Bytes>,
    initial: Initial,
    mut enc: Encoder,
    filter: Filter,
    bookmarks: bool,
    interval: Duration,
    timeout: Duration,
) {
    for chunk in initial.first {
        if tx.send(chunk).await.is_err() {
            return;
        }
    }
    if let Some(mut cursor) = initial.cursor {
        loop {
            let batch = match cursor.next_batch(&|o: &Value| filter.matches(o)).await {
                Ok(Some(batch)) => batch,
                Ok(None) => break,
                Err(e) => {
                    let status = ApiError::Storage(e).to_status();
                    let _ = tx.send(enc.event("ERROR", status)).await;
                    return;
                }
            };
            for item in batch {
                if tx.send(enc.event("ADDED", item.object)).await.is_err() {
                    return;
                }
            }
        }
        if initial.end_bookmark
            && tx
                .send(enc.bookmark(cursor.revision(), true))
                .await
                .is_err()
        {
            return;
        }
    }
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut ticker = tokio::time::interval(interval);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = &mut deadline => return,
            _ = tx.closed() => return,
            _ = ticker.tick(), if bookmarks => {
                if watcher.request_progress().await.is_err() {
                    return;
                }
            }
            batch = watcher.next() => {
                let events = match batch {
                    Ok(Some(events)) => events,
                    Ok(None) => return,
                    Err(StorageError::Compacted { requested, .. }) => {
                        let status = ApiError::Gone(format!("too old resource version: {requested}")).to_status();
                        let _ = tx.send(enc.event("ERROR", status)).await;
                        return;
                    }
                    Err(e) => {
                        let status = ApiError::Storage(e).to_status();
                        let _ = tx.send(enc.event("ERROR", status)).await;
                        return;
                    }
                };
                for ev in events {
                    let chunk = match ev {
                        StoreEvent::Progress { revision } if bookmarks => Some(enc.bookmark(revision, false)),
                        StoreEvent::Progress { .. } => None,
                        StoreEvent::Put { object, prev } => {
                            let now = filter.matches(&object);
                            let before = prev.as_ref().is_some_and(|p| filter.matches(p));
                            match (before, now) {
                                (false, true) => Some(enc.event("ADDED", object)),
                                (true, true) => Some(enc.event("MODIFIED", object)),
                                (true, false) => Some(enc.event("DELETED", object)),
                                (false, false) => None,
                            }
                        }
                        StoreEvent::Delete { object } => filter.matches(&object).then(|| enc.event("DELETED", object)),
                    };
                    if let Some(c) = chunk
                        && tx.send(c).await.is_err()
                    {
                        return;
                    }
                }
            }
        }
    }
}
