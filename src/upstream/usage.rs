//! What a pooled upstream connection has carried, so that a failed send can
//! tell the keep-alive race (the upstream closed a reused connection just as
//! a request went out, before any byte of an answer) from a request the
//! upstream began to answer. The connection's reads and writes keep the
//! counts; the client marks each answer it receives.
//!
//! ```text
//! answer N received        -> answers = N            (client)
//! first write after that   -> writes_after = N,
//!                             read_at_start = read   (connection)
//! send fails               -> reused and unanswered when answers > 0,
//!                             writes_after == answers, read == read_at_start
//! ```
//!
//! An answer that arrives while the request body is still being written
//! moves `writes_after` on mid-request; the next request on the connection
//! then counts the rest of that answer as read, so it is never taken for
//! unanswered (the safe direction).
//!
//! On an HTTP/2 connection the counts are kept all the same but prove
//! nothing: streams interleave, so bytes read may belong to any of them.
//! There the upstream says itself what it did not process (GOAWAY,
//! `REFUSED_STREAM`: see `protocol.rs`), and `reused_and_unanswered` is
//! always false.

use std::sync::atomic::{AtomicU64, Ordering};

use super::protocol::Protocol;

#[derive(Debug, Default)]
pub struct ConnUsage {
    /// An HTTP/2 connection: the counts do not tell requests apart.
    h2: bool,
    /// Response heads received on this connection (by the client).
    answers: AtomicU64,
    /// Bytes read from the upstream (by the connection).
    read: AtomicU64,
    /// `answers` as the connection last began writing.
    writes_after: AtomicU64,
    /// `read` when the connection began writing after the last answer.
    read_at_start: AtomicU64,
}

impl ConnUsage {
    /// For a new connection that speaks `protocol`.
    pub fn new(protocol: Protocol) -> Self {
        ConnUsage {
            h2: protocol == Protocol::H2,
            ..ConnUsage::default()
        }
    }

    /// The client received a response head on this connection.
    pub fn answered(&self) {
        self.answers.fetch_add(1, Ordering::AcqRel);
    }

    /// The connection is about to write.
    pub fn writing(&self) {
        let answers = self.answers.load(Ordering::Acquire);
        if self.writes_after.load(Ordering::Relaxed) != answers {
            self.read_at_start
                .store(self.read.load(Ordering::Relaxed), Ordering::Relaxed);
            self.writes_after.store(answers, Ordering::Release);
        }
    }

    /// The connection read `n` bytes from the upstream.
    pub fn read(&self, n: usize) {
        self.read.fetch_add(n as u64, Ordering::Release);
    }

    /// Whether the request that just failed went out on a connection that
    /// had answered an earlier one, and no byte of an answer to it came.
    pub fn reused_and_unanswered(&self) -> bool {
        let answers = self.answers.load(Ordering::Acquire);
        !self.h2
            && answers > 0
            && self.writes_after.load(Ordering::Acquire) == answers
            && self.read.load(Ordering::Acquire) == self.read_at_start.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_connection_is_never_reused() {
        let u = ConnUsage::default();
        u.writing();
        assert!(!u.reused_and_unanswered());
    }

    #[test]
    fn a_second_request_closed_before_any_answer_is_reused_and_unanswered() {
        let u = ConnUsage::default();
        u.writing();
        u.read(100);
        u.answered();
        u.read(20);
        u.writing();
        assert!(u.reused_and_unanswered());
        u.read(1);
        assert!(!u.reused_and_unanswered(), "a byte of an answer came");
    }

    #[test]
    fn an_h2_connection_never_claims_a_request_unanswered() {
        let u = ConnUsage::new(Protocol::H2);
        u.writing();
        u.read(100);
        u.answered();
        u.writing();
        assert!(!u.reused_and_unanswered());
    }

    #[test]
    fn a_request_never_written_after_the_last_answer_is_not_claimed() {
        let u = ConnUsage::default();
        u.writing();
        u.answered();
        assert!(!u.reused_and_unanswered());
    }

    #[test]
    fn an_answer_during_the_upload_leaves_the_next_request_counted_as_answered() {
        let u = ConnUsage::default();
        u.writing();
        u.read(10);
        u.answered();
        u.writing(); // the rest of the first body
        u.read(50); // the rest of the first answer
        u.writing(); // the second request: no new answer, no new start
        assert!(!u.reused_and_unanswered());
    }
}
