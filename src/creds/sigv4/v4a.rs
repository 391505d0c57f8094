//! SigV4A (`AWS4-ECDSA-P256-SHA256`): the canonical request of SigV4 (with
//! `x-amz-region-set` among the signed headers), a credential scope without
//! a region, and an ECDSA P-256 signature by a key derived from the secret
//! access key, so that one signature is good in every region of the set.
//!
//! The key derivation is AWS's: NIST SP 800-108 KDF in counter mode with
//! HMAC-SHA256, keyed by `"AWS4A" + secret`, over the label
//! `AWS4-ECDSA-P256-SHA256`, a zero byte, the access key id, a one-byte
//! external counter and the output length (256, as four bytes). The first
//! candidate not above n - 2 gives the private scalar candidate + 1.
//!
//! Signatures are deterministic (RFC 6979, as the `p256` crate signs): the
//! same request at the same time gives the same signature.

use std::sync::Mutex;

use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use sha2::{Digest as _, Sha256};

use super::{hex, hmac, Request};

pub const ALGORITHM: &str = "AWS4-ECDSA-P256-SHA256";

/// The order n of P-256, less 2, big-endian.
const N_MINUS_2: [u8; 32] = [
    0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x4F,
];

/// The P-256 private key of an access key, by AWS's derivation. `None`
/// only if 255 candidates in a row are out of range (each is with a
/// chance of about 2^-32).
pub fn derive_key(access_key_id: &str, secret_access_key: &str) -> Option<SigningKey> {
    let input_key = format!("AWS4A{secret_access_key}");
    for counter in 1..=u8::MAX {
        // KDF counter i = 1 (one 256-bit block), then the fixed input.
        let mut data = 1u32.to_be_bytes().to_vec();
        data.extend_from_slice(ALGORITHM.as_bytes());
        data.push(0);
        data.extend_from_slice(access_key_id.as_bytes());
        data.push(counter);
        data.extend_from_slice(&256u32.to_be_bytes());
        let mut candidate = hmac(input_key.as_bytes(), &data);
        // Big-endian byte order compares as the numbers do.
        if candidate > N_MINUS_2 {
            continue;
        }
        // + 1, carrying; no overflow since the candidate is at most n - 2.
        for byte in candidate.iter_mut().rev() {
            let (sum, carry) = byte.overflowing_add(1);
            *byte = sum;
            if !carry {
                break;
            }
        }
        return SigningKey::from_bytes(&candidate.into()).ok();
    }
    None
}

/// What a SigV4A signature is made of, for tests and `sign`.
pub struct SignedA {
    pub canonical_request: Vec<u8>,
    pub string_to_sign: String,
    /// DER-encoded ECDSA signature, hex.
    pub signature: String,
    pub authorization: String,
}

/// Signs `req` (whose headers include `x-amz-region-set`) for `service`.
pub fn sign(
    req: &Request<'_>,
    access_key_id: &str,
    service: &str,
    s3: bool,
    key: &SigningKey,
) -> SignedA {
    let (cr, signed_headers) = super::canonical_request(req, s3);
    let date = req.amz_date.get(..8).unwrap_or_default();
    let scope = format!("{date}/{service}/aws4_request");
    let string_to_sign = format!(
        "{ALGORITHM}\n{}\n{scope}\n{}",
        req.amz_date,
        hex(&Sha256::digest(&cr))
    );
    // ECDSA with SHA-256 over the string to sign.
    let signature: Signature = key.sign(string_to_sign.as_bytes());
    let signature = hex(signature.to_der().as_bytes());
    let authorization = format!(
        "{ALGORITHM} Credential={access_key_id}/{scope}, SignedHeaders={signed_headers}, Signature={signature}"
    );
    SignedA {
        canonical_request: cr,
        string_to_sign,
        signature,
        authorization,
    }
}

/// The key derived for the access key last used: derived once per key,
/// again when temporary keys rotate. Remembers the secret only by its
/// SHA-256, to notice a new secret under the same id.
#[derive(Default)]
pub struct KeyCache {
    held: Mutex<Option<Held>>,
}

struct Held {
    access_key_id: String,
    secret_sha256: [u8; 32],
    key: SigningKey,
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyCache")
    }
}

impl KeyCache {
    /// The signing key of these credentials, derived now if not held.
    pub fn key(&self, access_key_id: &str, secret_access_key: &str) -> Option<SigningKey> {
        let secret_sha256: [u8; 32] = Sha256::digest(secret_access_key.as_bytes()).into();
        let mut held = self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(h) = held.as_ref() {
            if h.access_key_id == access_key_id && h.secret_sha256 == secret_sha256 {
                return Some(h.key.clone());
            }
        }
        let key = derive_key(access_key_id, secret_access_key)?;
        *held = Some(Held {
            access_key_id: access_key_id.to_string(),
            secret_sha256,
            key: key.clone(),
        });
        Some(key)
    }
}
