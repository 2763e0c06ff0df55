//! Exactly-once writes: a write tagged with a session and sequence number is applied at most
//! once, however many times it is proposed.
//!
//! Why: a follower forwards a client's write to the leader. When the connection breaks mid-call
//! (the leader was killed), the follower cannot know whether the leader logged the write; before
//! this, it had to give the client an unknown outcome. With a tag, it simply proposes the write
//! again to the next leader: if the first copy is ever applied, the second is answered from the
//! cache below instead of being applied again (Raft thesis §6.3, client sessions).
//!
//! Data flow: `node/` wraps every client write as [`Request::Once`] with its member's session
//! (random per process start), a sequence number, and `done_below`: every sequence number under
//! it has finished (answered or given up), so its cached response may go. On apply, per session:
//! a sequence number already cached returns the cached response; one under the session's floor
//! (the largest `done_below` seen) belongs to an attempt its caller gave up on and is refused,
//! so a late copy of an abandoned write can never apply after its caller moved on; anything else
//! is applied and its response cached. Everything here is replicated state (in snapshots), and
//! decided by the log alone, so every replica answers alike.
//!
//! A copy that is applied before any later copy is the one that counts: Raft log terms never
//! decrease along the log, so every copy that will ever commit is applied before a caller sees
//! its first answer; after that, `done_below` moves past it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Event, Mvcc};
use crate::types::{ApplyError, Request, Response};

/// Per session: the floor and the responses of writes still in flight.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Session {
    /// Sequence numbers below this are finished; copies of them are refused.
    floor: u64,
    /// Responses of applied writes at or above the floor.
    applied: BTreeMap<u64, Response>,
}

impl Mvcc {
    /// Applies a tagged write once (see the module doc).
    pub(super) fn apply_once(
        &mut self,
        session: u64,
        seq: u64,
        done_below: u64,
        req: &Request,
        announce: &mut dyn FnMut(i64, Vec<Event>),
    ) -> Response {
        let s = self.sessions.entry(session).or_default();
        if done_below > s.floor {
            s.floor = done_below;
            s.applied = s.applied.split_off(&done_below);
        }
        if let Some(cached) = s.applied.get(&seq) {
            return cached.clone();
        }
        if seq < s.floor {
            return Response {
                revision: self.revision,
                result: Err(ApplyError::Abandoned),
            };
        }
        let resp = self.apply_dyn(req, announce);
        self.sessions
            .get_mut(&session)
            .expect("session inserted above")
            .applied
            .insert(seq, resp.clone());
        resp
    }

    /// Sessions with cached responses (for tests and size accounting).
    #[cfg(test)]
    pub(crate) fn cached_responses(&self) -> usize {
        self.sessions.values().map(|s| s.applied.len()).sum()
    }
}
