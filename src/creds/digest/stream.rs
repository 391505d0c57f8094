//! The hashes and MACs a credential starts before the body (an `hmac`
//! credential's digest with its own prefix, or the HMAC itself, already fed
//! what comes before the body in its string to sign): the body runs through
//! them in the one pass, and the credential finishes them.

use hmac::{Hmac, Mac};
use md5::{Digest as _, Md5};
use sha2::{Sha256, Sha512};

use crate::creds::Drawn;

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
