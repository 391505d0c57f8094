//! The body digests a route's credentials sign, computed in one pass while
//! the body is spooled: PayPay's MD5 over Content-Type ++ body, the
//! SHA-256 of the body that AWS SigV4 signs, the SHA-256 or SHA-512 of an
//! http-signature's `Content-Digest`, the streams an `hmac` credential
//! starts (a digest with its own prefix, or the HMAC itself, already fed
//! with what comes before the body in its string to sign), and for a
//! signature that needs the whole message at once (jws-detached: ring's
//! RSA-PSS and ECDSA take the message, not a digest) a bounded copy of the
//! body itself. Each is made only when a credential of the route asks for
//! it.

use bytes::Bytes;
use hmac::{Hmac, Mac};
use md5::{Digest as _, Md5};
use sha2::{Sha256, Sha512};

use super::Drawn;

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

/// The body kept in memory for a credential that signs it whole.
struct MessageCopy {
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

/// A hash or MAC some credential started before the body; the body runs
/// through it in the one pass, and the credential finishes it.
#[derive(Clone)]
pub enum Running {
    Md5(Md5),
    Sha256(Sha256),
    HmacSha256(Hmac<Sha256>),
    HmacSha512(Hmac<Sha512>),
}

impl Running {
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Running::Md5(h) => h.update(bytes),
            Running::Sha256(h) => h.update(bytes),
            Running::HmacSha256(m) => m.update(bytes),
            Running::HmacSha512(m) => m.update(bytes),
        }
    }

    pub fn finalize(self) -> Vec<u8> {
        match self {
            Running::Md5(h) => h.finalize().to_vec(),
            Running::Sha256(h) => h.finalize().to_vec(),
            Running::HmacSha256(m) => m.finalize().into_bytes().to_vec(),
            Running::HmacSha512(m) => m.finalize().into_bytes().to_vec(),
        }
    }
}

/// A stream, and what its credential drew to start it (an HMAC whose
/// string to sign has the timestamp or nonce before the body).
#[derive(Clone)]
pub struct Stream {
    pub running: Running,
    pub drawn: Option<Drawn>,
}

/// A keyed state is a secret: `Debug` shows only that a stream is there.
impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stream(<redacted>)")
    }
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
            Some(m) if m.limit <= limit => {}
            Some(m) => {
                m.limit = limit;
                m.owner = owner.to_string();
            }
            None => {
                self.message = Some(MessageCopy {
                    limit,
                    owner: owner.to_string(),
                    declared,
                    bytes: Vec::new(),
                    over: false,
                })
            }
        }
    }

    /// The most bytes of body a credential keeps in memory, and which one
    /// set it: the spool must refuse a larger body.
    pub fn message_limit(&self) -> Option<(u64, &str)> {
        self.message.as_ref().map(|m| (m.limit, m.owner.as_str()))
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
            if m.over || (m.bytes.len() + chunk.len()) as u64 > m.limit {
                m.over = true;
                m.bytes = Vec::new();
            } else {
                if m.bytes.capacity() == 0 {
                    let exact = m.declared.filter(|d| *d <= m.limit).unwrap_or(0);
                    m.bytes
                        .reserve_exact(usize::try_from(exact).unwrap_or(0).max(chunk.len()));
                }
                m.bytes.extend_from_slice(chunk);
            }
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
            message: self
                .message
                .filter(|m| !m.over)
                .map(|m| Bytes::from(m.bytes)),
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
        assert!(matches!(BodyHash::default().finish(), BodyDigest::Absent));
        let mut h = BodyHash::default();
        h.want_length();
        assert!(h.is_wanted(), "the length alone asks for the body");
        h.update(b"xy");
        assert_eq!(h.finish().sha512(), None);
    }

    #[test]
    fn the_message_is_kept_whole_under_the_smaller_limit_and_dropped_past_it() {
        let mut h = BodyHash::default();
        h.want_message(10, "a", None);
        h.want_message(6, "b", None);
        h.want_message(8, "c", None);
        assert_eq!(h.message_limit(), Some((6, "b")));
        assert!(h.is_wanted());
        h.update(b"abc");
        h.update(b"def");
        let d = h.finish();
        assert_eq!(d.message().as_deref(), Some(&b"abcdef"[..]));
        assert_eq!(d.sha256(), None, "not asked for");

        let mut h = BodyHash::default();
        h.want_message(4, "a", None);
        h.update(b"abc");
        h.update(b"de");
        h.update(b"f");
        assert_eq!(h.finish().message(), None, "over the limit: not kept");
    }

    #[test]
    fn a_declared_length_within_the_limit_is_reserved_once() {
        let mut h = BodyHash::default();
        h.want_message(1000, "a", Some(300));
        h.update(&[1; 100]);
        let cap = h.message.as_ref().map(|m| m.bytes.capacity());
        assert_eq!(cap, Some(300));
        // A declared length past the limit reserves no more than a chunk.
        let mut h = BodyHash::default();
        h.want_message(1000, "a", Some(1 << 40));
        h.update(&[1; 100]);
        assert_eq!(h.message.as_ref().map(|m| m.bytes.capacity()), Some(100));
    }

    #[test]
    fn a_body_the_spool_keeps_in_memory_is_shared_not_held_twice() {
        let mut h = BodyHash::default();
        h.want_message(100, "a", None);
        h.update(b"{\"a\":1}");
        let spooled = Bytes::from_static(b"{\"a\":1}");
        let d = h.finish().sharing(Some(spooled.clone()));
        let kept = d.message().unwrap();
        assert_eq!(kept.as_ptr(), spooled.as_ptr(), "the spool's bytes");
        // Nothing to share when the spool went to disk, or nobody asked.
        let mut h = BodyHash::default();
        h.want_sha256();
        h.update(b"x");
        assert_eq!(h.finish().sharing(Some(spooled)).message(), None);
    }
}
