//! The signing key of an `http-signature` credential, loaded into ring
//! once, and the signature it makes over a signature base: HMAC-SHA256,
//! Ed25519, ECDSA P-256 with SHA-256 as raw `r || s` (RFC 9421 section
//! 3.3.4), RSASSA-PSS with SHA-512 (64-byte salt) and RSASSA-PKCS1-v1_5
//! with SHA-256.

use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair};

use crate::config::{HttpSigAlgorithm, HttpSigKey};
use crate::random::RandomError;

/// No `Debug`: it holds the key.
pub enum Signer {
    Hmac(ring::hmac::Key),
    Ed25519(Ed25519KeyPair),
    Ecdsa(EcdsaKeyPair),
    Rsa(RsaKeyPair, &'static dyn ring::signature::RsaEncoding),
}

impl Signer {
    /// Loads `key` for `alg`; `check` has already made sure they suit, so
    /// an error here says only which.
    pub fn new(alg: HttpSigAlgorithm, key: &HttpSigKey) -> Result<Signer, String> {
        let bad = |what: &str| format!("the key is not {what} for {}", alg.as_str());
        let rng = crate::random::generator();
        Ok(match (alg, key) {
            (HttpSigAlgorithm::HmacSha256, HttpSigKey::Hmac(secret)) => Signer::Hmac(
                ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.expose()),
            ),
            (HttpSigAlgorithm::Ed25519, HttpSigKey::Pkcs8(der)) => Signer::Ed25519(
                Ed25519KeyPair::from_pkcs8_maybe_unchecked(der.expose())
                    .map_err(|_| bad("an Ed25519 key"))?,
            ),
            (HttpSigAlgorithm::EcdsaP256Sha256, HttpSigKey::Pkcs8(der)) => Signer::Ecdsa(
                EcdsaKeyPair::from_pkcs8(
                    &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    der.expose(),
                    rng,
                )
                .map_err(|_| bad("a P-256 key"))?,
            ),
            (HttpSigAlgorithm::RsaPssSha512 | HttpSigAlgorithm::RsaV15Sha256, key) => {
                let pair = match key {
                    HttpSigKey::Pkcs8(der) => RsaKeyPair::from_pkcs8(der.expose()),
                    HttpSigKey::RsaPkcs1(der) => RsaKeyPair::from_der(der.expose()),
                    HttpSigKey::Hmac(_) => return Err(bad("an RSA key")),
                }
                .map_err(|_| bad("an RSA key"))?;
                let encoding: &'static dyn ring::signature::RsaEncoding =
                    if alg == HttpSigAlgorithm::RsaPssSha512 {
                        &ring::signature::RSA_PSS_SHA512
                    } else {
                        &ring::signature::RSA_PKCS1_SHA256
                    };
                Signer::Rsa(pair, encoding)
            }
            _ => return Err(bad("the kind of key")),
        })
    }

    /// The signature over `base`. Only the randomised algorithms can fail,
    /// and only when the OS random generator does.
    pub fn sign(&self, base: &[u8]) -> Result<Vec<u8>, RandomError> {
        let rng = crate::random::generator();
        match self {
            Signer::Hmac(key) => Ok(ring::hmac::sign(key, base).as_ref().to_vec()),
            Signer::Ed25519(pair) => Ok(pair.sign(base).as_ref().to_vec()),
            Signer::Ecdsa(pair) => pair
                .sign(rng, base)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| RandomError),
            Signer::Rsa(pair, encoding) => {
                let mut out = vec![0u8; pair.public().modulus_len()];
                pair.sign(*encoding, rng, base, &mut out)
                    .map_err(|_| RandomError)?;
                Ok(out)
            }
        }
    }

    /// The public key as ring's verifiers take it, for tests.
    #[cfg(test)]
    pub fn public_key(&self) -> Vec<u8> {
        use ring::signature::KeyPair as _;
        match self {
            Signer::Hmac(_) => Vec::new(),
            Signer::Ed25519(p) => p.public_key().as_ref().to_vec(),
            Signer::Ecdsa(p) => p.public_key().as_ref().to_vec(),
            Signer::Rsa(p, _) => p.public_key().as_ref().to_vec(),
        }
    }
}
