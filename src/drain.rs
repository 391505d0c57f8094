//! Graceful shutdown: a signal every connection watches, and a count of the
//! connections (and tunnels) still open, so shutdown can wait for them.

use std::future::Future;
use std::sync::Mutex;
use std::task::{Poll, Waker};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

/// Held by the app: starts the drain and waits for it.
pub struct Drain {
    signal: watch::Sender<bool>,
    /// The original guard; connections hold clones. Taken at shutdown.
    guard: Mutex<Option<mpsc::Sender<()>>>,
    done: tokio::sync::Mutex<mpsc::Receiver<()>>,
}

/// Held by every open connection: sees the signal, and keeps shutdown
/// waiting while it lives.
#[derive(Clone, Debug)]
pub struct DrainWatch {
    signal: watch::Receiver<bool>,
    _guard: mpsc::Sender<()>,
}

impl Default for Drain {
    fn default() -> Self {
        let (guard, done) = mpsc::channel(1);
        Drain {
            signal: watch::channel(false).0,
            guard: Mutex::new(Some(guard)),
            done: tokio::sync::Mutex::new(done),
        }
    }
}

impl Drain {
    /// A watch for a new connection, or `None` once draining has begun.
    pub fn watch(&self) -> Option<DrainWatch> {
        let guard = self
            .guard
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()?;
        Some(DrainWatch {
            signal: self.signal.subscribe(),
            _guard: guard,
        })
    }

    /// Tells every connection to finish its request and close, then waits
    /// for all of them, up to `timeout`. Returns whether all finished.
    pub async fn drain(&self, timeout: Duration) -> bool {
        self.guard.lock().unwrap_or_else(|p| p.into_inner()).take();
        self.signal.send_replace(true);
        let mut done = self.done.lock().await;
        tokio::time::timeout(timeout, done.recv()).await.is_ok()
    }
}

impl DrainWatch {
    /// Resolves once shutdown has begun (or the app is gone). A connection
    /// polls it beside the connection on every wake-up of its task, several
    /// times a request: once its waker is registered, a poll only reads the
    /// signal's version (an atomic load), where the watch's own future takes
    /// its waiters' lock on every poll.
    pub async fn draining(&mut self) {
        let mut probe = self.signal.clone();
        if *probe.borrow_and_update() {
            return;
        }
        let mut changed = std::pin::pin!(self.signal.wait_for(|d| *d));
        let mut registered: Option<Waker> = None;
        std::future::poll_fn(|cx| {
            let quiet = matches!(probe.has_changed(), Ok(false));
            if quiet && registered.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                return Poll::Pending;
            }
            match changed.as_mut().poll(cx) {
                Poll::Ready(_) => Poll::Ready(()),
                Poll::Pending => {
                    registered = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Polled again and again before shutdown (each poll after the first
    /// only reads the signal), it still resolves once shutdown begins.
    #[tokio::test]
    async fn draining_resolves_once_shutdown_begins_however_often_it_was_polled() {
        let drain = Drain::default();
        let mut watch = drain.watch().expect("not draining yet");
        let (polled, mut polled_rx) = mpsc::channel(1);
        let waiting = tokio::spawn(async move {
            let mut draining = std::pin::pin!(watch.draining());
            for _ in 0..10 {
                let once = tokio::time::timeout(Duration::ZERO, draining.as_mut()).await;
                assert!(once.is_err(), "resolved before shutdown began");
                tokio::task::yield_now().await;
            }
            polled.send(()).await.unwrap();
            draining.await;
        });
        polled_rx.recv().await.unwrap();
        assert!(
            drain.drain(Duration::from_secs(30)).await,
            "the watch was let go"
        );
        waiting.await.unwrap();
    }

    #[tokio::test]
    async fn draining_resolves_at_once_when_shutdown_has_begun_or_the_app_is_gone() {
        let drain = Drain::default();
        let mut watch = drain.watch().unwrap();
        drain.signal.send_replace(true);
        watch.draining().await;
        let drain = Drain::default();
        let mut watch = drain.watch().unwrap();
        let waiting = tokio::spawn(async move { watch.draining().await });
        tokio::task::yield_now().await;
        drop(drain);
        waiting.await.unwrap();
    }
}
