//! Linearizable reads on any member see every write acknowledged before them.

use anyhow::ensure;
use etcd_client::GetOptions;

use crate::util::Cluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_on_followers_see_acknowledged_writes() -> anyhow::Result<()> {
    let c = Cluster::start(3, 10_000).await?;
    let leader = c.leader().await?;
    let mut writer = c.client(leader).await?;
    let mut readers = [
        c.client((leader + 1) % 3).await?,
        c.client((leader + 2) % 3).await?,
    ];
    for i in 0..40 {
        let rev = writer
            .put("lin", format!("{i}"), None)
            .await?
            .header()
            .map_or(0, |h| h.revision());
        for r in readers.iter_mut() {
            let got = r.get("lin", None).await?;
            let kv = &got.kvs()[0];
            ensure!(
                kv.value_str()? == i.to_string(),
                "stale read: {:?} after writing {i}",
                kv.value_str()
            );
            ensure!(
                got.header().map_or(0, |h| h.revision()) >= rev,
                "header revision went back"
            );
        }
    }
    Ok(())
}

/// A write through a follower is answered only once that follower applied it, so even a
/// serializable read there sees it (etcd's behaviour; a lease test once flaked on this).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_reads_its_own_writes_even_serializably() -> anyhow::Result<()> {
    let c = Cluster::start(3, 10_000).await?;
    let leader = c.leader().await?;
    for follower in [(leader + 1) % 3, (leader + 2) % 3] {
        let mut cl = c.client(follower).await?;
        for i in 0..40 {
            let rev = cl
                .put("own", format!("{follower}-{i}"), None)
                .await?
                .header()
                .map_or(0, |h| h.revision());
            let got = cl
                .get("own", Some(GetOptions::new().with_serializable()))
                .await?;
            ensure!(
                got.kvs().first().map(|kv| kv.value().to_vec())
                    == Some(format!("{follower}-{i}").into_bytes()),
                "member {follower} answered write {i} (revision {rev}) before applying it: read {:?}",
                got.kvs()
                    .first()
                    .map(|kv| kv.value_str().map(str::to_owned))
            );
        }
    }
    Ok(())
}
