//! A buffer a spooled body is written from or read back into, with the
//! share of the memory budget it holds until it is freed.

use super::budget::Share;

pub(super) struct Buffer {
    pub(super) bytes: Vec<u8>,
    /// `None` for the one small buffer a body may use when the budget is
    /// spent, and for a buffer nothing counts (tests, `countersign sign`).
    _share: Option<Share>,
}

impl Buffer {
    pub(super) fn new(bytes: Vec<u8>, share: Option<Share>) -> Buffer {
        Buffer {
            bytes,
            _share: share,
        }
    }
}

impl AsRef<[u8]> for Buffer {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}
