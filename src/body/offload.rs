//! What sees a spooled body's bytes (the credentials' hashes), and running
//! it on a blocking thread once the body goes to disk, so that hashing a
//! large body overlaps receiving it instead of following it on the runtime
//! worker.
//!
//! The batches the spool writes are handed over in order; no thread waits
//! for them: a job runs on tokio's blocking pool while batches are queued
//! and ends when the queue is empty, so a stalled upload holds no thread.
//! The queue holds the spool's own batch buffers (already counted in the
//! memory budget), at most `QUEUED` of them. At most `JOBS` jobs run at
//! once across the process; past that an upload's batch is hashed on the
//! runtime worker, as a body in memory is.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::Notify;

use super::BoxError;

/// Sees every chunk of a spooled body, in order.
pub trait Observer: Send + 'static {
    /// The next chunk; an error fails the body at once.
    fn observe(&mut self, chunk: &[u8]) -> Result<(), BoxError>;

    /// Whether what is left may be observed on a blocking thread once the
    /// body goes to disk: worth it (real hashing to do) and safe (it cannot
    /// fail, so the body need not be stopped half-way).
    fn offload(&self) -> bool {
        false
    }
}

/// For tests: collects every chunk it sees.
#[cfg(test)]
pub(crate) struct Seen(pub(crate) Vec<u8>);

#[cfg(test)]
impl Observer for Seen {
    fn observe(&mut self, chunk: &[u8]) -> Result<(), BoxError> {
        self.0.extend_from_slice(chunk);
        Ok(())
    }
}

/// An observer that sees nothing.
impl Observer for () {
    fn observe(&mut self, _: &[u8]) -> Result<(), BoxError> {
        Ok(())
    }
}

/// Batches queued or being hashed for one upload, at most.
const QUEUED: usize = 2;

/// Hashing jobs running at once across the process, at most.
const JOBS: usize = 4;

static RUNNING: AtomicUsize = AtomicUsize::new(0);

/// Takes one of the `JOBS` places, if one is free.
fn take_place() -> bool {
    RUNNING
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < JOBS).then_some(n + 1)
        })
        .is_ok()
}

/// One upload's observer, with the batches it has not seen yet.
pub(super) struct Offload<O> {
    shared: Arc<Shared<O>>,
}

struct Shared<O> {
    state: Mutex<State<O>>,
    /// A batch was seen, or the job ended.
    progress: Notify,
}

struct State<O> {
    /// Here unless a job has it.
    observer: Option<O>,
    queue: VecDeque<Bytes>,
    /// A job runs (and has the observer).
    running: bool,
    /// A job ended without giving the observer back.
    lost: bool,
}

impl<O: Observer> Offload<O> {
    pub(super) fn new(observer: O) -> Offload<O> {
        Offload {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    observer: Some(observer),
                    queue: VecDeque::new(),
                    running: false,
                    lost: false,
                }),
                progress: Notify::new(),
            }),
        }
    }

    /// Hands over the next batch: queued for the running job (once fewer
    /// than `QUEUED` wait), or a job is started for it, or, with every
    /// place taken, it is observed here and now.
    pub(super) async fn push(&self, batch: Bytes) -> Result<(), BoxError> {
        loop {
            {
                let mut state = self.shared.lock();
                if !state.running {
                    // Not running: the queue is empty and the observer is
                    // here.
                    if !take_place() {
                        return self.here(state, &batch);
                    }
                    state.queue.push_back(batch);
                    state.running = true;
                    let observer = state.observer.take();
                    drop(state);
                    // Made before the job is handed over: a job dropped
                    // unrun (the runtime shutting down) still gives all
                    // back.
                    let end = End {
                        shared: Arc::clone(&self.shared),
                        observer,
                        done: false,
                    };
                    drop(tokio::task::spawn_blocking(move || run(end)));
                    return Ok(());
                }
                if state.queue.len() < QUEUED {
                    state.queue.push_back(batch);
                    return Ok(());
                }
            }
            self.shared.progress.notified().await;
        }
    }

    /// Observes `chunk` on this thread, after every batch handed over.
    pub(super) async fn observe_here(&self, chunk: &[u8]) -> Result<(), BoxError> {
        loop {
            {
                let state = self.shared.lock();
                if !state.running {
                    return self.here(state, chunk);
                }
            }
            self.shared.progress.notified().await;
        }
    }

    /// Observes `chunk` here; no job runs (`state` says so).
    fn here(&self, mut state: MutexGuard<'_, State<O>>, chunk: &[u8]) -> Result<(), BoxError> {
        if state.lost {
            return Err(lost());
        }
        let mut observer = state.observer.take().ok_or_else(lost)?;
        drop(state);
        let seen = observer.observe(chunk);
        self.shared.lock().observer = Some(observer);
        seen
    }

    /// Waits for every batch to be seen: the observer, back.
    pub(super) async fn finish(self) -> Result<O, BoxError> {
        loop {
            {
                let mut state = self.shared.lock();
                if !state.running {
                    if state.lost {
                        return Err(lost());
                    }
                    return state.observer.take().ok_or_else(lost);
                }
            }
            self.shared.progress.notified().await;
        }
    }
}

impl<O> Shared<O> {
    fn lock(&self) -> MutexGuard<'_, State<O>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn lost() -> BoxError {
    "the thread hashing the request body failed".into()
}

/// The job: sees queued batches in order until there are none, then gives
/// the observer and its place back. An observer that fails stops it; the
/// failure is kept for `finish` by not giving the observer back.
fn run<O: Observer>(mut end: End<O>) {
    let Some(mut observer) = end.observer.take() else {
        return;
    };
    let shared = Arc::clone(&end.shared);
    loop {
        let batch = {
            let mut state = shared.lock();
            match state.queue.pop_front() {
                Some(batch) => batch,
                None => {
                    // Under the same lock as the empty queue was seen: a
                    // batch pushed from now on starts a job of its own.
                    state.observer = Some(observer);
                    state.running = false;
                    end.done = true;
                    return;
                }
            }
        };
        if observer.observe(&batch).is_err() {
            return;
        }
        drop(batch);
        shared.progress.notify_one();
    }
}

/// Ends a job however it ends (a panic too, or dropped unrun): the
/// observer back if it is not lost, the place freed, the upload woken.
struct End<O> {
    shared: Arc<Shared<O>>,
    /// The observer, while the job has not started.
    observer: Option<O>,
    /// The job finished and gave the observer back.
    done: bool,
}

impl<O> Drop for End<O> {
    fn drop(&mut self) {
        if !self.done {
            let mut state = self.shared.lock();
            state.running = false;
            match self.observer.take() {
                Some(observer) => state.observer = Some(observer),
                None => {
                    state.lost = true;
                    state.queue.clear();
                }
            }
        }
        RUNNING.fetch_sub(1, Ordering::AcqRel);
        self.shared.progress.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Batches are seen once each, in order, whether queued for a job,
    /// handed to a new one, or seen in place when every place is taken.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batches_are_seen_in_order_by_every_path() {
        let uploads: Vec<_> = (0..3 * JOBS)
            .map(|u| {
                tokio::spawn(async move {
                    let offload = Offload::new(Seen(Vec::new()));
                    let mut sent = Vec::new();
                    for i in 0..64u32 {
                        let batch: Vec<u8> = (0..(i * 37 + u as u32) % 3000)
                            .map(|j| (i + j) as u8)
                            .collect();
                        sent.extend_from_slice(&batch);
                        offload.push(Bytes::from(batch)).await.unwrap();
                        if i % 16 == 0 {
                            tokio::task::yield_now().await;
                        }
                    }
                    let seen = offload.finish().await.unwrap();
                    assert!(seen.0 == sent, "upload {u}: bytes seen in order");
                })
            })
            .collect();
        for u in uploads {
            u.await.unwrap();
        }
        assert!(RUNNING.load(Ordering::Acquire) <= JOBS);
    }

    /// An observer that fails loses the body: `finish` says so.
    #[tokio::test]
    async fn a_failed_observer_fails_the_finish() {
        struct Fails;
        impl Observer for Fails {
            fn observe(&mut self, _: &[u8]) -> Result<(), BoxError> {
                Err("no".into())
            }
        }
        let offload = Offload::new(Fails);
        let pushed = offload.push(Bytes::from_static(b"x")).await;
        let finished = offload.finish().await;
        assert!(pushed.is_err() || finished.is_err());
    }
}
