//! Raft log and vote storage, durable in fjall (an LSM-tree engine: every write batch is one
//! append to its journal).
//!
//! Why not a B-tree database (redb, used here before): a Raft log is written at its end, and
//! each write is on the critical path of every client write, once on the leader and once on
//! each follower. A redb commit of one entry rewrites ~7 pages (leaf, branches, allocator state,
//! header) before its `fdatasync`; a fjall batch appends one checksummed record to the journal.
//! On the lab's disk: 188-226 µs against 84-90 µs per durable write of one entry in isolation
//! (`docs/store.md`, "The log engine"), the same as a bare append + `fdatasync`.
//!
//! Flow: openraft calls [`LogStore::append`] with a batch of entries and does not wait for it
//! (openraft 0.10's non-blocking log IO): the leader replicates the entries while its own write
//! is in flight, and counts itself toward the commit quorum only once the callback fired. The
//! entries go into an in-memory cache at once (so readers see them, as openraft requires) and,
//! encoded, onto a queue to one writer thread. The writer drains everything queued (group commit), writes it as **one**
//! fjall batch, persisted with `fdatasync` before `commit` returns, and only then calls each batch's
//! `LogFlushed` callback — so nothing is acknowledged before it is on disk. Vote saves,
//! truncations and purges travel the same queue, keeping all log IO in order. Any write error
//! poisons the writer (fjall poisons itself too): every later callback gets an error and
//! openraft stops the member.
//! The writer thread runs at a raised priority (nice -10, see `raise_priority`): its commit
//! is on every write's critical path and, on a busy host, it otherwise waits for a CPU.
//!
//! On open, fjall replays its journal, checking every batch's checksum over its keys and
//! values: a torn last batch (a crash in the middle of a write, never acknowledged) is cut off,
//! a checksum mismatch stops the open with an error. Then the vote, the purge point and the
//! remaining entries are loaded into the cache, each record decoded, and checked to run without
//! a gap from the purge point. What fjall's checksums do not cover — the framing bytes of a
//! batch (tags, trailer, sequence number) — is read as a torn tail where damaged: the batches
//! after it are dropped like a crash's unacknowledged tail (`docs/store.md`, "The log engine").
//! A directory that holds files but no `version` file or no journal is refused
//! (`check_layout`): fjall would open it as an empty database.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use openraft::OptionalSend;
use openraft::storage::{IOFlushed, LogState, RaftLogReader, RaftLogStorage};

use crate::types::{Entry, LogId, NodeId, TypeConfig, Vote};

/// The keyspace of the entries, keyed by index (big-endian, so that keys sort by index).
const LOGS: &str = "raft_log";
/// The keyspace of the vote, the purge point, the committed index and the node id.
const META: &str = "raft_meta";
const KEY_VOTE: &str = "vote";
const KEY_PURGED: &str = "last_purged";
const KEY_COMMITTED: &str = "committed";
const KEY_NODE_ID: &str = "node_id";

/// The file an older kubelab kept its log in (redb); its presence means an old data dir.
const OLD_REDB_LOG: &str = "raft.redb";
/// Memtable size of the log keyspace: the entries are also kept (decoded) in `Cache`, so the
/// memtable only needs to batch them for the next flush to disk.
const MEMTABLE_BYTES: u64 = 8 << 20;
/// Journal size at which fjall flushes memtables and drops old journals (its minimum).
const JOURNAL_BYTES: u64 = 64 << 20;
/// Block cache: the log is read from disk only when the member starts.
const CACHE_BYTES: u64 = 1 << 20;
/// At most this much of a log directory is kept in memory while opening it, to put back what
/// a failed open changed.
const RESTORE_LIMIT: u64 = 256 << 20;

/// Errors opening the log database.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// fjall refused the directory: corrupt, wrong format, unreadable, or in use.
    #[error(
        "raft log database {path} cannot be opened (corrupt, unreadable or in use by another \
         process); it was left as found: restore it from a backup, or remove the member's data \
         dir and re-add the member"
    )]
    Database {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: fjall::Error,
    },
    /// The data dir holds a log written by an older kubelab (a redb database).
    #[error(
        "{path} is a raft log of an older kubelab (redb); this version keeps the log in {dir}: \
         remove the member's data dir and re-add the member (it catches up from the leader), \
         or run the older kubelab"
    )]
    OldFormat {
        /// The old file.
        path: PathBuf,
        /// Where the log is kept now.
        dir: PathBuf,
    },
    /// A stored record does not decode.
    #[error("raft log database {path}: record {record} does not decode; the file is corrupt")]
    Decode {
        /// The file.
        path: PathBuf,
        /// Which record.
        record: String,
        /// Why.
        #[source]
        source: rmp_serde::decode::Error,
    },
}

#[derive(Default)]
struct Cache {
    entries: BTreeMap<u64, Entry>,
    last_purged: Option<LogId>,
    vote: Option<Vote>,
    committed: Option<LogId>,
    node_id: Option<NodeId>,
}

enum WriteOp {
    Append(Vec<(u64, Vec<u8>)>, IOFlushed<TypeConfig>),
    /// The indexes removed (from the cache, at the time of the call).
    Truncate(Vec<u64>),
    /// The indexes removed, and the encoded purge point.
    Purge(Vec<u64>, Vec<u8>),
    Meta(
        &'static str,
        Vec<u8>,
        Option<tokio::sync::oneshot::Sender<io::Result<()>>>,
    ),
}

/// The Raft log storage (openraft `RaftLogStorage`).
pub struct LogStore {
    closed: Option<tokio::sync::oneshot::Receiver<()>>,
    cache: Arc<Mutex<Cache>>,
    writer: mpsc::Sender<WriteOp>,
    /// The latest committed index (encoded) not yet handed to the writer thread.
    pending_committed: Arc<Mutex<Option<Vec<u8>>>>,
}

/// The open database: the handle and its two keyspaces.
struct Db {
    db: Database,
    logs: Keyspace,
    meta: Keyspace,
}

/// A reader of the log for replication tasks (openraft `RaftLogReader`).
pub struct LogReader {
    cache: Arc<Mutex<Cache>>,
}

fn io_err(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::other(e)
}

fn decode<T: serde::de::DeserializeOwned>(
    path: &Path,
    record: &str,
    bytes: &[u8],
) -> Result<T, OpenError> {
    rmp_serde::from_slice(bytes).map_err(|source| OpenError::Decode {
        path: path.to_path_buf(),
        record: record.to_string(),
        source,
    })
}

impl LogStore {
    /// Opens (or creates) the log database in directory `path`, replaying and checking its
    /// journal.
    ///
    /// fjall cuts a torn journal tail off while it replays (crash recovery). If the open fails,
    /// whatever it changed is put back, so a corrupt data dir is left exactly as found for an
    /// operator to inspect.
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        let dberr = |source| OpenError::Database {
            path: path.into(),
            source,
        };
        if let Some(parent) = path.parent() {
            let old = parent.join(OLD_REDB_LOG);
            if old.exists() {
                return Err(OpenError::OldFormat {
                    path: old,
                    dir: path.into(),
                });
            }
        }
        check_layout(path)?;
        let original = DirContents::read(path).map_err(|e| dberr(e.into()))?;
        let opened = Database::builder(path)
            .cache_size(CACHE_BYTES)
            .max_journaling_size(JOURNAL_BYTES)
            // One background thread (flushes, compactions). Two were measured too, so that a
            // flush never waits behind a compaction: 1-client puts 1.14-1.41x of etcd and
            // 100-client p99 0.59-1.05x against 1.28-1.56x and 0.62-0.85x with one, in the
            // same sittings (`docs/benchmarks.md`, session 9). The log's compactions are small:
            // the log is purged behind every snapshot.
            .worker_threads(1)
            .open()
            .and_then(|db| {
                let options = || KeyspaceCreateOptions::default().max_memtable_size(MEMTABLE_BYTES);
                let logs = db.keyspace(LOGS, options)?;
                let meta = db.keyspace(META, options)?;
                Ok(Db { db, logs, meta })
            })
            .map_err(dberr)
            .and_then(|db| Self::from_db(db, path));
        if opened.is_err()
            && let Some(original) = original
        {
            original.restore(path);
        }
        opened
    }

    fn from_db(db: Db, path: &Path) -> Result<Self, OpenError> {
        let dberr = |source| OpenError::Database {
            path: path.into(),
            source,
        };
        let mut cache = Cache::default();
        if let Some(v) = db.meta.get(KEY_VOTE).map_err(dberr)? {
            let mut vote: Vote = decode(path, KEY_VOTE, &v)?;
            // A member never resumes leadership after a restart (etcd neither; the Raft
            // config also sets `enable_leader_restore = false`): openraft may restore a
            // leader whose vote was committed at once, and serve reads
            // from the commit index on disk, which is persisted lazily and may lag what
            // was acknowledged. Forgetting that the vote was granted is safe (the term and
            // whom it voted for are kept); the member becomes a follower and the next
            // election, at this term or later, picks a leader that commits afresh.
            vote.committed = false;
            cache.vote = Some(vote);
        }
        if let Some(v) = db.meta.get(KEY_PURGED).map_err(dberr)? {
            cache.last_purged = Some(decode(path, KEY_PURGED, &v)?);
        }
        if let Some(v) = db.meta.get(KEY_COMMITTED).map_err(dberr)? {
            cache.committed = Some(decode(path, KEY_COMMITTED, &v)?);
        }
        for row in db.logs.iter() {
            let (k, v) = row.into_inner().map_err(dberr)?;
            let index = <[u8; 8]>::try_from(&*k)
                .map(u64::from_be_bytes)
                .map_err(|_| {
                    dberr(fjall::Error::Io(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("a log key of {} bytes, not 8", k.len()),
                    )))
                })?;
            let entry: Entry = decode(path, &format!("log {index}"), &v)?;
            cache.entries.insert(index, entry);
        }
        if let Some(v) = db.meta.get(KEY_NODE_ID).map_err(dberr)? {
            cache.node_id = Some(decode(path, KEY_NODE_ID, &v)?);
        }
        check_no_gaps(&cache, path)?;
        // No fjall handle stays with the caller: the database (and its directory lock) is the
        // writer thread's alone, and closed once that thread ends, before `closed` fires.
        let (tx, rx) = mpsc::channel();
        let pending_committed = Arc::new(Mutex::new(None));
        let writer_pending = pending_committed.clone();
        let (closed_tx, closed_rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("raft-log-writer".into())
            .spawn(move || {
                raise_priority();
                writer_loop(&db, rx, &writer_pending);
                // Waits for fjall's background work and closes its files.
                drop(db);
                let _ = closed_tx.send(());
            })
            .expect("spawn the raft log writer thread");
        Ok(Self {
            closed: Some(closed_rx),
            cache: Arc::new(Mutex::new(cache)),
            writer: tx,
            pending_committed,
        })
    }

    /// Resolves once the store was dropped and the writer thread closed the database (so the
    /// same file can be opened again, e.g. by a restarted member in the same process).
    pub fn closed(&mut self) -> Option<tokio::sync::oneshot::Receiver<()>> {
        self.closed.take()
    }

    /// The node id stored at first start, if any.
    pub fn stored_node_id(&self) -> Result<Option<NodeId>, OpenError> {
        Ok(self.cache.lock().expect("log cache lock").node_id)
    }

    /// Persists this member's id (first start).
    pub async fn store_node_id(&self, id: NodeId) -> io::Result<()> {
        self.save_meta(KEY_NODE_ID, rmp_serde::to_vec(&id).map_err(io_err)?)
            .await?;
        self.cache.lock().expect("log cache lock").node_id = Some(id);
        Ok(())
    }

    /// Whether nothing was ever written (no vote, no log): a fresh member.
    pub fn is_fresh(&self) -> bool {
        let c = self.cache.lock().expect("log cache lock");
        c.vote.is_none() && c.entries.is_empty() && c.last_purged.is_none()
    }

    async fn save_meta(&self, key: &'static str, bytes: Vec<u8>) -> io::Result<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.writer
            .send(WriteOp::Meta(key, bytes, Some(tx)))
            .map_err(|_| io::Error::other("raft log writer stopped"))?;
        rx.await
            .map_err(|_| io::Error::other("raft log writer stopped"))?
    }

    fn send(&self, op: WriteOp) -> io::Result<()> {
        self.writer
            .send(op)
            .map_err(|_| io::Error::other("raft log writer stopped"))
    }
}

/// How often at most the committed index rides along with a log append. Writing it in every
/// append transaction dirtied the meta table's pages on every write (on the followers' critical
/// path); it is only a restart hint (see `save_committed`), so a second of lag costs a restarted
/// member at most a second of entries applied a little later, once a leader commits again.
const COMMITTED_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The writer thread: group-commits queued operations, one fsync per group.
fn writer_loop(db: &Db, rx: mpsc::Receiver<WriteOp>, pending_committed: &Mutex<Option<Vec<u8>>>) {
    let mut failed: Option<String> = None;
    // The committed index is only a restart hint: it never costs an fsync of its own (nor a
    // wake-up of this thread: `save_committed` leaves it in `pending_committed`), it rides
    // along with the next durable write that touches the meta table anyway, or with a log
    // append at most every `COMMITTED_EVERY`, and is written on a clean stop.
    let mut lazy: Option<WriteOp> = None;
    let mut committed_at = std::time::Instant::now();
    while let Ok(first) = rx.recv() {
        // The slot before the queue: openraft saves a committed index only after queueing the
        // entries it covers, so those are in this group or an earlier one — the index on disk
        // is never ahead of the log on disk.
        if let Some(bytes) = pending_committed.lock().expect("committed slot").take() {
            lazy = Some(WriteOp::Meta(KEY_COMMITTED, bytes, None));
        }
        let mut ops: Vec<WriteOp> = std::iter::once(first)
            .chain(std::iter::from_fn(|| rx.try_recv().ok()))
            .collect();
        let meta_anyway = ops.iter().any(|o| !matches!(o, WriteOp::Append(..)));
        if lazy.is_some() && (meta_anyway || committed_at.elapsed() >= COMMITTED_EVERY) {
            ops.extend(lazy.take());
            committed_at = std::time::Instant::now();
        }
        let entries: usize = ops
            .iter()
            .map(|o| {
                if let WriteOp::Append(rows, _) = o {
                    rows.len()
                } else {
                    0
                }
            })
            .sum();
        tracing::trace!(ops = ops.len(), entries, "raft log group commit");
        let last = ops
            .iter()
            .filter_map(|o| match o {
                WriteOp::Append(rows, _) => rows.last().map(|r| r.0),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        crate::timing::mark("fsync_start", last, ops.len());
        let waited_before = crate::timing::thread_run_wait_us();
        let result = match &failed {
            Some(msg) => Err(io::Error::other(format!(
                "raft log writes failed earlier: {msg}"
            ))),
            None => write_group(db, &ops),
        };
        crate::timing::mark("fsync_done", last, entries);
        if let (Some(a), Some(b)) = (waited_before, crate::timing::thread_run_wait_us()) {
            // How long this thread sat runnable but off-CPU during the commit (scheduler
            // wait, not disk): `n` carries the microseconds.
            crate::timing::mark("fsync_cpu_wait", last, b.saturating_sub(a) as usize);
        }
        if let (Err(e), None) = (&result, &failed) {
            tracing::error!(error = %e, "raft log write failed; this member stops acknowledging");
            failed = Some(e.to_string());
        }
        for op in ops {
            let r = match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
            };
            match op {
                WriteOp::Append(_, cb) => cb.io_completed(r),
                WriteOp::Meta(_, _, Some(tx)) => {
                    let _ = tx.send(r);
                }
                _ => {}
            }
        }
    }
    // Stopping (the store was dropped): keep the latest committed index for the restart.
    if let Some(bytes) = pending_committed.lock().expect("committed slot").take() {
        lazy = Some(WriteOp::Meta(KEY_COMMITTED, bytes, None));
    }
    if let (Some(op), None) = (lazy, &failed)
        && let Err(e) = write_group(db, &[op])
    {
        tracing::warn!(error = %e, "saving the committed index at stop");
    }
}

/// The nice value of the writer thread (the default is 0; lower runs first).
const WRITER_NICE: i32 = -10;

/// Gives the writer thread (this thread only: its own thread id) a higher scheduling priority.
/// Measured on the shared 2-core host: the leader's group commit runs while the leader's
/// replication tasks, both followers and the client all want a CPU, and the writer sat
/// runnable but off-CPU for a p50 of ~330 µs inside its commit (followers ~240 µs), which is
/// why the leader's flush was longer than the followers'. It needs CAP_SYS_NICE (root, as in
/// the lab and CI); refused, the member logs it and runs at normal priority.
fn raise_priority() {
    // SAFETY: two plain syscalls on this thread's own id; no memory is passed.
    let r = unsafe {
        libc::setpriority(
            libc::PRIO_PROCESS,
            libc::gettid() as libc::id_t,
            WRITER_NICE,
        )
    };
    if r != 0 {
        tracing::info!(
            nice = WRITER_NICE,
            error = %io::Error::last_os_error(),
            "raft log writer thread keeps normal priority (raising it was refused)"
        );
    } else {
        tracing::debug!(nice = WRITER_NICE, "raft log writer thread priority raised");
    }
}

/// Refuses a log directory that holds files but not fjall's `version` file or any journal:
/// fjall would open it as a new, empty database (it takes a directory without `version` for a
/// new one, and recovers no sequence numbers without a journal), and the member would start
/// over with an empty log where it had one. Damage an operator can see and must decide on.
fn check_layout(path: &Path) -> Result<(), OpenError> {
    let damaged = |what: &str| OpenError::Database {
        path: path.into(),
        source: fjall::Error::Io(io::Error::new(io::ErrorKind::InvalidData, what.to_string())),
    };
    let Ok(rd) = std::fs::read_dir(path) else {
        return Ok(());
    };
    let names: Vec<String> = rd
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    if names.is_empty() {
        return Ok(());
    }
    if !names.iter().any(|n| n == "version") {
        return Err(damaged("its `version` file is missing"));
    }
    if !names.iter().any(|n| n.ends_with(".jnl")) {
        return Err(damaged("it has no journal (`*.jnl`)"));
    }
    Ok(())
}

/// The entries must run without a gap from the purge point: a gap means the engine lost some.
fn check_no_gaps(cache: &Cache, path: &Path) -> Result<(), OpenError> {
    let mut expected = cache.last_purged.map(|p| p.index + 1);
    for &index in cache.entries.keys() {
        if let Some(e) = expected
            && index != e
        {
            return Err(OpenError::Database {
                path: path.into(),
                source: fjall::Error::Io(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("log entry {e} is missing (the next one is {index})"),
                )),
            });
        }
        expected = Some(index + 1);
    }
    Ok(())
}

/// Writes a group as one fjall batch, persisted (`fdatasync`) before this returns.
///
/// All items of a batch get the same sequence number, so a key must appear once: an entry
/// appended and truncated in the same group, or a meta key written twice, would otherwise be
/// ambiguous. The group's effect per key is folded first, in queue order (the last op wins).
fn write_group(db: &Db, ops: &[WriteOp]) -> io::Result<()> {
    let mut logs: BTreeMap<u64, Option<&[u8]>> = BTreeMap::new();
    let mut meta: BTreeMap<&str, &[u8]> = BTreeMap::new();
    for op in ops {
        match op {
            WriteOp::Append(rows, _) => {
                for (idx, bytes) in rows {
                    logs.insert(*idx, Some(bytes.as_slice()));
                }
            }
            WriteOp::Truncate(removed) => {
                for idx in removed {
                    logs.insert(*idx, None);
                }
            }
            WriteOp::Purge(removed, purged) => {
                for idx in removed {
                    logs.insert(*idx, None);
                }
                meta.insert(KEY_PURGED, purged.as_slice());
            }
            WriteOp::Meta(key, bytes, _) => {
                meta.insert(key, bytes.as_slice());
            }
        }
    }
    let mut batch = db.db.batch().durability(Some(PersistMode::SyncData));
    for (idx, bytes) in logs {
        match bytes {
            Some(b) => batch.insert(&db.logs, idx.to_be_bytes(), b),
            None => batch.remove(&db.logs, idx.to_be_bytes()),
        }
    }
    for (key, bytes) in meta {
        batch.insert(&db.meta, key, bytes);
    }
    batch.commit().map_err(io_err)
}

/// A log directory's files, kept while it is opened, to put back what a failed open changed
/// (fjall may cut a journal tail off, or add files, before it finds the damage). A new journal
/// is preallocated sparse (64 MiB of hole): each file is kept as its data extents and its
/// length, so memory and time go to what the files really hold.
struct DirContents(Vec<KeptFile>);

#[derive(PartialEq)]
struct KeptFile {
    path: PathBuf,
    len: u64,
    /// (offset, bytes) of each data extent; the rest up to `len` is hole (zeros).
    extents: Vec<(u64, Vec<u8>)>,
}

impl KeptFile {
    fn read(path: PathBuf) -> io::Result<Self> {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::FileExt;
        let f = std::fs::File::open(&path)?;
        let len = f.metadata()?.len();
        let fd = f.as_raw_fd();
        let mut extents = Vec::new();
        let mut off = 0_u64;
        while off < len {
            // SAFETY: lseek on an fd this function owns; no memory is passed.
            let data = unsafe { libc::lseek(fd, off as libc::off_t, libc::SEEK_DATA) };
            if data < 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::ENXIO) {
                    break; // only hole from `off` to the end
                }
                return Err(e);
            }
            // SAFETY: as above.
            let hole = unsafe { libc::lseek(fd, data, libc::SEEK_HOLE) };
            if hole < 0 {
                return Err(io::Error::last_os_error());
            }
            let (start, end) = (data as u64, (hole as u64).min(len));
            let mut bytes = vec![0_u8; (end - start) as usize];
            f.read_exact_at(&mut bytes, start)?;
            extents.push((start, bytes));
            off = end;
        }
        Ok(Self { path, len, extents })
    }

    fn bytes(&self) -> u64 {
        self.extents.iter().map(|(_, b)| b.len() as u64).sum()
    }

    fn unchanged(&self) -> bool {
        Self::read(self.path.clone()).is_ok_and(|now| now == *self)
    }

    fn put_back(&self) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        let f = std::fs::File::create(&self.path)?;
        f.set_len(self.len)?;
        for (off, bytes) in &self.extents {
            f.write_all_at(bytes, *off)?;
        }
        f.sync_all()
    }
}

impl DirContents {
    /// `None` if there is no directory yet, or it holds too much to keep in memory (then a
    /// failed open may leave a torn journal tail cut off, which is what recovery does anyway).
    fn read(dir: &Path) -> io::Result<Option<Self>> {
        if !dir.exists() {
            return Ok(None);
        }
        let mut files = Vec::new();
        let mut total = 0;
        for path in files_under(dir)? {
            let kept = KeptFile::read(path)?;
            total += kept.bytes();
            if total > RESTORE_LIMIT {
                return Ok(None);
            }
            files.push(kept);
        }
        Ok(Some(Self(files)))
    }

    /// Puts back every file that changed or went, and removes the files that were not there.
    fn restore(self, dir: &Path) {
        for p in files_under(dir).unwrap_or_default() {
            if !self.0.iter().any(|f| f.path == p)
                && let Err(e) = std::fs::remove_file(&p)
            {
                tracing::error!(path = %p.display(), error = %e, "could not remove a file the failed open added");
            }
        }
        for f in self.0 {
            if !f.unchanged()
                && let Err(e) = f.put_back()
            {
                tracing::error!(path = %f.path.display(), error = %e, "could not restore a file's original bytes");
            }
        }
    }
}

/// The regular files under `dir`, recursively.
fn files_under(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let t = e.file_type()?;
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                files.push(e.path());
            }
        }
    }
    Ok(files)
}

fn read_range<RB: RangeBounds<u64>>(cache: &Mutex<Cache>, range: RB) -> Vec<Entry> {
    let c = cache.lock().expect("log cache lock");
    c.entries.range(range).map(|(_, e)| e.clone()).collect()
}

fn encode<T: serde::Serialize>(v: &T) -> io::Result<Vec<u8>> {
    rmp_serde::to_vec(v).map_err(io_err)
}

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> io::Result<Vec<Entry>> {
        Ok(read_range(&self.cache, range))
    }

    async fn read_vote(&mut self) -> io::Result<Option<Vote>> {
        Ok(self.cache.lock().expect("log cache lock").vote)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> io::Result<Vec<Entry>> {
        Ok(read_range(&self.cache, range))
    }

    async fn read_vote(&mut self) -> io::Result<Option<Vote>> {
        Ok(self.cache.lock().expect("log cache lock").vote)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> io::Result<LogState<TypeConfig>> {
        let c = self.cache.lock().expect("log cache lock");
        let last = c
            .entries
            .last_key_value()
            .map(|(_, e)| e.log_id)
            .or_else(|| c.last_purged);
        Ok(LogState {
            last_purged_log_id: c.last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> LogReader {
        LogReader {
            cache: self.cache.clone(),
        }
    }

    async fn save_vote(&mut self, vote: &Vote) -> io::Result<()> {
        self.save_meta(KEY_VOTE, encode(vote)?).await?;
        self.cache.lock().expect("log cache lock").vote = Some(*vote);
        Ok(())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> io::Result<()> {
        // Not fsynced on its own: it only speeds up restart (re-apply up to it at once) and
        // rides along with a later commit of the writer thread (see `COMMITTED_EVERY`).
        if let Some(c) = &committed {
            crate::timing::mark("committed", c.index, 0);
            // Left in a slot the writer thread looks at when it commits anyway: sending it on
            // the queue woke the writer once more per write, on every member, for nothing.
            *self.pending_committed.lock().expect("committed slot") = Some(encode(c)?);
        }
        self.cache.lock().expect("log cache lock").committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> io::Result<Option<LogId>> {
        Ok(self.cache.lock().expect("log cache lock").committed)
    }

    /// Queues the entries for the writer thread and returns at once: openraft goes on (and the
    /// leader replicates them) while the group commit runs; `callback` fires after the fsync.
    async fn append<I>(&mut self, entries: I, callback: IOFlushed<TypeConfig>) -> io::Result<()>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut rows = Vec::new();
        {
            let mut c = self.cache.lock().expect("log cache lock");
            for e in entries {
                crate::timing::mark("log_append", e.log_id.index, 0);
                rows.push((e.log_id.index, encode(&e)?));
                c.entries.insert(e.log_id.index, e);
            }
        }
        self.send(WriteOp::Append(rows, callback))
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> io::Result<()> {
        let from = last_log_id.map_or(0, |l| l.index + 1);
        let removed = self
            .cache
            .lock()
            .expect("log cache lock")
            .entries
            .split_off(&from);
        self.send(WriteOp::Truncate(removed.into_keys().collect()))
    }

    async fn purge(&mut self, log_id: LogId) -> io::Result<()> {
        let bytes = encode(&log_id)?;
        let removed = {
            let mut c = self.cache.lock().expect("log cache lock");
            let kept = c.entries.split_off(&(log_id.index + 1));
            c.last_purged = Some(log_id);
            std::mem::replace(&mut c.entries, kept)
        };
        self.send(WriteOp::Purge(removed.into_keys().collect(), bytes))
    }
}
