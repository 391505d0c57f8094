//! A JWT the provider signed (an ID token, a JARM response): three
//! base64url parts, a JSON header and claims, `alg` RS256, PS256 or ES256
//! (never `none` or a MAC, which a client secret or nothing would
//! "verify"), and a signature that verifies with the provider's key for
//! the header's `kid`. What the claims must say is the caller's.

use std::future::Future;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use serde_json::{Map, Value};

use super::discovery::{DiscoveryError, Jwk};

#[derive(Debug)]
pub enum SignedError {
    Malformed,
    Algorithm(String),
    Keys(DiscoveryError),
    Signature,
}

/// The claims of `token`, once its signature holds; `key` finds the
/// provider's key for a `kid` and `alg`.
pub async fn verified<K, F>(token: &str, key: K) -> Result<Map<String, Value>, SignedError>
where
    K: FnOnce(Option<String>, String) -> F,
    F: Future<Output = Result<Jwk, DiscoveryError>>,
{
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SignedError::Malformed);
    };
    let header = json_part(h)?;
    let claims = json_part(c)?;
    let signature = B64.decode(s).map_err(|_| SignedError::Malformed)?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(SignedError::Malformed)?;
    if !matches!(alg, "RS256" | "PS256" | "ES256") {
        return Err(SignedError::Algorithm(shown(alg)));
    }
    let kid = header.get("kid").and_then(Value::as_str).map(String::from);
    let jwk = key(kid, alg.to_string()).await.map_err(SignedError::Keys)?;
    let signed = &token[..h.len() + 1 + c.len()];
    if !jwk.verifies(alg, signed.as_bytes(), &signature) {
        return Err(SignedError::Signature);
    }
    Ok(claims)
}

fn json_part(part: &str) -> Result<Map<String, Value>, SignedError> {
    let bytes = B64.decode(part).map_err(|_| SignedError::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(SignedError::Malformed),
    }
}

fn shown(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(16)
        .collect()
}
