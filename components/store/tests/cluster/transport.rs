//! The AppendEntries transport on the peer port: bad frames are refused without harm, and a
//! follower whose connection is cut catches up once the leader reconnects.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use etcd_client::GetOptions;
use kubelab_store::network::APPEND_MAGIC;
use openraft::async_runtime::watch::WatchReceiver;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

use crate::util::{Cluster, Slot, wait_until};

/// A TCP proxy on a member's advertised peer port: forwards to where the member listens,
/// counts AppendEntries connections, and can cut every connection and refuse new ones for a
/// while. Everything it spawned is aborted on drop.
struct PeerProxy {
    accept: AbortHandle,
    state: Arc<ProxyState>,
}

#[derive(Default)]
struct ProxyState {
    conns: Mutex<Vec<AbortHandle>>,
    append_conns: AtomicUsize,
    refuse_until: Mutex<Option<Instant>>,
}

impl PeerProxy {
    async fn start(slot: &Slot) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", slot.peer_port)).await?;
        let to = slot.listen_peer_port.context("a proxied slot")?;
        let state = Arc::new(ProxyState::default());
        let st = state.clone();
        let accept = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let refusing = st
                    .refuse_until
                    .lock()
                    .unwrap()
                    .is_some_and(|t| Instant::now() < t);
                if refusing {
                    drop(inbound);
                    continue;
                }
                let st2 = st.clone();
                let task = tokio::spawn(async move {
                    let mut inbound = inbound;
                    let _ = inbound.set_nodelay(true);
                    let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", to)).await else {
                        return;
                    };
                    let _ = outbound.set_nodelay(true);
                    let mut first = vec![0u8; APPEND_MAGIC.len()];
                    if let Ok(n) = inbound.peek(&mut first).await
                        && first[..n] == APPEND_MAGIC[..n]
                        && n == APPEND_MAGIC.len()
                    {
                        st2.append_conns.fetch_add(1, Ordering::SeqCst);
                    }
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
                st.conns.lock().unwrap().push(task.abort_handle());
            }
        });
        Ok(PeerProxy {
            accept: accept.abort_handle(),
            state,
        })
    }

    /// Closes every connection through the proxy and refuses new ones for `hold`.
    fn cut(&self, hold: Duration) {
        *self.state.refuse_until.lock().unwrap() = Some(Instant::now() + hold);
        for c in self.state.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    fn append_conns(&self) -> usize {
        self.state.append_conns.load(Ordering::SeqCst)
    }
}

impl Drop for PeerProxy {
    fn drop(&mut self) {
        self.accept.abort();
        for c in self.state.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_whose_append_connection_is_cut_catches_up_after_reconnect() -> anyhow::Result<()>
{
    let proxies: Arc<Mutex<Vec<PeerProxy>>> = Arc::default();
    let p = proxies.clone();
    let c = Cluster::start_hooked(3, 10_000, true, |slots| async move {
        for s in &slots {
            let proxy = PeerProxy::start(s).await?;
            p.lock().unwrap().push(proxy);
        }
        Ok(())
    })
    .await?;
    let leader = c.leader().await?;
    let f = (leader + 1) % 3;
    let mut cl = c.client(leader).await?;
    for i in 0..10 {
        cl.put(format!("before{i}"), "v", None).await?;
    }
    let before = proxies.lock().unwrap()[f].append_conns();
    ensure!(
        before >= 1,
        "the leader replicates to member {f} over the AppendEntries transport"
    );

    proxies.lock().unwrap()[f].cut(Duration::from_millis(200));
    for i in 0..20 {
        cl.put(format!("during{i:02}"), "v", None).await?;
    }
    let leader_raft = c.members[leader].as_ref().unwrap().raft().clone();
    let follower = c.members[f].as_ref().unwrap().raft().clone();
    wait_until(
        "the cut follower to catch up",
        Duration::from_secs(10),
        || {
            let want = leader_raft.metrics().borrow_watched().last_log_index;
            let got = follower.metrics().borrow_watched().last_applied;
            async move {
                ensure!(
                    got.map(|l| l.index) >= want,
                    "follower applied {got:?}, leader's log at {want:?}"
                );
                Ok(())
            }
        },
    )
    .await?;
    let mut fc = c.client(f).await?;
    let r = fc
        .get("during19", Some(GetOptions::new().with_serializable()))
        .await?;
    ensure!(
        r.kvs().len() == 1,
        "the follower's own state has the write made while it was cut off"
    );
    let after = proxies.lock().unwrap()[f].append_conns();
    ensure!(
        after > before,
        "the leader made a new AppendEntries connection after the cut ({before} -> {after})"
    );
    drop(c);
    Ok(())
}

/// Writes `bytes` on a new connection to `port` and waits until the member closes it.
async fn refused(port: u16, bytes: &[u8]) -> anyhow::Result<()> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
    s.write_all(bytes).await?;
    let mut buf = [0u8; 1024];
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .context("the member kept a connection with a bad frame open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_append_frames_are_refused_and_the_member_keeps_serving() -> anyhow::Result<()> {
    let c = Cluster::start(3, 10_000).await?;
    let leader = c.leader().await?;
    let f = (leader + 1) % 3;
    let port = c.slots[f].peer_port;

    // A length over the cap: refused before any body is read.
    let mut oversize = APPEND_MAGIC.to_vec();
    oversize.extend_from_slice(&u32::MAX.to_be_bytes());
    refused(port, &oversize).await?;
    // A frame whose body is not an AppendEntries request.
    let mut garbage = APPEND_MAGIC.to_vec();
    garbage.extend_from_slice(&5u32.to_be_bytes());
    garbage.extend_from_slice(b"\xc1oops");
    refused(port, &garbage).await?;
    // Neither the magic nor HTTP/2: the gRPC server refuses it.
    refused(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await?;

    // The member still takes part: a write through the leader reaches its state.
    let mut cl = c.client(leader).await?;
    cl.put("after-garbage", "v", None).await?;
    let fc = c.client(f).await?;
    wait_until(
        "the member to apply a write made after the bad frames",
        Duration::from_secs(10),
        || {
            let mut fc = fc.clone();
            async move {
                let r = fc
                    .get("after-garbage", Some(GetOptions::new().with_serializable()))
                    .await?;
                ensure!(r.kvs().len() == 1, "not applied yet");
                Ok(())
            }
        },
    )
    .await?;
    Ok(())
}
