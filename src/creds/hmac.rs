//! `hmac`: a declarative HMAC signature (config/hmac.rs has its shape,
//! docs/credentials/hmac.md its rules and recipes).
//!
//! The body runs through the one pass over it (digest.rs): a
//! `body_digest` as a stream of its own, and when the string to sign holds
//! the raw body, the HMAC itself, fed first with every part before the
//! body (the timestamp and nonce included, drawn when the body starts),
//! then the body chunk by chunk, and at `apply` the parts after it. No
//! copy of the body is held for it, wherever it sits in the string.

mod body;
mod nonce;
#[cfg(test)]
mod tests;
mod values;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::header::CONTENT_TYPE;
use http::request::Parts;
use http::{HeaderName, HeaderValue};
use md5::{Digest as _, Md5};
use sha2::{Sha256, Sha512};

use super::{
    BodyDigest, BodyHash, CredError, Drawn, Explain, Explained, Running, SignParams, Stream,
};
use crate::config::{
    DigestAlgorithm, Encoding, Field, HmacAlgorithm, HmacConfig, Part, Piece, TimestampFormat,
};
use values::Values;

#[derive(Debug)]
pub struct HmacCred {
    /// The keys of its streams in the body hash (`NAME#mac`, `NAME#digest`).
    mac_key: String,
    digest_key: String,
    config: HmacConfig,
    /// Keyed with the secret once; each signature clones it.
    keyed: Keyed,
}

/// An HMAC state keyed with the secret; `Debug` never shows it.
struct Keyed(Running);

impl std::fmt::Debug for Keyed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyed(<redacted>)")
    }
}

impl HmacCred {
    pub fn new(name: &str, config: &HmacConfig) -> HmacCred {
        let key = config.secret.expose().as_bytes();
        let keyed = match config.algorithm {
            HmacAlgorithm::Sha256 => Running::HmacSha256(
                Hmac::<Sha256>::new_from_slice(key)
                    .expect("invariant: HMAC accepts keys of any length"),
            ),
            HmacAlgorithm::Sha512 => Running::HmacSha512(
                Hmac::<Sha512>::new_from_slice(key)
                    .expect("invariant: HMAC accepts keys of any length"),
            ),
        };
        HmacCred {
            mac_key: format!("{name}#mac"),
            digest_key: format!("{name}#digest"),
            config: config.clone(),
            keyed: Keyed(keyed),
        }
    }

    pub fn header_names(&self) -> Vec<HeaderName> {
        self.config.headers.iter().map(|(n, _)| n.clone()).collect()
    }

    /// Whether the string to sign or a header uses `field`.
    fn uses(&self, field: Field) -> bool {
        self.config.sign.contains(&Part::Field(field))
            || self
                .config
                .headers
                .iter()
                .any(|(_, t)| t.fields().any(|f| f == field))
    }

    /// Where the raw body sits in the string to sign, if it does.
    fn body_at(&self) -> Option<usize> {
        self.config
            .sign
            .iter()
            .position(|p| *p == Part::Field(Field::Body))
    }

    /// Asks for the body when the template signs it: a stream for the
    /// body digest, and the HMAC itself when the raw body is a part.
    pub fn body_hash(
        &self,
        parts: &Parts,
        hash: &mut BodyHash,
        params: &SignParams,
    ) -> Result<(), CredError> {
        if let Some(spec) = self
            .config
            .body_digest
            .filter(|_| self.uses(Field::BodyDigest))
        {
            let mut running = match spec.algorithm {
                DigestAlgorithm::Md5 => Running::Md5(Md5::new()),
                DigestAlgorithm::Sha256 => Running::Sha256(Sha256::new()),
            };
            if spec.content_type_first {
                running.update(
                    parts
                        .headers
                        .get(CONTENT_TYPE)
                        .map_or(&b""[..], |v| v.as_bytes()),
                );
            }
            hash.want_stream(
                self.digest_key.clone(),
                Stream {
                    running,
                    drawn: None,
                },
            );
        }
        if let Some(at) = self.body_at() {
            let drawn = self.draw(params)?;
            let content_type = parts
                .headers
                .get(CONTENT_TYPE)
                .map_or(&b""[..], |v| v.as_bytes());
            let values = Values::new(&self.config, parts, content_type, None, &drawn);
            let mut running = self.keyed.0.clone();
            self.feed(&mut running, 0, &self.config.sign[..=at], &values);
            hash.want_stream(
                self.mac_key.clone(),
                Stream {
                    running,
                    drawn: Some(drawn),
                },
            );
        }
        Ok(())
    }

    /// Signs: finishes the HMAC the body ran through, or computes it
    /// whole when there was no body, then writes the headers.
    pub fn apply(
        &self,
        parts: &mut Parts,
        digest: &BodyDigest,
        params: &SignParams,
    ) -> Result<(), CredError> {
        let has_body = matches!(digest, BodyDigest::Present(_));
        let content_type = self.content_type(parts, has_body)?.to_vec();
        let body_digest = self.body_digest(digest, &content_type)?;
        let streamed = match self.body_at() {
            Some(at) if has_body => {
                let stream = digest.stream(&self.mac_key).ok_or_else(|| {
                    CredError::Request("hmac: the body was not run through the signature".into())
                })?;
                let drawn = stream.drawn.clone().ok_or_else(|| {
                    CredError::Request("hmac: the body's signature has no time".into())
                })?;
                Some((at, stream.running.clone(), drawn))
            }
            _ => None,
        };
        let shown_type = match (&self.config.no_body, has_body) {
            (Some(text), false) => text.as_bytes().to_vec(),
            _ => content_type,
        };
        let (running, drawn) = match streamed {
            Some((at, mut running, drawn)) => {
                let values = Values::new(
                    &self.config,
                    parts,
                    &shown_type,
                    body_digest.as_deref(),
                    &drawn,
                );
                self.feed(&mut running, at + 1, &self.config.sign[at + 1..], &values);
                (running, drawn)
            }
            None => {
                let drawn = self.draw(params)?;
                let values = Values::new(
                    &self.config,
                    parts,
                    &shown_type,
                    body_digest.as_deref(),
                    &drawn,
                );
                let mut running = self.keyed.0.clone();
                self.feed(&mut running, 0, &self.config.sign, &values);
                (running, drawn)
            }
        };
        let signature = encode(self.config.encoding, &running.finalize());
        let values = Values::new(
            &self.config,
            parts,
            &shown_type,
            body_digest.as_deref(),
            &drawn,
        )
        .with_signature(signature);
        let explained = parts
            .extensions
            .get::<Explain>()
            .map(|_| Explained(values.explain(&self.config.sign)));
        let mut headers = Vec::with_capacity(self.config.headers.len());
        for (name, template) in &self.config.headers {
            let mut text = Vec::new();
            for piece in &template.0 {
                match piece {
                    Piece::Text(t) => text.extend_from_slice(t.as_bytes()),
                    Piece::Field(f) => text.extend_from_slice(&values.get(*f)),
                }
            }
            let mut value = HeaderValue::from_bytes(&text).map_err(|_| {
                CredError::Request(format!(
                    "hmac: header {name} cannot hold what its template puts in it"
                ))
            })?;
            value.set_sensitive(true);
            headers.push((name.clone(), value));
        }
        for (name, value) in headers {
            parts.headers.insert(name, value);
        }
        if let Some(explained) = explained {
            parts.extensions.insert(explained);
        }
        Ok(())
    }

    /// `parts` (which start at position `first` of the string to sign)
    /// into `running`, each after the separator but the very first; the
    /// body is fed elsewhere, so it adds nothing here.
    fn feed(&self, running: &mut Running, first: usize, parts: &[Part], values: &Values<'_>) {
        for (i, part) in parts.iter().enumerate() {
            if first + i > 0 {
                running.update(self.config.separator.as_bytes());
            }
            match part {
                Part::Text(t) => running.update(t.as_bytes()),
                Part::Field(Field::Body) => {}
                Part::Field(f) => running.update(&values.get(*f)),
            }
        }
    }

    /// The time and nonce of one signature: fixed by `params`, else now
    /// and fresh.
    fn draw(&self, params: &SignParams) -> Result<Drawn, CredError> {
        let millis = match params.epoch {
            Some(secs) => secs.saturating_mul(1000),
            None => now_millis(),
        };
        let nonce = match &params.nonce {
            Some(n) => n.clone(),
            None if self.uses(Field::Nonce) => nonce::draw(self.config.nonce)?,
            None => String::new(),
        };
        Ok(Drawn { millis, nonce })
    }
}

fn timestamp(format: TimestampFormat, millis: u64) -> String {
    match format {
        TimestampFormat::Unix => (millis / 1000).to_string(),
        TimestampFormat::UnixMillis => millis.to_string(),
    }
}

fn encode(encoding: Encoding, bytes: &[u8]) -> String {
    match encoding {
        Encoding::Base64 => BASE64.encode(bytes),
        Encoding::Hex => super::sigv4::hex(bytes),
    }
}

fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
