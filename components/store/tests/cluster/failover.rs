//! Leader loss, restarts and catch-up (by log and by snapshot).

use openraft::async_runtime::watch::WatchReceiver;
use std::time::Duration;

use anyhow::{Context, ensure};
use etcd_client::GetOptions;

use crate::util::{Cluster, wait_until};

async fn get_serializable(c: &Cluster, i: usize, key: &str) -> anyhow::Result<Option<String>> {
    let mut cl = c.client(i).await?;
    let r = cl
        .get(key, Some(GetOptions::new().with_serializable()))
        .await?;
    Ok(r.kvs()
        .first()
        .map(|kv| kv.value_str().unwrap_or_default().to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_killed_new_leader_takes_writes_and_restarted_member_catches_up()
-> anyhow::Result<()> {
    let mut c = Cluster::start(3, 10_000).await?;
    let old = c.leader().await?;
    let follower = (old + 1) % 3;
    c.client(follower).await?.put("before", "1", None).await?;

    c.stop(old).await;
    // Writes through a surviving member resume once a new leader is elected.
    wait_until(
        "a write after the leader stopped",
        Duration::from_secs(10),
        || async {
            c.client(follower).await?.put("after", "2", None).await?;
            Ok(())
        },
    )
    .await?;
    let new = c.leader().await?;
    ensure!(new != old, "a new leader was elected");
    // A linearizable read on the other survivor sees the acknowledged write.
    let other = (old + 2) % 3;
    let r = c.client(other).await?.get("after", None).await?;
    ensure!(
        r.kvs().len() == 1,
        "acknowledged write visible on every survivor"
    );

    // The old leader restarts from its data dir and catches up.
    c.restart(old).await?;
    wait_until(
        "the restarted member to catch up",
        Duration::from_secs(10),
        || async {
            let v = get_serializable(&c, old, "after").await?;
            ensure!(v.as_deref() == Some("2"), "not yet: {v:?}");
            Ok(())
        },
    )
    .await?;
    ensure!(get_serializable(&c, old, "before").await?.as_deref() == Some("1"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn far_behind_follower_receives_a_snapshot() -> anyhow::Result<()> {
    // Snapshot every 20 entries and keep only 20 behind it: a member that misses 300 writes
    // can only be brought back by a snapshot.
    let mut c = Cluster::start(3, 20).await?;
    let leader = c.leader().await?;
    let lagging = (leader + 1) % 3;
    let lagging_last = c.members[lagging]
        .as_ref()
        .unwrap()
        .raft()
        .metrics()
        .borrow_watched()
        .last_log_index
        .unwrap_or(0);
    c.stop(lagging).await;
    let mut cl = c.client(leader).await?;
    for i in 0..300 {
        cl.put(format!("k{i:03}"), format!("v{i}"), None).await?;
    }
    let purged = wait_until(
        "the leader to purge its log",
        Duration::from_secs(10),
        || async {
            let m = c.members[leader]
                .as_ref()
                .unwrap()
                .raft()
                .metrics()
                .borrow_watched()
                .clone();
            let purged = m.purged.map_or(0, |p| p.index);
            ensure!(
                purged > lagging_last + 1,
                "leader purged up to {purged} only"
            );
            Ok(purged)
        },
    )
    .await?;

    c.restart(lagging).await?;
    wait_until(
        "the lagging member to install a snapshot",
        Duration::from_secs(20),
        || async {
            let v = get_serializable(&c, lagging, "k299").await?;
            ensure!(v.as_deref() == Some("v299"), "not yet: {v:?}");
            Ok(())
        },
    )
    .await?;
    let m = c.members[lagging]
        .as_ref()
        .unwrap()
        .raft()
        .metrics()
        .borrow_watched()
        .clone();
    let snap = m.snapshot.context("the lagging member has a snapshot")?;
    ensure!(
        snap.index >= purged,
        "its snapshot ({}) covers the purged log ({purged})",
        snap.index
    );
    let r = c
        .client(lagging)
        .await?
        .get(
            "k",
            Some(
                GetOptions::new()
                    .with_prefix()
                    .with_serializable()
                    .with_count_only(),
            ),
        )
        .await?;
    ensure!(r.count() == 300, "all 300 keys there, got {}", r.count());
    Ok(())
}

/// Writes sent through followers while the leader stops are all acknowledged, each applied
/// exactly once: a follower that loses the leader mid-call sends the write again to the next
/// leader (tagged, so a copy the old leader did commit is not applied twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_through_followers_survive_a_leader_stop_exactly_once() -> anyhow::Result<()> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    let mut c = Cluster::start(3, 10_000).await?;
    let old = c.leader().await?;
    let followers = [(old + 1) % 3, (old + 2) % 3];
    let start_rev = c
        .client(followers[0])
        .await?
        .get("none", None)
        .await?
        .header()
        .context("header")?
        .revision();

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for w in 0..8 {
        let mut cl = c.client(followers[w % 2]).await?;
        let (stop, acked) = (stop.clone(), acked.clone());
        writers.push(tokio::spawn(async move {
            let mut errors = Vec::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                match cl.put(format!("w{w}"), format!("{n}"), None).await {
                    Ok(_) => {
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => errors.push(e.to_string()),
                }
            }
            errors
        }));
    }
    wait_until("writes flowing", Duration::from_secs(10), || async {
        ensure!(acked.load(Ordering::Relaxed) >= 50, "not yet");
        Ok(())
    })
    .await?;
    c.stop(old).await;
    let after_stop = acked.load(Ordering::Relaxed);
    wait_until(
        "writes acknowledged by the new leader",
        Duration::from_secs(10),
        || async {
            ensure!(acked.load(Ordering::Relaxed) >= after_stop + 50, "not yet");
            Ok(())
        },
    )
    .await?;
    stop.store(true, Ordering::Relaxed);
    let mut errors = Vec::new();
    for w in writers {
        errors.extend(w.await?);
    }
    ensure!(
        errors.is_empty(),
        "writes through followers failed across the leader stop: {errors:?}"
    );
    let end_rev = c
        .client(followers[1])
        .await?
        .get("none", None)
        .await?
        .header()
        .context("header")?
        .revision();
    let acked = acked.load(Ordering::Relaxed);
    ensure!(
        (end_rev - start_rev) as u64 == acked,
        "{acked} puts acknowledged but the revision moved by {}: a write was applied twice \
         or an unacknowledged one was applied",
        end_rev - start_rev
    );
    Ok(())
}

/// A leader killed and restarted before anyone else was elected must not serve a linearizable
/// read from the commit index it happened to have on disk (persisted lazily, so it may lag what
/// the cluster acknowledged): a restarted member starts as a follower, never as leader at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_leader_serves_no_stale_read() -> anyhow::Result<()> {
    let mut c = Cluster::start(3, 10_000).await?;
    let old = c.leader().await?;
    let mut cl = c.client(old).await?;
    for i in 0..20 {
        cl.put("k", format!("{i}"), None).await?;
    }
    drop(cl);
    let old_id = c.members[old].as_ref().context("running")?.member_id();
    c.stop(old).await;
    c.restart(old).await?;
    let m = c.members[old].as_ref().context("restarted")?;
    ensure!(
        m.leader_id() != Some(old_id),
        "the restarted member resumed leadership at once, before any election"
    );
    let mut cl = c.client(old).await?;
    let v = wait_until(
        "a read on the restarted member",
        Duration::from_secs(10),
        || {
            let mut cl = cl.clone();
            async move { Ok(cl.get("k", None).await?) }
        },
    )
    .await?;
    let value = v
        .kvs()
        .first()
        .map(|kv| kv.value_str().unwrap_or_default().to_string());
    ensure!(
        value.as_deref() == Some("19"),
        "a linearizable read after the restart returned {value:?}, not the last acknowledged 19"
    );
    cl.put("k", "20", None).await?;
    Ok(())
}
