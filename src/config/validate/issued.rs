//! Rules for `[credential.NAME]` tables with `type = "issued-key"`: every
//! key is checked and every problem reported at its own key path.

use std::collections::BTreeMap;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Uri};

use super::super::raw::RawIssuedKey;
use super::super::units::parse_duration;
use super::super::{CredentialConfig, IssuedKeyConfig, KeyPlacement, KeyResponse, Secret};
use super::{Checker, RESERVED_HEADERS};

impl Checker<'_> {
    pub(super) fn issued_key(&mut self, path: &str, raw: RawIssuedKey) -> Option<CredentialConfig> {
        let form = self.issue_form(path, raw.form.as_ref());
        let issue_url = self.issue_url(path, raw.issue_url.as_deref(), raw.form.as_ref());
        let bearer = match raw.bearer.as_deref() {
            Some(b) => self.master_key(&format!("{path}.bearer"), b).map(Some),
            None => Some(None),
        };
        if raw.form.as_ref().is_none_or(BTreeMap::is_empty) && raw.bearer.is_none() {
            self.problem(
                path,
                "proves nothing to the issuer; set `form` (e.g. sid and spw) or `bearer` (a master key)",
            );
        }
        let response = self.key_response(path, &raw);
        let (lifetime, margin) = self.key_lifetime(path, &raw);
        let placement = self.key_placement(path, &raw);
        let ca_roots = match raw.ca_file.as_deref() {
            Some(f) => self.ca_file(&format!("{path}.ca_file"), f),
            None => Vec::new(),
        };
        let client_identity =
            self.client_identity(path, raw.client_cert.clone(), raw.client_key.clone());
        let refresh_at = match raw.refresh_at {
            None => 0.8,
            Some(f) if f > 0.0 && f < 1.0 => f,
            Some(_) => {
                self.problem(
                    format!("{path}.refresh_at"),
                    "must be a fraction of the key's usable life between 0 and 1, e.g. 0.8",
                );
                0.8
            }
        };
        let wait_for_token = self.duration(
            &format!("{path}.wait_for_token"),
            raw.wait_for_token,
            Duration::from_secs(5),
        );
        Some(CredentialConfig::IssuedKey(Box::new(IssuedKeyConfig {
            issue_url: issue_url?,
            form: form?,
            bearer: bearer?,
            response: response?,
            lifetime: lifetime?,
            margin: margin?,
            placement: placement?,
            ca_roots,
            client_identity,
            refresh_at,
            wait_for_token,
            shared_store: self.shared_store.clone(),
        })))
    }

    fn issue_form(
        &mut self,
        path: &str,
        raw: Option<&BTreeMap<String, String>>,
    ) -> Option<Vec<(String, Secret)>> {
        self.secret_table(&format!("{path}.form"), raw.into_iter().flatten(), |name| {
            name.is_empty().then_some("a form field needs a name")
        })
    }

    /// The issuing endpoint. Its query may not carry a form field: the
    /// issuer's credentials go in the request body, never in a URL that
    /// servers and proxies log.
    fn issue_url(
        &mut self,
        path: &str,
        value: Option<&str>,
        form: Option<&BTreeMap<String, String>>,
    ) -> Option<Uri> {
        let path = format!("{path}.issue_url");
        let uri = self.endpoint_url(
            &path,
            value,
            "https://acp-api.amivoice.com/issue_service_authorization",
            "`form` or `bearer`",
        )?;
        let in_query = uri
            .query()
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter_map(|pair| pair.split('=').next())
            .find(|name| form.is_some_and(|f| f.contains_key(*name)));
        if in_query.is_some() {
            self.problem(
                path,
                "must not carry form fields in its query; they are sent in the request body, never in the URL",
            );
            return None;
        }
        Some(uri)
    }

    /// The master key, checked to fit an `Authorization: Bearer` header.
    fn master_key(&mut self, path: &str, text: &str) -> Option<Secret> {
        let key = self.secret(path, text)?;
        self.header_value(path, &format!("Bearer {}", key.expose()))?;
        Some(key)
    }

    fn key_response(&mut self, path: &str, raw: &RawIssuedKey) -> Option<KeyResponse> {
        match raw.response.as_deref() {
            None | Some("text") => {
                for (key, set) in [
                    ("json_field", raw.json_field.is_some()),
                    ("expires_in_field", raw.expires_in_field.is_some()),
                ] {
                    if set {
                        self.problem(
                            format!("{path}.{key}"),
                            "is only used with response = \"json\"",
                        );
                    }
                }
                Some(KeyResponse::Text)
            }
            Some("json") => {
                let field = |c: &mut Self, key: &str, value: &Option<String>| match value {
                    Some(f) if f.is_empty() => {
                        c.problem(format!("{path}.{key}"), "is empty; name a top-level field");
                        None
                    }
                    other => Some(other.clone()),
                };
                let key_field = field(self, "json_field", &raw.json_field)?;
                let expires_in_field = field(self, "expires_in_field", &raw.expires_in_field)?;
                let Some(key_field) = key_field else {
                    self.problem(
                        format!("{path}.json_field"),
                        "missing; the top-level field of the JSON response that holds the key, e.g. \"key\"",
                    );
                    return None;
                };
                Some(KeyResponse::Json {
                    key_field,
                    expires_in_field,
                })
            }
            Some(_) => {
                self.problem(
                    format!("{path}.response"),
                    "is not a response mode; use \"text\" (the body is the key) or \"json\"",
                );
                None
            }
        }
    }

    /// `(lifetime, margin)`: each `Some` when valid (holding `None` when
    /// not set), `None` when a problem was reported.
    #[allow(
        clippy::type_complexity,
        reason = "two optional settings, each valid-or-reported; a named type would hide that"
    )]
    fn key_lifetime(
        &mut self,
        path: &str,
        raw: &RawIssuedKey,
    ) -> (Option<Option<Duration>>, Option<Option<Duration>>) {
        let lifetime = self.optional_duration(&format!("{path}.lifetime"), &raw.lifetime);
        let margin = self.optional_duration(&format!("{path}.margin"), &raw.margin);
        let from_response =
            raw.response.as_deref() == Some("json") && raw.expires_in_field.is_some();
        if raw.lifetime.is_none() && !from_response {
            self.problem(
                format!("{path}.lifetime"),
                "missing; how long an issued key is valid, e.g. \"300s\" (for AmiVoice, the epi you send), unless a JSON response says so (expires_in_field)",
            );
            return (None, margin);
        }
        if let (Some(Some(l)), Some(Some(m))) = (lifetime, margin) {
            if m >= l {
                self.problem(
                    format!("{path}.margin"),
                    format!("must be shorter than lifetime ({l:?}): a key is never used in its last `margin`"),
                );
                return (lifetime, None);
            }
        }
        (lifetime, margin)
    }

    /// `Some(None)` when unset, `Some(Some(d))` when valid, `None` after a
    /// problem.
    fn optional_duration(&mut self, path: &str, raw: &Option<String>) -> Option<Option<Duration>> {
        match raw.as_deref().map(parse_duration) {
            None => Some(None),
            Some(Ok(d)) if !d.is_zero() => Some(Some(d)),
            Some(Ok(_)) => {
                self.problem(path, "must be longer than zero");
                None
            }
            Some(Err(e)) => {
                self.problem(path, e);
                None
            }
        }
    }

    fn key_placement(&mut self, path: &str, raw: &RawIssuedKey) -> Option<KeyPlacement> {
        if raw.prefix.is_some() && raw.header.is_none() {
            self.problem(format!("{path}.prefix"), "is only used with `header`");
        }
        match (&raw.header, &raw.query) {
            (Some(_), Some(_)) => {
                self.problem(
                    path,
                    "sets both `header` and `query`; a key goes in one place",
                );
                None
            }
            (None, None) => {
                self.problem(
                    path,
                    "puts the key nowhere; set `header` (e.g. \"Authorization\") or `query` (e.g. \"authorization\", as AmiVoice takes it)",
                );
                None
            }
            (Some(header), None) => self.key_header(path, header, raw.prefix.as_deref()),
            (None, Some(query)) if query.is_empty() => {
                self.problem(
                    format!("{path}.query"),
                    "is empty; name the query parameter",
                );
                None
            }
            (None, Some(query)) => Some(KeyPlacement::Query {
                name: query.clone(),
            }),
        }
    }

    fn key_header(
        &mut self,
        path: &str,
        header: &str,
        prefix: Option<&str>,
    ) -> Option<KeyPlacement> {
        let p = format!("{path}.header");
        let Ok(name) = HeaderName::from_bytes(header.as_bytes()) else {
            self.problem(p, "is not a valid header name");
            return None;
        };
        if RESERVED_HEADERS.contains(&name.as_str()) || name.as_str().starts_with("proxy-") {
            self.problem(p, "is managed by countersign and cannot be set");
            return None;
        }
        let prefix = prefix.unwrap_or("");
        if HeaderValue::from_str(prefix).is_err() {
            self.problem(
                format!("{path}.prefix"),
                "is not valid in a header value (control characters or line breaks)",
            );
            return None;
        }
        Some(KeyPlacement::Header {
            name,
            prefix: prefix.to_string(),
        })
    }
}

#[cfg(test)]
mod tests;
