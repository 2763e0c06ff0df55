//! Watch guarantees: history then live, ordered, no duplicates, a txn's events together,
//! prev_kv, compacted start revisions, progress notifications, resuming.

use std::time::Duration;

use anyhow::{Context, ensure};
use etcd_client::{
    Compare, CompareOp, EventType, Txn, TxnOp, WatchOptions, WatchResponse, WatchStream,
};

use crate::util::Cluster;

async fn next(ws: &mut WatchStream) -> anyhow::Result<WatchResponse> {
    tokio::time::timeout(Duration::from_secs(5), ws.message())
        .await
        .context("no watch response within 5 s")??
        .context("watch stream ended")
}

/// Reads responses until `n` events arrived; returns (revision, key, type, prev value) per
/// event and how many responses carried them.
async fn events(
    ws: &mut WatchStream,
    n: usize,
) -> anyhow::Result<(Vec<(i64, String, EventType, Option<String>)>, Vec<usize>)> {
    let mut out = Vec::new();
    let mut sizes = Vec::new();
    while out.len() < n {
        let r = next(ws).await?;
        if r.events().is_empty() {
            continue;
        }
        sizes.push(r.events().len());
        for e in r.events() {
            let kv = e.kv().context("event kv")?;
            let prev = e
                .prev_kv()
                .map(|p| p.value_str().unwrap_or_default().to_string());
            out.push((
                kv.mod_revision(),
                kv.key_str()?.to_string(),
                e.event_type(),
                prev,
            ));
        }
    }
    Ok((out, sizes))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn watch_replays_history_then_goes_live_in_order() -> anyhow::Result<()> {
    let c = Cluster::start(1, 10_000).await?;
    let mut cl = c.client(0).await?;
    cl.put("w/a", "1", None).await?; // rev 2
    cl.put("other", "x", None).await?; // rev 3, not watched
    cl.put("w/a", "2", None).await?; // rev 4
    let opts = WatchOptions::new()
        .with_prefix()
        .with_start_revision(2)
        .with_prev_key();
    let mut ws = cl.watch("w/", Some(opts)).await?;
    let created = next(&mut ws).await?;
    ensure!(created.created(), "first response confirms creation");
    let (hist, _) = events(&mut ws, 2).await?;
    ensure!(
        hist[0] == (2, "w/a".into(), EventType::Put, None),
        "{hist:?}"
    );
    ensure!(
        hist[1] == (4, "w/a".into(), EventType::Put, Some("1".into())),
        "{hist:?}"
    );

    // Live: a txn's two puts arrive in one response; then a delete with its prev_kv.
    let txn = Txn::new()
        .when([Compare::value("w/a", CompareOp::Equal, "2")])
        .and_then([TxnOp::put("w/b", "3", None), TxnOp::put("w/a", "4", None)]);
    ensure!(cl.txn(txn).await?.succeeded());
    cl.delete("w/b", None).await?;
    let (live, sizes) = events(&mut ws, 3).await?;
    ensure!(sizes[0] == 2, "txn events delivered together: {sizes:?}");
    ensure!(
        live[0].0 == 5 && live[1].0 == 5 && live[2].0 == 6,
        "{live:?}"
    );
    ensure!(
        live[2] == (6, "w/b".into(), EventType::Delete, Some("3".into())),
        "{live:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn compacted_start_cancels_and_resume_from_last_seen_works() -> anyhow::Result<()> {
    let c = Cluster::start(1, 10_000).await?;
    let mut cl = c.client(0).await?;
    for i in 0..5 {
        cl.put("k", format!("{i}"), None).await?; // revs 2..6
    }
    cl.compact(4, None).await?;
    let mut ws = cl
        .watch("k", Some(WatchOptions::new().with_start_revision(3)))
        .await?;
    ensure!(next(&mut ws).await?.created());
    let r = next(&mut ws).await?;
    ensure!(
        r.canceled() && r.compact_revision() == 4,
        "cancelled with compact revision: {r:?}"
    );

    // Resume from the compact revision: exactly revisions 4..=6, no duplicates, in order.
    let mut ws = cl
        .watch("k", Some(WatchOptions::new().with_start_revision(4)))
        .await?;
    ensure!(next(&mut ws).await?.created());
    let (evs, _) = events(&mut ws, 3).await?;
    let revs: Vec<i64> = evs.iter().map(|e| e.0).collect();
    ensure!(revs == vec![4, 5, 6], "{revs:?}");
    // A plain read below the compaction fails with etcd's error.
    let err = cl
        .get("k", Some(etcd_client::GetOptions::new().with_revision(3)))
        .await
        .unwrap_err();
    ensure!(
        err.to_string()
            .contains("required revision has been compacted"),
        "{err}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn progress_notifications_report_the_revision() -> anyhow::Result<()> {
    let c = Cluster::start(1, 10_000).await?;
    let mut cl = c.client(0).await?;
    cl.put("p", "1", None).await?;
    let mut ws = cl
        .watch(
            "nothing-here",
            Some(WatchOptions::new().with_progress_notify()),
        )
        .await?;
    ensure!(next(&mut ws).await?.created());
    // The harness sets a 500 ms progress interval.
    let r = next(&mut ws).await?;
    ensure!(
        r.events().is_empty(),
        "a progress notification has no events"
    );
    ensure!(r.header().context("header")?.revision() == 2, "{r:?}");
    // An explicit progress request is answered too.
    ws.request_progress().await?;
    let r = next(&mut ws).await?;
    ensure!(r.events().is_empty() && r.header().context("header")?.revision() == 2);
    Ok(())
}
