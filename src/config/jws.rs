//! `type = "jws-detached"`: UK open banking's `x-jws-signature`, a JWS
//! with a detached payload over the exact body sent, and the optional FAPI
//! header rules that go with it.

use std::fmt;

use super::{SecretBytes, SigningAlg};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwsDetachedConfig {
    /// PS256 (UK OB's) or ES256.
    pub alg: SigningAlg,
    /// The PKCS#8 DER of the signing key; checked to suit `alg`.
    pub pkcs8: SecretBytes,
    /// The `kid` of the signing key at the trust anchor.
    pub kid: String,
    /// `http://openbanking.org.uk/iss`.
    pub issuer: String,
    /// `http://openbanking.org.uk/tan`.
    pub trust_anchor: String,
    /// The UK OB Read/Write API version the bank speaks.
    pub version: ObVersion,
    /// Whether the header carries `typ: "JOSE"`.
    pub typ: bool,
    /// The most body bytes held in memory to sign one request.
    pub max_body: u64,
    /// Send a fresh `x-fapi-interaction-id` when the app sent none.
    pub interaction_id: bool,
    pub idempotency_key: IdempotencyKey,
}

/// Whether a POST or PUT must carry `x-idempotency-key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdempotencyKey {
    /// Passed through as the app sent it, or not at all.
    Optional,
    /// A POST or PUT without one is refused (400) before its body is read.
    Required,
}

/// A UK OB Read/Write API version, `3.1.N` or `4.0.N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObVersion {
    pub major: u8,
    pub minor: u8,
    pub patch: u8,
}

impl ObVersion {
    /// The oldest version whose signatures no longer carry `b64: false`.
    pub const ENCODED_FROM: ObVersion = ObVersion {
        major: 3,
        minor: 1,
        patch: 4,
    };

    /// Before 3.1.4 the header carries `b64: false` and the payload is
    /// signed as it is (RFC 7797); from 3.1.4 on it is base64url-encoded in
    /// the signing input like any JWS.
    pub fn unencoded_payload(self) -> bool {
        self < Self::ENCODED_FROM
    }

    /// Parses `3.1`, `3.1.N` (N up to 11) or `4.0`, `4.0.N`, with an
    /// optional leading `v`. 3.0's signatures (no `tan`) are refused: UK OB
    /// no longer accepts them.
    pub fn parse(text: &str) -> Option<ObVersion> {
        let text = text.strip_prefix(['v', 'V']).unwrap_or(text);
        let mut parts = text.split('.');
        let mut number = || -> Option<Option<u8>> {
            match parts.next() {
                None => Some(None),
                Some(p)
                    if !p.is_empty() && p.len() <= 2 && p.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    p.parse().ok().map(Some)
                }
                Some(_) => None,
            }
        };
        let major = number()??;
        let minor = number()??;
        let patch = number()?.unwrap_or(0);
        if parts.next().is_some() {
            return None;
        }
        let known = matches!((major, minor, patch), (3, 1, 0..=11) | (4, 0, 0..=9));
        known.then_some(ObVersion {
            major,
            minor,
            patch,
        })
    }
}

impl fmt::Display for ObVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_before_3_1_4_sign_the_payload_unencoded() {
        let v = |t| ObVersion::parse(t).unwrap_or_else(|| panic!("{t}"));
        for old in ["3.1", "3.1.0", "3.1.3", "v3.1.2"] {
            assert!(v(old).unencoded_payload(), "{old}");
        }
        for new in ["3.1.4", "3.1.10", "3.1.11", "4.0", "4.0.1", "V4.0.0"] {
            assert!(!v(new).unencoded_payload(), "{new}");
        }
        assert_eq!(v("3.1").to_string(), "3.1.0");
    }

    #[test]
    fn unknown_versions_are_refused() {
        for bad in [
            "", "3", "3.0", "3.0.0", "3.1.12", "3.2", "5.0", "4.1", "3.1.4.1", "3..1", "3.1.x",
            "+3.1", "3.1.004",
        ] {
            assert_eq!(ObVersion::parse(bad), None, "{bad}");
        }
    }
}
