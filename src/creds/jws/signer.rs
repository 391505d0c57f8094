//! The JWS itself: the UK OB protected header, the signing input with the
//! payload encoded or not (RFC 7797 `b64`), and the signature by ring
//! (PS256: RSASSA-PSS with SHA-256; ES256: P-256, `r || s`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use ring::signature::{self, EcdsaKeyPair, RsaKeyPair};
use serde_json::json;

use crate::config::{JwsDetachedConfig, SigningAlg};

const IAT: &str = "http://openbanking.org.uk/iat";
const ISS: &str = "http://openbanking.org.uk/iss";
const TAN: &str = "http://openbanking.org.uk/tan";

/// The protected header for a signature made at `iat` (Unix seconds):
/// `alg`, `kid`, `cty`, `typ` when configured, the three UK OB claims, all
/// listed in `crit`; and before 3.1.4 `b64: false`, listed in `crit` too.
pub fn protected_header(config: &JwsDetachedConfig, iat: u64) -> serde_json::Value {
    let unencoded = config.version.unencoded_payload();
    let mut crit = Vec::new();
    if unencoded {
        crit.push("b64");
    }
    crit.extend([IAT, ISS, TAN]);
    let mut header = json!({
        "alg": config.alg.as_str(),
        "kid": config.kid,
        "cty": "application/json",
        IAT: iat,
        ISS: config.issuer,
        TAN: config.trust_anchor,
        "crit": crit,
    });
    if config.typ {
        header["typ"] = json!("JOSE");
    }
    if unencoded {
        header["b64"] = json!(false);
    }
    header
}

/// What is signed: `BASE64URL(header) '.' payload`, the payload as it is
/// when `unencoded` (b64=false), else base64url-encoded. Returns the
/// encoded header too, the first part of the compact form.
pub fn signing_input(
    header: &serde_json::Value,
    payload: &[u8],
    unencoded: bool,
) -> (String, Vec<u8>) {
    let encoded = B64.encode(header.to_string());
    let mut input = Vec::with_capacity(encoded.len() + 1 + payload.len() * 4 / 3 + 4);
    input.extend_from_slice(encoded.as_bytes());
    input.push(b'.');
    if unencoded {
        input.extend_from_slice(payload);
    } else {
        input.extend_from_slice(B64.encode(payload).as_bytes());
    }
    (encoded, input)
}

enum Key {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
}

/// The signing key, loaded once. `Debug` shows the algorithm only.
pub struct Signer {
    key: Key,
    alg: SigningAlg,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// ring refused to sign (its error says nothing, so nothing secret leaks).
#[derive(Debug)]
pub struct SignError;

impl Signer {
    /// Fails when the key does not suit `alg` (`check` has said so first).
    pub fn new(pkcs8: &[u8], alg: SigningAlg) -> Result<Signer, String> {
        let key = match alg {
            SigningAlg::Ps256 => RsaKeyPair::from_pkcs8(pkcs8)
                .map(Key::Rsa)
                .map_err(|e| format!("is not an RSA key usable for PS256 ({e})"))?,
            SigningAlg::Es256 => EcdsaKeyPair::from_pkcs8(
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                pkcs8,
                crate::random::generator(),
            )
            .map(Key::Ecdsa)
            .map_err(|e| format!("is not a P-256 key usable for ES256 ({e})"))?,
            SigningAlg::Rs256 => return Err("RS256 is not offered for jws-detached".into()),
        };
        Ok(Signer { key, alg })
    }

    /// `BASE64URL(header) '..' BASE64URL(signature)`.
    pub fn detached(
        &self,
        header: &serde_json::Value,
        payload: &[u8],
        unencoded: bool,
    ) -> Result<String, SignError> {
        let (encoded, input) = signing_input(header, payload, unencoded);
        let sig = self.sign(&input)?;
        Ok(format!("{encoded}..{}", B64.encode(sig)))
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let rng = crate::random::generator();
        match &self.key {
            Key::Rsa(key) => {
                let mut sig = vec![0; key.public().modulus_len()];
                key.sign(&signature::RSA_PSS_SHA256, rng, message, &mut sig)
                    .map_err(|_| SignError)?;
                Ok(sig)
            }
            Key::Ecdsa(key) => key
                .sign(rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| SignError),
        }
    }
}
