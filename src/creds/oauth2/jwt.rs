//! RFC 7523 client assertions for `private_key_jwt`: a compact JWS built by
//! hand (base64url without padding) and signed with ring (RS256, PS256,
//! ES256). Claims: iss = sub = client_id, aud, a random jti, iat, exp = iat + 60s.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use ring::signature::{self, EcdsaKeyPair, RsaKeyPair};
use serde_json::json;

use crate::config::{JwtKey, Secret, SigningAlg};

/// How long an assertion is valid: short, since a fresh one is made per request.
const LIFETIME_SECS: u64 = 60;

enum SigningKey {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
}

pub struct AssertionSigner {
    key: SigningKey,
    alg: SigningAlg,
    kid: Option<String>,
    audience: String,
}

impl std::fmt::Debug for AssertionSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AssertionSigner")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// Signing failed: only ring's opaque error, so nothing secret to leak.
#[derive(Debug, thiserror::Error)]
#[error("signing the client assertion or request object failed")]
pub struct SignError;

impl AssertionSigner {
    /// Fails only if the key does not suit `alg` (validation checks that first).
    pub fn new(config: &JwtKey) -> Result<AssertionSigner, String> {
        let der = config.pkcs8.expose();
        let key = match config.alg {
            SigningAlg::Rs256 | SigningAlg::Ps256 => RsaKeyPair::from_pkcs8(der)
                .map(SigningKey::Rsa)
                .map_err(|e| format!("not an RSA key usable for {}: {e}", config.alg.as_str()))?,
            SigningAlg::Es256 => EcdsaKeyPair::from_pkcs8(
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                der,
                crate::random::generator(),
            )
            .map(SigningKey::Ecdsa)
            .map_err(|e| format!("not a P-256 key usable for ES256: {e}"))?,
        };
        Ok(AssertionSigner {
            key,
            alg: config.alg,
            kid: config.kid.clone(),
            audience: config.audience.clone(),
        })
    }

    /// A fresh assertion for `client_id`, issued at `now` (Unix seconds).
    pub fn assertion(&self, client_id: &str, now: u64) -> Result<Secret, SignError> {
        let claims = json!({
            "iss": client_id,
            "sub": client_id,
            "aud": self.audience,
            "jti": jti()?,
            "iat": now,
            "exp": now + LIFETIME_SECS,
        });
        self.compact("JWT", &claims)
    }

    /// The configured audience (`aud`).
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// `claims` signed as a compact JWS with header `alg`, `typ` and the
    /// key's `kid`.
    pub fn compact(&self, typ: &str, claims: &serde_json::Value) -> Result<Secret, SignError> {
        let mut header = json!({ "alg": self.alg.as_str(), "typ": typ });
        if let Some(kid) = &self.kid {
            header["kid"] = json!(kid);
        }
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let sig = self.sign(input.as_bytes())?;
        Ok(Secret::new(format!("{input}.{}", B64.encode(sig))))
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        match &self.key {
            SigningKey::Rsa(key) => {
                let padding: &'static dyn signature::RsaEncoding = match self.alg {
                    SigningAlg::Ps256 => &signature::RSA_PSS_SHA256,
                    _ => &signature::RSA_PKCS1_SHA256,
                };
                let mut sig = vec![0; key.public().modulus_len()];
                key.sign(padding, crate::random::generator(), message, &mut sig)
                    .map_err(|_| SignError)?;
                Ok(sig)
            }
            // FIXED signing gives r || s, the JWS form (not DER).
            SigningKey::Ecdsa(key) => key
                .sign(crate::random::generator(), message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| SignError),
        }
    }
}

/// A random `jti`: 16 bytes, base64url.
pub fn jti() -> Result<String, SignError> {
    let mut jti = [0u8; 16];
    crate::random::fill(&mut jti).map_err(|_| SignError)?;
    Ok(B64.encode(jti))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SecretBytes;
    use ring::signature::KeyPair as _;
    use rustls_pki_types::pem::PemObject;

    fn pkcs8(pem: &str) -> Vec<u8> {
        match rustls_pki_types::PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap() {
            rustls_pki_types::PrivateKeyDer::Pkcs8(k) => k.secret_pkcs8_der().to_vec(),
            _ => panic!("fixture is PKCS#8"),
        }
    }

    const RSA: &str = include_str!("../../../tests/integration/oauth2/test-rsa-key.pem");
    const EC: &str = include_str!("../../../tests/integration/oauth2/test-ec-key.pem");

    fn signer(pem: &str, alg: SigningAlg) -> AssertionSigner {
        AssertionSigner::new(&JwtKey {
            pkcs8: SecretBytes::new(pkcs8(pem)),
            alg,
            kid: Some("k1".into()),
            audience: "https://as.test/token".into(),
        })
        .unwrap()
    }

    fn public_key(pem: &str, alg: SigningAlg) -> Vec<u8> {
        let der = pkcs8(pem);
        match alg {
            SigningAlg::Es256 => EcdsaKeyPair::from_pkcs8(
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                &der,
                crate::random::generator(),
            )
            .unwrap()
            .public_key()
            .as_ref()
            .to_vec(),
            _ => RsaKeyPair::from_pkcs8(&der)
                .unwrap()
                .public_key()
                .as_ref()
                .to_vec(),
        }
    }

    /// Verifies like an authorization server and returns (header, claims).
    fn verify(jwt: &str, pem: &str, alg: SigningAlg) -> (serde_json::Value, serde_json::Value) {
        let (input, sig) = jwt.rsplit_once('.').unwrap();
        let verifier: &dyn signature::VerificationAlgorithm = match alg {
            SigningAlg::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            SigningAlg::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
            SigningAlg::Es256 => &signature::ECDSA_P256_SHA256_FIXED,
        };
        signature::UnparsedPublicKey::new(verifier, public_key(pem, alg))
            .verify(input.as_bytes(), &B64.decode(sig).unwrap())
            .expect("the signature verifies");
        let (h, c) = input.split_once('.').unwrap();
        let parse = |p: &str| serde_json::from_slice(&B64.decode(p).unwrap()).unwrap();
        (parse(h), parse(c))
    }

    #[test]
    fn every_algorithm_signs_a_verifiable_assertion_with_the_rfc7523_claims() {
        for (pem, alg) in [
            (RSA, SigningAlg::Rs256),
            (RSA, SigningAlg::Ps256),
            (EC, SigningAlg::Es256),
        ] {
            let jwt = signer(pem, alg)
                .assertion("client-1", 1_700_000_000)
                .unwrap();
            assert!(!jwt.expose().contains('='), "base64url has no padding");
            let (header, claims) = verify(jwt.expose(), pem, alg);
            assert_eq!(header["alg"], alg.as_str());
            assert_eq!(header["kid"], "k1");
            assert_eq!(claims["iss"], "client-1");
            assert_eq!(claims["sub"], "client-1");
            assert_eq!(claims["aud"], "https://as.test/token");
            assert_eq!(claims["iat"], 1_700_000_000u64);
            assert_eq!(claims["exp"], 1_700_000_060u64);
        }
    }

    #[test]
    fn each_assertion_has_a_fresh_jti() {
        let s = signer(EC, SigningAlg::Es256);
        let jti = |jwt: Secret| {
            let (_, claims) = verify(jwt.expose(), EC, SigningAlg::Es256);
            claims["jti"].as_str().unwrap().to_string()
        };
        assert_ne!(
            jti(s.assertion("c", 1).unwrap()),
            jti(s.assertion("c", 1).unwrap())
        );
    }

    #[test]
    fn a_key_of_the_wrong_kind_is_refused() {
        let e = AssertionSigner::new(&JwtKey {
            pkcs8: SecretBytes::new(pkcs8(EC)),
            alg: SigningAlg::Rs256,
            kid: None,
            audience: String::new(),
        })
        .unwrap_err();
        assert!(e.contains("RSA"), "{e}");
    }
}
