//! The body kept in memory for a credential that signs the whole message
//! at once (jws-detached: ring's RSA-PSS and ECDSA take the message, not a
//! digest), bounded by the smallest limit any such credential set, and
//! taking what it allocates from the process-wide memory budget (the one
//! the spool takes from), so that many such requests in flight hold at
//! most that budget. It cannot go to disk as the spool does: past the
//! budget the request is refused (`MemorySpent`).

use bytes::Bytes;

use crate::body::SpoolHold;

/// The first allocation when the body's length is unknown.
const FIRST_CAPACITY: usize = 16 << 10;

/// The body kept in memory for a credential that signs it whole.
pub(super) struct MessageCopy {
    /// At most this many bytes; the spool refuses a larger body (413)
    /// before any byte past it is read.
    limit: u64,
    /// The credential that asked, for the 413's reason.
    owner: String,
    /// The declared length, when it is within `limit`: reserved at the
    /// first chunk, so the copy never grows by doubling.
    declared: Option<u64>,
    bytes: Vec<u8>,
    /// A chunk went past `limit` (the spool should have refused it first).
    over: bool,
    /// This request's share of the memory budget and the budget's size;
    /// `None` for a copy nothing counts (tests, `BodyHash` used alone).
    budget: Option<(SpoolHold, u64)>,
    /// The budget had no room for the copy: nothing is kept.
    spent: Option<MemorySpent>,
}

/// The memory budget could not hold the body a credential signs whole.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the request body cannot be held in memory to be signed: credential `{credential}` signs the whole body, which cannot go to disk, and proxy.spool_memory_total ({budget} bytes) is spent by the requests in flight; try again shortly, or raise proxy.spool_memory_total")]
pub struct MemorySpent {
    pub credential: String,
    pub budget: u64,
}

impl MessageCopy {
    pub(super) fn new(limit: u64, owner: &str, declared: Option<u64>) -> MessageCopy {
        MessageCopy {
            limit,
            owner: owner.to_string(),
            declared,
            bytes: Vec::new(),
            over: false,
            budget: None,
            spent: None,
        }
    }

    /// Another credential asks too: the smaller limit holds, with its owner.
    pub(super) fn bound(&mut self, limit: u64, owner: &str) {
        if limit < self.limit {
            self.limit = limit;
            self.owner = owner.to_string();
        }
    }

    /// From now on the copy takes what it allocates through `hold`, within
    /// `total` bytes across all requests.
    pub(super) fn budget(&mut self, hold: SpoolHold, total: u64) {
        self.budget = Some((hold, total));
    }

    /// The limit and the credential that set it.
    pub(super) fn limit(&self) -> (u64, &str) {
        (self.limit, self.owner.as_str())
    }

    /// Why the copy was given up, when the budget had no room for it.
    pub(super) fn spent(&self) -> Option<&MemorySpent> {
        self.spent.as_ref()
    }

    pub(super) fn push(&mut self, chunk: &[u8]) {
        if self.over || self.spent.is_some() {
            return;
        }
        let need = self.bytes.len() + chunk.len();
        if need as u64 > self.limit {
            self.over = true;
            self.give_up();
            return;
        }
        let capacity = self.bytes.capacity();
        if need > capacity {
            // The declared length at once (the body will need all of it: if
            // the budget cannot hold it, better refused now than half-way),
            // else doubling within the limit, else just enough.
            let limit = usize::try_from(self.limit).unwrap_or(usize::MAX);
            let declared = self
                .declared
                .and_then(|d| usize::try_from(d).ok())
                .filter(|d| capacity == 0 && *d <= limit);
            let targets = match declared {
                Some(d) => [d.max(need), d.max(need)],
                None => [
                    (capacity * 2).max(FIRST_CAPACITY).min(limit).max(need),
                    need,
                ],
            };
            let Some(target) = targets
                .into_iter()
                .find(|t| self.take((t - capacity) as u64))
            else {
                self.refuse();
                return;
            };
            self.bytes.reserve_exact(target - self.bytes.len());
        }
        self.bytes.extend_from_slice(chunk);
    }

    /// Takes `n` more bytes from the budget, if there is one with room.
    fn take(&mut self, n: u64) -> bool {
        match &mut self.budget {
            Some((hold, total)) => hold.grow_memory(n, *total),
            None => true,
        }
    }

    /// The budget is spent: the copy is dropped, its share given back, and
    /// the refusal counted.
    fn refuse(&mut self) {
        if let Some((hold, total)) = &self.budget {
            hold.count_refusal();
            self.spent = Some(MemorySpent {
                credential: self.owner.clone(),
                budget: *total,
            });
        }
        self.give_up();
    }

    fn give_up(&mut self) {
        self.bytes = Vec::new();
        self.budget = None;
    }

    /// The body, unless it went past the limit or the budget. What it
    /// holds of the budget is given back when the last clone is dropped.
    pub(super) fn into_bytes(self) -> Option<Bytes> {
        if self.over || self.spent.is_some() {
            return None;
        }
        Some(match self.budget {
            Some((hold, _)) => Bytes::from_owner(Held {
                bytes: self.bytes,
                _hold: hold,
            }),
            None => Bytes::from(self.bytes),
        })
    }

    #[cfg(test)]
    pub(super) fn capacity(&self) -> usize {
        self.bytes.capacity()
    }
}

/// The copy with its share of the budget, for as long as it is used.
struct Held {
    bytes: Vec<u8>,
    _hold: SpoolHold,
}

impl AsRef<[u8]> for Held {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}
