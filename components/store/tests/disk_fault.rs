//! A full disk: the member never acknowledges a write it could not persist, acknowledges
//! nothing more once a write failed (also after space is freed), and every write it did
//! acknowledge is in its log when it is opened again.
//!
//! The disk is real: a small tmpfs, mounted in a mount namespace of this test process's own
//! (`unshare(CLONE_NEWNS)` and a private `/` first, so nothing propagates to the host's mounts;
//! the mount vanishes with the process). The log engine meets ENOSPC where it meets it in
//! production: writing its journal. That needs root (CAP_SYS_ADMIN); without it the test is
//! reported as skipped, with the reason.
//!
//! A `harness = false` binary (libtest-mimic): the namespace must be entered while the process
//! is still single-threaded, before the test harness or a runtime starts threads.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use kubelab_store::log_store::LogStore;
use kubelab_store::network::Network;
use kubelab_store::state_machine::StateMachineStore;
use kubelab_store::types::{Put, Raft, Request};
use libtest_mimic::{Arguments, Completion, Failed, Trial};
use openraft::async_runtime::watch::WatchReceiver;
use openraft::storage::RaftLogReader;

/// The size of the test's disk.
const DISK: &str = "size=16m";
/// Values large enough that each write needs fresh pages of the full disk.
const VALUE: usize = 16 << 10;

fn main() {
    let args = Arguments::from_args();
    // Listing needs names only: no namespace, no mount.
    let disk = if args.list {
        Err(String::new())
    } else {
        private_tmpfs()
    };
    let trial = Trial::ignorable_test("full_disk_stops_acknowledging", move || match disk {
        Err(reason) => {
            eprintln!("skipped: {reason}");
            Ok(Completion::ignored_with(reason))
        }
        Ok(dir) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(4)
                .enable_all()
                .build()
                .map_err(|e| Failed::from(format!("runtime: {e}")))?;
            rt.block_on(full_disk_stops_acknowledging(&dir))
                .map(|()| Completion::Completed)
                .map_err(|e| Failed::from(format!("{e:?}")))
        }
    });
    libtest_mimic::run(&args, vec![trial]).exit();
}

/// Enters a mount namespace of this process's own and mounts a small tmpfs on a new directory
/// (removed at exit; the mount goes with the namespace). `Err` is the reason to skip.
fn private_tmpfs() -> Result<PathBuf, String> {
    // SAFETY: plain syscalls; the strings are NUL-terminated literals or CStrings that outlive
    // the calls. The process has one thread here (harness = false, before any runtime).
    unsafe {
        if libc::geteuid() != 0 {
            return Err("needs root (a tmpfs in a private mount namespace)".into());
        }
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            return Err(format!(
                "cannot enter a mount namespace of its own: {}",
                std::io::Error::last_os_error()
            ));
        }
        // Private from here on: no mount made below propagates to the host's namespace.
        if libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) != 0
        {
            return Err(format!(
                "cannot make the mounts private: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    let dir = std::env::temp_dir().join(format!("kubelab-disk-fault-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let target = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).expect("no NUL");
    let data = std::ffi::CString::new(DISK).expect("no NUL");
    // SAFETY: as above.
    let r = unsafe {
        libc::mount(
            c"tmpfs".as_ptr(),
            target.as_ptr(),
            c"tmpfs".as_ptr(),
            0,
            data.as_ptr().cast(),
        )
    };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        let _ = std::fs::remove_dir(&dir);
        return Err(format!("cannot mount a tmpfs: {e}"));
    }
    Ok(dir)
}

/// Writes to `path` until the disk is full (ENOSPC), keeping what fits.
fn fill(path: &Path) -> anyhow::Result<u64> {
    let mut f = std::fs::File::create(path)?;
    let block = vec![0x5a_u8; 4096];
    let mut written = 0;
    loop {
        match f.write(&block) {
            Ok(0) => bail!("the disk took no more bytes but reported no error"),
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => return Ok(written),
            Err(e) => return Err(e).context("filling the disk"),
        }
    }
}

fn put(key: &str) -> Request {
    Request::Put(Put {
        key: key.into(),
        value: vec![b'v'; VALUE],
        ..Default::default()
    })
}

async fn full_disk_stops_acknowledging(disk: &Path) -> anyhow::Result<()> {
    let result = scenario(disk).await;
    // Unmounted here (it would go with the namespace at exit anyway), so that the directory,
    // which is the host's, can be removed.
    let target = std::ffi::CString::new(disk.as_os_str().as_encoded_bytes()).expect("no NUL");
    // SAFETY: a plain syscall on a NUL-terminated path that outlives it.
    unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    if let Err(e) = std::fs::remove_dir(disk) {
        eprintln!("could not remove {}: {e}", disk.display());
    }
    result
}

async fn scenario(disk: &Path) -> anyhow::Result<()> {
    let log_dir = disk.join("raft-log");
    let mut log = LogStore::open(&log_dir)?;
    let log_closed = log.closed().context("first call")?;
    let sm = StateMachineStore::open(&disk.join("snap"))?;
    let config = Arc::new(openraft::Config::default().validate()?);
    let raft = Raft::new(1, config, Network::default(), log, sm).await?;
    raft.initialize(std::collections::BTreeMap::from([(1, Default::default())]))
        .await?;
    raft.wait(Some(Duration::from_secs(5)))
        .current_leader(1, "leader")
        .await?;
    let mut acknowledged = Vec::new();
    for i in 0..3 {
        let r = raft
            .client_write(put(&format!("ok{i}")))
            .await
            .context("a write before the disk is full")?;
        acknowledged.push(r.log_id.index);
    }

    let filler = disk.join("filler");
    let filled = fill(&filler)?;
    ensure!(
        filled > 0,
        "the filler took nothing: the disk was full already"
    );
    let r = tokio::time::timeout(Duration::from_secs(5), raft.client_write(put("lost"))).await;
    ensure!(
        !matches!(r, Ok(Ok(_))),
        "a write that could not be persisted was acknowledged: {r:?}"
    );
    // The member stays stopped once space is back: nothing more is acknowledged.
    std::fs::remove_file(&filler)?;
    let r = tokio::time::timeout(Duration::from_secs(2), raft.client_write(put("after"))).await;
    ensure!(
        !matches!(r, Ok(Ok(_))),
        "acknowledged after a failed write: {r:?}"
    );
    ensure!(
        raft.metrics().borrow_watched().running_state.is_err(),
        "raft reports the storage failure"
    );
    raft.shutdown().await.ok();
    drop(raft);
    tokio::time::timeout(Duration::from_secs(10), log_closed)
        .await
        .context("the log closes after the shutdown")??;

    // Every acknowledged write is in the log as the member would read it at its next start.
    let mut log = LogStore::open(&log_dir).context("the log opens again once space is back")?;
    let entries = log.try_get_log_entries(0..u64::MAX).await?;
    for index in &acknowledged {
        ensure!(
            entries.iter().any(|e| e.log_id.index == *index),
            "acknowledged entry {index} is missing after the reopen (have {:?})",
            entries.iter().map(|e| e.log_id.index).collect::<Vec<_>>()
        );
    }
    Ok(())
}
