//! Spooling in memory, to disk and past the budget, with the observer
//! seeing every chunk in order.

use super::*;
use http_body_util::BodyExt;
use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A body of ready chunks, or of chunks the test sends one by one.
enum TestBody {
    Chunks(VecDeque<Bytes>),
    Channel(tokio::sync::mpsc::Receiver<Bytes>),
}

impl Body for TestBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let next = match &mut *self {
            TestBody::Chunks(c) => Poll::Ready(c.pop_front()),
            TestBody::Channel(rx) => rx.poll_recv(cx),
        };
        next.map(|c| c.map(|c| Ok(http_body::Frame::data(c))))
    }
}

fn chunked(parts: Vec<&'static [u8]>) -> TestBody {
    TestBody::Chunks(parts.into_iter().map(Bytes::from_static).collect())
}

fn limits(dir: &std::path::Path, memory: usize, max: u64) -> SpoolLimits {
    SpoolLimits {
        max_body: max,
        memory,
        memory_total: u64::MAX,
        dir: dir.to_path_buf(),
    }
}

fn usage() -> Arc<SpoolUsage> {
    Arc::new(SpoolUsage::default())
}

/// Collects what it sees; on a thread of its own once the body is on
/// disk, if `offload`.
struct Seen {
    bytes: Vec<u8>,
    offload: bool,
}

impl Observer for Seen {
    fn observe(&mut self, chunk: &[u8]) -> Result<(), BoxError> {
        self.bytes.extend_from_slice(chunk);
        Ok(())
    }

    fn offload(&self) -> bool {
        self.offload
    }
}

fn seen(offload: bool) -> Seen {
    Seen {
        bytes: Vec::new(),
        offload,
    }
}

#[tokio::test]
async fn small_bodies_stay_in_memory_and_are_observed_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut seen = Some(seen(true));
    let s = spool(
        chunked(vec![b"ab", b"cd"]),
        &limits(dir.path(), 16, 100),
        &usage(),
        &mut seen,
    )
    .await
    .unwrap();
    assert!(!s.is_on_disk());
    assert_eq!(seen.unwrap().bytes, b"abcd");
    let out = s.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&out[..], b"abcd");
}

/// Each received chunk may be a slice of a large read buffer; the spool
/// keeps a copy of the bytes, never the buffers they came from.
#[tokio::test]
async fn memory_holds_the_bytes_not_the_buffers_they_were_cut_from() {
    let dir = tempfile::tempdir().unwrap();
    let buffer = Bytes::from(vec![7u8; 64 * 1024]);
    let body = TestBody::Chunks((0..100).map(|i| buffer.slice(i..i + 1)).collect());
    let s = spool(
        body,
        &limits(dir.path(), 1024, 4096),
        &usage(),
        &mut Some(()),
    )
    .await
    .unwrap();
    let Kept::Memory(bytes) = &s.kept else {
        panic!("in memory")
    };
    assert_eq!(s.len(), 100);
    let range = buffer.as_ptr_range();
    assert!(!range.contains(&bytes.as_ptr()), "a copy, not a slice");
}

#[tokio::test]
async fn large_bodies_go_to_an_unnamed_file() {
    let dir = tempfile::tempdir().unwrap();
    let s = spool(
        chunked(vec![b"0123", b"4567", b"89"]),
        &limits(dir.path(), 5, 100),
        &usage(),
        &mut Some(()),
    )
    .await
    .unwrap();
    assert!(s.is_on_disk());
    assert_eq!(s.len(), 10);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    let out = s.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&out[..], b"0123456789");
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = spool(
        chunked(vec![b"0123", b"4567"]),
        &limits(dir.path(), 2, 6),
        &usage(),
        &mut Some(()),
    )
    .await
    .err()
    .unwrap();
    assert!(matches!(e, SpoolError::TooLarge { limit: 6 }));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// The bytes a body holds are counted while it is read, and given back
/// when what was sent upstream is dropped.
#[tokio::test]
async fn memory_is_counted_while_reading_and_given_back_after() {
    let dir = tempfile::tempdir().unwrap();
    let usage = usage();
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let reading = tokio::spawn({
        let (limits, usage) = (limits(dir.path(), 1 << 20, 1 << 20), Arc::clone(&usage));
        async move { spool(TestBody::Channel(rx), &limits, &usage, &mut Some(())).await }
    });
    tx.send(Bytes::from(vec![1u8; 1000])).await.unwrap();
    tx.send(Bytes::from(vec![2u8; 1000])).await.unwrap();
    for _ in 0..1000 {
        if usage.memory() >= 1000 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(usage.memory() >= 1000, "counted while reading");
    drop(tx);
    let s = reading.await.unwrap().unwrap();
    assert!(!s.is_on_disk());
    assert!(usage.memory() >= 2000);
    let out = s.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(out.len(), 2000);
    assert_eq!((usage.memory(), usage.disk()), (0, 0));
}

/// A body that fits its own `spool_memory` goes to disk when the total
/// budget is spent, and is counted there.
#[tokio::test]
async fn past_the_total_budget_bodies_go_to_disk() {
    let dir = tempfile::tempdir().unwrap();
    let usage = usage();
    let limits = SpoolLimits {
        memory_total: 100,
        ..limits(dir.path(), 80, 1000)
    };
    let first = spool(chunked(vec![&[0; 60]]), &limits, &usage, &mut Some(()))
        .await
        .unwrap();
    assert!(!first.is_on_disk());
    let second = spool(
        chunked(vec![&[1; 30], &[2; 30]]),
        &limits,
        &usage,
        &mut Some(()),
    )
    .await
    .unwrap();
    assert!(second.is_on_disk());
    // The first body holds what it allocated: up to its own limit.
    assert_eq!((usage.memory(), usage.disk(), usage.spilled()), (80, 60, 1));
    let out = second.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&out[..30], &[1; 30]);
    assert_eq!(&out[30..], &[2; 30]);
    assert_eq!((usage.memory(), usage.disk()), (80, 0));
    drop(first);
    assert_eq!(usage.memory(), 0);
}

/// Odd chunk sizes across the switch from memory to disk and across the
/// writer's batches: the observer, here or on a thread of its own, saw
/// the body's bytes in order, and the body sent (twice, as for a
/// request sent again) is the body received.
#[tokio::test]
async fn odd_chunks_past_memory_keep_the_exact_bytes_and_hash() {
    for offload in [false, true] {
        odd_chunks(offload).await;
    }
}

async fn odd_chunks(offload: bool) {
    let dir = tempfile::tempdir().unwrap();
    let sizes = [
        1, 999, 4096, 131_071, 1, 131_072, 131_073, 300_001, 17, 65_536,
    ];
    let mut sent = Vec::new();
    let mut chunks = VecDeque::new();
    for size in sizes {
        let chunk: Vec<u8> = (sent.len()..sent.len() + size)
            .map(|i| (i % 251) as u8)
            .collect();
        sent.extend_from_slice(&chunk);
        chunks.push_back(Bytes::from(chunk));
    }
    let usage = usage();
    let mut seen = Some(seen(offload));
    let s = spool(
        TestBody::Chunks(chunks),
        &limits(dir.path(), 5000, 1 << 30),
        &usage,
        &mut seen,
    )
    .await
    .unwrap();
    let seen = seen.expect("the observer, back");
    assert!(s.is_on_disk());
    assert_eq!(s.len(), sent.len() as u64);
    assert_eq!(usage.disk(), sent.len() as u64);
    assert!(seen.bytes == sent, "observed in order, once");
    for _ in 0..2 {
        let out = s.body().await.unwrap().collect().await.unwrap().to_bytes();
        assert!(out == sent, "the bytes sent are the bytes received");
    }
}
