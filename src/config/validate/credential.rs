//! Rules for `[credential.NAME]` tables, by `type`.

use base64::Engine as _;

use super::super::raw::{
    RawAwsSigV4, RawBasic, RawHeaderCredential, RawHttpSignature, RawIssuedKey, RawJwsDetached,
    RawOAuth2, RawPayPayOpa,
};
use super::super::CredentialConfig;
use super::Checker;

const CREDENTIAL_TYPES: &str =
    "\"paypay-opa\", \"header\", \"oauth2\", \"issued-key\", \"aws-sigv4\", \"jws-detached\", \"hmac\" or \"http-signature\"";

impl Checker<'_> {
    pub(super) fn credential(
        &mut self,
        name: &str,
        value: toml::Value,
    ) -> Option<CredentialConfig> {
        let path = format!("credential.{name}");
        let toml::Value::Table(mut table) = value else {
            self.problem(path, "must be a table");
            return None;
        };
        let kind = match table.remove("type") {
            Some(toml::Value::String(kind)) => kind,
            Some(_) => {
                self.problem(format!("{path}.type"), "must be a string");
                return None;
            }
            None => {
                self.problem(
                    format!("{path}.type"),
                    format!("missing; use {CREDENTIAL_TYPES}"),
                );
                return None;
            }
        };
        match kind.as_str() {
            "paypay-opa" => match table.try_into::<RawPayPayOpa>() {
                Ok(raw) => self.paypay(&path, raw),
                Err(e) => {
                    self.shape_problem(&path, &e);
                    None
                }
            },
            "header" => match table.try_into::<RawHeaderCredential>() {
                Ok(raw) => self.header_credential(&path, raw),
                Err(e) => {
                    self.shape_problem(&path, &e);
                    None
                }
            },
            "oauth2" => match table.try_into::<RawOAuth2>() {
                Ok(raw) => self.oauth2(&path, raw),
                Err(e) => {
                    self.shape_problem(&path, &e);
                    None
                }
            },
            "issued-key" => match table.try_into::<RawIssuedKey>() {
                Ok(raw) => self.issued_key(&path, raw),
                Err(e) => {
                    self.shape_problem(&path, &e);
                    None
                }
            },
            "aws-sigv4" => match table.try_into::<RawAwsSigV4>() {
                Ok(raw) => self.aws_sigv4(&path, raw),
                Err(e) => {
                    self.shape_problem(&path, &e);
                    None
                }
            },
            "jws-detached" => match table.try_into::<RawJwsDetached>() {
                Ok(raw) => self.jws_detached(&path, raw),
                Err(e) => {
                    self.shape_problem(&path, &e);
                    None
                }
            },
            "http-signature" => match table.try_into::<RawHttpSignature>() {
                Ok(raw) => self.http_signature(&path, raw),
                Err(e) => {
                    self.shape_problem(&path, &e);
                    None
                }
            },
            "hmac" => self.hmac(&path, table),
            _ => {
                self.problem(
                    format!("{path}.type"),
                    format!("is not a credential type; use {CREDENTIAL_TYPES}"),
                );
                None
            }
        }
    }

    fn paypay(&mut self, path: &str, raw: RawPayPayOpa) -> Option<CredentialConfig> {
        let api_key = self.secret(&format!("{path}.api_key"), &raw.api_key);
        let api_secret = self.secret(&format!("{path}.api_secret"), &raw.api_secret);
        let nonce_length = match raw.nonce_length {
            None => 8,
            Some(n @ 8..=64) => n as usize,
            Some(_) => {
                self.problem(format!("{path}.nonce_length"), "must be between 8 and 64");
                8
            }
        };
        if let Some(key) = &api_key {
            if key.expose().contains(':') {
                self.problem(
                    format!("{path}.api_key"),
                    "must not contain `:` (it separates the fields of the OPA-Auth header)",
                );
            }
        }
        Some(CredentialConfig::PayPayOpa {
            api_key: api_key?,
            api_secret: api_secret?,
            nonce_length,
        })
    }

    fn header_credential(
        &mut self,
        path: &str,
        raw: RawHeaderCredential,
    ) -> Option<CredentialConfig> {
        let mut headers = self.header_map(&format!("{path}.headers"), &raw.headers);
        let mut authorization = Vec::new();
        if let Some(token) = &raw.bearer {
            let p = format!("{path}.bearer");
            if let Some(t) = self.secret(&p, token) {
                authorization.push((p, format!("Bearer {}", t.expose())));
            }
        }
        if let Some(RawBasic { username, password }) = &raw.basic {
            let user = self.secret(&format!("{path}.basic.username"), username);
            let pass = self.secret(&format!("{path}.basic.password"), password);
            if let (Some(u), Some(p)) = (user, pass) {
                let pair = format!("{}:{}", u.expose(), p.expose());
                let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
                authorization.push((format!("{path}.basic"), format!("Basic {encoded}")));
            }
        }
        let explicit = headers
            .iter()
            .any(|(n, _)| n == http::header::AUTHORIZATION);
        if authorization.len() + usize::from(explicit) > 1 {
            self.problem(
                path,
                "sets Authorization more than once; use only one of `bearer`, `basic` or an Authorization entry in `headers`",
            );
        }
        for (p, value) in authorization {
            if let Some(v) = self.header_value(&p, &value) {
                headers.push((http::header::AUTHORIZATION, v));
            }
        }
        if headers.is_empty() && self.problems.iter().all(|p| !p.path.starts_with(path)) {
            self.problem(path, "adds no header; set `headers`, `bearer` or `basic`");
        }
        Some(CredentialConfig::Header { headers })
    }
}
