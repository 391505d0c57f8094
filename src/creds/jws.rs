//! `jws-detached`: UK open banking's `x-jws-signature`, a JWS in compact
//! form with the payload left out (`header..signature`), signed over the
//! exact body bytes sent upstream. docs/credentials/jws-detached.md has the
//! rules and the UK OB recipe.
//!
//! ring signs a whole message (PS256 and ES256 hash it themselves), so the
//! body is kept in memory while it is spooled, in the same one pass as every
//! other digest, up to the credential's own `max_body` (413 past it).
//! Optional FAPI rules ride along: `fapi.rs`.

mod fapi;
mod signer;
#[cfg(test)]
mod tests;

use http::request::Parts;
use http::{HeaderName, HeaderValue};

use super::{BodyDigest, BodyHash, CredError, SignParams};
use crate::config::JwsDetachedConfig;
pub use fapi::X_FAPI_INTERACTION_ID;
pub use signer::{protected_header, signing_input, Signer};

pub const X_JWS_SIGNATURE: HeaderName = HeaderName::from_static("x-jws-signature");

#[derive(Debug)]
pub struct JwsDetached {
    name: String,
    config: JwsDetachedConfig,
    signer: Signer,
}

impl JwsDetached {
    /// Builds credential `name`. Errors are `(key, message)` under
    /// `credential.NAME`.
    pub fn build(
        name: &str,
        config: &JwsDetachedConfig,
    ) -> Result<JwsDetached, (&'static str, String)> {
        let signer =
            Signer::new(config.pkcs8.expose(), config.alg).map_err(|e| ("private_key_file", e))?;
        Ok(JwsDetached {
            name: name.to_string(),
            config: config.clone(),
            signer,
        })
    }

    /// The headers this credential writes: the app's own are removed first.
    /// `x-fapi-interaction-id` is not among them: the app's passes through.
    pub fn header_names(&self) -> Vec<HeaderName> {
        vec![X_JWS_SIGNATURE]
    }

    /// Asks for the body itself, up to `max_body`.
    pub fn body_hash(&self, parts: &Parts, hash: &mut BodyHash) {
        let declared = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        hash.want_message(self.config.max_body, &self.name, declared);
    }

    /// `idempotency_key = "required"`: a POST or PUT without
    /// `x-idempotency-key` is refused before its body is read.
    pub fn refuse_early(&self, parts: &Parts) -> Result<(), CredError> {
        fapi::check_idempotency_key(&self.name, self.config.idempotency_key, parts)
    }

    /// Adds `x-fapi-interaction-id` when asked to and the app sent none,
    /// then signs the body. A request without a body (a GET) has no
    /// payload to sign and gets no `x-jws-signature`.
    pub fn apply(
        &self,
        parts: &mut Parts,
        digest: BodyDigest,
        params: &SignParams,
    ) -> Result<(), CredError> {
        if self.config.interaction_id {
            fapi::interaction_id(parts, params)?;
        }
        let body = digest.message().ok_or_else(|| {
            CredError::Request(format!(
                "jws-detached `{}`: the body was not kept to be signed",
                self.name
            ))
        })?;
        if body.is_empty() {
            return Ok(());
        }
        let iat = params.epoch.unwrap_or_else(super::paypay::unix_now);
        let header = protected_header(&self.config, iat);
        let jws = self
            .signer
            .detached(&header, &body, self.config.version.unencoded_payload())
            // ring fails to sign only when the OS generator fails (the PSS
            // salt, the ECDSA nonce): countersign's fault, not the app's.
            .map_err(|_| CredError::Random(crate::random::RandomError))?;
        let value = HeaderValue::from_str(&jws).map_err(|_| {
            CredError::Request(format!(
                "jws-detached `{}`: the signature is not a header value",
                self.name
            ))
        })?;
        parts.headers.insert(X_JWS_SIGNATURE, value);
        Ok(())
    }
}

/// For `countersign sign`: the protected header of an `x-jws-signature`
/// as JSON, and how the payload enters the signing input. (The signature
/// itself differs on every run: PS256 salts, ES256 draws a nonce.)
pub fn explain(value: &HeaderValue) -> Option<String> {
    use base64::Engine as _;
    let encoded = value.to_str().ok()?.split('.').next()?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .ok()?;
    let header: serde_json::Value = serde_json::from_slice(&json).ok()?;
    let payload = if header.get("b64") == Some(&serde_json::Value::Bool(false)) {
        "the body as sent (b64=false)"
    } else {
        "the body base64url-encoded"
    };
    Some(format!("{header}; signed: BASE64URL(header) '.' {payload}"))
}
