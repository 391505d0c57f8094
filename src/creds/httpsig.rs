//! RFC 9421 HTTP Message Signatures (`http-signature`): a signature over
//! the components a route names, sent as `Signature-Input` and
//! `Signature`, with an RFC 9530 `Content-Digest` of the body when the body
//! is covered. The digest is computed while the body is spooled (the same
//! one pass as every other body digest). docs/credentials/http-signature.md
//! has the rules and a recipe; the unit tests are RFC 9421 appendix B's.

mod base;
mod signer;
#[cfg(test)]
mod tests;

use std::fmt;

use base64::Engine as _;
use http::request::Parts;
use http::{HeaderName, HeaderValue};

use super::{BodyDigest, BodyHash, CredError, SignParams};
use crate::config::{Component, DigestAlg, HttpSigConfig};
pub use base::{signature_base, signature_params, Params};
use signer::Signer;

pub const SIGNATURE: HeaderName = HeaderName::from_static("signature");
pub const SIGNATURE_INPUT: HeaderName = HeaderName::from_static("signature-input");
pub const CONTENT_DIGEST: HeaderName = HeaderName::from_static("content-digest");

pub struct HttpSignature {
    name: String,
    config: HttpSigConfig,
    signer: Signer,
}

impl fmt::Debug for HttpSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSignature")
            .field("name", &self.name)
            .field("algorithm", &self.config.algorithm.as_str())
            .field("label", &self.config.label)
            .finish_non_exhaustive()
    }
}

/// `sha-256=:...:` (RFC 9530 section 2) for the body `digest` describes.
pub fn content_digest(alg: DigestAlg, digest: &BodyDigest) -> Option<String> {
    let bytes = match alg {
        DigestAlg::Sha256 => digest.sha256()?.to_vec(),
        DigestAlg::Sha512 => digest.sha512()?.to_vec(),
    };
    Some(format!("{}={}", alg.as_str(), base::sf_bytes(&bytes)))
}

impl HttpSignature {
    /// Loads the key of credential `name`. Errors are `(key, message)`
    /// under `credential.NAME`.
    pub fn build(
        name: &str,
        config: &HttpSigConfig,
    ) -> Result<HttpSignature, (&'static str, String)> {
        let signer = Signer::new(config.algorithm, &config.key).map_err(|e| ("", e))?;
        Ok(HttpSignature {
            name: name.to_string(),
            config: config.clone(),
            signer,
        })
    }

    /// The headers this credential writes.
    pub fn header_names(&self) -> Vec<HeaderName> {
        let mut names = vec![SIGNATURE, SIGNATURE_INPUT];
        if self.config.content_digest.is_some() {
            names.push(CONTENT_DIGEST);
        }
        names
    }

    /// Asks for the body's digest when the signature covers it, and for
    /// the body read whole when it covers `content-length` (which an app
    /// streaming a chunked body does not send; countersign then does).
    pub fn body_hash(&self, hash: &mut BodyHash) {
        match self.config.content_digest {
            Some(DigestAlg::Sha256) => hash.want_sha256(),
            Some(DigestAlg::Sha512) => hash.want_sha512(),
            None => {}
        }
        let length = Component::Header("content-length".into());
        if self.config.components.contains(&length) {
            hash.want_length();
        }
    }

    /// Writes `Content-Digest` (when the body is covered), then signs and
    /// writes `Signature-Input` and `Signature`.
    pub fn apply(
        &self,
        parts: &mut Parts,
        digest: BodyDigest,
        params: &SignParams,
    ) -> Result<(), CredError> {
        let refuse =
            |what: String| CredError::Request(format!("http-signature `{}`: {what}", self.name));
        if let Some(alg) = self.config.content_digest {
            let value = content_digest(alg, &digest)
                .ok_or_else(|| refuse("the body was not hashed".into()))?;
            parts.headers.insert(
                CONTENT_DIGEST,
                HeaderValue::from_str(&value).map_err(|_| refuse("bad digest".into()))?,
            );
        }
        let nonce = match (&params.nonce, self.config.nonce) {
            (_, false) => None,
            (Some(fixed), true) => {
                if fixed.is_empty() || !fixed.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
                    return Err(refuse("the fixed nonce must be printable ASCII".into()));
                }
                Some(fixed.clone())
            }
            (None, true) => Some(fresh_nonce()?),
        };
        let now = params.epoch.unwrap_or_else(super::paypay::unix_now);
        let created = self.config.created.then_some(now);
        let p = Params {
            created,
            expires: self
                .config
                .expires
                .and_then(|d| created.map(|c| c.saturating_add(d.as_secs()))),
            keyid: self.config.keyid.as_deref(),
            nonce: nonce.as_deref(),
            alg: self
                .config
                .alg_param
                .then_some(self.config.algorithm.as_str()),
            tag: self.config.tag.as_deref(),
        };
        let input = signature_params(&self.config.components, &p);
        let base = signature_base(&self.config.components, parts, &input).map_err(|m| {
            refuse(format!(
                "the request has no {}, which the signature covers (components); the app must send it",
                m.0
            ))
        })?;
        let signature = self.signer.sign(&base)?;
        let label = &self.config.label;
        let value = |text: String| {
            HeaderValue::from_str(&text)
                .map_err(|_| refuse("a signature header cannot be built".into()))
        };
        parts
            .headers
            .insert(SIGNATURE_INPUT, value(format!("{label}={input}"))?);
        parts.headers.insert(
            SIGNATURE,
            value(format!("{label}={}", base::sf_bytes(&signature)))?,
        );
        Ok(())
    }
}

impl HttpSignature {
    /// The signature base of the signature this credential wrote on
    /// `parts` (read back from its `Signature-Input` member), for
    /// `countersign sign` to show beside the headers. `None` when it wrote
    /// none.
    pub fn signature_base(&self, parts: &Parts) -> Option<String> {
        let input = parts.headers.get(SIGNATURE_INPUT)?.to_str().ok()?;
        let params = input.strip_prefix(&format!("{}=", self.config.label))?;
        let base = signature_base(&self.config.components, parts, params).ok()?;
        Some(String::from_utf8_lossy(&base).into_owned())
    }
}

/// 128 random bits, base64url without padding: a valid RFC 8941 string.
fn fresh_nonce() -> Result<String, CredError> {
    let mut bytes = [0u8; 16];
    crate::random::fill_public(&mut bytes)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}
