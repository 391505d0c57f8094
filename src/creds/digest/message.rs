//! The body kept in memory for a credential that signs the whole message
//! at once (jws-detached: ring's RSA-PSS and ECDSA take the message, not a
//! digest), bounded by the smallest limit any such credential set.

use bytes::Bytes;

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
}

impl MessageCopy {
    pub(super) fn new(limit: u64, owner: &str, declared: Option<u64>) -> MessageCopy {
        MessageCopy {
            limit,
            owner: owner.to_string(),
            declared,
            bytes: Vec::new(),
            over: false,
        }
    }

    /// Another credential asks too: the smaller limit holds, with its owner.
    pub(super) fn bound(&mut self, limit: u64, owner: &str) {
        if limit < self.limit {
            self.limit = limit;
            self.owner = owner.to_string();
        }
    }

    /// The limit and the credential that set it.
    pub(super) fn limit(&self) -> (u64, &str) {
        (self.limit, self.owner.as_str())
    }

    pub(super) fn push(&mut self, chunk: &[u8]) {
        if self.over || (self.bytes.len() + chunk.len()) as u64 > self.limit {
            self.over = true;
            self.bytes = Vec::new();
            return;
        }
        if self.bytes.capacity() == 0 {
            let exact = self.declared.filter(|d| *d <= self.limit).unwrap_or(0);
            self.bytes
                .reserve_exact(usize::try_from(exact).unwrap_or(0).max(chunk.len()));
        }
        self.bytes.extend_from_slice(chunk);
    }

    /// The body, unless it went past the limit.
    pub(super) fn into_bytes(self) -> Option<Bytes> {
        (!self.over).then(|| Bytes::from(self.bytes))
    }

    #[cfg(test)]
    pub(super) fn capacity(&self) -> usize {
        self.bytes.capacity()
    }
}
