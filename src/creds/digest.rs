//! The body digests a route's credentials sign, computed in one pass while
//! the body is spooled: PayPay's MD5 over Content-Type ++ body, the
//! SHA-256 of the body that AWS SigV4 signs, and the SHA-256 or SHA-512 of
//! an http-signature's `Content-Digest`. Each is computed only when a
//! credential of the route asks for it.

use md5::{Digest as _, Md5};
use sha2::{Sha256, Sha512};

/// The running hashes, fed chunk by chunk while the body is spooled.
#[derive(Default)]
pub struct BodyHash {
    md5: Option<Md5>,
    sha256: Option<Sha256>,
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

    /// Whether any credential asked for a digest or the length (and so for
    /// the body).
    pub fn is_wanted(&self) -> bool {
        self.spool || self.md5.is_some() || self.sha256.is_some() || self.sha512.is_some()
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
    }

    pub fn finish(self) -> BodyDigest {
        if self.len == 0 {
            return BodyDigest::Absent;
        }
        BodyDigest::Present(Digests {
            md5: self.md5.map(|m| m.finalize().into()),
            sha256: self.sha256.map(|s| s.finalize().into()),
            sha512: self.sha512.map(|s| s.finalize().into()),
        })
    }
}

/// What the signers learned from the body: nothing (no body, or a
/// zero-length one), or the digests they asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyDigest {
    Absent,
    Present(Digests),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digests {
    /// MD5 of the prefix (PayPay: Content-Type) ++ body.
    pub md5: Option<[u8; 16]>,
    pub sha256: Option<[u8; 32]>,
    pub sha512: Option<[u8; 64]>,
}

impl BodyDigest {
    /// PayPay's MD5, when there is a body.
    pub fn md5(&self) -> Option<[u8; 16]> {
        match self {
            BodyDigest::Absent => None,
            BodyDigest::Present(d) => d.md5,
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
mod tests {
    use super::*;

    #[test]
    fn one_pass_feeds_every_wanted_digest() {
        let body = b"{\"a\":1}";
        let mut h = BodyHash::default();
        h.want_md5(b"application/json");
        h.want_sha256();
        h.want_sha512();
        for chunk in body.chunks(3) {
            h.update(chunk);
        }
        let d = h.finish();
        let mut md5 = Md5::new();
        md5.update(b"application/json");
        md5.update(body);
        assert_eq!(d.md5(), Some(md5.finalize().into()));
        assert_eq!(d.sha256(), Some(Sha256::digest(body).into()));
        assert_eq!(d.sha512(), Some(Sha512::digest(body).into()));
    }

    #[test]
    fn only_what_was_asked_is_computed() {
        let mut h = BodyHash::default();
        assert!(!h.is_wanted());
        h.want_sha256();
        h.update(b"x");
        let d = h.finish();
        assert_eq!(d.md5(), None);
        assert!(d.sha256().is_some());
        assert_eq!(BodyHash::default().finish(), BodyDigest::Absent);
        let mut h = BodyHash::default();
        h.want_length();
        assert!(h.is_wanted(), "the length alone asks for the body");
        h.update(b"xy");
        assert_eq!(h.finish().sha512(), None);
    }
}
