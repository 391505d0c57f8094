//! Rules for `type = "hmac"`: the string to sign, the header templates,
//! and how they fit together, so that `check` refuses a template that
//! cannot work, naming its key. A `recipe` is merged in first.

mod fit;
mod recipes;
mod settings;
mod template;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use http::HeaderName;
use serde::Deserialize;

use super::super::{
    CredentialConfig, Field, HmacAlgorithm, HmacConfig, Part, Template, TimestampFormat,
};
use super::{Checker, RESERVED_HEADERS};

/// `[credential.NAME]` with `type = "hmac"`, after its recipe is merged
/// in. Every key is optional so a missing one is named. No `Debug`:
/// `secret` and `api_key` may be literal secrets.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHmac {
    secret: Option<String>,
    api_key: Option<String>,
    algorithm: Option<String>,
    encoding: Option<String>,
    separator: Option<String>,
    sign: Option<Vec<toml::Value>>,
    timestamp: Option<String>,
    nonce: Option<String>,
    nonce_length: Option<i64>,
    body_digest: Option<RawBodyDigest>,
    no_body: Option<String>,
    headers: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBodyDigest {
    algorithm: Option<String>,
    over: Option<String>,
    encoding: Option<String>,
}

fn recipe_names() -> String {
    recipes::RECIPES
        .iter()
        .map(|(n, _)| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Checker<'_> {
    pub(super) fn hmac(&mut self, path: &str, mut table: toml::Table) -> Option<CredentialConfig> {
        self.merge_recipe(path, &mut table)?;
        let raw: RawHmac = match table.try_into() {
            Ok(raw) => raw,
            Err(e) => {
                self.shape_problem(path, &e);
                return None;
            }
        };
        let key = |k: &str| format!("{path}.{k}");
        let secret = match &raw.secret {
            Some(s) => self.secret(&key("secret"), s),
            None => {
                self.problem(
                    key("secret"),
                    "missing; the HMAC key, e.g. \"${env:API_SECRET}\"",
                );
                None
            }
        };
        let api_key = raw
            .api_key
            .as_ref()
            .map(|k| self.secret(&key("api_key"), k));
        let algorithm = match raw.algorithm.as_deref() {
            None | Some("hmac-sha256") => HmacAlgorithm::Sha256,
            Some("hmac-sha512") => HmacAlgorithm::Sha512,
            Some(_) => {
                self.problem(
                    key("algorithm"),
                    "must be \"hmac-sha256\" or \"hmac-sha512\"",
                );
                HmacAlgorithm::Sha256
            }
        };
        let encoding = self.encoding(&key("encoding"), raw.encoding.as_deref());
        let timestamp = match raw.timestamp.as_deref() {
            None | Some("unix") => TimestampFormat::Unix,
            Some("unix-ms") => TimestampFormat::UnixMillis,
            Some(_) => {
                self.problem(
                    key("timestamp"),
                    "must be \"unix\" (seconds) or \"unix-ms\"",
                );
                TimestampFormat::Unix
            }
        };
        let nonce = self.nonce_format(path, raw.nonce.as_deref(), raw.nonce_length);
        let sign = self.sign_parts(path, raw.sign.as_deref());
        let headers = self.header_templates(path, raw.headers.as_ref());
        let body_digest = raw
            .body_digest
            .as_ref()
            .and_then(|d| self.body_digest(&key("body_digest"), d));
        let (sign, headers) = (sign?, headers?);
        self.fit(path, &sign, &headers, &raw, api_key.as_ref());
        Some(CredentialConfig::Hmac(Box::new(HmacConfig {
            secret: secret?,
            api_key: api_key.flatten(),
            algorithm,
            encoding,
            separator: raw.separator.unwrap_or_default(),
            sign,
            timestamp,
            nonce,
            body_digest,
            no_body: raw.no_body,
            headers,
        })))
    }

    /// Merges the keys of `recipe = "NAME"` into `table`; a key set both
    /// ways is refused (the recipe would silently win or lose).
    fn merge_recipe(&mut self, path: &str, table: &mut toml::Table) -> Option<()> {
        let name = match table.remove("recipe") {
            None => return Some(()),
            Some(toml::Value::String(name)) => name,
            Some(_) => {
                self.problem(format!("{path}.recipe"), "must be a string");
                return None;
            }
        };
        let Some(text) = recipes::named(&name) else {
            self.problem(
                format!("{path}.recipe"),
                format!("is not a recipe; use {}", recipe_names()),
            );
            return None;
        };
        let recipe: toml::Table = text.parse().expect("invariant: every recipe is valid TOML");
        let mut ok = true;
        for (k, v) in recipe {
            if table.contains_key(&k) {
                self.problem(
                    format!("{path}.{k}"),
                    format!("is set by recipe \"{name}\"; remove it, or write the whole template without `recipe`"),
                );
                ok = false;
            }
            table.insert(k, v);
        }
        ok.then_some(())
    }

    /// `sign = [...]`: part names and `{ text = "..." }`.
    fn sign_parts(&mut self, path: &str, raw: Option<&[toml::Value]>) -> Option<Vec<Part>> {
        let Some(raw) = raw.filter(|r| !r.is_empty()) else {
            self.problem(
                format!("{path}.sign"),
                "missing; the parts of the string to sign, in order, e.g. [\"timestamp\", \"method\", \"path\", \"body\"]",
            );
            return None;
        };
        let mut parts = Vec::new();
        let mut ok = true;
        for (i, value) in raw.iter().enumerate() {
            let p = format!("{path}.sign[{i}]");
            match value {
                toml::Value::String(name) => match Field::named(name) {
                    Some(Field::Signature) => {
                        self.problem(p, "the signature cannot sign itself");
                        ok = false;
                    }
                    Some(f) => parts.push(Part::Field(f)),
                    None => {
                        self.problem(p, format!("is not a part; use {}", part_names()));
                        ok = false;
                    }
                },
                toml::Value::Table(t) => match (t.len(), t.get("text")) {
                    (1, Some(toml::Value::String(text))) => parts.push(Part::Text(text.clone())),
                    _ => {
                        self.problem(p, "a table here must be { text = \"...\" }");
                        ok = false;
                    }
                },
                _ => {
                    self.problem(
                        p,
                        format!(
                            "must be a part name ({}) or {{ text = \"...\" }}",
                            part_names()
                        ),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(parts)
    }

    fn header_templates(
        &mut self,
        path: &str,
        raw: Option<&BTreeMap<String, String>>,
    ) -> Option<Vec<(HeaderName, Template)>> {
        let Some(raw) = raw.filter(|r| !r.is_empty()) else {
            self.problem(
                format!("{path}.headers"),
                "missing; the headers to write, e.g. { \"X-Signature\" = \"{signature}\" }",
            );
            return None;
        };
        let mut out: Vec<(HeaderName, Template)> = Vec::new();
        let mut ok = true;
        for (name, text) in raw {
            let p = format!("{path}.headers.{name}");
            let Ok(header) = HeaderName::from_bytes(name.as_bytes()) else {
                self.problem(p, "is not a valid header name");
                ok = false;
                continue;
            };
            if RESERVED_HEADERS.contains(&header.as_str())
                || header.as_str().starts_with("proxy-")
                || header == http::header::CONTENT_TYPE
            {
                self.problem(
                    p,
                    "is managed by countersign or signed as sent, and cannot be written",
                );
                ok = false;
                continue;
            }
            if out.iter().any(|(h, _)| *h == header) {
                self.problem(
                    p,
                    "names the same header as another entry (names are case-insensitive)",
                );
                ok = false;
                continue;
            }
            match template::parse(text) {
                Ok(t) => out.push((header, t)),
                Err(why) => {
                    self.problem(p, why);
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }
}

fn part_names() -> String {
    Field::ALL
        .iter()
        .filter(|(_, f)| *f != Field::Signature)
        .map(|(n, _)| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}
