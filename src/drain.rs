//! Graceful shutdown: a signal every connection watches, and a count of the
//! connections (and tunnels) still open, so shutdown can wait for them.

use std::sync::Mutex;
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
    /// Resolves once shutdown has begun.
    pub async fn draining(&mut self) {
        let _ = self.signal.wait_for(|d| *d).await;
    }
}
