//! Rules for `grant = "authorization_code"`: the authorization endpoint, the
//! registered redirect URI, the session header, the secret that lets the app
//! start an authorization, the token response fields the app may read back
//! (`session_facts`), the revocation endpoint, and the session store folder.

use http::{HeaderName, Uri};

use super::super::super::raw::RawOAuth2;
use super::super::super::{CodeFlow, SecretBytes, TokenStoreConfig};
use super::super::Checker;

const DEFAULT_SESSION_HEADER: &str = "x-countersign-session";
/// Token response fields that hold a token: never a session fact (nor is
/// any other name ending in `_token`).
const TOKEN_FIELDS: &[&str] = &["access_token", "refresh_token", "id_token"];
/// Token response fields the session facts report in their own way.
const REPORTED_ANYWAY: &[&str] = &["scope", "expires_in", "token_type"];

impl Checker<'_> {
    pub(super) fn code_flow(&mut self, path: &str, raw: &RawOAuth2) -> Option<CodeFlow> {
        let authorize_url = match raw.authorize_url.as_deref() {
            None if raw.issuer.is_some() => Some(None),
            None => {
                self.problem(
                    format!("{path}.authorize_url"),
                    "missing; the provider's authorization endpoint, e.g. \"https://auth.example.com/authorize\", or set `issuer` to discover it",
                );
                None
            }
            Some(text) => match text.parse::<Uri>() {
                Ok(u)
                    if matches!(u.scheme_str(), Some("https" | "http"))
                        && u.authority().is_some() =>
                {
                    Some(Some(u))
                }
                _ => {
                    self.problem(format!("{path}.authorize_url"), "is not an http(s) URL");
                    None
                }
            },
        };
        let redirect_uri = match raw.redirect_uri.as_deref() {
            Some(text)
                if text
                    .parse::<Uri>()
                    .is_ok_and(|u| u.scheme().is_some() && u.authority().is_some()) =>
            {
                Some(text.to_string())
            }
            Some(_) => {
                self.problem(format!("{path}.redirect_uri"), "is not an absolute URL");
                None
            }
            None => {
                self.problem(
                    format!("{path}.redirect_uri"),
                    "missing; the redirect URI registered with the provider, which must reach countersign's admin path /oauth2/NAME/callback",
                );
                None
            }
        };
        let header = raw
            .session_header
            .as_deref()
            .unwrap_or(DEFAULT_SESSION_HEADER);
        let session_header = match HeaderName::from_bytes(header.as_bytes()) {
            Ok(h) if h != http::header::AUTHORIZATION && h != http::header::HOST => Some(h),
            _ => {
                self.problem(
                    format!("{path}.session_header"),
                    "cannot be the session header (not a header name, or Authorization or Host)",
                );
                None
            }
        };
        let session_param = match raw.session_param.as_deref() {
            Some(p)
                if !p.is_empty()
                    && p.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') =>
            {
                Some(p.to_string())
            }
            Some(_) => {
                self.problem(
                    format!("{path}.session_param"),
                    "is not a plain query parameter name",
                );
                None
            }
            None => None,
        };
        let authorize_secret = match raw.authorize_secret.as_deref() {
            None => Some(None),
            Some(text) => {
                let key = format!("{path}.authorize_secret");
                match self.secret(&key, text) {
                    Some(s) if s.expose().len() >= 16 => Some(Some(s)),
                    Some(_) => {
                        self.problem(key, "is too short; use at least 16 random characters (e.g. openssl rand -base64 24)");
                        None
                    }
                    None => None,
                }
            }
        };
        let session_facts = self.session_facts(path, raw.session_facts.as_deref());
        let revocation_url = match raw.revocation_url.as_deref() {
            None => Some(None),
            Some(text) => self
                .endpoint_url(
                    &format!("{path}.revocation_url"),
                    Some(text),
                    "https://auth.example.com/oauth2/revoke",
                    "the credential's client authentication",
                )
                .map(Some),
        };
        let fapi = self.fapi_flow(path, raw);
        Some(CodeFlow {
            fapi: fapi?,
            authorize_url: authorize_url?,
            redirect_uri: redirect_uri?,
            session_header: session_header?,
            session_param,
            authorize_secret: authorize_secret?,
            session_facts: session_facts?,
            revocation_url: revocation_url?,
        })
    }

    /// The token response fields an app may read back: plain names, each
    /// once, and never a token.
    fn session_facts(&mut self, path: &str, names: Option<&[String]>) -> Option<Vec<String>> {
        let mut kept: Vec<String> = Vec::new();
        let mut ok = true;
        for (i, name) in names.unwrap_or_default().iter().enumerate() {
            let key = format!("{path}.session_facts[{i}]");
            let lower = name.to_ascii_lowercase();
            let problem = if name.is_empty()
                || name.len() > 64
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            {
                Some("is not a field name (1 to 64 letters, digits, `_`, `-` or `.`)".to_string())
            } else if TOKEN_FIELDS.contains(&lower.as_str()) || lower.ends_with("_token") {
                Some(
                    "names a token; the app is never given one (countersign adds it to requests)"
                        .to_string(),
                )
            } else if REPORTED_ANYWAY.contains(&lower.as_str()) {
                Some(
                    "is reported anyway (as `scope` and the access token's expiry); remove it"
                        .to_string(),
                )
            } else if kept.contains(name) {
                Some("is listed twice".to_string())
            } else {
                None
            };
            match problem {
                Some(p) => {
                    self.problem(key, p);
                    ok = false;
                }
                None => kept.push(name.clone()),
            }
        }
        ok.then_some(kept)
    }

    /// Keys of the authorization-code flow set on another grant would be
    /// silently ignored; say so instead.
    pub(super) fn no_code_flow_keys(&mut self, path: &str, raw: &RawOAuth2) {
        let keys = [
            ("authorize_url", raw.authorize_url.is_some()),
            ("redirect_uri", raw.redirect_uri.is_some()),
            ("session_header", raw.session_header.is_some()),
            ("session_param", raw.session_param.is_some()),
            ("authorize_secret", raw.authorize_secret.is_some()),
            ("session_facts", raw.session_facts.is_some()),
            ("revocation_url", raw.revocation_url.is_some()),
            ("request_object", raw.request_object.is_some()),
            (
                "request_object_audience",
                raw.request_object_audience.is_some(),
            ),
            (
                "request_object_lifetime",
                raw.request_object_lifetime.is_some(),
            ),
            ("par", raw.par.is_some()),
            ("response_type", raw.response_type.is_some()),
            ("response_mode", raw.response_mode.is_some()),
        ];
        for (key, set) in keys {
            if set {
                self.problem(
                    format!("{path}.{key}"),
                    "is only used with grant = \"authorization_code\"",
                );
            }
        }
    }

    /// Sessions keep one file each in an existing folder.
    pub(super) fn session_store(
        &mut self,
        path: &str,
        raw: &RawOAuth2,
        key: Option<SecretBytes>,
    ) -> Option<Option<TokenStoreConfig>> {
        let Some(dir) = &raw.token_store else {
            if self.shared_store.is_some() {
                return Some(None);
            }
            self.problem(
                format!("{path}.token_store"),
                "missing; the authorization_code grant keeps each session's refresh token in a file in this folder",
            );
            return None;
        };
        let full = self.base_dir.join(dir);
        if !full.is_dir() {
            self.problem(
                format!("{path}.token_store"),
                "must be an existing folder (one file per session goes there)",
            );
            return None;
        }
        if raw.store_key.is_some() && key.is_none() {
            return None;
        }
        Some(Some(TokenStoreConfig { path: full, key }))
    }
}
