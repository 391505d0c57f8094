//! A gate for test servers: while it is held, requests wait at `pass`
//! until it is released. The token server and the key issuer share it.

use std::sync::Arc;

use tokio::sync::watch;

/// Open until `hold`; `release` lets every waiting request through and
/// opens it again. Clones are the same gate.
#[derive(Clone)]
pub struct Gate {
    open: Arc<watch::Sender<bool>>,
}

impl Default for Gate {
    fn default() -> Self {
        Gate::new()
    }
}

impl Gate {
    pub fn new() -> Gate {
        Gate {
            open: Arc::new(watch::channel(true).0),
        }
    }

    /// Requests that reach `pass` from now on wait until `release`.
    pub fn hold(&self) {
        self.open.send_replace(false);
    }

    pub fn release(&self) {
        self.open.send_replace(true);
    }

    /// Returns at once while the gate is open; else when it is released.
    pub async fn pass(&self) {
        let mut open = self.open.subscribe();
        // The sender lives in `self`, so the channel cannot close here.
        let _ = open.wait_for(|open| *open).await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_held_gate_keeps_requests_until_it_is_released() {
        let gate = Gate::new();
        gate.pass().await;
        gate.hold();
        let waiting = tokio::spawn({
            let gate = gate.clone();
            async move { gate.pass().await }
        });
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!waiting.is_finished(), "passed a held gate");
        gate.release();
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("released")
            .unwrap();
        gate.pass().await;
        // Held again after a release: it holds again (no leftover permits).
        gate.hold();
        let again = tokio::spawn({
            let gate = gate.clone();
            async move { gate.pass().await }
        });
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!again.is_finished(), "passed a gate held a second time");
        gate.release();
        again.await.unwrap();
    }
}
