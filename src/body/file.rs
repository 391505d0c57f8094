//! A body that streams a spooled temp file back out: large positioned reads
//! on a blocking thread, the next one started while the last is sent, into
//! buffers that come back to the body once the upstream connection has
//! written them (so they are zeroed once, when first made, not per read).
//! Each body reads at its own offset: any number of them, made one after
//! the other for a request sent again, read the same file afresh.
//!
//! Every `READ_SIZE` buffer takes its bytes from the memory budget
//! (`spool_memory_total`) until it is freed: a body has at most
//! `KEPT_BUFFERS` of them in its pool plus the ones the connection holds
//! (hyper holds about 400 KiB). When the budget has no room, the body
//! reads into one small buffer of its own (`SPARE_SIZE`, outside the
//! budget) and otherwise waits for one of its buffers to come back.

use std::future::Future;
use std::io;
use std::os::unix::fs::FileExt as _;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{ready, Context, Poll, Waker};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::task::JoinHandle;

use super::budget::Budget;
use super::buffer::Buffer;

/// Bytes per read, and so per frame sent.
const READ_SIZE: usize = 128 << 10;

/// The one buffer a body reads into, outside the budget, when the budget
/// has no room for another.
const SPARE_SIZE: usize = 16 << 10;

/// Buffers kept for reuse: one being read into, the ones the connection
/// still holds come back here (it holds few: hyper buffers about 400 KiB).
const KEPT_BUFFERS: usize = 4;

#[derive(Default)]
struct Pool {
    kept: Vec<Buffer>,
    /// The body, waiting for a buffer to come back.
    waiting: Option<Waker>,
}

pub struct FileBody {
    file: Arc<std::fs::File>,
    /// Where the next read starts.
    offset: u64,
    /// Bytes not yet read (or being read).
    unread: u64,
    /// Bytes not yet handed out.
    unsent: u64,
    reading: Option<JoinHandle<io::Result<Filled>>>,
    pool: Arc<Mutex<Pool>>,
    budget: Budget,
    /// The spare buffer was made (it is kept, or held by the connection).
    spare_made: bool,
}

/// A buffer holding `len` bytes of body at its start; `len` up to its
/// length, which stays as made (all initialized) for its next read.
struct Filled {
    buf: Buffer,
    len: usize,
}

impl FileBody {
    /// The `len` bytes of `file` from its start, read into buffers taken
    /// from `budget`.
    pub fn new(file: Arc<std::fs::File>, len: u64, budget: Budget) -> Self {
        FileBody {
            file,
            offset: 0,
            unread: len,
            unsent: len,
            reading: None,
            pool: Arc::default(),
            budget,
            spare_made: false,
        }
    }

    fn pool(&self) -> MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A buffer to read into: one come back, or a new one within the
    /// budget, or the spare if it was not made yet.
    fn buffer(&mut self) -> Option<Buffer> {
        if let Some(buf) = self.pool().kept.pop() {
            return Some(buf);
        }
        if let Some(share) = self.budget.take(READ_SIZE) {
            return Some(Buffer::new(vec![0; READ_SIZE], Some(share)));
        }
        if self.spare_made {
            return None;
        }
        self.spare_made = true;
        Some(Buffer::new(vec![0; SPARE_SIZE], None))
    }

    /// Starts reading the next bytes into `buf`, as many as it holds.
    fn read_into(&mut self, mut buf: Buffer) {
        let len = usize::try_from(self.unread).map_or(buf.bytes.len(), |n| n.min(buf.bytes.len()));
        let (file, offset) = (Arc::clone(&self.file), self.offset);
        self.offset += len as u64;
        self.unread -= len as u64;
        self.reading = Some(tokio::task::spawn_blocking(move || {
            file.read_exact_at(&mut buf.bytes[..len], offset)
                .map_err(|e| {
                    if e.kind() == io::ErrorKind::UnexpectedEof {
                        io::Error::new(e.kind(), "spool file is shorter than the body it held")
                    } else {
                        e
                    }
                })?;
            Ok(Filled { buf, len })
        }));
    }

    /// Starts the next read if there is one and a buffer for it; `false`
    /// when a read is due but must wait for a buffer.
    fn read_next(&mut self) -> bool {
        if self.unread == 0 || self.reading.is_some() {
            return true;
        }
        match self.buffer() {
            Some(buf) => {
                self.read_into(buf);
                true
            }
            None => false,
        }
    }
}

impl Body for FileBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if !self.read_next() {
            self.pool().waiting = Some(cx.waker().clone());
            // A buffer may have come back before the waker was left.
            if !self.read_next() {
                return Poll::Pending;
            }
        }
        let Some(reading) = self.reading.as_mut() else {
            return Poll::Ready(None);
        };
        let done = ready!(Pin::new(reading).poll(cx));
        self.reading = None;
        let filled = done.map_err(io::Error::other)??;
        self.unsent -= filled.len as u64;
        // Read ahead while this one is sent, if a buffer is there.
        self.read_next();
        let back = Returned {
            filled,
            pool: Arc::downgrade(&self.pool),
        };
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_owner(back)))))
    }

    fn is_end_stream(&self) -> bool {
        self.unsent == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.unsent)
    }
}

/// The bytes of a frame, whose buffer goes back to its body's pool when
/// the connection is done with them (if the body is still there).
struct Returned {
    filled: Filled,
    pool: Weak<Mutex<Pool>>,
}

impl AsRef<[u8]> for Returned {
    fn as_ref(&self) -> &[u8] {
        &self.filled.buf.bytes[..self.filled.len]
    }
}

impl Drop for Returned {
    fn drop(&mut self) {
        let Some(pool) = self.pool.upgrade() else {
            return;
        };
        let waiting = {
            let mut pool = pool.lock().unwrap_or_else(|e| e.into_inner());
            if pool.kept.len() < KEPT_BUFFERS {
                let buf = std::mem::replace(&mut self.filled.buf, Buffer::new(Vec::new(), None));
                pool.kept.push(buf);
            }
            pool.waiting.take()
        };
        if let Some(waker) = waiting {
            waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::io::Write as _;

    fn file_with(bytes: &[u8]) -> Arc<std::fs::File> {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        Arc::new(f)
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    fn unbounded() -> Budget {
        Budget::new(Arc::default(), u64::MAX)
    }

    /// Within a budget of two buffers, or none at all (the spare only),
    /// the body streams whole, never holds more than the budget, and gives
    /// everything back.
    #[tokio::test]
    async fn buffers_stay_within_the_budget() {
        use crate::body::SpoolUsage;
        let len = 7 * READ_SIZE + 11;
        let want = pattern(len);
        for total in [2 * READ_SIZE as u64, 0] {
            let usage = Arc::new(SpoolUsage::default());
            let budget = Budget::new(Arc::clone(&usage), total);
            let mut body = FileBody::new(file_with(&want), len as u64, budget);
            let mut got = Vec::new();
            while let Some(frame) = body.frame().await {
                got.extend_from_slice(&frame.unwrap().into_data().unwrap());
                assert!(usage.memory() <= total);
            }
            assert!(got == want, "budget {total}");
            assert!(usage.peak() <= total);
            drop(body);
            assert_eq!(usage.memory(), 0, "given back");
        }
    }

    /// With the budget spent and its spare held by the connection, the
    /// body waits, and goes on once the connection gives the spare back.
    #[tokio::test]
    async fn a_body_with_no_buffer_waits_for_one_to_come_back() {
        let want = pattern(3 * SPARE_SIZE);
        let budget = Budget::new(Arc::default(), 0);
        let mut body = FileBody::new(file_with(&want), want.len() as u64, budget);
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(first.len(), SPARE_SIZE);
        tokio::select! {
            biased;
            _ = body.frame() => panic!("no buffer to read into"),
            _ = std::future::ready(()) => {}
        }
        let mut got = first.to_vec();
        drop(first);
        while let Some(frame) = body.frame().await {
            got.extend_from_slice(&frame.unwrap().into_data().unwrap());
        }
        assert!(got == want);
    }

    /// Frames hold the file's bytes in order, whatever the length against
    /// the read size, even while earlier frames are still held (their
    /// buffers are not reused under them).
    #[tokio::test]
    async fn streams_the_files_bytes_while_frames_are_held() {
        for len in [
            1,
            READ_SIZE - 1,
            READ_SIZE,
            READ_SIZE + 1,
            3 * READ_SIZE + 17,
        ] {
            let want = pattern(len);
            let mut body = FileBody::new(file_with(&want), len as u64, unbounded());
            assert_eq!(body.size_hint().exact(), Some(len as u64));
            let mut frames = Vec::new();
            while let Some(frame) = body.frame().await {
                frames.push(frame.unwrap().into_data().unwrap());
            }
            assert!(body.is_end_stream());
            assert_eq!(frames.concat(), want, "length {len}");
        }
    }

    /// Buffers come back once a frame is dropped, and what is read into
    /// them again is the new bytes only.
    #[tokio::test]
    async fn buffers_come_back_and_are_read_into_afresh() {
        let len = 5 * READ_SIZE + 3;
        let want = pattern(len);
        let mut body = FileBody::new(file_with(&want), len as u64, unbounded());
        let mut got = Vec::new();
        while let Some(frame) = body.frame().await {
            got.extend_from_slice(&frame.unwrap().into_data().unwrap());
        }
        assert_eq!(got, want);
        assert!(
            !body.pool.lock().unwrap().kept.is_empty(),
            "buffers were returned"
        );
    }

    /// A body made again starts from the file's start, whatever an earlier
    /// one read.
    #[tokio::test]
    async fn each_body_reads_from_the_start() {
        let want = pattern(2 * READ_SIZE + 5);
        let file = file_with(&want);
        let mut first = FileBody::new(Arc::clone(&file), want.len() as u64, unbounded());
        let _ = first.frame().await.unwrap().unwrap();
        let again = FileBody::new(file, want.len() as u64, unbounded());
        let out = again.collect().await.unwrap().to_bytes();
        assert_eq!(&out[..], &want[..]);
    }

    #[tokio::test]
    async fn a_file_shorter_than_the_body_is_an_error() {
        let body = FileBody::new(file_with(b"short"), 10, unbounded());
        let e = body.collect().await.err().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }
}
