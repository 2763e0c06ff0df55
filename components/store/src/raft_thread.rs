//! The member's Raft thread: one current-thread tokio runtime on a dedicated OS thread that runs
//! the Raft machinery, apart from the client-facing runtime.
//!
//! What runs here (spawned from [`RaftThread::enter`] or [`RaftThread::run`] in
//! `server.rs`): openraft's core, replication and state-machine tasks (openraft spawns them on
//! the runtime `Raft::new` is called from), the log store's callbacks into the core, the
//! batching task of `node/propose.rs`, the read-index task, and the peer port (AppendEntries
//! connections and the gRPC peer service, so a forwarded write reaches the proposer without
//! leaving the thread). The etcd API's gRPC services stay on the caller's runtime.
//!
//! Why: a 1-client write crosses about six task hand-offs between these tasks (gRPC handler →
//! batching task → core → replication → ... → core → state machine). On a multi-thread runtime
//! each is a cross-thread wake-up of a parked worker (~60 µs on the lab's VMs); on one thread
//! it is a local queue push. Keeping the client services on the multi-thread runtime keeps
//! 100-client throughput, which one thread serving every client had cut (`docs/store.md`).
//!
//! Life cycle: [`RaftThread::start`] spawns the thread and returns once its runtime runs;
//! [`RaftThread::stop`] (or dropping the [`RaftThread`]) ends `block_on`, which drops the
//! runtime and with it every task still on it, then the thread ends. A panic inside a task is
//! caught by tokio as on any runtime (openraft reports a panicked core as `Fatal`, so the member
//! answers "stopped"); if the thread itself dies, every task on it is dropped, the Raft handle's
//! channels close, and requests fail with "stopped" instead of hanging. Either way an error is
//! logged.

use std::future::Future;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// A running Raft thread. See the module docs.
pub(crate) struct RaftThread {
    handle: Handle,
    finish: Option<oneshot::Sender<()>>,
    done: Option<oneshot::Receiver<()>>,
}

impl RaftThread {
    /// Spawns the thread and its current-thread runtime; returns once the runtime runs.
    pub(crate) async fn start(name: &str) -> std::io::Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name(format!("raft-{name}-blocking"))
            .build()?;
        let handle = rt.handle().clone();
        let (finish, finish_rx) = oneshot::channel::<()>();
        let (done_tx, done) = oneshot::channel();
        std::thread::Builder::new()
            .name(format!("raft-{name}"))
            .spawn(move || {
                let run = std::panic::AssertUnwindSafe(|| {
                    // Ends on `stop` or when the `RaftThread` is dropped.
                    rt.block_on(async {
                        let _ = finish_rx.await;
                    });
                    // Drops every task still on the runtime (a clean stop has none left but
                    // idle connections) and waits for its blocking pool.
                    drop(rt);
                });
                if std::panic::catch_unwind(run).is_err() {
                    tracing::error!("the raft thread panicked; the member stops serving");
                }
                let _ = done_tx.send(());
            })?;
        Ok(Self {
            handle,
            finish: Some(finish),
            done: Some(done),
        })
    }

    /// Enters the Raft runtime's context: `tokio::spawn` and I/O registration in the returned
    /// guard's scope go to the Raft thread. Synchronous code only (the guard is not `Send`).
    pub(crate) fn enter(&self) -> tokio::runtime::EnterGuard<'_> {
        self.handle.enter()
    }

    /// Runs `fut` on the Raft thread and waits for its output. A panic in it is resumed here
    /// (as if it had run on the caller's runtime); `None` if the thread stopped under it.
    pub(crate) async fn run<F>(&self, fut: F) -> Option<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self.handle.spawn(fut).await {
            Ok(v) => Some(v),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => None,
        }
    }

    /// Ends the thread (dropping whatever still runs on it) and waits until it is gone.
    pub(crate) async fn stop(mut self) {
        let _ = self.finish.take().map(|f| f.send(()));
        if let Some(done) = self.done.take() {
            let _ = done.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn run_returns_the_output_from_the_raft_thread() {
        let t = RaftThread::start("test").await.unwrap();
        let caller = std::thread::current().id();
        let (v, there) = t
            .run(async { (7, std::thread::current().id()) })
            .await
            .unwrap();
        assert_eq!(v, 7);
        assert_ne!(there, caller, "the future ran on the caller's thread");
        t.stop().await;
    }

    #[tokio::test]
    async fn a_panic_on_the_raft_thread_reaches_the_caller() {
        let t = RaftThread::start("test").await.unwrap();
        let r = tokio::spawn(async move {
            t.run(async { panic!("boom") }).await;
        })
        .await;
        assert!(r.unwrap_err().is_panic());
    }

    #[tokio::test]
    async fn stop_drops_the_tasks_still_on_the_thread() {
        let t = RaftThread::start("test").await.unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        {
            let _g = t.enter();
            // A task that never ends on its own, holding the sender.
            tokio::spawn(async move {
                let _tx = tx;
                std::future::pending::<()>().await;
            });
        }
        t.stop().await;
        // The sender was dropped with the task: the receiver sees the close, nothing hangs.
        assert!(rx.await.is_err());
    }

    #[tokio::test]
    async fn dropping_the_handle_ends_the_thread() {
        let t = RaftThread::start("test").await.unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        {
            let _g = t.enter();
            tokio::spawn(async move {
                let _tx = tx;
                std::future::pending::<()>().await;
            });
        }
        drop(t);
        tokio::time::timeout(std::time::Duration::from_secs(10), rx)
            .await
            .expect("the raft thread kept running after its handle was dropped")
            .unwrap_err();
    }
}
