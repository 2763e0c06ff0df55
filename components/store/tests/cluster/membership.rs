//! Members removed and added at run time.

use std::time::Duration;

use anyhow::{Context, ensure};
use etcd_client::GetOptions;

use crate::util::{Cluster, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn member_removed_and_another_added() -> anyhow::Result<()> {
    let mut c = Cluster::start(3, 10_000).await?;
    let leader = c.leader().await?;
    let victim = (leader + 1) % 3;
    let mut cl = c.client(leader).await?;
    cl.put("k", "v", None).await?;

    let victim_id = c.members[victim].as_ref().unwrap().member_id();
    let r = cl.member_remove(victim_id).await?;
    ensure!(
        r.members().len() == 2,
        "two members left: {:?}",
        r.members()
    );
    c.stop(victim).await;

    // Add a new member, then start it to join the running cluster.
    let new = c.add_slot();
    let added = cl.member_add([c.slots[new].peer_url()], None).await?;
    let new_id = added.member().context("added member")?.id();
    c.join(new).await?;
    wait_until(
        "the new member to be a voter with a name",
        Duration::from_secs(20),
        || async {
            let list = c.client(leader).await?.member_list().await?;
            let m = list
                .members()
                .iter()
                .find(|m| m.id() == new_id)
                .context("new member listed")?;
            ensure!(!m.is_learner(), "still a learner");
            ensure!(
                m.name() == c.slots[new].name,
                "name not published yet: {:?}",
                m.name()
            );
            ensure!(
                list.members().len() == 3,
                "{} members",
                list.members().len()
            );
            Ok(())
        },
    )
    .await?;
    let r = c
        .client(new)
        .await?
        .get("k", Some(GetOptions::new().with_serializable()))
        .await?;
    ensure!(r.kvs().len() == 1, "new member has the data");
    // The cluster keeps working with the new membership, through the new member too.
    c.client(new).await?.put("k2", "v2", None).await?;
    Ok(())
}
