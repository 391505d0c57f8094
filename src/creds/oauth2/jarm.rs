//! JARM, the JWT Secured Authorization Response Mode (OpenID Foundation,
//! FAPI): the provider's answer comes as one signed JWT, `response`, whose
//! claims hold `code`, `state` (and in the hybrid flow `id_token`) or
//! `error`. Before any of it is used: the signature with the provider's
//! key (see `signed`), `iss` is the issuer, `aud` this client, and `exp`
//! not passed (JARM section 2.4). Encrypted responses are not supported.

use std::future::Future;

use serde_json::{Map, Value};

use super::discovery::{DiscoveryError, Jwk};
use super::id_token::SKEW_SECS;
use super::signed::{self, SignedError};

#[derive(Debug, thiserror::Error)]
pub enum JarmError {
    #[error("the provider's answer has no JARM `response` (response_mode is a JWT mode)")]
    Missing,
    #[error("the JARM response is not a signed JWT (encrypted responses are not supported)")]
    Malformed,
    #[error("the JARM response is signed with `{0}`; only RS256, PS256 and ES256 are accepted")]
    Algorithm(String),
    #[error("the provider's keys could not be had")]
    Keys(#[source] DiscoveryError),
    #[error("the JARM response's signature does not verify with the provider's key")]
    Signature,
    #[error("the JARM response's `iss` is not the configured issuer")]
    Issuer,
    #[error("the JARM response's `aud` does not name this client")]
    Audience,
    #[error("the JARM response has expired (or has no `exp`)")]
    Expired,
}

impl From<SignedError> for JarmError {
    fn from(e: SignedError) -> JarmError {
        match e {
            SignedError::Malformed => JarmError::Malformed,
            SignedError::Algorithm(a) => JarmError::Algorithm(a),
            SignedError::Keys(e) => JarmError::Keys(e),
            SignedError::Signature => JarmError::Signature,
        }
    }
}

/// The answer's parameters from a JARM `response`, once it is checked.
pub async fn open<K, F>(
    response: &str,
    issuer: &str,
    client_id: &str,
    now: u64,
    key: K,
) -> Result<Map<String, Value>, JarmError>
where
    K: FnOnce(Option<String>, String) -> F,
    F: Future<Output = Result<Jwk, DiscoveryError>>,
{
    let claims = signed::verified(response, key).await?;
    if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
        return Err(JarmError::Issuer);
    }
    let audience = match claims.get("aud") {
        Some(Value::String(a)) => a == client_id,
        Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(client_id)),
        _ => false,
    };
    if !audience {
        return Err(JarmError::Audience);
    }
    match claims.get("exp").and_then(Value::as_u64) {
        Some(exp) if exp + SKEW_SECS > now => Ok(claims),
        _ => Err(JarmError::Expired),
    }
}

#[cfg(test)]
mod tests;
