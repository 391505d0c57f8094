//! What spooled request bodies hold across all requests: bytes in memory
//! (against a total budget) and bytes on disk. One `SpoolUsage` lives for
//! the whole process, above the snapshot, so a reload changes the budget's
//! size but never forgets what requests already hold. Each request holds
//! its share through a `SpoolHold`, which gives it back when dropped.
//! The buffers a body on disk is written from and read back into take
//! their memory from the same budget, each through a `Share` it carries
//! (`Budget::take`), so that what all spooled bodies hold together, kept
//! in memory or passing through buffers, stays within `spool_memory_total`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Debug, Default)]
pub struct SpoolUsage {
    memory: AtomicU64,
    disk: AtomicU64,
    /// Bodies sent to disk because the total budget was spent (a body over
    /// the per-request `spool_memory` is not counted: that is its size).
    spilled: AtomicU64,
    /// Requests refused because the budget was spent and their memory
    /// could not go to disk (a body kept whole to be signed).
    refused: AtomicU64,
    /// The most bytes ever held in memory at once.
    peak: AtomicU64,
}

impl SpoolUsage {
    /// Bytes held in memory now, counted while bodies are being read.
    pub fn memory(&self) -> u64 {
        self.memory.load(Ordering::Relaxed)
    }

    /// Bytes held in spool files now.
    pub fn disk(&self) -> u64 {
        self.disk.load(Ordering::Relaxed)
    }

    /// How many bodies went to disk because the memory budget was spent.
    pub fn spilled(&self) -> u64 {
        self.spilled.load(Ordering::Relaxed)
    }

    /// How many requests were refused because the memory budget was spent.
    pub fn refusals(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// The most bytes held in memory at once since the process started:
    /// never more than the budget (at its largest, across reloads).
    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }

    /// A hold on nothing yet, for one request.
    pub fn hold(self: &Arc<Self>) -> SpoolHold {
        SpoolHold {
            usage: Arc::clone(self),
            memory: 0,
            disk: 0,
        }
    }

    /// Takes `n` bytes of memory if that keeps the total within `budget`.
    fn take_memory(&self, n: u64, budget: u64) -> bool {
        match self
            .memory
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|after| *after <= budget)
            }) {
            Ok(before) => {
                self.peak.fetch_max(before + n, Ordering::Relaxed);
                true
            }
            Err(_) => false,
        }
    }
}

/// The budget a spooled body's buffers take from: the process-wide usage
/// and the budget's size when the request came.
#[derive(Debug, Clone)]
pub struct Budget {
    usage: Arc<SpoolUsage>,
    total: u64,
}

impl Budget {
    pub fn new(usage: Arc<SpoolUsage>, total: u64) -> Budget {
        Budget { usage, total }
    }

    /// `n` bytes, if the total stays within the budget.
    pub fn take(&self, n: usize) -> Option<Share> {
        let n = n as u64;
        self.usage.take_memory(n, self.total).then(|| Share {
            usage: Arc::clone(&self.usage),
            n,
        })
    }
}

/// Bytes of the memory budget held by one buffer; given back when dropped.
#[derive(Debug)]
pub struct Share {
    usage: Arc<SpoolUsage>,
    n: u64,
}

impl Drop for Share {
    fn drop(&mut self) {
        self.usage.memory.fetch_sub(self.n, Ordering::AcqRel);
    }
}

/// One request's share of the spool; returned when dropped.
#[derive(Debug)]
pub struct SpoolHold {
    usage: Arc<SpoolUsage>,
    memory: u64,
    disk: u64,
}

impl SpoolHold {
    /// Grows this request's memory by `n` bytes if the total stays within
    /// `budget`; `false` (nothing taken) otherwise.
    pub fn grow_memory(&mut self, n: u64, budget: u64) -> bool {
        if !self.usage.take_memory(n, budget) {
            return false;
        }
        self.memory += n;
        true
    }

    /// This request's body moves to disk: its memory is given back. Counted
    /// as a spill if the budget, not the body's size, sent it there.
    pub fn to_disk(&mut self, for_budget: bool) {
        self.usage.memory.fetch_sub(self.memory, Ordering::AcqRel);
        self.memory = 0;
        if for_budget {
            self.usage.spilled.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// What this request holds in memory, moved to a `Share` (its body,
    /// about to be written to disk, is held until that write is done).
    pub fn memory_to_share(&mut self) -> Share {
        let n = std::mem::take(&mut self.memory);
        Share {
            usage: Arc::clone(&self.usage),
            n,
        }
    }

    pub fn grow_disk(&mut self, n: u64) {
        self.usage.disk.fetch_add(n, Ordering::Relaxed);
        self.disk += n;
    }

    pub fn memory(&self) -> u64 {
        self.memory
    }

    /// Memory this request needed could not be had, and cannot go to disk:
    /// the request is refused, and counted.
    pub fn count_refusal(&self) {
        self.usage.refused.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for SpoolHold {
    fn drop(&mut self) {
        self.usage.memory.fetch_sub(self.memory, Ordering::AcqRel);
        self.usage.disk.fetch_sub(self.disk, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn holds_are_given_back_when_dropped() {
        let usage = Arc::new(SpoolUsage::default());
        let mut a = usage.hold();
        assert!(a.grow_memory(600, 1000));
        let mut b = usage.hold();
        assert!(!b.grow_memory(500, 1000), "over the budget");
        assert!(b.grow_memory(400, 1000));
        assert_eq!(usage.memory(), 1000);
        b.to_disk(true);
        b.grow_disk(900);
        assert_eq!(
            (usage.memory(), usage.disk(), usage.spilled()),
            (600, 900, 1)
        );
        drop(a);
        b.count_refusal();
        drop(b);
        assert_eq!((usage.memory(), usage.disk()), (0, 0));
        assert_eq!((usage.spilled(), usage.refusals()), (1, 1));
    }

    /// Buffers take from the same budget and give back when dropped; a
    /// request's memory moved to a share is given back with the share.
    #[test]
    fn shares_count_in_the_same_budget() {
        let usage = Arc::new(SpoolUsage::default());
        let budget = Budget::new(Arc::clone(&usage), 1000);
        let mut hold = usage.hold();
        assert!(hold.grow_memory(300, 1000));
        let a = budget.take(600).expect("room");
        assert!(budget.take(200).is_none(), "over the budget");
        let head = hold.memory_to_share();
        hold.to_disk(false);
        assert_eq!((usage.memory(), hold.memory()), (900, 0));
        drop(head);
        assert_eq!(usage.memory(), 600);
        drop(a);
        drop(hold);
        assert_eq!((usage.memory(), usage.peak()), (0, 900));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever holds grow, in whatever order, memory never passes the
        /// budget, and everything is given back in the end.
        #[test]
        fn memory_never_passes_the_budget(
            budget in 0u64..10_000,
            steps in proptest::collection::vec((0usize..8, 0u64..3_000, any::<bool>()), 0..64),
        ) {
            let usage = Arc::new(SpoolUsage::default());
            let mut holds: Vec<SpoolHold> = (0..8).map(|_| usage.hold()).collect();
            for (i, n, spill) in steps {
                let before = usage.memory();
                let took = holds[i].grow_memory(n, budget);
                prop_assert_eq!(took, before + n <= budget);
                prop_assert!(usage.memory() <= budget);
                prop_assert!(usage.peak() <= budget);
                if spill {
                    holds[i].to_disk(false);
                    holds[i].grow_disk(n);
                }
                let held: u64 = holds.iter().map(SpoolHold::memory).sum();
                prop_assert_eq!(usage.memory(), held);
            }
            drop(holds);
            prop_assert_eq!((usage.memory(), usage.disk()), (0, 0));
        }
    }
}
