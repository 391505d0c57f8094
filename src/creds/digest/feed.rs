//! The body's hash as the spool's observer: each chunk is fed to it as the
//! body is read, and the body fails at once (`MemorySpent`) when the hash
//! had to give up the copy of the body a credential signs whole, so that
//! the app is answered then, not after sending the rest. Without such a
//! copy, the hashing cannot fail, and once the body goes to disk it runs on
//! a thread of its own while the rest is received.

use super::BodyHash;
use crate::body::{BoxError, Observer};

impl Observer for BodyHash {
    fn observe(&mut self, chunk: &[u8]) -> Result<(), BoxError> {
        self.update(chunk);
        match self.spent() {
            Some(spent) => Err(Box::new(spent.clone())),
            None => Ok(()),
        }
    }

    /// Worth a thread when there is hashing to do, and safe when no copy of
    /// the body is kept (the copy's budget can fail the body half-way).
    fn offload(&self) -> bool {
        self.message.is_none()
            && (self.md5.is_some()
                || self.sha256.is_some()
                || self.sha512.is_some()
                || !self.streams.is_empty())
    }
}
