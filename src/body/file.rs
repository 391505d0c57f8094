//! A body that streams a spooled temp file back out: large positioned reads
//! on a blocking thread, the next one started while the last is sent, into
//! buffers that come back to the body once the upstream connection has
//! written them (so they are zeroed once, when first made, not per read).
//! Each body reads at its own offset: any number of them, made one after
//! the other for a request sent again, read the same file afresh.

use std::future::Future;
use std::io;
use std::os::unix::fs::FileExt as _;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::task::JoinHandle;

/// Bytes per read, and so per frame sent.
const READ_SIZE: usize = 128 << 10;

/// Buffers kept for reuse: one being read into, the ones the connection
/// still holds come back here (it holds few: hyper buffers about 400 KiB).
const KEPT_BUFFERS: usize = 4;

type Pool = Mutex<Vec<Vec<u8>>>;

pub struct FileBody {
    file: Arc<std::fs::File>,
    /// Where the next read starts.
    offset: u64,
    /// Bytes not yet read (or being read).
    unread: u64,
    /// Bytes not yet handed out.
    unsent: u64,
    reading: Option<JoinHandle<io::Result<Filled>>>,
    pool: Arc<Pool>,
}

/// A buffer holding `len` bytes of body at its start; `len` up to its
/// length, which stays `READ_SIZE` (all initialized) for its next read.
struct Filled {
    buf: Vec<u8>,
    len: usize,
}

impl FileBody {
    /// The `len` bytes of `file` from its start.
    pub fn new(file: Arc<std::fs::File>, len: u64) -> Self {
        FileBody {
            file,
            offset: 0,
            unread: len,
            unsent: len,
            reading: None,
            pool: Arc::default(),
        }
    }

    /// Starts reading the next `READ_SIZE` bytes, if any are left.
    fn read_next(&mut self) {
        if self.unread == 0 {
            return;
        }
        let len = usize::try_from(self.unread).map_or(READ_SIZE, |n| n.min(READ_SIZE));
        let mut buf = self
            .pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_else(|| vec![0; READ_SIZE]);
        let (file, offset) = (Arc::clone(&self.file), self.offset);
        self.offset += len as u64;
        self.unread -= len as u64;
        self.reading = Some(tokio::task::spawn_blocking(move || {
            file.read_exact_at(&mut buf[..len], offset).map_err(|e| {
                if e.kind() == io::ErrorKind::UnexpectedEof {
                    io::Error::new(e.kind(), "spool file is shorter than the body it held")
                } else {
                    e
                }
            })?;
            Ok(Filled { buf, len })
        }));
    }
}

impl Body for FileBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if self.reading.is_none() {
            self.read_next();
        }
        let Some(reading) = self.reading.as_mut() else {
            return Poll::Ready(None);
        };
        let done = ready!(Pin::new(reading).poll(cx));
        self.reading = None;
        let filled = done.map_err(io::Error::other)??;
        self.unsent -= filled.len as u64;
        // Read ahead while this one is sent.
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
    pool: Weak<Pool>,
}

impl AsRef<[u8]> for Returned {
    fn as_ref(&self) -> &[u8] {
        &self.filled.buf[..self.filled.len]
    }
}

impl Drop for Returned {
    fn drop(&mut self) {
        let Some(pool) = self.pool.upgrade() else {
            return;
        };
        let mut pool = pool.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < KEPT_BUFFERS {
            pool.push(std::mem::take(&mut self.filled.buf));
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
            let mut body = FileBody::new(file_with(&want), len as u64);
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
        let mut body = FileBody::new(file_with(&want), len as u64);
        let mut got = Vec::new();
        while let Some(frame) = body.frame().await {
            got.extend_from_slice(&frame.unwrap().into_data().unwrap());
        }
        assert_eq!(got, want);
        assert!(
            !body.pool.lock().unwrap().is_empty(),
            "buffers were returned"
        );
    }

    /// A body made again starts from the file's start, whatever an earlier
    /// one read.
    #[tokio::test]
    async fn each_body_reads_from_the_start() {
        let want = pattern(2 * READ_SIZE + 5);
        let file = file_with(&want);
        let mut first = FileBody::new(Arc::clone(&file), want.len() as u64);
        let _ = first.frame().await.unwrap().unwrap();
        let again = FileBody::new(file, want.len() as u64);
        let out = again.collect().await.unwrap().to_bytes();
        assert_eq!(&out[..], &want[..]);
    }

    #[tokio::test]
    async fn a_file_shorter_than_the_body_is_an_error() {
        let body = FileBody::new(file_with(b"short"), 10);
        let e = body.collect().await.err().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }
}
