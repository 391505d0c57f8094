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

    /// A request at the gate, as a task, checked to be still waiting a
    /// minute (of the paused clock) later.
    async fn held_request(gate: &Gate) -> tokio::task::JoinHandle<()> {
        let request = tokio::spawn({
            let gate = gate.clone();
            async move { gate.pass().await }
        });
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!request.is_finished(), "passed a held gate");
        request
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_gate_keeps_requests_until_it_is_released() {
        let gate = Gate::new();
        gate.pass().await;
        // Twice: held again after a release, it holds again.
        for _ in 0..2 {
            gate.hold();
            let request = held_request(&gate).await;
            gate.release();
            tokio::time::timeout(Duration::from_secs(1), request)
                .await
                .expect("released")
                .unwrap();
            gate.pass().await;
        }
    }
}
