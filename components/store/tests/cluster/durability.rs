//! Restart from disk, corrupt data dirs, bad requests and disk write errors.

use openraft::async_runtime::watch::WatchReceiver;
use std::time::Duration;

use anyhow::{Context, ensure};
use etcd_client::{GetOptions, PutOptions};

use crate::util::{Cluster, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_recovers_state_from_snapshot_and_log() -> anyhow::Result<()> {
    // Snapshot every 20 entries: the restart loads a snapshot and replays the log after it.
    let mut c = Cluster::start(1, 20).await?;
    let mut cl = c.client(0).await?;
    for i in 0..45 {
        cl.put(format!("k{i:02}"), format!("{i}"), None).await?;
    }
    let lease = cl.lease_grant(600, None).await?.id();
    cl.put("leased", "v", Some(PutOptions::new().with_lease(lease)))
        .await?;
    let rev = cl
        .get("k00", None)
        .await?
        .header()
        .context("header")?
        .revision();
    // Snapshots are built in the background after the 20th entry: wait for one to exist.
    let raft = c.members[0].as_ref().unwrap().raft().clone();
    wait_until(
        "a snapshot before the restart",
        Duration::from_secs(10),
        || {
            let snap = raft.metrics().borrow_watched().snapshot;
            async move {
                ensure!(snap.is_some(), "no snapshot yet");
                Ok(())
            }
        },
    )
    .await?;
    drop(cl);
    c.stop(0).await;
    c.restart(0).await?;
    let mut cl = c.client(0).await?;
    let r = wait_until(
        "the restarted member to serve",
        Duration::from_secs(10),
        || {
            let mut cl = cl.clone();
            async move {
                Ok(cl
                    .get("k", Some(GetOptions::new().with_prefix().with_count_only()))
                    .await?)
            }
        },
    )
    .await?;
    ensure!(r.count() == 45, "all keys back: {}", r.count());
    ensure!(
        r.header().context("header")?.revision() == rev,
        "revision preserved"
    );
    let leased = cl.get("leased", None).await?;
    ensure!(
        leased.kvs().first().map(|kv| kv.lease()) == Some(lease),
        "lease attachment kept"
    );
    let put = cl.put("next", "x", None).await?;
    ensure!(
        put.header().context("header")?.revision() == rev + 1,
        "revisions continue"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn corrupt_data_dir_is_reported_and_left_alone() -> anyhow::Result<()> {
    let mut c = Cluster::start(1, 10).await?;
    let mut cl = c.client(0).await?;
    for i in 0..15 {
        cl.put(format!("k{i}"), "v", None).await?;
    }
    cl.put("marker", MARKER, None).await?;
    drop(cl);
    c.stop(0).await;
    let dir = c.slots[0].dir.clone();

    // A damaged snapshot: the start fails naming the file; the file is not rewritten.
    let snap = dir.join("snap/snapshot.bin");
    let mut bytes = std::fs::read(&snap).context("snapshot file exists")?;
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&snap, &bytes)?;
    let err = c
        .restart(0)
        .await
        .expect_err("start must fail on a corrupt snapshot");
    let msg = format!("{err:#}");
    ensure!(
        msg.contains("snapshot.bin") && msg.contains("corrupt"),
        "{msg}"
    );
    ensure!(
        std::fs::read(&snap)? == bytes,
        "the corrupt snapshot was left as found"
    );
    bytes[mid] ^= 0xff;
    std::fs::write(&snap, &bytes)?;

    // A damaged log database: same. One byte of an entry's value is flipped where it is
    // stored (bit rot), which the engine's checksums must catch.
    let (file, mut bytes, at) = find_in_dir(&dir.join("raft-log"), MARKER)?;
    bytes[at + MARKER.len() / 2] ^= 0x01;
    std::fs::write(&file, &bytes)?;
    let err = c
        .restart(0)
        .await
        .expect_err("start must fail on a corrupt log database");
    let msg = format!("{err:#}");
    ensure!(msg.contains("raft-log") && msg.contains("corrupt"), "{msg}");
    ensure!(
        std::fs::read(&file)? == bytes,
        "the corrupt database was left as found"
    );
    Ok(())
}

/// A value written last in `corrupt_data_dir_is_reported_and_left_alone`, to be found on disk.
const MARKER: &[u8] = b"a value to find in the log database";

/// The file under `dir` holding `needle`, its bytes and where `needle` starts.
fn find_in_dir(
    dir: &std::path::Path,
    needle: &[u8],
) -> anyhow::Result<(std::path::PathBuf, Vec<u8>, usize)> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let path = e?.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let bytes = std::fs::read(&path)?;
            if let Some(at) = bytes.windows(needle.len()).position(|w| w == needle) {
                return Ok((path, bytes, at));
            }
        }
    }
    anyhow::bail!("no file under {} holds the marker value", dir.display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_requests_get_grpc_errors_and_the_member_keeps_serving() -> anyhow::Result<()> {
    let c = Cluster::start(1, 10_000).await?;
    let mut cl = c.client(0).await?;
    let big = vec![b'x'; 2 * 1024 * 1024];
    let err = cl
        .put("big", big, None)
        .await
        .expect_err("oversize put must fail");
    ensure!(
        err.to_string().contains("too large") || err.to_string().contains("message length"),
        "{err}"
    );
    let err = cl
        .put("", "v", None)
        .await
        .expect_err("empty key must fail");
    ensure!(err.to_string().contains("key is not provided"), "{err}");
    let err = cl
        .put("k", "v", Some(PutOptions::new().with_lease(12345)))
        .await
        .unwrap_err();
    ensure!(
        err.to_string().contains("requested lease not found"),
        "{err}"
    );
    // A gRPC message that is not a valid RangeRequest (field 1 with the wrong wire type).
    let status = malformed_range(&c.slots[0].client_url()).await?;
    ensure!(
        matches!(
            status.code(),
            tonic::Code::Internal | tonic::Code::InvalidArgument
        ),
        "malformed request answered with {status:?}"
    );
    // Garbage on the wire is dropped without harming the server.
    {
        use tokio::io::AsyncWriteExt;
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", c.slots[0].client_port)).await?;
        s.write_all(b"this is not HTTP/2 at all\r\n\r\n\x00\x01\x02")
            .await?;
    }
    cl.put("k", "v", None).await?;
    ensure!(cl.get("k", None).await?.kvs().len() == 1);
    Ok(())
}

/// Sends a `LeaseGrantRequest` (field 1 is a varint) to `KV/Range`, whose field 1 is bytes.
async fn malformed_range(url: &str) -> anyhow::Result<tonic::Status> {
    use etcd_client::proto::{PbLeaseGrantRequest, PbRangeResponse};
    use tonic::codegen::http::uri::PathAndQuery;
    let channel = tonic::transport::Endpoint::from_shared(url.to_string())?
        .connect()
        .await?;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await?;
    let codec = tonic_prost::ProstCodec::<PbLeaseGrantRequest, PbRangeResponse>::default();
    let path = PathAndQuery::from_static("/etcdserverpb.KV/Range");
    let req = tonic::Request::new(PbLeaseGrantRequest { ttl: 5, id: 0 });
    match grpc.unary(req, path, codec).await {
        Ok(r) => anyhow::bail!("a malformed request was answered: {:?}", r.into_inner()),
        Err(status) => Ok(status),
    }
}
