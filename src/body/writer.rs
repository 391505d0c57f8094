//! The spool file of a body too large for memory, written in batches: the
//! runtime worker only gathers the received chunks into a large buffer;
//! each full buffer goes to a blocking thread that runs it through the
//! observer (the credential's hash) and writes it with one call, while the
//! next buffer fills. So the hash of a large body never holds up the
//! worker, and the file sees one write per batch, not one per chunk.
//!
//! Not counted in the memory budget, so bounded by `BATCH`: a body holds
//! the buffer it fills and, while its write runs, the one being written.
//! A written buffer is freed, not kept, so an upload stalled on the app
//! holds one buffer at most (as many bytes as the 64 KiB write buffers of
//! the earlier spool file did together).

use std::io::{self, Write as _};
use std::mem;
use std::path::Path;

use bytes::Bytes;
use tokio::task::JoinHandle;

/// Bytes gathered before a write: one write call (and one trip to a
/// blocking thread) per batch.
pub(super) const BATCH: usize = 128 << 10;

/// What sees every byte of a spooled body, in order (the credential's
/// running hashes). Owned, since past memory it runs on a blocking thread.
pub trait Observer: Send + 'static {
    fn observe(&mut self, chunk: &[u8]);
}

/// A batch to write: gathered here, or a received chunk large enough to be
/// written as it came (held no longer than its write).
enum Batch {
    Gathered(Vec<u8>),
    Received(Bytes),
}

impl Batch {
    fn bytes(&self) -> &[u8] {
        match self {
            Batch::Gathered(v) => v,
            Batch::Received(b) => b,
        }
    }
}

/// What the blocking thread works with, handed back when a batch is done.
struct Parts<O> {
    file: std::fs::File,
    observer: O,
}

enum State<O> {
    Idle(Parts<O>),
    Writing(JoinHandle<io::Result<Parts<O>>>),
    /// A write failed or its thread panicked; the error was returned.
    Failed,
}

pub(super) struct SpoolWriter<O> {
    filling: Vec<u8>,
    state: State<O>,
}

impl<O: Observer> SpoolWriter<O> {
    /// A new owner-only, unnamed file in `dir`, starting with `head` (bytes
    /// the observer has already seen).
    pub(super) async fn create(dir: &Path, observer: O, head: Vec<u8>) -> io::Result<Self> {
        let dir = dir.to_path_buf();
        let file = run(move || open_unnamed(&dir)).await?;
        let mut writer = SpoolWriter {
            filling: Vec::new(),
            state: State::Idle(Parts { file, observer }),
        };
        if !head.is_empty() {
            writer.submit(Batch::Gathered(head), false).await?;
        }
        Ok(writer)
    }

    /// Adds `chunk` to the body: gathered, and written (and observed) once
    /// a batch is full. A chunk of a batch or more, arriving when nothing is
    /// gathered, is written as it is, without a copy.
    pub(super) async fn push(&mut self, chunk: Bytes) -> io::Result<()> {
        if self.filling.is_empty() && chunk.len() >= BATCH {
            return self.submit(Batch::Received(chunk), true).await;
        }
        let mut rest = &chunk[..];
        while !rest.is_empty() {
            if self.filling.capacity() == 0 {
                self.filling = Vec::with_capacity(BATCH);
            }
            let take = rest.len().min(BATCH - self.filling.len());
            self.filling.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.filling.len() == BATCH {
                let full = mem::take(&mut self.filling);
                self.submit(Batch::Gathered(full), true).await?;
            }
        }
        Ok(())
    }

    /// Writes what is gathered and waits for every write: the file, whole,
    /// and the observer, having seen every byte.
    pub(super) async fn finish(mut self) -> io::Result<(std::fs::File, O)> {
        if !self.filling.is_empty() {
            let last = mem::take(&mut self.filling);
            self.submit(Batch::Gathered(last), true).await?;
        }
        let parts = self.idle().await?;
        Ok((parts.file, parts.observer))
    }

    /// Waits for the batch being written (its thread can then take the
    /// next) and hands `batch` over.
    async fn submit(&mut self, batch: Batch, observe: bool) -> io::Result<()> {
        let mut parts = self.idle().await?;
        self.state = State::Writing(tokio::task::spawn_blocking(move || {
            let bytes = batch.bytes();
            if observe {
                parts.observer.observe(bytes);
            }
            parts.file.write_all(bytes)?;
            Ok(parts)
        }));
        Ok(())
    }

    async fn idle(&mut self) -> io::Result<Parts<O>> {
        let parts = match mem::replace(&mut self.state, State::Failed) {
            State::Idle(parts) => parts,
            State::Writing(job) => job.await.map_err(io::Error::other)??,
            State::Failed => return Err(io::Error::other("an earlier spool write failed")),
        };
        Ok(parts)
    }
}

/// Runs `f` on a blocking thread.
async fn run<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(io::Error::other)?
}

fn open_unnamed(dir: &Path) -> io::Result<std::fs::File> {
    let file = tempfile::tempfile_in(dir)?;
    // O_TMPFILE takes the umask's mode (often 0644), and /proc/PID/fd
    // still opens a file without a name: only countersign may read it.
    use std::os::unix::fs::PermissionsExt as _;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::{Read as _, Seek as _};

    /// Every byte observed, in order.
    #[derive(Default)]
    struct Seen(Vec<u8>);

    impl Observer for Seen {
        fn observe(&mut self, chunk: &[u8]) {
            self.0.extend_from_slice(chunk);
        }
    }

    /// Bytes that differ from one position to the next, so a byte written
    /// twice, dropped or moved shows.
    fn pattern(from: usize, len: usize) -> Vec<u8> {
        (from..from + len).map(|i| (i % 251) as u8).collect()
    }

    /// Writes `head` then chunks of `sizes`; returns the file's bytes, what
    /// was observed, and what was sent.
    fn write(head: usize, sizes: &[usize]) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let sent_head = pattern(0, head);
            let mut writer = SpoolWriter::create(dir.path(), Seen::default(), sent_head.clone())
                .await
                .unwrap();
            let mut sent = sent_head;
            for size in sizes {
                let chunk = pattern(sent.len(), *size);
                sent.extend_from_slice(&chunk);
                writer.push(Bytes::from(chunk)).await.unwrap();
            }
            let (mut file, seen) = writer.finish().await.unwrap();
            file.rewind().unwrap();
            let mut on_disk = Vec::new();
            file.read_to_end(&mut on_disk).unwrap();
            (on_disk, seen.0, sent)
        })
    }

    /// Chunks just under, at and over a batch, and batches filled across
    /// chunks, land on disk exactly once each, in order; the observer sees
    /// every byte after the head (which it saw before), in order.
    #[test]
    fn batches_hold_the_exact_bytes_at_their_boundaries() {
        let cases: &[(usize, &[usize])] = &[
            (0, &[]),
            (5, &[]),
            (0, &[1]),
            (0, &[BATCH - 1, 1, BATCH]),
            (3, &[BATCH - 3, BATCH + 1, 2 * BATCH, 7]),
            (BATCH + 9, &[BATCH, BATCH - 1, 2, BATCH - 1]),
            (0, &[2 * BATCH + 1, 1, 3 * BATCH]),
        ];
        for (head, sizes) in cases {
            let (on_disk, seen, sent) = write(*head, sizes);
            assert_eq!(on_disk.len(), sent.len(), "{head} {sizes:?}");
            assert!(on_disk == sent, "{head} {sizes:?}: bytes on disk");
            assert!(seen == sent[*head..], "{head} {sizes:?}: bytes observed");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Whatever the chunk sizes, the file and the observer get the
        /// bytes sent, each once, in order.
        #[test]
        fn odd_chunk_sizes_keep_the_exact_bytes(
            head in 0usize..1000,
            sizes in proptest::collection::vec(
                prop_oneof![1usize..64, 1usize..(3 * BATCH), (BATCH - 2)..(BATCH + 3)],
                0..10,
            ),
        ) {
            let (on_disk, seen, sent) = write(head, &sizes);
            prop_assert!(on_disk == sent);
            prop_assert!(seen == sent[head..]);
        }
    }

    /// A spool file is owner-only, whatever the umask.
    #[tokio::test]
    async fn the_file_is_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let writer = SpoolWriter::create(dir.path(), Seen::default(), b"x".to_vec())
            .await
            .unwrap();
        let (file, _) = writer.finish().await.unwrap();
        assert_eq!(file.metadata().unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "unnamed");
    }
}
