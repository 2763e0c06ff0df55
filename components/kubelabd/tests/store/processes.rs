//! A 3-member cluster of `kubelabd store` processes: crash of the leader, restart, membership.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use etcd_client::GetOptions;

use crate::util::{Procs, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_process_killed_writes_resume_and_it_catches_up_after_restart() -> anyhow::Result<()>
{
    leader_killed_then_restarted(Procs::start(3)?).await
}

/// The same with every member on a current-thread runtime (`--runtime current-thread`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn current_thread_members_fail_over_and_catch_up() -> anyhow::Result<()> {
    leader_killed_then_restarted(Procs::start_with(3, &["--runtime", "current-thread"])?).await
}

async fn leader_killed_then_restarted(mut p: Procs) -> anyhow::Result<()> {
    let old = p.leader().await.with_context(|| p.log(0))?;
    let survivor = (old + 1) % 3;
    p.client(survivor).await?.put("before", "1", None).await?;

    p.kill(old);
    let killed = Instant::now();
    wait_until(
        "a write after the leader was killed",
        Duration::from_secs(10),
        || async {
            p.client(survivor).await?.put("after", "2", None).await?;
            Ok(())
        },
    )
    .await?;
    eprintln!(
        "write acknowledged {:?} after SIGKILL of the leader",
        killed.elapsed()
    );
    let new = p.leader().await?;
    ensure!(new != old, "a new leader was elected");

    p.spawn(old, "new")?;
    wait_until(
        "the restarted member to catch up",
        Duration::from_secs(15),
        || async {
            let r = p
                .client(old)
                .await?
                .get("after", Some(GetOptions::new().with_serializable()))
                .await?;
            ensure!(r.kvs().len() == 1, "not yet");
            Ok(())
        },
    )
    .await
    .with_context(|| p.log(old))?;
    let r = p
        .client(old)
        .await?
        .get("before", Some(GetOptions::new().with_serializable()))
        .await?;
    ensure!(r.kvs().len() == 1, "the restarted member kept what it had");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_process_removed_and_another_added() -> anyhow::Result<()> {
    let mut p = Procs::start(3)?;
    let leader = p.leader().await?;
    let victim = (leader + 2) % 3;
    let mut cl = p.client(leader).await?;
    cl.put("k", "v", None).await?;
    let victim_id = p
        .client(victim)
        .await?
        .status()
        .await?
        .header()
        .context("header")?
        .member_id();
    cl.member_remove(victim_id).await?;
    p.kill(victim);

    let new = p.add_slot();
    let added = cl.member_add([p.members[new].peer_url()], None).await?;
    let new_id = added.member().context("added member")?.id();
    p.spawn(new, "existing")?;
    wait_until(
        "the new member to be a named voter",
        Duration::from_secs(20),
        || async {
            let list = p.client(leader).await?.member_list().await?;
            ensure!(
                list.members().len() == 3,
                "{} members",
                list.members().len()
            );
            let m = list
                .members()
                .iter()
                .find(|m| m.id() == new_id)
                .context("listed")?;
            ensure!(!m.is_learner() && m.name() == p.members[new].name, "{m:?}");
            Ok(())
        },
    )
    .await
    .with_context(|| p.log(new))?;
    let r = p.client(new).await?.get("k", None).await?;
    ensure!(
        r.kvs().len() == 1,
        "the new member serves the data linearizably"
    );
    Ok(())
}
