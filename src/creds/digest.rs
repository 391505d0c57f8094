//! The body digests a route's credentials sign, computed in one pass while
//! the body is spooled: PayPay's MD5 over Content-Type ++ body, the
//! SHA-256 of the body that AWS SigV4 signs, the SHA-256 or SHA-512 of an
//! http-signature's `Content-Digest`, the streams an `hmac` credential
//! starts (a digest with its own prefix, or the HMAC itself, already fed
//! with what comes before the body in its string to sign), and for a
//! signature that needs the whole message at once (jws-detached: ring's
//! RSA-PSS and ECDSA take the message, not a digest) a bounded copy of the
//! body itself, counted in the process-wide memory budget. Each is made
//! only when a credential of the route asks for it.

mod feed;
mod message;
mod stream;

use bytes::Bytes;
use md5::{Digest as _, Md5};
use sha2::{Sha256, Sha512};

use crate::body::SpoolHold;
pub use message::MemorySpent;
use message::MessageCopy;
pub use stream::{Running, Stream};

/// The running hashes, fed chunk by chunk while the body is spooled.
#[derive(Default)]
pub struct BodyHash {
    md5: Option<Md5>,
    sha256: Option<Sha256>,
    message: Option<MessageCopy>,
    /// Keyed by what each credential named them (`NAME#mac`).
    streams: Vec<(String, Stream)>,
    sha512: Option<Sha512>,
    /// Asked for the body itself (its length), with no digest.
    spool: bool,
    len: u64,
}

impl BodyHash {
    /// Asks for the MD5 of `prefix` ++ body (PayPay's, whose prefix is the
    /// Content-Type). Only the first request counts: one route has at most
    /// one credential that signs it (`check` sees to it).
    pub fn want_md5(&mut self, prefix: &[u8]) {
        if self.md5.is_none() {
            let mut md5 = Md5::new();
            md5.update(prefix);
            self.md5 = Some(md5);
        }
    }

    /// Asks for the SHA-256 of the body.
    pub fn want_sha256(&mut self) {
        self.sha256.get_or_insert_with(Sha256::new);
    }

    /// Asks for the body itself, up to `limit` bytes, for credential
    /// `owner`; `declared` is the request's Content-Length, if any. Two such
    /// credentials on one route share the copy, bounded by the smaller
    /// limit.
    pub fn want_message(&mut self, limit: u64, owner: &str, declared: Option<u64>) {
        match &mut self.message {
            Some(m) => m.bound(limit, owner),
            None => self.message = Some(MessageCopy::new(limit, owner, declared)),
        }
    }

    /// The most bytes of body a credential keeps in memory, and which one
    /// set it: the spool must refuse a larger body.
    pub fn message_limit(&self) -> Option<(u64, &str)> {
        self.message.as_ref().map(MessageCopy::limit)
    }

    /// The copy of the body, if one is asked for, takes what it allocates
    /// through `hold`, within `total` bytes across all requests; past that
    /// it is given up and `spent` says so.
    pub fn budget_message(&mut self, hold: impl FnOnce() -> SpoolHold, total: u64) {
        if let Some(m) = &mut self.message {
            m.budget(hold(), total);
        }
    }

    /// Why the body cannot be signed whole: the memory budget had no room
    /// for its copy.
    pub fn spent(&self) -> Option<&MemorySpent> {
        self.message.as_ref().and_then(MessageCopy::spent)
    }

    /// Runs the body through `stream` too, handed back as `key` (which
    /// the credential makes its own: the names in a stack are distinct).
    pub fn want_stream(&mut self, key: String, stream: Stream) {
        self.streams.push((key, stream));
    }

    /// Asks for the SHA-512 of the body.
    pub fn want_sha512(&mut self) {
        self.sha512.get_or_insert_with(Sha512::new);
    }

    /// Asks for the body to be read whole before the request is signed,
    /// with no digest: its length (`Content-Length`) is then known, for a
    /// signature that covers it.
    pub fn want_length(&mut self) {
        self.spool = true;
    }

    /// Whether any credential asked for a digest, a stream, the body or its
    /// length (and so for the body).
    pub fn is_wanted(&self) -> bool {
        self.spool
            || self.md5.is_some()
            || self.sha256.is_some()
            || self.sha512.is_some()
            || self.message.is_some()
            || !self.streams.is_empty()
    }

    pub fn update(&mut self, chunk: &[u8]) {
        self.len += chunk.len() as u64;
        if let Some(m) = self.md5.as_mut() {
            m.update(chunk);
        }
        if let Some(s) = self.sha256.as_mut() {
            s.update(chunk);
        }
        if let Some(s) = self.sha512.as_mut() {
            s.update(chunk);
        }
        if let Some(m) = self.message.as_mut() {
            m.push(chunk);
        }
        for (_, s) in &mut self.streams {
            s.running.update(chunk);
        }
    }

    pub fn finish(self) -> BodyDigest {
        if self.len == 0 {
            return BodyDigest::Absent;
        }
        BodyDigest::Present(Digests {
            md5: self.md5.map(|m| m.finalize().into()),
            sha256: self.sha256.map(|s| s.finalize().into()),
            sha512: self.sha512.map(|s| s.finalize().into()),
            message: self.message.and_then(MessageCopy::into_bytes),
            streams: self.streams,
        })
    }
}

/// What the signers learned from the body: nothing (no body, or a
/// zero-length one), or the digests they asked for. Cheap to clone: the
/// kept body is shared.
#[derive(Debug, Clone)]
pub enum BodyDigest {
    Absent,
    Present(Digests),
}

#[derive(Debug, Clone)]
pub struct Digests {
    /// MD5 of the prefix (PayPay: Content-Type) ++ body.
    pub md5: Option<[u8; 16]>,
    pub sha256: Option<[u8; 32]>,
    pub sha512: Option<[u8; 64]>,
    /// The body itself, for a credential that signs it whole.
    pub message: Option<Bytes>,
    /// The streams credentials started, each fed the whole body.
    pub streams: Vec<(String, Stream)>,
}

impl BodyDigest {
    /// PayPay's MD5, when there is a body.
    pub fn md5(&self) -> Option<[u8; 16]> {
        match self {
            BodyDigest::Absent => None,
            BodyDigest::Present(d) => d.md5,
        }
    }

    /// Shares `spooled` (the same body, kept in memory by the spool) in
    /// place of the copy made for a credential, so that once read the body
    /// is held once, not twice.
    pub fn sharing(mut self, spooled: Option<Bytes>) -> BodyDigest {
        if let (BodyDigest::Present(d), Some(bytes)) = (&mut self, spooled) {
            if d.message.as_ref().is_some_and(|m| *m == bytes) {
                d.message = Some(bytes);
            }
        }
        self
    }

    /// The body as sent, when a credential asked to keep it: empty when
    /// there is none; `None` when it was not kept.
    pub fn message(&self) -> Option<Bytes> {
        match self {
            BodyDigest::Absent => Some(Bytes::new()),
            BodyDigest::Present(d) => d.message.clone(),
        }
    }

    /// The stream started as `key`, when there is a body.
    pub fn stream(&self, key: &str) -> Option<&Stream> {
        match self {
            BodyDigest::Absent => None,
            BodyDigest::Present(d) => d.streams.iter().find(|(k, _)| k == key).map(|(_, s)| s),
        }
    }

    /// The SHA-256 of the body: of the empty string when there is none;
    /// `None` when a body was there but nobody asked for its SHA-256.
    pub fn sha256(&self) -> Option<[u8; 32]> {
        match self {
            BodyDigest::Absent => Some(Sha256::digest(b"").into()),
            BodyDigest::Present(d) => d.sha256,
        }
    }

    /// The SHA-512 of the body, as `sha256`.
    pub fn sha512(&self) -> Option<[u8; 64]> {
        match self {
            BodyDigest::Absent => Some(Sha512::digest(b"").into()),
            BodyDigest::Present(d) => d.sha512,
        }
    }
}

#[cfg(test)]
mod tests;
