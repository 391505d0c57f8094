//! A provider's JSON Web Key Set (RFC 7517), read into keys ring can
//! verify with: RSA (`n`, `e`) for RS256 and PS256, P-256 (`x`, `y`) for
//! ES256. Keys of other kinds, or marked for encryption, are skipped.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::Value;

use super::DiscoveryError;

#[derive(Debug, Clone)]
enum KeyMaterial {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// The uncompressed point, 0x04 || x || y.
    P256(Vec<u8>),
}

/// One signature key of the provider.
#[derive(Debug, Clone)]
pub struct Jwk {
    pub kid: Option<String>,
    /// The `alg` the key is restricted to, when the set says.
    pub alg: Option<String>,
    material: KeyMaterial,
}

impl Jwk {
    /// Whether this key may verify `alg` (its kind fits, and its own `alg`,
    /// if any, is that one).
    pub fn suits(&self, alg: &str) -> bool {
        let kind = match &self.material {
            KeyMaterial::Rsa { .. } => matches!(alg, "RS256" | "PS256"),
            KeyMaterial::P256(_) => alg == "ES256",
        };
        kind && self.alg.as_deref().is_none_or(|a| a == alg)
    }

    /// Whether `signature` over `message` verifies with this key and `alg`.
    pub fn verifies(&self, alg: &str, message: &[u8], signature: &[u8]) -> bool {
        match (&self.material, alg) {
            (KeyMaterial::Rsa { n, e }, "RS256" | "PS256") => {
                let params = if alg == "PS256" {
                    &signature::RSA_PSS_2048_8192_SHA256
                } else {
                    &signature::RSA_PKCS1_2048_8192_SHA256
                };
                RsaPublicKeyComponents { n, e }
                    .verify(params, message, signature)
                    .is_ok()
            }
            (KeyMaterial::P256(point), "ES256") => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, signature)
                    .is_ok()
            }
            _ => false,
        }
    }
}

/// Reads a JWK Set document.
pub fn parse(body: &[u8]) -> Result<Vec<Jwk>, DiscoveryError> {
    let doc: Value = serde_json::from_slice(body).map_err(|_| DiscoveryError::JwksNotJson)?;
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or(DiscoveryError::JwksNotJson)?;
    Ok(keys.iter().filter_map(key).collect())
}

fn key(jwk: &Value) -> Option<Jwk> {
    let text = |n: &str| jwk.get(n).and_then(Value::as_str);
    let bytes = |n: &str| text(n).and_then(|t| B64.decode(t).ok());
    if text("use").is_some_and(|u| u != "sig") {
        return None;
    }
    let material = match (text("kty")?, text("crv")) {
        ("RSA", _) => KeyMaterial::Rsa {
            n: bytes("n")?,
            e: bytes("e")?,
        },
        ("EC", Some("P-256")) => {
            let (x, y) = (bytes("x")?, bytes("y")?);
            if x.len() != 32 || y.len() != 32 {
                return None;
            }
            let mut point = vec![4u8];
            point.extend(x);
            point.extend(y);
            KeyMaterial::P256(point)
        }
        _ => return None,
    };
    Some(Jwk {
        kid: text("kid").map(String::from),
        alg: text("alg").map(String::from),
        material,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_and_p256_keys_are_read_and_others_skipped() {
        let keys = parse(
            br#"{"keys":[
                {"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB"},
                {"kty":"EC","crv":"P-256","kid":"e","alg":"ES256",
                 "x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                 "y":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
                {"kty":"EC","crv":"P-384","kid":"p384","x":"AA","y":"AA"},
                {"kty":"RSA","kid":"enc","use":"enc","n":"AQAB","e":"AQAB"},
                {"kty":"oct","k":"c2VjcmV0"}
            ]}"#,
        )
        .unwrap();
        let kids: Vec<_> = keys.iter().map(|k| k.kid.as_deref().unwrap()).collect();
        assert_eq!(kids, ["r", "e"]);
        assert!(keys[0].suits("PS256") && keys[0].suits("RS256") && !keys[0].suits("ES256"));
        assert!(keys[1].suits("ES256") && !keys[1].suits("PS256"));
        assert!(matches!(parse(b"{}"), Err(DiscoveryError::JwksNotJson)));
        assert!(matches!(parse(b"<"), Err(DiscoveryError::JwksNotJson)));
    }
}
