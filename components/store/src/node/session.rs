//! This member's write session: tags every client write so it is applied at most once
//! (`mvcc/sessions.rs` does the applying side), which makes it safe to send a write to the
//! next leader after the connection to the last one broke mid-call.
//!
//! Flow: [`WriteSession::begin`] hands out the next sequence number as a [`Ticket`] and keeps
//! it "in flight" until the ticket is dropped (the write was answered or given up);
//! [`WriteSession::tag`] wraps a request with the session id, the ticket's number and the
//! lowest number still in flight (everything below it is finished).

use std::collections::BTreeSet;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};

use crate::types::Request;

#[derive(Default)]
struct State {
    next: u64,
    in_flight: BTreeSet<u64>,
}

/// The session of one member process (a fresh random id at every start, so numbers never
/// collide with those of an earlier run).
pub(crate) struct WriteSession {
    id: u64,
    state: Arc<Mutex<State>>,
}

/// One write's sequence number, in flight until dropped.
pub(crate) struct Ticket {
    seq: u64,
    state: Arc<Mutex<State>>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.state
            .lock()
            .expect("session lock")
            .in_flight
            .remove(&self.seq);
    }
}

impl WriteSession {
    /// A session with a random id.
    pub(crate) fn new() -> Self {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.write_u32(std::process::id());
        Self {
            id: h.finish(),
            state: Arc::default(),
        }
    }

    /// Starts a write: its sequence number stays in flight until the ticket is dropped.
    pub(crate) fn begin(&self) -> Ticket {
        let mut s = self.state.lock().expect("session lock");
        let seq = s.next;
        s.next += 1;
        s.in_flight.insert(seq);
        Ticket {
            seq,
            state: self.state.clone(),
        }
    }

    /// `req` tagged with this session and the ticket's number.
    pub(crate) fn tag(&self, ticket: &Ticket, req: Request) -> Request {
        let done_below = {
            let s = self.state.lock().expect("session lock");
            s.in_flight.first().copied().unwrap_or(s.next)
        };
        Request::Once {
            session: self.id,
            seq: ticket.seq,
            done_below,
            req: Box::new(req),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mvcc::Mvcc;
    use crate::types::{Outcome, Put};

    fn put(key: &str, value: &str) -> Request {
        Request::Put(Put {
            key: key.into(),
            value: value.into(),
            lease: 0,
            prev_kv: false,
            ignore_value: false,
            ignore_lease: false,
        })
    }

    #[test]
    fn a_tagged_write_applies_once_however_often_it_is_proposed() {
        let session = WriteSession::new();
        let mut mvcc = Mvcc::default();
        let t = session.begin();
        let first = session.tag(&t, put("k", "v1"));
        let (r1, ev1) = mvcc.apply(&first);
        let (r2, ev2) = mvcc.apply(&first.clone());
        assert_eq!(r1, r2, "the second copy gets the first one's response");
        assert_eq!(ev1.len(), 1);
        assert!(ev2.is_empty(), "the second copy writes nothing");
        assert_eq!(mvcc.revision(), 2, "one revision, not two");
        // Another client's write in between, then a third copy: still not applied again.
        let t2 = session.begin();
        mvcc.apply(&session.tag(&t2, put("k", "other")));
        let (r3, _) = mvcc.apply(&first);
        assert_eq!(r3, r1);
        assert_eq!(mvcc.revision(), 3);
    }

    #[test]
    fn finished_writes_are_forgotten_and_their_late_copies_refused() {
        let session = WriteSession::new();
        let mut mvcc = Mvcc::default();
        let t0 = session.begin();
        let late = session.tag(&t0, put("k", "abandoned"));
        drop(t0); // the caller gave up on it (or was answered)
        let t1 = session.begin();
        let (r, _) = mvcc.apply(&session.tag(&t1, put("k", "v")));
        assert!(matches!(r.result, Ok(Outcome::Put(_))));
        assert_eq!(
            mvcc.cached_responses(),
            1,
            "only the write in flight is cached"
        );
        let (r, ev) = mvcc.apply(&late);
        assert_eq!(r.result, Err(crate::types::ApplyError::Abandoned));
        assert!(ev.is_empty());
        assert_eq!(mvcc.revision(), 2, "the abandoned copy did not write");
    }

    #[test]
    fn batches_of_tagged_writes_are_deduplicated_one_by_one() {
        let session = WriteSession::new();
        let mut mvcc = Mvcc::default();
        let (ta, tb) = (session.begin(), session.begin());
        let a = session.tag(&ta, put("a", "1"));
        let b = session.tag(&tb, put("b", "1"));
        mvcc.apply(&a);
        let (r, _) = mvcc.apply(&Request::Batch(vec![a, b]));
        let Ok(Outcome::Batch(rs)) = r.result else {
            panic!("a batch response");
        };
        assert_eq!(rs.len(), 2);
        assert_eq!(
            rs[0].revision, 2,
            "a: the cached response of its first apply"
        );
        assert_eq!(rs[1].revision, 3, "b: applied now");
        assert_eq!(mvcc.revision(), 3);
    }
}
