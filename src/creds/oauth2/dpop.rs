//! DPoP (RFC 9449): the key pair countersign generates for a credential at
//! start (ES256 on P-256, or EdDSA on Ed25519, with ring), and the proofs
//! it signs with it: a compact JWS with `typ: dpop+jwt` and the public key
//! as `jwk` in the header, claims `jti` (random), `htm`, `htu` (no query,
//! no fragment), `iat`, and, on requests to a resource server, `ath` (the
//! base64url SHA-256 of the access token) and the server's latest `nonce`.
//!
//! The key lives in memory only: a restart makes a new one and fetches
//! new tokens (see docs/replicas.md for why it is never shared). It is
//! kept in the token registry next to the credential's token manager, so
//! a reload that keeps the tokens keeps the key they are bound to.

mod nonces;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use http::{HeaderValue, Method, Uri};
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::jwt::SignError;
use crate::config::DpopAlg;
use crate::creds::token::{Renewing, Stopped};
pub use nonces::{resource_wants_nonce, Nonces};

/// The request header a proof travels in.
pub const HEADER: &str = "dpop";

enum Key {
    Es256(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
}

/// A credential's DPoP key and the nonces servers gave it.
pub struct Dpop {
    key: Key,
    alg: DpopAlg,
    /// The public key as a JWK (`crv`, `kty`, `x`[, `y`]).
    jwk: Value,
    /// RFC 7638 thumbprint of `jwk`, base64url: the `cnf.jkt` of the tokens.
    thumbprint: String,
    pub nonces: Nonces,
}

impl std::fmt::Debug for Dpop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dpop")
            .field("alg", &self.alg)
            .field("thumbprint", &self.thumbprint)
            .finish_non_exhaustive()
    }
}

impl Dpop {
    /// A new key pair from the OS generator.
    pub fn generate(alg: DpopAlg) -> Result<Dpop, String> {
        let rng = crate::random::generator();
        let failed = |e| format!("generating the DPoP key failed: {e}");
        let (key, jwk) = match alg {
            DpopAlg::Es256 => {
                let ring = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
                let pkcs8 = EcdsaKeyPair::generate_pkcs8(ring, rng).map_err(failed)?;
                let pair = EcdsaKeyPair::from_pkcs8(ring, pkcs8.as_ref(), rng)
                    .map_err(|e| format!("loading the DPoP key failed: {e}"))?;
                // Uncompressed point: 0x04 || x || y.
                let point = pair.public_key().as_ref();
                let jwk = json!({
                    "crv": "P-256",
                    "kty": "EC",
                    "x": B64.encode(&point[1..33]),
                    "y": B64.encode(&point[33..65]),
                });
                (Key::Es256(pair), jwk)
            }
            DpopAlg::EdDsa => {
                let pkcs8 = Ed25519KeyPair::generate_pkcs8(rng).map_err(failed)?;
                let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
                    .map_err(|e| format!("loading the DPoP key failed: {e}"))?;
                let jwk = json!({
                    "crv": "Ed25519",
                    "kty": "OKP",
                    "x": B64.encode(pair.public_key().as_ref()),
                });
                (Key::EdDsa(pair), jwk)
            }
        };
        Ok(Dpop {
            key,
            alg,
            thumbprint: thumbprint(&jwk),
            jwk,
            nonces: Nonces::default(),
        })
    }

    /// The RFC 7638 thumbprint of the public key (the tokens' `cnf.jkt`).
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// A fresh proof for `method` on `uri` at `now` (Unix seconds), with
    /// `ath` when `access_token` is given and the latest nonce of `uri`'s
    /// server. Marked sensitive: it is a short-lived credential.
    pub fn proof(
        &self,
        method: &Method,
        uri: &Uri,
        access_token: Option<&str>,
        now: u64,
    ) -> Result<HeaderValue, SignError> {
        let header = json!({ "typ": "dpop+jwt", "alg": self.alg.as_str(), "jwk": self.jwk });
        let mut jti = [0u8; 16];
        crate::random::fill(&mut jti).map_err(|_| SignError)?;
        let mut claims = json!({
            "jti": B64.encode(jti),
            "htm": method.as_str(),
            "htu": htu(uri),
            "iat": now,
        });
        if let Some(token) = access_token {
            claims["ath"] = json!(B64.encode(Sha256::digest(token.as_bytes())));
        }
        if let Some(nonce) = self.nonces.get(uri) {
            claims["nonce"] = json!(nonce);
        }
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let sig = match &self.key {
            // FIXED signing gives r || s, the JWS form (not DER).
            Key::Es256(pair) => pair
                .sign(crate::random::generator(), input.as_bytes())
                .map_err(|_| SignError)?
                .as_ref()
                .to_vec(),
            Key::EdDsa(pair) => pair.sign(input.as_bytes()).as_ref().to_vec(),
        };
        let mut value = HeaderValue::from_str(&format!("{input}.{}", B64.encode(sig)))
            .map_err(|_| SignError)?;
        value.set_sensitive(true);
        Ok(value)
    }
}

/// Kept in the token registry beside the token manager; nothing renews.
impl Renewing for Dpop {
    fn stop(&self) {}
    fn stopped(&self) -> Stopped<'_> {
        Box::pin(std::future::ready(()))
    }
}

/// `htu`: scheme, host, port (left out when it is the default) and path;
/// never the query or fragment (RFC 9449 section 4.2).
pub fn htu(uri: &Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
    let host = uri.host().unwrap_or("").to_ascii_lowercase();
    let default = match scheme.as_str() {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    };
    let port = match uri.port_u16() {
        Some(p) if Some(p) != default => format!(":{p}"),
        _ => String::new(),
    };
    let path = match uri.path() {
        "" => "/",
        p => p,
    };
    format!("{scheme}://{host}{port}{path}")
}

/// RFC 7638: SHA-256 over the required members in lexicographic order,
/// without whitespace (serde_json's map is ordered and compact).
fn thumbprint(jwk: &Value) -> String {
    B64.encode(Sha256::digest(jwk.to_string().as_bytes()))
}

#[cfg(test)]
mod tests;
