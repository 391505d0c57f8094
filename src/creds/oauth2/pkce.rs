//! PKCE (RFC 7636) with the S256 method: a random verifier kept by
//! countersign, and its SHA-256 challenge sent with the authorization.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::config::Secret;
use crate::random::RandomError;

pub struct Pkce {
    verifier: Secret,
}

impl Pkce {
    /// 32 random bytes, base64url: a 43-character verifier.
    pub fn new() -> Result<Pkce, RandomError> {
        let mut bytes = [0u8; 32];
        crate::random::fill(&mut bytes)?;
        Ok(Pkce {
            verifier: Secret::new(URL_SAFE_NO_PAD.encode(bytes)),
        })
    }

    pub fn challenge(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.verifier.expose().as_bytes()))
    }

    pub fn verifier(&self) -> &Secret {
        &self.verifier
    }
}

/// An unguessable one-time `state` value (32 random bytes, base64url).
pub fn random_state() -> Result<String, RandomError> {
    let mut bytes = [0u8; 32];
    crate::random::fill(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b() {
        let p = Pkce {
            verifier: Secret::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
        };
        assert_eq!(p.challenge(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert_eq!(Pkce::new().unwrap().verifier().expose().len(), 43);
    }
}
