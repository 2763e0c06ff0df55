//! The Raft state machine: applies committed entries to the MVCC store, builds and installs
//! snapshots, and announces each applied revision to watchers.
//!
//! Flow: openraft hands committed entries to [`StateMachineStore::apply`]; under the write lock
//! each request goes through [`Mvcc::apply`], and the events of every revision are sent on a
//! broadcast channel (only if someone listens — the watch fan-out runs in the watch streams'
//! tasks, off this path). Readers (`api/`) take the read lock.
//!
//! The state machine lives in memory; durability comes from the Raft log plus snapshots: every
//! snapshot is written to `<data-dir>/snap/snapshot.bin` (magic, SHA-256, payload; written to a
//! temporary file, fsynced, renamed) before openraft may purge the log it covers. On start the
//! last snapshot is loaded and openraft re-applies the log after it. A snapshot file that fails
//! its checksum is reported at start, never ignored.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use futures::{Stream, TryStreamExt};
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::broadcast;

use crate::mvcc::{Event, Mvcc};
use crate::types::{
    LogId, NodeId, Outcome, Response, Snapshot, SnapshotData, SnapshotMeta, StoredMembership,
    TypeConfig,
};

const MAGIC: &[u8; 8] = b"KLSNAP01";
const SNAPSHOT_FILE: &str = "snapshot.bin";

/// What the state machine holds, and what a snapshot carries.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct SmData {
    /// The key-value state.
    pub mvcc: Mvcc,
    /// Last applied log id.
    pub last_applied: Option<LogId>,
    /// Last applied membership.
    pub membership: StoredMembership,
}

/// What watchers are told after each apply.
#[derive(Debug)]
pub enum Applied {
    /// A revision and its events, in order.
    Events {
        /// The revision.
        revision: i64,
        /// Its events (a txn's events together).
        events: Vec<Event>,
    },
    /// The state was replaced by a snapshot: re-read history from the store.
    Reset,
}

/// Errors loading the state machine at start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Reading the snapshot file failed.
    #[error("reading snapshot {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The snapshot file is damaged.
    #[error(
        "snapshot {path} is corrupt ({what}); it was left untouched: restore it from a backup, \
         or remove the member's data dir and re-add the member"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
}

/// Snapshot file content: metadata plus the encoded [`SmData`].
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

/// State shared between the state machine and the member's readers.
pub struct Shared {
    /// The state.
    pub data: RwLock<SmData>,
    /// Applied revisions, for watchers.
    pub events: broadcast::Sender<Arc<Applied>>,
    snap_dir: PathBuf,
}

/// The state machine (openraft `RaftStateMachine`), also its snapshot builder.
#[derive(Clone)]
pub struct StateMachineStore {
    shared: Arc<Shared>,
}

fn io_err(e: impl std::error::Error + Send + Sync + 'static) -> std::io::Error {
    std::io::Error::other(e)
}

/// The cluster id: a hash of the first membership's voters (the same on every replica).
fn cluster_id_of(m: &openraft::Membership<NodeId, crate::types::PeerNode>) -> u64 {
    let mut h = Sha256::new();
    for id in m.voter_ids() {
        h.update(id.to_be_bytes());
    }
    let d = h.finalize();
    u64::from_be_bytes(d[..8].try_into().expect("8 bytes")) >> 1
}

impl StateMachineStore {
    /// Opens the state machine of a data dir: loads `<dir>/snapshot.bin` if present.
    pub fn open(snap_dir: &Path) -> Result<Self, LoadError> {
        std::fs::create_dir_all(snap_dir).map_err(|source| LoadError::Read {
            path: snap_dir.into(),
            source,
        })?;
        let data = match read_snapshot_file(snap_dir)? {
            Some(s) => decode_data(&s.data).map_err(|what| LoadError::Corrupt {
                path: snap_dir.join(SNAPSHOT_FILE),
                what,
            })?,
            None => SmData::default(),
        };
        let (events, _) = broadcast::channel(4096);
        Ok(Self {
            shared: Arc::new(Shared {
                data: RwLock::new(data),
                events,
                snap_dir: snap_dir.into(),
            }),
        })
    }

    /// The state shared with readers.
    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    fn write_snapshot(&self, s: &StoredSnapshot) -> std::io::Result<()> {
        let payload = rmp_serde::to_vec(s).map_err(std::io::Error::other)?;
        let mut file = Vec::with_capacity(payload.len() + 40);
        file.extend_from_slice(MAGIC);
        file.extend_from_slice(&Sha256::digest(&payload));
        file.extend_from_slice(&payload);
        let tmp = self.shared.snap_dir.join("snapshot.tmp");
        let dst = self.shared.snap_dir.join(SNAPSHOT_FILE);
        let w = || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&file)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &dst)?;
            std::fs::File::open(&self.shared.snap_dir)?.sync_all()
        };
        w()
    }
}

fn decode_data(bytes: &[u8]) -> Result<SmData, String> {
    rmp_serde::from_slice(bytes).map_err(|e| format!("state does not decode: {e}"))
}

fn read_snapshot_file(dir: &Path) -> Result<Option<StoredSnapshot>, LoadError> {
    let path = dir.join(SNAPSHOT_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(LoadError::Read { path, source }),
    };
    let corrupt = |what: &str| LoadError::Corrupt {
        path: path.clone(),
        what: what.into(),
    };
    if bytes.len() < 40 || &bytes[..8] != MAGIC {
        return Err(corrupt("bad header"));
    }
    let (sum, payload) = bytes[8..].split_at(32);
    if Sha256::digest(payload).as_slice() != sum {
        return Err(corrupt("checksum mismatch"));
    }
    rmp_serde::from_slice(payload)
        .map(Some)
        .map_err(|e| corrupt(&e.to_string()))
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    type SnapshotData = SnapshotData;

    async fn build_snapshot(&mut self) -> std::io::Result<Snapshot> {
        let (bytes, last_applied, membership) = {
            let d = self.shared.data.read().expect("state lock");
            let bytes = rmp_serde::to_vec(&*d).map_err(io_err)?;
            (bytes, d.last_applied, d.membership.clone())
        };
        let meta = SnapshotMeta {
            last_log_id: last_applied,
            last_membership: membership,
        };
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: bytes,
        };
        let this = self.clone();
        let stored =
            tokio::task::spawn_blocking(move || this.write_snapshot(&stored).map(|_| stored))
                .await
                .map_err(io_err)??;
        tracing::info!(snapshot = %meta, bytes = stored.data.len(), "snapshot built");
        Ok(Snapshot {
            meta,
            snapshot: Cursor::new(stored.data),
        })
    }
}

impl StateMachineStore {
    /// Applies one committed entry under the write lock; returns its response.
    fn apply_one(&self, d: &mut SmData, entry: crate::types::Entry, listening: bool) -> Response {
        d.last_applied = Some(entry.log_id);
        match entry.payload {
            EntryPayload::Blank => Response {
                revision: d.mvcc.revision,
                result: Ok(Outcome::Raft),
            },
            EntryPayload::Normal(req) => {
                let events = &self.shared.events;
                d.mvcc.apply_entry(&req, |revision, events_of_rev| {
                    if listening {
                        let _ = events.send(Arc::new(Applied::Events {
                            revision,
                            events: events_of_rev,
                        }));
                    }
                })
            }
            EntryPayload::Membership(m) => {
                if d.mvcc.cluster_id == 0 {
                    d.mvcc.cluster_id = cluster_id_of(&m);
                }
                d.membership = StoredMembership::new(Some(entry.log_id), m);
                Response {
                    revision: d.mvcc.revision,
                    result: Ok(Outcome::Raft),
                }
            }
        }
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotData = SnapshotData;
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> std::io::Result<(Option<LogId>, StoredMembership)> {
        let d = self.shared.data.read().expect("state lock");
        Ok((d.last_applied, d.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> std::io::Result<()>
    where
        Strm: Stream<Item = std::io::Result<EntryResponder<TypeConfig>>> + Unpin + OptionalSend,
    {
        // The stream yields what openraft has ready at once; answer each client after its
        // entry is applied (responses are sent outside the lock).
        while let Some((entry, responder)) = entries.try_next().await? {
            crate::timing::mark("apply", entry.log_id.index, 0);
            let listening = self.shared.events.receiver_count() > 0;
            let resp = {
                let mut d = self.shared.data.write().expect("state lock");
                self.apply_one(&mut d, entry, listening)
            };
            if let Some(r) = responder {
                r.send(resp);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self {
        self.clone()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: SnapshotData,
    ) -> std::io::Result<()> {
        let bytes = snapshot.into_inner();
        let data = decode_data(&bytes).map_err(std::io::Error::other)?;
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: bytes,
        };
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.write_snapshot(&stored))
            .await
            .map_err(io_err)??;
        {
            let mut d = self.shared.data.write().expect("state lock");
            *d = data;
            d.last_applied = meta.last_log_id;
            d.membership = meta.last_membership.clone();
        }
        let _ = self.shared.events.send(Arc::new(Applied::Reset));
        tracing::info!(snapshot = %meta, "snapshot installed");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> std::io::Result<Option<Snapshot>> {
        let dir = self.shared.snap_dir.clone();
        let s = tokio::task::spawn_blocking(move || read_snapshot_file(&dir))
            .await
            .map_err(io_err)?
            .map_err(io_err)?;
        Ok(s.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Cursor::new(s.data),
        }))
    }
}
