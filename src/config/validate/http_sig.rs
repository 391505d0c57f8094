//! Rules for `type = "http-signature"` (RFC 9421): the algorithm and a key
//! that suits it, the covered components, the signature parameters, and
//! the `Content-Digest` the body needs when it is covered.

mod key;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use super::super::raw::RawHttpSignature;
use super::super::units::parse_duration;
use super::super::{Component, CredentialConfig, DigestAlg, HttpSigAlgorithm, HttpSigConfig};
use super::Checker;

const ALGORITHMS: &str =
    "\"hmac-sha256\", \"ed25519\", \"ecdsa-p256-sha256\", \"rsa-pss-sha512\" or \"rsa-v1_5-sha256\"";

const DERIVED: &str = "@method, @target-uri, @authority, @scheme, @path, @query, @request-target, @query-param;name=\"...\"";

/// Headers countersign writes after the signature is made, or that the
/// signature itself is: covering them cannot work.
const UNCOVERABLE: &[&str] = &["signature", "signature-input"];

/// An RFC 8941 key: a lowercase letter or `*`, then lowercase letters,
/// digits, `_`, `-`, `.` and `*`.
fn sf_key(text: &str) -> bool {
    let mut bytes = text.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b == b'*')
        && bytes.all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.' | b'*')
        })
}

/// A query parameter name as it is written in a query: not empty, and
/// none of the characters that end it or an RFC 8941 string.
fn query_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\\' | b'&' | b'=' | b'#'))
}

/// Printable ASCII, what an RFC 8941 string may hold.
fn sf_string(text: &str) -> bool {
    text.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

impl Checker<'_> {
    pub(super) fn http_signature(
        &mut self,
        path: &str,
        raw: RawHttpSignature,
    ) -> Option<CredentialConfig> {
        let algorithm = match raw.algorithm.as_deref() {
            Some(name) => {
                let found = HttpSigAlgorithm::ALL
                    .into_iter()
                    .find(|a| a.as_str() == name);
                if found.is_none() {
                    self.problem(
                        format!("{path}.algorithm"),
                        format!("is not supported; use {ALGORITHMS}"),
                    );
                }
                found
            }
            None => {
                self.problem(
                    format!("{path}.algorithm"),
                    format!("missing; use {ALGORITHMS}"),
                );
                None
            }
        };
        let key = algorithm.and_then(|alg| self.http_sig_key(path, alg, &raw));
        let keyid = raw.keyid.clone().filter(|k| {
            let ok = !k.is_empty() && sf_string(k);
            if !ok {
                self.problem(
                    format!("{path}.keyid"),
                    "must be printable ASCII and not empty (it is sent in Signature-Input)",
                );
            }
            ok
        });
        let label = raw.label.clone().unwrap_or_else(|| "sig1".into());
        if !sf_key(&label) {
            self.problem(
                format!("{path}.label"),
                "must start with a lowercase letter and hold only lowercase letters, digits, `_`, `-`, `.` and `*` (an RFC 8941 key), e.g. \"sig1\"",
            );
        }
        let components = self.components(path, raw.components.as_deref());
        let content_digest = match raw.content_digest.as_deref() {
            None => None,
            Some("sha-256") => Some(DigestAlg::Sha256),
            Some("sha-512") => Some(DigestAlg::Sha512),
            Some(_) => {
                self.problem(
                    format!("{path}.content_digest"),
                    "must be \"sha-256\" or \"sha-512\"",
                );
                None
            }
        };
        let digest_covered = raw
            .components
            .as_ref()
            .map(|c| c.iter().any(|n| n == "content-digest"));
        match (digest_covered, &raw.content_digest) {
            (Some(true), None) => self.problem(
                format!("{path}.content_digest"),
                "missing: `components` covers content-digest, which countersign computes from the body; set content_digest = \"sha-256\" or \"sha-512\"",
            ),
            (Some(false), Some(_)) => self.problem(
                format!("{path}.content_digest"),
                "is set but `components` does not cover \"content-digest\", so the body would not be signed; add it to components",
            ),
            _ => {}
        }
        let expires = raw
            .expires
            .as_deref()
            .and_then(|text| match parse_duration(text) {
                Ok(d) if !d.is_zero() => Some(d),
                Ok(_) => {
                    self.problem(format!("{path}.expires"), "must be longer than zero");
                    None
                }
                Err(e) => {
                    self.problem(format!("{path}.expires"), e);
                    None
                }
            });
        let created = raw.created.unwrap_or(true);
        if expires.is_some() && !created {
            self.problem(
                format!("{path}.expires"),
                "is a duration after `created`, which is turned off; set created = true",
            );
        }
        let tag = raw.tag.clone().filter(|t| {
            let ok = !t.is_empty() && sf_string(t);
            if !ok {
                self.problem(
                    format!("{path}.tag"),
                    "must be printable ASCII and not empty (it is sent in Signature-Input)",
                );
            }
            ok
        });
        Some(CredentialConfig::HttpSignature(Box::new(HttpSigConfig {
            algorithm: algorithm?,
            key: key?,
            keyid,
            label,
            components: components?,
            created,
            expires,
            nonce: raw.nonce.unwrap_or(false),
            tag,
            alg_param: raw.alg.unwrap_or(false),
            content_digest,
        })))
    }

    /// The covered components, each checked: a derived component
    /// countersign knows, or a lowercase header name; no repeats.
    fn components(&mut self, path: &str, raw: Option<&[String]>) -> Option<Vec<Component>> {
        let key = format!("{path}.components");
        let Some(raw) = raw else {
            self.problem(
                &key,
                "missing; the components the signature covers, e.g. [\"@method\", \"@target-uri\", \"content-digest\"]",
            );
            return None;
        };
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        let mut ok = true;
        for (i, name) in raw.iter().enumerate() {
            let at = format!("{key}[{i}]");
            let component = if name.starts_with("@query-param") {
                let param = name
                    .strip_prefix("@query-param;name=\"")
                    .and_then(|rest| rest.strip_suffix('"'))
                    .filter(|p| query_name(p));
                if param.is_none() {
                    self.problem(
                        &at,
                        "is not a query parameter component; write one as '@query-param;name=\"Pet\"' (the name percent-encoded as in the query)",
                    );
                }
                param.map(|p| Component::QueryParam(p.to_string()))
            } else if name.starts_with('@') {
                Component::derived(name).or_else(|| {
                    self.problem(
                        &at,
                        format!(
                            "is not a derived component countersign signs; use one of {DERIVED}"
                        ),
                    );
                    None
                })
            } else if name.contains(';') || name.contains('"') {
                self.problem(
                    &at,
                    "has component parameters (;sf, ;key, ;bs, ;req), which are not supported; name the header alone",
                );
                None
            } else if name.bytes().any(|b| b.is_ascii_uppercase()) {
                self.problem(
                    &at,
                    "is not lowercase; RFC 9421 names header components in lowercase",
                );
                None
            } else if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                self.problem(&at, "is not a header name");
                None
            } else if UNCOVERABLE.contains(&name.as_str()) {
                self.problem(
                    &at,
                    "names a header countersign writes with the signature (signature, signature-input); it cannot be covered",
                );
                None
            } else {
                Some(Component::Header(name.clone()))
            };
            match component {
                Some(c) if !seen.insert(c.clone()) => {
                    self.problem(&at, "is listed twice");
                    ok = false;
                }
                Some(c) => out.push(c),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }
}
