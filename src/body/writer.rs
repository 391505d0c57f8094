//! The spool file of a body too large for memory, written in batches: the
//! received chunks are gathered into a large buffer, and each full buffer
//! is written with one call on a blocking thread while the next one fills
//! (the runtime worker waits for a write only when `IN_FLIGHT` are still
//! under way as the next batch fills). So the file sees one write, and the
//! runtime one trip to a blocking thread, per batch rather than per chunk.
//!
//! Not counted in the memory budget, so bounded by `BATCH`: a body holds
//! the buffer it fills and, while their writes run, the ones being
//! written. A written buffer is freed, not kept, so an upload stalled on
//! the app holds one buffer at most (as many bytes as the two 64 KiB write
//! buffers of the earlier spool file).

use std::collections::VecDeque;
use std::io;
use std::mem;
use std::os::unix::fs::FileExt as _;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use tokio::task::JoinHandle;

/// Bytes gathered before a write: one write call (and one trip to a
/// blocking thread) per batch.
pub(super) const BATCH: usize = 128 << 10;

/// Batches being written at once, at most, besides the one filling.
const IN_FLIGHT: usize = 2;

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

pub(super) struct SpoolWriter {
    file: Arc<std::fs::File>,
    filling: Vec<u8>,
    /// Where the next batch goes in the file.
    offset: u64,
    /// Writes under way, oldest first: each batch is written at its own
    /// offset, so the worker goes on gathering while up to `IN_FLIGHT` of
    /// them wait for a blocking thread.
    writing: VecDeque<JoinHandle<io::Result<()>>>,
}

impl SpoolWriter {
    /// A new owner-only, unnamed file in `dir`, starting with `head`.
    pub(super) async fn create(dir: &Path, head: Vec<u8>) -> io::Result<Self> {
        let dir = dir.to_path_buf();
        let file = run(move || open_unnamed(&dir)).await?;
        let mut writer = SpoolWriter {
            file: Arc::new(file),
            filling: Vec::new(),
            offset: 0,
            writing: VecDeque::new(),
        };
        if !head.is_empty() {
            writer.submit(Batch::Gathered(head)).await?;
        }
        Ok(writer)
    }

    /// Adds `chunk` to the body: gathered, and written once a batch is
    /// full. A chunk of a batch or more, arriving when nothing is
    /// gathered, is written as it is, without a copy.
    pub(super) async fn push(&mut self, chunk: Bytes) -> io::Result<()> {
        if self.filling.is_empty() && chunk.len() >= BATCH {
            return self.submit(Batch::Received(chunk)).await;
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
                self.submit(Batch::Gathered(full)).await?;
            }
        }
        Ok(())
    }

    /// Writes what is gathered and waits for every write: the file, whole.
    pub(super) async fn finish(mut self) -> io::Result<Arc<std::fs::File>> {
        if !self.filling.is_empty() {
            let last = mem::take(&mut self.filling);
            self.submit(Batch::Gathered(last)).await?;
        }
        while let Some(job) = self.writing.pop_front() {
            job.await.map_err(io::Error::other)??;
        }
        Ok(self.file)
    }

    /// Hands `batch` to a blocking thread, once fewer than `IN_FLIGHT`
    /// writes are under way.
    async fn submit(&mut self, batch: Batch) -> io::Result<()> {
        while self.writing.len() >= IN_FLIGHT {
            if let Some(job) = self.writing.pop_front() {
                job.await.map_err(io::Error::other)??;
            }
        }
        let (file, offset) = (Arc::clone(&self.file), self.offset);
        self.offset += batch.bytes().len() as u64;
        self.writing.push_back(tokio::task::spawn_blocking(move || {
            file.write_all_at(batch.bytes(), offset)
        }));
        Ok(())
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

    /// Bytes that differ from one position to the next, so a byte written
    /// twice, dropped or moved shows.
    fn pattern(from: usize, len: usize) -> Vec<u8> {
        (from..from + len).map(|i| (i % 251) as u8).collect()
    }

    /// Writes `head` then chunks of `sizes`; returns the file's bytes and
    /// what was sent.
    fn write(head: usize, sizes: &[usize]) -> (Vec<u8>, Vec<u8>) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let sent_head = pattern(0, head);
            let mut writer = SpoolWriter::create(dir.path(), sent_head.clone())
                .await
                .unwrap();
            let mut sent = sent_head;
            for size in sizes {
                let chunk = pattern(sent.len(), *size);
                sent.extend_from_slice(&chunk);
                writer.push(Bytes::from(chunk)).await.unwrap();
            }
            let file = writer.finish().await.unwrap();
            let mut on_disk = Vec::new();
            (&*file).rewind().unwrap();
            (&*file).read_to_end(&mut on_disk).unwrap();
            (on_disk, sent)
        })
    }

    /// Chunks just under, at and over a batch, and batches filled across
    /// chunks, land on disk exactly once each, in order.
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
            let (on_disk, sent) = write(*head, sizes);
            assert_eq!(on_disk.len(), sent.len(), "{head} {sizes:?}");
            assert!(on_disk == sent, "{head} {sizes:?}: bytes on disk");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Whatever the chunk sizes, the file gets the bytes sent, each
        /// once, in order.
        #[test]
        fn odd_chunk_sizes_keep_the_exact_bytes(
            head in 0usize..1000,
            sizes in proptest::collection::vec(
                prop_oneof![1usize..64, 1usize..(3 * BATCH), (BATCH - 2)..(BATCH + 3)],
                0..10,
            ),
        ) {
            let (on_disk, sent) = write(head, &sizes);
            prop_assert!(on_disk == sent);
        }
    }

    /// A spool file is owner-only, whatever the umask.
    #[tokio::test]
    async fn the_file_is_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let writer = SpoolWriter::create(dir.path(), b"x".to_vec())
            .await
            .unwrap();
        let file = writer.finish().await.unwrap();
        assert_eq!(file.metadata().unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "unnamed");
    }
}
