//! Lease expiry and keep-alive across members and leader changes.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use etcd_client::{GetOptions, PutOptions};

use crate::util::{Cluster, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keep_alive_through_a_follower_holds_a_lease_and_expiry_deletes_its_keys()
-> anyhow::Result<()> {
    let c = Cluster::start(3, 10_000).await?;
    let leader = c.leader().await?;
    let follower = (leader + 1) % 3;
    let mut cl = c.client(follower).await?;
    let lease = cl.lease_grant(2, None).await?;
    ensure!(lease.ttl() >= 2, "granted ttl {}", lease.ttl());
    cl.put("held", "v", Some(PutOptions::new().with_lease(lease.id())))
        .await?;
    // Keep it alive through the follower for well past its TTL.
    let (mut keeper, _responses) = cl.lease_keep_alive(lease.id()).await?;
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        keeper.keep_alive().await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        ensure!(
            cl.get("held", None).await?.kvs().len() == 1,
            "key expired while kept alive"
        );
    }
    // Stop keeping it alive: the leader revokes it and the key goes, on every member.
    drop(keeper);
    wait_until("the lease to expire", Duration::from_secs(10), || async {
        let r = c.client(follower).await?.get("held", None).await?;
        ensure!(r.kvs().is_empty(), "still there");
        Ok(())
    })
    .await?;
    let ttl = cl.lease_time_to_live(lease.id(), None).await?;
    ensure!(
        ttl.ttl() == -1,
        "an expired lease reports TTL -1, got {}",
        ttl.ttl()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_leader_takes_over_lease_expiry() -> anyhow::Result<()> {
    let mut c = Cluster::start(3, 10_000).await?;
    let leader = c.leader().await?;
    let survivor = (leader + 1) % 3;
    let mut cl = c.client(survivor).await?;
    let lease = cl.lease_grant(2, None).await?.id();
    cl.put("leased", "v", Some(PutOptions::new().with_lease(lease)))
        .await?;
    c.stop(leader).await;
    let start = Instant::now();
    wait_until(
        "the new leader to expire the lease",
        Duration::from_secs(15),
        || async {
            let r = c
                .client(survivor)
                .await?
                .get("leased", Some(GetOptions::new().with_serializable()))
                .await?;
            ensure!(r.kvs().is_empty(), "still there");
            Ok(())
        },
    )
    .await?;
    // A new leader restarts every TTL, so the key lives at least one TTL past the failover.
    ensure!(
        start.elapsed() >= Duration::from_secs(2),
        "expired early: {:?}",
        start.elapsed()
    );
    let leases = c.client(survivor).await?.leases().await?;
    ensure!(
        leases.leases().iter().all(|l| l.id() != lease),
        "lease gone"
    );
    let _ = c.leader().await.context("a leader remains")?;
    Ok(())
}
