//! The rules that tie an hmac template together: what the headers use
//! must be signed or configured, the body once and its digest after it,
//! a signature in some header.

use http::HeaderName;

use super::super::super::{Field, Part, Secret, Template};
use super::super::Checker;
use super::RawHmac;

impl Checker<'_> {
    /// The rules that tie the string to sign, the headers and the other
    /// keys together.
    pub(super) fn fit(
        &mut self,
        path: &str,
        sign: &[Part],
        headers: &[(HeaderName, Template)],
        raw: &RawHmac,
        api_key: Option<&Option<Secret>>,
    ) {
        let signed = |f: Field| sign.contains(&Part::Field(f));
        let bodies = sign
            .iter()
            .filter(|p| **p == Part::Field(Field::Body))
            .count();
        if bodies > 1 {
            self.problem(
                format!("{path}.sign"),
                "names \"body\" more than once; the body is signed as it streams, once",
            );
        }
        let at = |f: Field| sign.iter().position(|p| *p == Part::Field(f));
        if let (Some(b), Some(d)) = (at(Field::Body), at(Field::BodyDigest)) {
            if d < b {
                self.problem(
                    format!("{path}.sign[{d}]"),
                    "\"body_digest\" is known only once the body has passed, so it cannot come before \"body\"",
                );
            }
        }
        if !headers
            .iter()
            .any(|(_, t)| t.fields().any(|f| f == Field::Signature))
        {
            self.problem(
                format!("{path}.headers"),
                "no header holds {signature}; put it in one, e.g. \"X-Signature\" = \"{signature}\"",
            );
        }
        for (header, t) in headers {
            // The key as written, for its path.
            let name = raw
                .headers
                .iter()
                .flat_map(|h| h.keys())
                .find(|k| k.eq_ignore_ascii_case(header.as_str()))
                .map_or(header.as_str(), String::as_str);
            for f in t.fields() {
                let drawn = matches!(f, Field::Timestamp | Field::Nonce | Field::BodyDigest);
                if drawn && !signed(f) {
                    self.problem(
                        format!("{path}.headers.{name}"),
                        format!("uses {{{}}}, which the string to sign does not define; add \"{}\" to `sign`", f.name(), f.name()),
                    );
                }
            }
        }
        let used = |f: Field| signed(f) || headers.iter().any(|(_, t)| t.fields().any(|g| g == f));
        if used(Field::ApiKey) && api_key.is_none() {
            self.problem(
                format!("{path}.api_key"),
                "missing; `sign` or a header uses {api_key}",
            );
        }
        if let Some(Some(k)) = api_key {
            let in_header = headers
                .iter()
                .any(|(_, t)| t.fields().any(|g| g == Field::ApiKey));
            if in_header && http::HeaderValue::from_str(k.expose()).is_err() {
                self.problem(
                    format!("{path}.api_key"),
                    "goes into a header, and is not a valid header value (control characters or line breaks)",
                );
            }
        }
        match (used(Field::BodyDigest), raw.body_digest.is_some()) {
            (true, false) => self.problem(
                format!("{path}.body_digest"),
                "missing; {body_digest} is used, so say how: { algorithm = \"sha256\", over = \"body\", encoding = \"hex\" }",
            ),
            (false, true) => self.problem(
                format!("{path}.body_digest"),
                "is set, but neither `sign` nor a header uses body_digest",
            ),
            _ => {}
        }
        if raw.no_body.is_some() && !used(Field::BodyDigest) && !signed(Field::Body) {
            self.problem(
                format!("{path}.no_body"),
                "is set, but the template signs neither the body nor body_digest, so the body is not read to tell whether there is one",
            );
        }
    }
}
