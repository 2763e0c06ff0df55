//! Linearizable reads on any member see every write acknowledged before them.

use anyhow::ensure;

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
