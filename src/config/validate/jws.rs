//! Rules for `type = "jws-detached"`: a version UK OB defines, a signing
//! key that suits the algorithm, a `kid` and an issuer, and a memory bound
//! no larger than the global `max_body` needs and the memory budget holds.

use super::super::raw::RawJwsDetached;
use std::collections::BTreeMap;

use super::super::{
    CredentialConfig, IdempotencyKey, JwsDetachedConfig, ObVersion, ProxySettings, SigningAlg,
};
use super::Checker;

/// The default bound on the body one request keeps in memory to be signed:
/// UK OB payloads are small JSON documents.
pub const DEFAULT_MAX_BODY: u64 = 4 << 20;

/// The largest `max_body` accepted: every request in flight on the route
/// may hold this much.
const MAX_BODY_CEILING: u64 = 64 << 20;

/// The trust anchor of the Open Banking Directory.
const OB_DIRECTORY: &str = "openbanking.org.uk";

impl Checker<'_> {
    pub(super) fn jws_detached(
        &mut self,
        path: &str,
        raw: RawJwsDetached,
    ) -> Option<CredentialConfig> {
        let version = match raw.version.as_deref() {
            Some(v) => {
                let parsed = ObVersion::parse(v);
                if parsed.is_none() {
                    self.problem(
                        format!("{path}.version"),
                        "is not a UK open banking Read/Write API version countersign knows; use the bank's, \"3.1.0\" to \"3.1.11\" or \"4.0.0\" (3.0 signatures are no longer accepted by UK OB)",
                    );
                }
                parsed
            }
            None => {
                self.problem(
                    format!("{path}.version"),
                    "missing; the UK OB Read/Write API version the bank speaks, e.g. \"3.1.10\" (before 3.1.4 the signature carries b64=false)",
                );
                None
            }
        };
        let alg = match raw.algorithm.as_deref() {
            None | Some("PS256") => Some(SigningAlg::Ps256),
            Some("ES256") => Some(SigningAlg::Es256),
            Some(_) => {
                self.problem(
                    format!("{path}.algorithm"),
                    "must be \"PS256\" (UK open banking's) or \"ES256\"",
                );
                None
            }
        };
        let key_path = format!("{path}.private_key_file");
        let pkcs8 = match raw.private_key_file.as_deref() {
            Some(file) => self.private_key(&key_path, file),
            None => {
                self.problem(
                    &key_path,
                    "missing; the PKCS#8 PEM file of the signing key (BEGIN PRIVATE KEY)",
                );
                None
            }
        };
        if let (Some(der), Some(alg)) = (&pkcs8, alg) {
            if let Err(e) = super::oauth2::key::key_suits(der.expose(), alg) {
                self.problem(&key_path, e);
            }
        }
        let kid = self.header_text(
            path,
            "kid",
            raw.kid.as_deref(),
            "the signing key's id at the trust anchor, e.g. \"${file:/etc/ob/kid}\"",
        );
        let issuer = self.header_text(path, "issuer", raw.issuer.as_deref(), "http://openbanking.org.uk/iss, e.g. \"0015800001041RHAAY/4ZsLc3Kqh8y9ia3e9ooc8Y\" (org id/software statement id)");
        let trust_anchor = match raw.trust_anchor.as_deref() {
            None => Some(OB_DIRECTORY.to_string()),
            Some(t) => self.header_text(path, "trust_anchor", Some(t), ""),
        };
        let typ = match raw.typ.as_deref() {
            None => false,
            Some("JOSE") => true,
            Some(_) => {
                self.problem(
                    format!("{path}.typ"),
                    "must be \"JOSE\" (the only value UK OB allows), or left out",
                );
                false
            }
        };
        let max_body = self.size(&format!("{path}.max_body"), raw.max_body, DEFAULT_MAX_BODY);
        if max_body == 0 || max_body > MAX_BODY_CEILING {
            self.problem(
                format!("{path}.max_body"),
                "must be between 1 byte and 64MiB: each request in flight holds up to this much in memory",
            );
        }
        let idempotency_key = match raw.idempotency_key.as_deref() {
            None | Some("optional") => IdempotencyKey::Optional,
            Some("required") => IdempotencyKey::Required,
            Some(_) => {
                self.problem(
                    format!("{path}.idempotency_key"),
                    "must be \"required\" (refuse a POST or PUT without x-idempotency-key) or \"optional\"",
                );
                IdempotencyKey::Optional
            }
        };
        Some(CredentialConfig::JwsDetached(Box::new(JwsDetachedConfig {
            alg: alg?,
            pkcs8: pkcs8?,
            kid: kid?,
            issuer: issuer?,
            trust_anchor: trust_anchor?,
            version: version?,
            typ,
            max_body,
            interaction_id: raw.interaction_id.unwrap_or(false),
            idempotency_key,
        })))
    }

    /// The body a jws-detached credential keeps in memory takes from
    /// `spool_memory_total` and cannot go to disk: a bound the budget can
    /// never hold would refuse every body past the budget.
    pub(super) fn jws_within_budget(
        &mut self,
        proxy: Option<&ProxySettings>,
        credentials: &BTreeMap<String, CredentialConfig>,
    ) {
        let Some(proxy) = proxy else { return };
        let budget = proxy.limits.spool_memory_total;
        for (name, cred) in credentials {
            let CredentialConfig::JwsDetached(jws) = cred else {
                continue;
            };
            let held = jws.max_body.min(proxy.max_body);
            if held > budget {
                self.problem(
                    format!("credential.{name}.max_body"),
                    format!("the body held in memory to be signed, up to {held} bytes, is more than proxy.spool_memory_total ({budget} bytes) can ever hold, and it cannot go to disk: lower max_body or raise proxy.spool_memory_total"),
                );
            }
        }
    }

    /// A value that goes into the JOSE header as a JSON string: a literal or
    /// a secret reference (`${file:}`, `${env:}`), without control
    /// characters. Errors never echo the value.
    fn header_text(
        &mut self,
        path: &str,
        key: &str,
        value: Option<&str>,
        example: &str,
    ) -> Option<String> {
        let at = format!("{path}.{key}");
        let Some(value) = value else {
            self.problem(at, format!("missing; {example}"));
            return None;
        };
        let text = self.secret(&at, value)?.expose().trim().to_string();
        if text.is_empty() || text.chars().any(char::is_control) {
            self.problem(
                at,
                "must be one line of text (after trimming), without control characters",
            );
            return None;
        }
        Some(text)
    }
}

#[cfg(test)]
mod tests;
