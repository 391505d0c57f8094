//! What an hmac credential signs of the body besides the body itself: the
//! Content-Type (one, and one when there is a body), and the body digest.

use http::header::{CONTENT_LENGTH, CONTENT_TYPE, EXPECT};
use http::request::Parts;
use md5::{Digest as _, Md5};
use sha2::Sha256;

use super::{encode, HmacCred};
use crate::config::{DigestAlgorithm, Field};
use crate::creds::{BodyDigest, CredError};

impl HmacCred {
    /// Whether the Content-Type is signed (as a part, or hashed before the
    /// body).
    pub(super) fn signs_content_type(&self) -> bool {
        self.uses(Field::ContentType)
            || (self.uses(Field::BodyDigest)
                && self
                    .config
                    .body_digest
                    .is_some_and(|d| d.content_type_first))
    }

    /// Refuses before the body is read what cannot be signed: several
    /// Content-Types, or a body announced without one, when it is signed.
    pub fn refuse_early(&self, parts: &Parts) -> Result<(), CredError> {
        let declared = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let announced = parts.headers.contains_key(EXPECT) || declared.is_some_and(|n| n > 0);
        self.content_type(parts, announced).map(|_| ())
    }

    /// The Content-Type as signed: one header at most, and one when there
    /// is a body and it is signed.
    pub(super) fn content_type<'p>(
        &self,
        parts: &'p Parts,
        has_body: bool,
    ) -> Result<&'p [u8], CredError> {
        if !self.signs_content_type() {
            return Ok(b"");
        }
        if parts.headers.get_all(CONTENT_TYPE).iter().count() > 1 {
            return Err(CredError::Request(
                "hmac signs one Content-Type, and this request has several; send one".into(),
            ));
        }
        match parts.headers.get(CONTENT_TYPE) {
            Some(ct) => Ok(ct.as_bytes()),
            None if has_body => Err(CredError::Request(
                "hmac signs the Content-Type of a request with a body, and this request has none; send one (e.g. application/json)".into(),
            )),
            None => Ok(b""),
        }
    }

    /// The encoded body digest, when the template uses one.
    pub(super) fn body_digest(
        &self,
        digest: &BodyDigest,
        content_type: &[u8],
    ) -> Result<Option<String>, CredError> {
        let Some(spec) = self
            .config
            .body_digest
            .filter(|_| self.uses(Field::BodyDigest))
        else {
            return Ok(None);
        };
        if let (BodyDigest::Absent, Some(text)) = (digest, &self.config.no_body) {
            return Ok(Some(text.clone()));
        }
        let bytes = match digest {
            BodyDigest::Present(_) => digest
                .stream(&self.digest_key)
                .ok_or_else(|| CredError::Request("hmac: the body was not hashed".into()))?
                .running
                .clone()
                .finalize(),
            // No body: the digest of what it covers, without one.
            BodyDigest::Absent => {
                let prefix = if spec.content_type_first {
                    content_type
                } else {
                    b""
                };
                match spec.algorithm {
                    DigestAlgorithm::Md5 => Md5::digest(prefix).to_vec(),
                    DigestAlgorithm::Sha256 => Sha256::digest(prefix).to_vec(),
                }
            }
        };
        Ok(Some(encode(spec.encoding, &bytes)))
    }
}
