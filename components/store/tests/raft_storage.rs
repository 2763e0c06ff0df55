//! openraft's own storage test suite against our write-ahead log store and snapshotting state machine.

use kubelab_store::log_store::LogStore;
use kubelab_store::state_machine::StateMachineStore;
use kubelab_store::types::{StorageError, TypeConfig};
use openraft::testing::log::{StoreBuilder, Suite};

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, tempfile::TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachineStore), StorageError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = LogStore::open(&dir.path().join("raft-log")).expect("open log");
        let sm = StateMachineStore::open(&dir.path().join("snap")).expect("open state machine");
        Ok((dir, log, sm))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openraft_storage_suite() {
    if let Err(e) = Suite::test_all(Builder).await {
        panic!("openraft storage suite failed: {e}");
    }
}

/// A reopened log keeps the vote's term and candidate but forgets that it was granted, so a
/// restarted leader starts as a follower (see `LogStore::open`).
#[tokio::test]
async fn a_reopened_log_keeps_the_vote_but_not_the_leadership() -> anyhow::Result<()> {
    use openraft::storage::{RaftLogReader, RaftLogStorage};

    let dir = tempfile::tempdir()?;
    let path = dir.path().join("raft-log");
    let mut log = LogStore::open(&path)?;
    let vote = kubelab_store::types::Vote::new_committed(3, 7);
    log.save_vote(&vote).await?;
    assert_eq!(
        log.read_vote().await?,
        Some(vote),
        "unchanged while running"
    );
    let closed = log.closed().expect("first call");
    drop(log);
    closed.await?;
    let mut log = LogStore::open(&path)?;
    let v = log.read_vote().await?.expect("the vote survives");
    assert_eq!(v.leader_id, vote.leader_id, "same term and candidate");
    assert!(!v.committed, "a restarted member is not leader at once");
    Ok(())
}

/// The committed index is saved lazily (a record written along with a later flush, not a flush
/// of its own): a clean stop still writes the latest one, and a reopened log reads it back.
#[tokio::test]
async fn the_lazily_saved_committed_index_survives_a_clean_stop() -> anyhow::Result<()> {
    use openraft::storage::RaftLogStorage;

    let log_id = |term, index| {
        kubelab_store::types::LogId::new(
            openraft::impls::leader_id_adv::LeaderId { term, node_id: 1 },
            index,
        )
    };
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("raft-log");

    let mut log = LogStore::open(&path)?;
    log.save_committed(Some(log_id(2, 5))).await?;
    // A durable write: the pending committed index rides along with it.
    log.save_vote(&kubelab_store::types::Vote::new(2, 1))
        .await?;
    log.save_committed(Some(log_id(2, 9))).await?;
    assert_eq!(
        log.read_committed().await?,
        Some(log_id(2, 9)),
        "cached at once"
    );
    let closed = log.closed().expect("first call");
    drop(log);
    closed.await?;

    let mut log = LogStore::open(&path)?;
    assert_eq!(
        log.read_committed().await?,
        Some(log_id(2, 9)),
        "the latest committed index is written at a clean stop"
    );
    Ok(())
}

/// A log directory that lost fjall's `version` file or its journals is refused with the reason
/// (fjall itself would open it as a new, empty log); so is a data dir of the older redb format.
#[tokio::test]
async fn a_damaged_or_old_log_directory_is_refused() -> anyhow::Result<()> {
    use openraft::storage::RaftLogStorage;

    let dir = tempfile::tempdir()?;
    let path = dir.path().join("raft-log");
    let mut log = LogStore::open(&path)?;
    log.save_vote(&kubelab_store::types::Vote::new(2, 1))
        .await?;
    let closed = log.closed().expect("first call");
    drop(log);
    closed.await?;

    let moved = dir.path().join("moved");
    for (name, why) in [
        ("version", "`version` file is missing"),
        ("0.jnl", "no journal"),
    ] {
        std::fs::rename(path.join(name), &moved)?;
        let err = match LogStore::open(&path) {
            Ok(_) => anyhow::bail!("opened without {name}"),
            Err(e) => err_chain(&e),
        };
        let source = err;
        anyhow::ensure!(
            source.contains(why) && source.contains("raft-log"),
            "{source}"
        );
        std::fs::rename(&moved, path.join(name))?;
    }
    // Put back, it opens again, with the vote.
    let mut log = LogStore::open(&path)?;
    anyhow::ensure!(
        openraft::storage::RaftLogReader::read_vote(&mut log)
            .await?
            .is_some()
    );
    let closed = log.closed().expect("first call");
    drop(log);
    closed.await?;

    std::fs::write(dir.path().join("raft.redb"), b"an old log")?;
    let err = match LogStore::open(&path) {
        Ok(_) => anyhow::bail!("opened next to an old raft.redb"),
        Err(e) => e.to_string(),
    };
    anyhow::ensure!(
        err.contains("raft.redb") && err.contains("older kubelab"),
        "{err}"
    );
    Ok(())
}

/// The error and its sources, as the member prints them (`{:#}` of the anyhow error).
fn err_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
