//! How many connections a listener serves at once. The accept loop takes a
//! place before it accepts, so connections past `max_connections` wait in
//! the kernel's accept queue and cost countersign no file descriptor; a
//! place is given back when its connection (and any tunnel it became) ends.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

const RECHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// The places of one listener.
#[derive(Debug, Default)]
pub(crate) struct Slots {
    open: AtomicUsize,
    freed: Notify,
}

/// One connection's place; an intercepted or opaque tunnel keeps the place
/// of the connection that sent its CONNECT.
#[derive(Debug)]
pub(crate) struct Slot(Arc<Slots>);

impl Slots {
    /// Connections holding a place now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Waits for a place under `max()` (read again when a place is given
    /// back, and each second, so a reload applies); `on_full` is called once if the listener is full. Only the
    /// accept loop takes places, so checking then adding does not race.
    pub async fn take(self: &Arc<Self>, max: impl Fn() -> usize, on_full: impl FnOnce()) -> Slot {
        let mut on_full = Some(on_full);
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if self.open() < max() {
                self.open.fetch_add(1, Ordering::AcqRel);
                return Slot(Arc::clone(self));
            }
            if let Some(f) = on_full.take() {
                f();
            }
            // Looked at again each second too: a reload may raise `max`.
            let _ = tokio::time::timeout(RECHECK, freed).await;
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
        self.0.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn past_the_limit_the_next_waits_until_one_is_given_back() {
        let slots = Arc::new(Slots::default());
        let a = slots.take(|| 2, || panic!("not full")).await;
        let _b = slots.take(|| 2, || panic!("not full")).await;
        let mut full = 0;
        let waited =
            tokio::time::timeout(Duration::from_secs(60), slots.take(|| 2, || full += 1)).await;
        assert!(waited.is_err(), "no place while two are open");
        assert_eq!(full, 1, "told once that the listener is full");
        let next = {
            let slots = Arc::clone(&slots);
            tokio::spawn(async move { slots.take(|| 2, || ()).await })
        };
        tokio::task::yield_now().await;
        assert!(!next.is_finished());
        drop(a);
        let _c = next.await.unwrap();
        assert_eq!(slots.open(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_raised_limit_applies_while_waiting() {
        let slots = Arc::new(Slots::default());
        let max = Arc::new(AtomicUsize::new(1));
        let _a = slots.take(|| max.load(Ordering::Relaxed), || ()).await;
        let next = {
            let (slots, max) = (Arc::clone(&slots), Arc::clone(&max));
            tokio::spawn(
                async move { slots.take(move || max.load(Ordering::Relaxed), || ()).await },
            )
        };
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!next.is_finished());
        max.store(2, Ordering::Relaxed);
        let _b = next.await.unwrap();
        assert_eq!(slots.open(), 2);
    }
}
