//! AWS Signature Version 4 (`aws-sigv4`): HMAC-SHA256 over the canonical
//! request, with a key derived from the secret access key, the date, the
//! region and the service. docs/credentials/aws-sigv4.md has the rules and
//! a recipe; the unit tests are cases of AWS's published test suite.
//!
//! The body's SHA-256 is computed while the body is spooled (the same one
//! pass as PayPay's MD5), or not at all when the route signs
//! `UNSIGNED-PAYLOAD` (S3), in which case the body streams through.
//!
//! With `algorithm = "sigv4a"` the same canonical request is signed by
//! ECDSA P-256 for a set of regions (sigv4/v4a.rs).

mod canonical;
mod chunked;
mod container;
#[cfg(test)]
mod streaming_tests;
#[cfg(test)]
mod tests;
pub mod v4a;
#[cfg(test)]
mod v4a_tests;
mod web_identity;

use std::sync::Arc;

use hmac::{Hmac, Mac};
use http::header::{AUTHORIZATION, EXPECT, TRANSFER_ENCODING, USER_AGENT};
use http::request::Parts;
use http::{HeaderName, HeaderValue};
use sha2::{Digest as _, Sha256};

use super::token::{TokenManager, TokenRegistry, TokenStats};
use super::{BodyDigest, BodyHash, CredError, Explain, Explained, SignParams};
use crate::config::{AwsAlgorithm, AwsKeys, AwsPayload, AwsSigV4Config};
use crate::egress::EgressPolicy;
use crate::upstream::UpstreamSettings;
use web_identity::Keys;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
pub const X_AMZ_DATE: HeaderName = HeaderName::from_static("x-amz-date");
pub const X_AMZ_SECURITY_TOKEN: HeaderName = HeaderName::from_static("x-amz-security-token");
pub const X_AMZ_CONTENT_SHA256: HeaderName = HeaderName::from_static("x-amz-content-sha256");
pub const X_AMZ_REGION_SET: HeaderName = HeaderName::from_static("x-amz-region-set");
pub const X_AMZ_DECODED_CONTENT_LENGTH: HeaderName =
    HeaderName::from_static("x-amz-decoded-content-length");

/// Headers never signed: what a hop may change or add (as AWS's SDKs).
fn unsigned_header(name: &HeaderName) -> bool {
    name == AUTHORIZATION
        || name == USER_AGENT
        || name == EXPECT
        || name == TRANSFER_ENCODING
        || name.as_str() == "x-amzn-trace-id"
}

#[derive(Debug)]
pub struct AwsSigV4 {
    name: String,
    config: AwsSigV4Config,
    /// For keys obtained from STS; `None` for static keys.
    manager: Option<Arc<TokenManager>>,
    /// SigV4A's private key, derived once per access key.
    v4a_keys: v4a::KeyCache,
}

pub use chunked::ChunkSigning;

/// Everything a signature is made of, kept for tests and `sign`. No
/// `Debug`: the signing key is a secret for the day.
pub struct Signed {
    pub canonical_request: Vec<u8>,
    pub string_to_sign: String,
    pub signature: String,
    pub authorization: String,
    /// Derived from the secret, the date, region and service.
    pub signing_key: [u8; 32],
    /// `date/region/service/aws4_request`.
    pub scope: String,
}

/// The inputs of one signature.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    /// Lowercase names, in the order sent; only those to be signed.
    pub headers: Vec<(&'a str, &'a [u8])>,
    pub payload_hash: &'a str,
    /// `YYYYMMDDTHHMMSSZ`.
    pub amz_date: &'a str,
}

/// The key identity and scope a signature is made with.
pub struct Scope<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    /// S3's single encoding of the path, unnormalised.
    pub s3: bool,
}

/// The canonical request and the signed header list (SigV4's and
/// SigV4A's alike).
fn canonical_request(req: &Request<'_>, s3: bool) -> (Vec<u8>, String) {
    let (canonical_headers, signed_headers) = canonical::headers(req.headers.iter().copied());
    let mut cr = Vec::new();
    for part in [
        req.method.as_bytes(),
        canonical::uri(req.path, s3).as_bytes(),
        canonical::query(req.query).as_bytes(),
        &canonical_headers,
        signed_headers.as_bytes(),
    ] {
        cr.extend_from_slice(part);
        cr.push(b'\n');
    }
    cr.extend_from_slice(req.payload_hash.as_bytes());
    (cr, signed_headers)
}

pub fn sign(req: &Request<'_>, scope: &Scope<'_>) -> Signed {
    let (cr, signed_headers) = canonical_request(req, scope.s3);
    let date = req.amz_date.get(..8).unwrap_or_default();
    let credential_scope = format!("{date}/{}/{}/aws4_request", scope.region, scope.service);
    let string_to_sign = format!(
        "{ALGORITHM}\n{}\n{credential_scope}\n{}",
        req.amz_date,
        hex(&Sha256::digest(&cr))
    );
    let mut key = hmac(
        format!("AWS4{}", scope.secret_access_key).as_bytes(),
        date.as_bytes(),
    );
    for part in [scope.region, scope.service, "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    let signature = hex(&hmac(&key, string_to_sign.as_bytes()));
    let authorization = format!(
        "{ALGORITHM} Credential={}/{credential_scope}, SignedHeaders={signed_headers}, Signature={signature}",
        scope.access_key_id
    );
    Signed {
        canonical_request: cr,
        string_to_sign,
        signature,
        authorization,
        signing_key: key,
        scope: credential_scope,
    }
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key).expect("invariant: HMAC accepts keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `YYYYMMDDTHHMMSSZ` for Unix time `epoch`.
pub fn amz_date(epoch: u64) -> String {
    let t = i64::try_from(epoch)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

impl AwsSigV4 {
    /// Builds credential `name`; keys from web identity come from a
    /// manager kept by `tokens`. Errors are `(key, message)` under
    /// `credential.NAME`.
    pub fn build(
        name: &str,
        config: &AwsSigV4Config,
        tokens: &TokenRegistry,
        settings: UpstreamSettings,
        egress: &Arc<EgressPolicy>,
    ) -> Result<AwsSigV4, (&'static str, String)> {
        let manager = match &config.keys {
            AwsKeys::Static(_) => None,
            AwsKeys::WebIdentity(w) => {
                Some(web_identity::manager(name, w, tokens, settings, egress)?)
            }
            AwsKeys::Container(c) => Some(container::manager(name, c, tokens, settings, egress)?),
        };
        Ok(AwsSigV4 {
            name: name.to_string(),
            config: config.clone(),
            manager,
            v4a_keys: v4a::KeyCache::default(),
        })
    }

    /// Static keys can always sign; others once keys are held.
    pub fn is_ready(&self) -> bool {
        self.manager.as_ref().is_none_or(|m| m.has_valid_token())
    }

    pub fn stats(&self) -> Option<TokenStats> {
        self.manager.as_ref().map(|m| m.stats())
    }

    fn s3(&self) -> bool {
        is_s3(&self.config.service)
    }

    /// The headers this credential writes.
    pub fn header_names(&self) -> Vec<HeaderName> {
        vec![
            AUTHORIZATION,
            X_AMZ_DATE,
            X_AMZ_SECURITY_TOKEN,
            X_AMZ_CONTENT_SHA256,
            X_AMZ_DECODED_CONTENT_LENGTH,
            X_AMZ_REGION_SET,
        ]
    }

    /// Asks for the body's SHA-256 unless the route signs `UNSIGNED-PAYLOAD`.
    pub fn body_hash(&self, hash: &mut BodyHash) {
        if self.config.payload == AwsPayload::Signed {
            hash.want_sha256();
        }
    }

    /// Signs with the static keys, or with the current temporary keys
    /// (waiting for them up to a few seconds when none are held).
    pub async fn apply(
        &self,
        parts: &mut Parts,
        digest: BodyDigest,
        params: &SignParams,
    ) -> Result<(), CredError> {
        match (&self.config.keys, &self.manager) {
            (AwsKeys::Static(k), _) => {
                let keys = Keys {
                    access_key_id: k.access_key_id.expose(),
                    secret_access_key: k.secret_access_key.expose(),
                    session_token: k.session_token.as_ref().map_or("", |t| t.expose()),
                };
                self.sign_with(parts, digest, params, &keys)
            }
            (AwsKeys::WebIdentity(_) | AwsKeys::Container(_), Some(manager)) => {
                let value = manager
                    .current()
                    .await
                    .map_err(|u| CredError::unavailable(&self.name, "AWS credentials", u))?;
                let keys = Keys::unpack(&value).ok_or_else(|| {
                    CredError::Request("aws-sigv4: the temporary keys are malformed".into())
                })?;
                self.sign_with(parts, digest, params, &keys)
            }
            (AwsKeys::WebIdentity(_) | AwsKeys::Container(_), None) => Err(CredError::Request(
                "aws-sigv4: no key manager for temporary keys".into(),
            )),
        }
    }

    fn sign_with(
        &self,
        parts: &mut Parts,
        digest: BodyDigest,
        params: &SignParams,
        keys: &Keys<'_>,
    ) -> Result<(), CredError> {
        let payload_hash = match self.config.payload {
            AwsPayload::Unsigned => UNSIGNED_PAYLOAD.to_string(),
            AwsPayload::Streaming => chunked::STREAMING_PAYLOAD.to_string(),
            AwsPayload::Signed => hex(&digest
                .sha256()
                .ok_or_else(|| CredError::Request("aws-sigv4: the body was not hashed".into()))?),
        };
        let amz_date = amz_date(params.epoch.unwrap_or_else(super::paypay::unix_now));
        let value = |text: &str| {
            HeaderValue::from_str(text)
                .map_err(|_| CredError::Request("aws-sigv4: a header cannot be built".into()))
        };
        let decoded_len = match self.config.payload {
            AwsPayload::Streaming => Some(chunked::streaming_headers(parts)?),
            AwsPayload::Signed | AwsPayload::Unsigned => None,
        };
        parts.headers.insert(X_AMZ_DATE, value(&amz_date)?);
        if !keys.session_token.is_empty() {
            let mut v = value(keys.session_token)?;
            v.set_sensitive(true);
            parts.headers.insert(X_AMZ_SECURITY_TOKEN, v);
        }
        if let AwsAlgorithm::SigV4A { region_set } = &self.config.algorithm {
            parts.headers.insert(X_AMZ_REGION_SET, value(region_set)?);
        }
        if self.config.content_sha256 {
            parts
                .headers
                .insert(X_AMZ_CONTENT_SHA256, value(&payload_hash)?);
        }
        let headers = parts
            .headers
            .iter()
            .filter(|(n, _)| !unsigned_header(n))
            .map(|(n, v)| (n.as_str(), v.as_bytes()))
            .collect();
        let req = Request {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query(),
            headers,
            payload_hash: &payload_hash,
            amz_date: &amz_date,
        };
        if let AwsAlgorithm::SigV4A { .. } = self.config.algorithm {
            let key = self
                .v4a_keys
                .key(keys.access_key_id, keys.secret_access_key)
                .ok_or_else(|| {
                    CredError::Request(
                        "aws-sigv4: no SigV4A key derives from this access key".into(),
                    )
                })?;
            let signed = v4a::sign(
                &req,
                keys.access_key_id,
                &self.config.service,
                self.s3(),
                &key,
            );
            let mut auth = value(&signed.authorization)?;
            auth.set_sensitive(true);
            parts.headers.insert(AUTHORIZATION, auth);
            explain(parts, &signed.canonical_request, &signed.string_to_sign);
            return Ok(());
        }
        let scope = Scope {
            access_key_id: keys.access_key_id,
            secret_access_key: keys.secret_access_key,
            region: &self.config.region,
            service: &self.config.service,
            s3: self.s3(),
        };
        let signed = sign(&req, &scope);
        let mut auth = value(&signed.authorization)?;
        auth.set_sensitive(true);
        parts.headers.insert(AUTHORIZATION, auth);
        explain(parts, &signed.canonical_request, &signed.string_to_sign);
        if let Some(decoded_len) = decoded_len {
            parts.extensions.insert(ChunkSigning {
                key: signed.signing_key,
                amz_date,
                scope: signed.scope,
                seed: signed.signature,
                decoded_len,
            });
        }
        Ok(())
    }
}

/// For `countersign sign` only (it puts `Explain` in the request): what
/// was signed.
fn explain(parts: &mut Parts, canonical_request: &[u8], string_to_sign: &str) {
    if parts.extensions.get::<Explain>().is_none() {
        return;
    }
    let lines = canonical::explain(canonical_request, string_to_sign);
    // After what an earlier credential of a stack explained.
    match parts.extensions.get_mut::<Explained>() {
        Some(Explained(earlier)) => earlier.extend(lines),
        None => {
            parts.extensions.insert(Explained(lines));
        }
    }
}

/// Services signed the S3 way: the path encoded once, not normalised.
pub fn is_s3(service: &str) -> bool {
    matches!(service, "s3" | "s3-outposts")
}
