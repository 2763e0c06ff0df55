//! Reads from a resourceVersion the store has not reached yet.
//!
//! A get or list with `resourceVersion=N` (N > 0; NotOlderThan or Exact) must not answer
//! with data older than N. kube-apiserver's watch cache waits up to 3 s for the revision
//! (`waitUntilFreshAndBlock`) and then fails with 504 `Timeout` "Too large resource
//! version: N, current: C" (cause `ResourceVersionTooLarge`, `Retry-After: 1`). [`wait_for`]
//! does the same against the store: it polls the store's current revision with a growing
//! interval until it reaches N or the deadline passes. Reads without a resourceVersion (or
//! `0`) never come here, so the common path costs nothing.

use std::time::Duration;

use super::{Ctx, Req};
use crate::error::ApiError;

/// How long a read waits for a future resourceVersion (kube-apiserver's `blockTimeout`).
pub const WAIT: Duration = Duration::from_secs(3);

/// The resourceVersion a get or list asks not to be older than (`None`: any, i.e. absent or
/// `0`).
pub fn requested(req: &Req) -> Result<Option<i64>, ApiError> {
    match req.query.get("resourceVersion") {
        None => Ok(None),
        Some(v) => Ok(Some(super::list::parse_rv(v)?).filter(|r| *r > 0)),
    }
}

/// Waits until the store's revision is at least `revision`, at most [`WAIT`]. Returns the
/// revision reached, or [`ApiError::TooLargeResourceVersion`].
pub async fn wait_for(ctx: &Ctx, revision: i64) -> Result<i64, ApiError> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut pause = Duration::from_millis(5);
    loop {
        let current = ctx.store.current_revision().await?;
        if current >= revision {
            return Ok(current);
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            tracing::debug!(requested = revision, current, "resourceVersion too large");
            return Err(ApiError::TooLargeResourceVersion {
                requested: revision,
                current,
            });
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

/// [`wait_for`] the request's resourceVersion, if it names one.
pub async fn wait_for_request(ctx: &Ctx, req: &Req) -> Result<(), ApiError> {
    if let Some(revision) = requested(req)? {
        wait_for(ctx, revision).await?;
    }
    Ok(())
}
