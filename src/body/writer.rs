//! The spool file of a body too large for memory, written in batches: the
//! received chunks are gathered into a large buffer, and each full buffer
//! is written with one call on a blocking thread while the next one fills
//! (the runtime worker waits for a write only when `IN_FLIGHT` are still
//! under way as the next batch fills). So the file sees one write, and the
//! runtime one trip to a blocking thread, per batch rather than per chunk.
//! When the body's hashes run on a thread of their own (`Offload`), each
//! batch is handed to them too, and freed once both are done with it.
//!
//! Every batch buffer takes its `BATCH` bytes from the memory budget
//! (`spool_memory_total`). A body holds the buffer it fills and, while
//! their writes or hashes run, the ones before it: the writes under way
//! (`IN_FLIGHT`) are of the last two batches, which are also the ones
//! queued to be hashed (`offload::QUEUED`), and the job hashes the one
//! before them: 4 x 128 KiB at most, an upload stalled on the app one. A written buffer is freed, not kept. When the budget
//! has no room for a new buffer, the body goes on without one: each
//! received chunk is hashed and written as it came, one at a time, holding
//! nothing but the chunk (which the connection's read buffer holds anyway).

use std::collections::VecDeque;
use std::io;
use std::os::unix::fs::FileExt as _;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use tokio::task::JoinHandle;

use super::budget::Budget;
use super::buffer::Buffer;
use super::offload::{Observer, Offload};

/// Bytes gathered before a write: one write call (and one trip to a
/// blocking thread) per batch.
pub(super) const BATCH: usize = 128 << 10;

/// Batches being written at once, at most, besides the one filling.
const IN_FLIGHT: usize = 2;

pub(super) struct SpoolWriter<O> {
    file: Arc<std::fs::File>,
    /// The batch filling, with its share of the budget; `None` between
    /// batches.
    filling: Option<Buffer>,
    /// Where the next batch goes in the file.
    offset: u64,
    /// Writes under way, oldest first: each batch is written at its own
    /// offset, so the worker goes on gathering while up to `IN_FLIGHT` of
    /// them wait for a blocking thread.
    writing: VecDeque<JoinHandle<io::Result<()>>>,
    budget: Budget,
    /// The observer of what follows the head, on a thread of its own.
    offload: Option<Offload<O>>,
}

impl<O: Observer> SpoolWriter<O> {
    /// A new owner-only, unnamed file in `dir`, starting with `head` (which
    /// `offload`, if any, has already seen). Batch buffers take from
    /// `budget`.
    pub(super) async fn create(
        dir: &Path,
        head: Buffer,
        budget: Budget,
        offload: Option<Offload<O>>,
    ) -> io::Result<Self> {
        let dir = dir.to_path_buf();
        let file = run(move || open_unnamed(&dir)).await?;
        let mut writer = SpoolWriter {
            file: Arc::new(file),
            filling: None,
            offset: 0,
            writing: VecDeque::new(),
            budget,
            offload,
        };
        if !head.bytes.is_empty() {
            writer.write(Bytes::from_owner(head)).await?;
        }
        Ok(writer)
    }

    /// Adds `chunk` to the body: gathered, and written once a batch is
    /// full; or, with no room in the budget for a batch, written as it is.
    pub(super) async fn push(&mut self, chunk: Bytes) -> io::Result<()> {
        let mut rest = &chunk[..];
        while !rest.is_empty() {
            let filling = match &mut self.filling {
                Some(f) => f,
                None => match self.budget.take(BATCH) {
                    Some(share) => self
                        .filling
                        .insert(Buffer::new(Vec::with_capacity(BATCH), Some(share))),
                    None => {
                        let from = chunk.len() - rest.len();
                        return self.one_by_one(chunk.slice(from..)).await;
                    }
                },
            };
            let take = rest.len().min(BATCH - filling.bytes.len());
            filling.bytes.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if filling.bytes.len() == BATCH {
                self.submit().await?;
            }
        }
        Ok(())
    }

    /// Writes what is gathered and waits for every write and hash: the
    /// file, whole, and the observer, back.
    pub(super) async fn finish(mut self) -> io::Result<(Arc<std::fs::File>, Option<O>)> {
        self.submit().await?;
        self.drain().await?;
        let observer = match self.offload.take() {
            Some(offload) => Some(offload.finish().await.map_err(io::Error::other)?),
            None => None,
        };
        Ok((self.file, observer))
    }

    /// Hands the batch filling, if any, to the observer and to a write.
    async fn submit(&mut self) -> io::Result<()> {
        let Some(full) = self.filling.take().filter(|f| !f.bytes.is_empty()) else {
            return Ok(());
        };
        let batch = Bytes::from_owner(full);
        if let Some(offload) = &self.offload {
            offload
                .push(batch.clone())
                .await
                .map_err(io::Error::other)?;
        }
        self.write(batch).await
    }

    /// With no buffer to gather into: `chunk` observed and written before
    /// the next is read, after everything before it.
    async fn one_by_one(&mut self, chunk: Bytes) -> io::Result<()> {
        self.drain().await?;
        if let Some(offload) = &self.offload {
            offload
                .observe_here(&chunk)
                .await
                .map_err(io::Error::other)?;
        }
        self.write(chunk).await?;
        self.drain().await
    }

    /// Waits for every write under way.
    async fn drain(&mut self) -> io::Result<()> {
        while let Some(job) = self.writing.pop_front() {
            job.await.map_err(io::Error::other)??;
        }
        Ok(())
    }

    /// Hands `batch` to a blocking thread, once fewer than `IN_FLIGHT`
    /// writes are under way.
    async fn write(&mut self, batch: Bytes) -> io::Result<()> {
        while self.writing.len() >= IN_FLIGHT {
            if let Some(job) = self.writing.pop_front() {
                job.await.map_err(io::Error::other)??;
            }
        }
        let (file, offset) = (Arc::clone(&self.file), self.offset);
        self.offset += batch.len() as u64;
        self.writing.push_back(tokio::task::spawn_blocking(move || {
            file.write_all_at(&batch, offset)
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

    use crate::body::budget::SpoolUsage;
    use crate::body::offload::Seen;

    /// Bytes that differ from one position to the next, so a byte written
    /// twice, dropped or moved shows.
    fn pattern(from: usize, len: usize) -> Vec<u8> {
        (from..from + len).map(|i| (i % 251) as u8).collect()
    }

    /// Writes `head` then chunks of `sizes`, with batches taken from a
    /// budget of `total` bytes; checks that the observer saw every byte
    /// after the head, in order, and that the budget was given back.
    /// Returns the file's bytes and what was sent.
    fn write(head: usize, sizes: &[usize], total: u64) -> (Vec<u8>, Vec<u8>) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let usage = Arc::new(SpoolUsage::default());
            let budget = Budget::new(Arc::clone(&usage), total);
            let sent_head = pattern(0, head);
            let head_buf = Buffer::new(sent_head.clone(), None);
            let offload = Some(Offload::new(Seen(Vec::new())));
            let mut writer = SpoolWriter::create(dir.path(), head_buf, budget, offload)
                .await
                .unwrap();
            let mut sent = sent_head;
            for size in sizes {
                let chunk = pattern(sent.len(), *size);
                sent.extend_from_slice(&chunk);
                writer.push(Bytes::from(chunk)).await.unwrap();
                assert!(usage.memory() <= total);
            }
            let (file, seen) = writer.finish().await.unwrap();
            assert!(seen.unwrap().0 == sent[head..], "observed after the head");
            assert!(usage.peak() <= total);
            assert_eq!(usage.memory(), 0, "every batch given back");
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
        // Room for every batch, for one at a time, and for none.
        for total in [u64::MAX, BATCH as u64, 0] {
            for (head, sizes) in cases {
                let (on_disk, sent) = write(*head, sizes, total);
                assert_eq!(on_disk.len(), sent.len(), "{head} {sizes:?} {total}");
                assert!(on_disk == sent, "{head} {sizes:?} {total}: bytes on disk");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Whatever the chunk sizes and the room in the budget, the file
        /// gets the bytes sent, each once, in order.
        #[test]
        fn odd_chunk_sizes_keep_the_exact_bytes(
            head in 0usize..1000,
            sizes in proptest::collection::vec(
                prop_oneof![1usize..64, 1usize..(3 * BATCH), (BATCH - 2)..(BATCH + 3)],
                0..10,
            ),
            total in prop_oneof![Just(u64::MAX), Just(BATCH as u64), Just(3 * BATCH as u64 / 2)],
        ) {
            let (on_disk, sent) = write(head, &sizes, total);
            prop_assert!(on_disk == sent);
        }
    }

    /// A spool file is owner-only, whatever the umask.
    #[tokio::test]
    async fn the_file_is_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let budget = Budget::new(Arc::default(), u64::MAX);
        let head = Buffer::new(b"x".to_vec(), None);
        let writer = SpoolWriter::<()>::create(dir.path(), head, budget, None)
            .await
            .unwrap();
        let (file, _) = writer.finish().await.unwrap();
        assert_eq!(file.metadata().unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "unnamed");
    }
}
