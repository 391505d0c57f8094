//! The FAPI request headers a jws-detached credential may look after:
//! `x-fapi-interaction-id` (a random UUID v4 when the app sent none; the
//! app's passes through) and the `x-idempotency-key` a POST or PUT must
//! carry when `idempotency_key = "required"`.

use http::request::Parts;
use http::{HeaderName, HeaderValue, Method};

use super::CredError;
use crate::config::IdempotencyKey;
use crate::creds::SignParams;

pub const X_FAPI_INTERACTION_ID: HeaderName = HeaderName::from_static("x-fapi-interaction-id");
pub const X_IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("x-idempotency-key");

/// Refuses a POST or PUT without a non-blank `x-idempotency-key` when the
/// credential requires one.
pub fn check_idempotency_key(
    credential: &str,
    rule: IdempotencyKey,
    parts: &Parts,
) -> Result<(), CredError> {
    if rule == IdempotencyKey::Optional
        || !(parts.method == Method::POST || parts.method == Method::PUT)
    {
        return Ok(());
    }
    let present = parts
        .headers
        .get(X_IDEMPOTENCY_KEY)
        .is_some_and(|v| !v.as_bytes().iter().all(u8::is_ascii_whitespace));
    if present {
        Ok(())
    } else {
        Err(CredError::Request(format!(
            "x-idempotency-key is missing: credential `{credential}` requires it on every POST and PUT (idempotency_key = \"required\"); send a unique key per payment, the same one on a retry"
        )))
    }
}

/// Adds `x-fapi-interaction-id` unless the app sent one: a fresh UUID v4,
/// or the fixed nonce `countersign sign --nonce` was given.
pub fn interaction_id(parts: &mut Parts, params: &SignParams) -> Result<(), CredError> {
    if parts.headers.contains_key(X_FAPI_INTERACTION_ID) {
        return Ok(());
    }
    let id = match &params.nonce {
        Some(n) => n.clone(),
        None => uuid_v4()?,
    };
    let value = HeaderValue::from_str(&id)
        .map_err(|_| CredError::Request("the fixed nonce is not a header value".into()))?;
    parts.headers.insert(X_FAPI_INTERACTION_ID, value);
    Ok(())
}

/// A random UUID (RFC 9562 version 4), lowercase.
pub fn uuid_v4() -> Result<String, CredError> {
    let mut b = [0u8; 16];
    crate::random::fill(&mut b)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}
