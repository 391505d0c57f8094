//! The value of each field for one signature, as the bytes the string to
//! sign and the headers carry.

use std::borrow::Cow;

use http::request::Parts;

use super::timestamp;
use crate::config::{Field, HmacConfig, Part};
use crate::creds::Drawn;

pub struct Values<'a> {
    config: &'a HmacConfig,
    parts: &'a Parts,
    content_type: &'a [u8],
    body_digest: Option<&'a str>,
    drawn: &'a Drawn,
    signature: String,
}

impl<'a> Values<'a> {
    pub fn new(
        config: &'a HmacConfig,
        parts: &'a Parts,
        content_type: &'a [u8],
        body_digest: Option<&'a str>,
        drawn: &'a Drawn,
    ) -> Values<'a> {
        Values {
            config,
            parts,
            content_type,
            body_digest,
            drawn,
            signature: String::new(),
        }
    }

    pub fn with_signature(self, signature: String) -> Values<'a> {
        Values { signature, ..self }
    }

    /// The value of `field`; the body's is empty (it is streamed).
    pub fn get(&self, field: Field) -> Cow<'_, [u8]> {
        let text = |s: &'a str| Cow::Borrowed(s.as_bytes());
        let uri = &self.parts.uri;
        match field {
            Field::Method => text(self.parts.method.as_str()),
            Field::Path => Cow::Borrowed(uri.path().as_bytes()),
            Field::Query => Cow::Borrowed(uri.query().unwrap_or_default().as_bytes()),
            Field::PathWithQuery => match uri.query() {
                Some(q) => Cow::Owned(format!("{}?{q}", uri.path()).into_bytes()),
                None => Cow::Borrowed(uri.path().as_bytes()),
            },
            Field::Body => Cow::Borrowed(b""),
            Field::BodyDigest => Cow::Borrowed(self.body_digest.unwrap_or_default().as_bytes()),
            Field::Timestamp => {
                Cow::Owned(timestamp(self.config.timestamp, self.drawn.millis).into_bytes())
            }
            Field::Nonce => Cow::Borrowed(self.drawn.nonce.as_bytes()),
            Field::ContentType => Cow::Borrowed(self.content_type),
            Field::ApiKey => Cow::Borrowed(
                self.config
                    .api_key
                    .as_ref()
                    .map_or("", |k| k.expose())
                    .as_bytes(),
            ),
            Field::Secret => text(self.config.secret.expose()),
            Field::Signature => Cow::Borrowed(self.signature.as_bytes()),
        }
    }

    /// The string to sign, one part a line, as `countersign sign` shows
    /// it: the secret and the body stand in by name.
    pub fn explain(&self, sign: &[Part]) -> Vec<String> {
        let mut lines = vec![format!(
            "string to sign, parts joined by {:?}:",
            self.config.separator
        )];
        for part in sign {
            lines.push(match part {
                Part::Text(t) => format!("  text: {t:?}"),
                Part::Field(Field::Secret) => "  secret: (the secret, not shown)".to_string(),
                Part::Field(Field::Body) => {
                    let len = self
                        .parts
                        .headers
                        .get(http::header::CONTENT_LENGTH)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("0");
                    format!("  body: ({len} bytes, as sent)")
                }
                Part::Field(f) => {
                    format!("  {}: {}", f.name(), String::from_utf8_lossy(&self.get(*f)))
                }
            });
        }
        lines
    }
}
