//! Checking the ID token of a hybrid response (`code id_token`) before the
//! code is exchanged, as OpenID Connect Core 1.0 sections 3.3.2.11-12 and
//! FAPI 1.0 Advanced section 5.2.2.1 ask: the signature with the
//! provider's key (RS256, PS256 or ES256; never `none` or a MAC), `iss`,
//! `aud` (and `azp` when there are several audiences), `exp`, `iat` and
//! `nbf` within a small skew, the `nonce` countersign sent, and `c_hash`
//! and `s_hash`, which tie the token to this code and this `state`.
//! The token endpoint's ID token of the same flow is checked by the same
//! rules without the hashes. Each refusal names its reason
//! (`id-token-invalid`), never the token.

use std::future::Future;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::discovery::{DiscoveryError, Jwk};
use super::signed::{self, SignedError};

/// How far the provider's clock may be from ours.
pub const SKEW_SECS: u64 = 60;

/// What the ID token must match.
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    /// The `nonce` sent, which the token must carry; `None` when none was
    /// sent (a plain code flow's token response).
    pub nonce: Option<&'a str>,
    /// The code and `state` of the authorization response it came with
    /// (`c_hash` and `s_hash` required); `None` for the token endpoint's.
    pub code: Option<&'a str>,
    pub state: Option<&'a str>,
    /// Unix seconds.
    pub now: u64,
}

/// Why an ID token was refused.
#[derive(Debug, thiserror::Error)]
pub enum IdTokenError {
    #[error("the provider's answer has no ID token (response_type is \"code id_token\")")]
    Missing,
    #[error("the ID token is not a signed JWT (three base64url parts, JSON header and claims)")]
    Malformed,
    #[error("the ID token is signed with `{0}`; only RS256, PS256 and ES256 are accepted")]
    Algorithm(String),
    #[error("the provider's keys could not be had")]
    Keys(#[source] DiscoveryError),
    #[error("the ID token's signature does not verify with the provider's key")]
    Signature,
    #[error("the ID token's `iss` is not the configured issuer")]
    Issuer,
    #[error("the ID token's `aud` does not name this client")]
    Audience,
    #[error("the ID token has several audiences and its `azp` is not this client")]
    AuthorizedParty,
    #[error("the ID token has expired (or has no `exp`)")]
    Expired,
    #[error("the ID token's `iat` is missing or in the future")]
    IssuedAt,
    #[error("the ID token is not valid yet (`nbf`)")]
    NotYetValid,
    #[error("the ID token's `nonce` is not the one sent")]
    Nonce,
    #[error("the ID token's `c_hash` does not match the code")]
    CodeHash,
    #[error("the ID token's `s_hash` does not match the state")]
    StateHash,
    #[error("the ID token's `openbanking_intent_id` is not the consent the app named")]
    Intent,
    #[error("the token endpoint's ID token is missing, or for another `sub` than the authorization response's")]
    Subject,
}

impl From<SignedError> for IdTokenError {
    fn from(e: SignedError) -> IdTokenError {
        match e {
            SignedError::Malformed => IdTokenError::Malformed,
            SignedError::Algorithm(a) => IdTokenError::Algorithm(a),
            SignedError::Keys(e) => IdTokenError::Keys(e),
            SignedError::Signature => IdTokenError::Signature,
        }
    }
}

/// The checked claims.
#[derive(Debug)]
pub struct Claims(pub serde_json::Map<String, Value>);

impl Claims {
    /// The `sub` claim.
    pub fn subject(&self) -> Option<&str> {
        self.0.get("sub").and_then(Value::as_str)
    }

    /// UK open banking: the ID token names the consent that was
    /// authorized; it must be the one the app asked for.
    pub fn check_intent(&self, intent: &str) -> Result<(), IdTokenError> {
        match self.0.get("openbanking_intent_id").and_then(Value::as_str) {
            Some(found) if found == intent => Ok(()),
            _ => Err(IdTokenError::Intent),
        }
    }
}

/// Checks `token`; `key` finds the provider's key for a `kid` and `alg`
/// (the discovery's JWKS, read again on an unknown `kid`).
pub async fn validate<K, F>(
    token: &str,
    expected: &Expected<'_>,
    key: K,
) -> Result<Claims, IdTokenError>
where
    K: FnOnce(Option<String>, String) -> F,
    F: Future<Output = Result<Jwk, DiscoveryError>>,
{
    let claims = signed::verified(token, key).await?;
    check_claims(&claims, expected)?;
    Ok(Claims(claims))
}

/// The claim rules, once the signature holds.
fn check_claims(
    claims: &serde_json::Map<String, Value>,
    e: &Expected<'_>,
) -> Result<(), IdTokenError> {
    let text = |n: &str| claims.get(n).and_then(Value::as_str);
    let number = |n: &str| claims.get(n).and_then(Value::as_u64);
    if text("iss") != Some(e.issuer) {
        return Err(IdTokenError::Issuer);
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !audiences.contains(&e.client_id) {
        return Err(IdTokenError::Audience);
    }
    let azp = text("azp");
    if (audiences.len() > 1 && azp.is_none()) || azp.is_some_and(|a| a != e.client_id) {
        return Err(IdTokenError::AuthorizedParty);
    }
    match number("exp") {
        Some(exp) if exp + SKEW_SECS > e.now => {}
        _ => return Err(IdTokenError::Expired),
    }
    match number("iat") {
        Some(iat) if iat <= e.now + SKEW_SECS => {}
        _ => return Err(IdTokenError::IssuedAt),
    }
    if number("nbf").is_some_and(|nbf| nbf > e.now + SKEW_SECS) {
        return Err(IdTokenError::NotYetValid);
    }
    if e.nonce.is_some_and(|n| text("nonce") != Some(n)) {
        return Err(IdTokenError::Nonce);
    }
    if e.code
        .is_some_and(|code| text("c_hash") != Some(half_hash(code).as_str()))
    {
        return Err(IdTokenError::CodeHash);
    }
    if e.state
        .is_some_and(|state| text("s_hash") != Some(half_hash(state).as_str()))
    {
        return Err(IdTokenError::StateHash);
    }
    Ok(())
}

/// OpenID Connect's `c_hash` / `s_hash` for the *256 algorithms: the left
/// half of the SHA-256 of the ASCII value, base64url.
pub fn half_hash(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    B64.encode(&digest[..16])
}

/// The tests' provider keys are shared with `jarm`'s.
#[cfg(test)]
pub(super) mod tests;
